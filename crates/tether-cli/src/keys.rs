//! `tether keys`: generate, inspect, convert and export keys; make CSRs and
//! self-signed certificates. Software keys and `pkcs11:` token keys alike.

mod convert;
mod inspect;
pub(crate) mod output;
mod x509;

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use tether_jwt::Algorithm;
use tether_keys::convert::{Options, Target, pem_text};
use tether_keys::generate::{KeySpec, generate};
use tether_keys::pkcs11::{Pkcs11Key, Pkcs11Uri};

use crate::exit;
pub(crate) use output::write_file;

/// Arguments of `tether keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a key pair: the private key and the public key ready to register.
    Gen(GenArgs),
    /// Say what a file is, its fingerprint, and which IoT Core format it fits.
    ///
    /// Exit code 0 when the file was understood, 1 when it is not a usable key,
    /// certificate or CSR (the reason is printed), 2 when it cannot be read.
    Inspect(inspect::InspectArgs),
    /// Convert between PEM, DER, PKCS#8, PKCS#1, SEC1, SPKI and raw P-256 bytes.
    Convert(convert::ConvertArgs),
    /// Export a key or certificate as a C header or a Rust constant.
    Export(convert::ExportArgs),
    /// Make a PKCS#10 certificate signing request (the key, or its token, signs it).
    Csr(x509::CsrArgs),
    /// Make a self-signed certificate (for the *_X509_PEM credential formats).
    Cert(x509::CertArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alg {
    Es256,
    Rs256,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyFormat {
    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`), what most tools expect.
    Pkcs8,
    /// PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), RSA only.
    Pkcs1,
    /// SEC1 PEM (`BEGIN EC PRIVATE KEY`), EC only.
    Sec1,
    /// PKCS#8 DER.
    Der,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "es256")]
    alg: Alg,
    /// RSA modulus size: 2048, 3072 or 4096.
    #[arg(long)]
    bits: Option<u32>,
    /// Base name of the output files: NAME.key.pem (private) and NAME.pub.pem (public).
    #[arg(long, value_name = "NAME")]
    out: PathBuf,
    /// Private key format.
    #[arg(long, value_enum, default_value = "pkcs8")]
    format: KeyFormat,
    /// Generate a non-extractable P-256 key inside a PKCS#11 token instead; only the
    /// public key is written.
    #[arg(long, value_name = "URI")]
    pkcs11: Option<String>,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// Runs `tether keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<u8> {
    match args.command {
        KeysCommand::Gen(a) => run_gen(a),
        KeysCommand::Inspect(a) => inspect::run(a),
        KeysCommand::Convert(a) => convert::run_convert(a),
        KeysCommand::Export(a) => convert::run_export(a),
        KeysCommand::Csr(a) => x509::run_csr(a),
        KeysCommand::Cert(a) => x509::run_cert(a),
    }
}

fn with_suffix(base: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn run_gen(a: GenArgs) -> anyhow::Result<u8> {
    let pub_path = with_suffix(&a.out, ".pub.pem");
    if let Some(uri) = &a.pkcs11 {
        if matches!(a.alg, Alg::Rs256) {
            bail!("--pkcs11 generates P-256 keys only (ES256); drop --alg rs256");
        }
        let uri = Pkcs11Uri::parse(uri)?;
        let key = Pkcs11Key::generate_p256(&uri)?;
        let public = key.public_key();
        output::write_file(
            &pub_path,
            pem_text("PUBLIC KEY", public.spki_der()).as_bytes(),
            a.force,
            false,
        )?;
        let id: String = key
            .uri()
            .id
            .iter()
            .flatten()
            .map(|b| format!("%{b:02x}"))
            .collect();
        println!(
            "generated a P-256 key in {} (id={id}); it cannot leave the token",
            uri.describe()
        );
        println!("public key: {} (register as ES256_PEM)", pub_path.display());
        println!("fingerprint: {}", public.fingerprint());
        return Ok(exit::OK);
    }
    let alg = match a.alg {
        Alg::Es256 => Algorithm::Es256,
        Alg::Rs256 => Algorithm::Rs256,
    };
    let spec = KeySpec::new(alg, a.bits)?;
    let key = generate(spec)?;
    let (bytes, ext) = match a.format {
        KeyFormat::Pkcs8 => (
            pem_text("PRIVATE KEY", &key.pkcs8_der()).into_bytes(),
            "key.pem",
        ),
        KeyFormat::Der => (key.pkcs8_der().to_vec(), "key.der"),
        KeyFormat::Pkcs1 => match key.pkcs1_der() {
            Some(der) => (pem_text("RSA PRIVATE KEY", der).into_bytes(), "key.pem"),
            None => bail!("--format pkcs1 is for RSA keys; EC keys use pkcs8 or sec1"),
        },
        KeyFormat::Sec1 => match key.sec1_der() {
            Some(der) => (pem_text("EC PRIVATE KEY", &der).into_bytes(), "key.pem"),
            None => bail!("--format sec1 is for EC keys; RSA keys use pkcs8 or pkcs1"),
        },
    };
    let key_path = with_suffix(&a.out, &format!(".{ext}"));
    output::write_file(&key_path, &bytes, a.force, true)?;
    let public = key.public_key();
    output::write_file(
        &pub_path,
        pem_text("PUBLIC KEY", public.spki_der()).as_bytes(),
        a.force,
        false,
    )?;
    let format = match alg {
        Algorithm::Es256 => "ES256_PEM",
        Algorithm::Rs256 => "RSA_PEM",
    };
    println!(
        "private key: {} (keep it on the device)",
        key_path.display()
    );
    println!("public key:  {} (register as {format})", pub_path.display());
    println!("fingerprint: {}", public.fingerprint());
    Ok(exit::OK)
}

/// Converts with the library and names the file in errors.
pub(crate) fn convert_file(
    spec: &str,
    target: Target,
    options: Options,
) -> anyhow::Result<tether_keys::convert::Converted> {
    let parsed = tether_keys::load(std::path::Path::new(spec))?;
    tether_keys::convert::convert(&parsed, target, options).with_context(|| spec.to_string())
}
