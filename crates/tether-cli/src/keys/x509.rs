//! `tether keys csr` and `tether keys cert`.

use std::path::PathBuf;

use clap::Args;
use tether_keys::KeyHandle;
use tether_keys::cert::{Validity, make_csr, self_signed};
use tether_keys::convert::pem_text;

use super::output;
use crate::exit;

#[derive(Debug, Args)]
pub(crate) struct CsrArgs {
    /// The private key, or a `pkcs11:` URI of a key in a token (the token signs).
    #[arg(long, value_name = "FILE|pkcs11:URI")]
    key: String,
    /// Subject, e.g. "CN=dev-1,O=Acme".
    #[arg(long)]
    subject: String,
    /// Subject alternative names (DNS names or IP addresses); repeatable.
    #[arg(long, value_name = "NAME")]
    san: Vec<String>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run_csr(a: CsrArgs) -> anyhow::Result<u8> {
    let key = KeyHandle::open(&a.key)?;
    let der = make_csr(&key, &a.subject, &a.san)?;
    output::emit(
        a.out.as_deref(),
        pem_text("CERTIFICATE REQUEST", &der).as_bytes(),
        true,
        a.force,
        false,
    )?;
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub(crate) struct CertArgs {
    /// The private key, or a `pkcs11:` URI of a key in a token (the token signs).
    #[arg(long, value_name = "FILE|pkcs11:URI")]
    key: String,
    /// Subject, e.g. "CN=dev-1".
    #[arg(long, default_value = "CN=tether-device")]
    subject: String,
    /// Days of validity from now (IoT Core refuses expired certificates).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Subject alternative names (DNS names or IP addresses); repeatable.
    #[arg(long, value_name = "NAME")]
    san: Vec<String>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run_cert(a: CertArgs) -> anyhow::Result<u8> {
    let key = KeyHandle::open(&a.key)?;
    let validity = Validity {
        not_before: crate::clock::unix_secs(),
        days: a.days,
    };
    let der = self_signed(&key, &a.subject, &a.san, validity)?;
    output::emit(
        a.out.as_deref(),
        pem_text("CERTIFICATE", &der).as_bytes(),
        true,
        a.force,
        false,
    )?;
    Ok(exit::OK)
}
