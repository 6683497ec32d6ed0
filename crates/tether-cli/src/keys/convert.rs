//! `tether keys convert` and `tether keys export`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tether_keys::convert::{Options, Target};
use tether_keys::export::{c_header, rust_source};

use super::output;
use crate::exit;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum To {
    /// Same structure, PEM (raw keys become SPKI or PKCS#8).
    Pem,
    /// Same structure, DER (raw keys become SPKI or PKCS#8).
    Der,
    /// PKCS#8 private key.
    Pkcs8,
    /// PKCS#1: RSA private key, or RSA public key from a public key.
    Pkcs1,
    /// SEC1 EC private key.
    Sec1,
    /// The public key as SPKI PEM: what IoT Core registers.
    Spki,
    /// P-256 raw bytes: 32-byte scalar (private) or 64-byte x||y (public).
    Raw,
}

impl From<To> for Target {
    fn from(t: To) -> Self {
        match t {
            To::Pem => Target::Pem,
            To::Der => Target::Der,
            To::Pkcs8 => Target::Pkcs8,
            To::Pkcs1 => Target::Pkcs1,
            To::Sec1 => Target::Sec1,
            To::Spki => Target::Spki,
            To::Raw => Target::Raw,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// A key, certificate or CSR (PEM, DER, raw bytes or hex), or a `pkcs11:` URI
    /// (public key only).
    #[arg(value_name = "FILE")]
    file: String,
    /// Target format.
    #[arg(long, value_enum)]
    to: To,
    /// Output file (default: stdout; binary output needs a file or a redirect).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write pkcs8/pkcs1/sec1/spki as DER instead of PEM.
    #[arg(long)]
    der: bool,
    /// With `--to raw` on a public key: 65 bytes 04||x||y instead of 64 bytes x||y.
    #[arg(long)]
    uncompressed_prefix: bool,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run_convert(a: ConvertArgs) -> anyhow::Result<u8> {
    let options = Options {
        der: a.der,
        uncompressed_prefix: a.uncompressed_prefix,
    };
    let converted = if a.file.starts_with("pkcs11:") {
        let key = tether_keys::KeyHandle::open(&a.file)?;
        let parsed = tether_keys::parse(key.public_key().spki_der())?;
        tether_keys::convert::convert(&parsed, a.to.into(), options)?
    } else {
        super::convert_file(&a.file, a.to.into(), options)?
    };
    let secret = tether_keys::load(std::path::Path::new(&a.file)).is_ok_and(|p| p.is_private())
        && !matches!(a.to, To::Spki);
    output::emit(
        a.out.as_deref(),
        &converted.bytes,
        converted.is_text,
        a.force,
        secret,
    )?;
    Ok(exit::OK)
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("lang").required(true).args(["c", "rust"])))]
pub(crate) struct ExportArgs {
    /// A key, certificate or CSR.
    #[arg(value_name = "FILE")]
    file: String,
    /// Write a C header defining `const unsigned char NAME[]` and `NAME_len`.
    #[arg(long, value_name = "NAME")]
    c: Option<String>,
    /// Write Rust source defining `pub const NAME: [u8; N]`.
    #[arg(long, value_name = "NAME")]
    rust: Option<String>,
    /// Export the PEM text, NUL-terminated (for mbedTLS and friends), instead of DER.
    #[arg(long, conflicts_with = "raw")]
    pem: bool,
    /// Export the raw P-256 bytes (scalar or x||y) instead of DER.
    #[arg(long)]
    raw: bool,
    /// Export the public key (SPKI) of whatever the file holds.
    #[arg(long)]
    public: bool,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run_export(a: ExportArgs) -> anyhow::Result<u8> {
    let parsed = tether_keys::load(std::path::Path::new(&a.file))?;
    let public_only = a.public;
    let (target, what) = match (a.pem, a.raw, public_only) {
        (true, _, true) => (Target::Spki, "public key (SPKI), PEM"),
        (true, _, false) => (Target::Pem, "PEM"),
        (_, true, _) => (Target::Raw, "raw P-256 bytes"),
        (false, false, true) => (Target::Spki, "public key (SPKI), DER"),
        (false, false, false) => (Target::Der, "DER"),
    };
    let options = Options {
        der: !a.pem,
        uncompressed_prefix: false,
    };
    let parsed = if public_only && a.raw {
        tether_keys::parse(parsed.public_key().context("no public key")?.spki_der())?
    } else {
        parsed
    };
    let converted =
        tether_keys::convert::convert(&parsed, target, options).with_context(|| a.file.clone())?;
    let what = format!("{} of {}: {what}", parsed.describe(), a.file);
    let text = match (&a.c, &a.rust) {
        (Some(name), _) => c_header(name, &converted.bytes, a.pem, &what)?,
        (None, Some(name)) => rust_source(name, &converted.bytes, &what)?,
        (None, None) => anyhow::bail!("give --c NAME or --rust NAME"),
    };
    output::emit(
        a.out.as_deref(),
        text.as_bytes(),
        true,
        a.force,
        parsed.is_private() && !public_only,
    )?;
    Ok(exit::OK)
}
