//! `tether ca`: a small certificate authority kept in a directory (`ca.pem` and
//! `ca.key.pem`, or a `pkcs11:` key) that signs device CSRs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use tether_jwt::Algorithm;
use tether_keys::ca::Ca;
use tether_keys::cert::Validity;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_keys::{KeyHandle, load};

use crate::clock::unix_secs;
use crate::exit;
use crate::keys::write_file;

/// Arguments of `tether ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a CA: a key and a self-signed CA certificate in DIR.
    Init(InitArgs),
    /// Sign a CSR with the CA; prints (or writes) the certificate.
    Sign(SignArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alg {
    Es256,
    Rs256,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Directory for ca.pem and ca.key.pem.
    #[arg(long, default_value = "tether-ca")]
    dir: PathBuf,
    /// CA subject.
    #[arg(long, default_value = "CN=Tether device CA")]
    subject: String,
    /// Days of validity.
    #[arg(long, default_value_t = 3650)]
    days: u32,
    /// Key algorithm of a new CA key.
    #[arg(long, value_enum, default_value = "es256")]
    alg: Alg,
    /// Use this existing key (a file or a `pkcs11:` URI) instead of generating one.
    #[arg(long, value_name = "FILE|pkcs11:URI")]
    key: Option<String>,
    /// Overwrite an existing CA in DIR.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The CSR (PEM or DER).
    csr: PathBuf,
    /// The CA directory.
    #[arg(long, default_value = "tether-ca")]
    dir: PathBuf,
    /// The CA key, if not DIR/ca.key.pem (a file or a `pkcs11:` URI).
    #[arg(long, value_name = "FILE|pkcs11:URI")]
    key: Option<String>,
    /// Days of validity.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

/// Runs `tether ca`.
pub fn run(args: CaArgs) -> anyhow::Result<u8> {
    match args.command {
        CaCommand::Init(a) => run_init(a),
        CaCommand::Sign(a) => run_sign(a),
    }
}

fn run_init(a: InitArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let cert_path = a.dir.join("ca.pem");
    let key = match &a.key {
        Some(spec) => KeyHandle::open(spec)?,
        None => {
            let alg = match a.alg {
                Alg::Es256 => Algorithm::Es256,
                Alg::Rs256 => Algorithm::Rs256,
            };
            let key = generate(KeySpec::new(alg, None)?)?;
            let key_path = a.dir.join("ca.key.pem");
            write_file(
                &key_path,
                pem_text("PRIVATE KEY", &key.pkcs8_der()).as_bytes(),
                a.force,
                true,
            )?;
            println!("CA key:         {} (keep it secret)", key_path.display());
            KeyHandle::Software(key)
        }
    };
    let ca = Ca::init(
        key,
        &a.subject,
        Validity {
            not_before: unix_secs(),
            days: a.days,
        },
    )?;
    write_file(
        &cert_path,
        pem_text("CERTIFICATE", ca.certificate().der()).as_bytes(),
        a.force,
        false,
    )?;
    println!(
        "CA certificate: {} (give it to devices and registries)",
        cert_path.display()
    );
    println!(
        "fingerprint:    {}",
        ca.certificate().public_key().fingerprint()
    );
    Ok(exit::OK)
}

fn open_ca(dir: &Path, key: Option<&str>) -> anyhow::Result<Ca> {
    let cert_path = dir.join("ca.pem");
    let parsed = load(&cert_path).context("loading the CA certificate (run `tether ca init`)")?;
    let Some(cert) = parsed.certificate() else {
        bail!(
            "{} is a {}, not a certificate",
            cert_path.display(),
            parsed.describe()
        );
    };
    let default_key = dir.join("ca.key.pem");
    let spec = key.map_or_else(|| default_key.display().to_string(), str::to_string);
    let key = KeyHandle::open(&spec)?;
    Ok(Ca::new(cert.clone(), key)?)
}

fn run_sign(a: SignArgs) -> anyhow::Result<u8> {
    let ca = open_ca(&a.dir, a.key.as_deref())?;
    let parsed = match load(&a.csr) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(exit::INVALID);
        }
    };
    let Some(csr) = parsed.csr() else {
        eprintln!(
            "{}: this is a {}, not a CSR (make one with `tether keys csr`)",
            a.csr.display(),
            parsed.describe()
        );
        return Ok(exit::INVALID);
    };
    let der = match ca.sign_csr(
        csr.der(),
        Validity {
            not_before: unix_secs(),
            days: a.days,
        },
    ) {
        Ok(der) => der,
        Err(e) => {
            eprintln!("{}: {e}", a.csr.display());
            return Ok(exit::INVALID);
        }
    };
    let pem = pem_text("CERTIFICATE", &der);
    match &a.out {
        Some(path) => {
            write_file(path, pem.as_bytes(), a.force, false)?;
            eprintln!(
                "certificate: {} (subject {})",
                path.display(),
                csr.subject()
            );
        }
        None => print!("{pem}"),
    }
    Ok(exit::OK)
}
