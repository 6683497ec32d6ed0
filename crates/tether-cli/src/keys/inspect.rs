//! `tether keys inspect`: what a file is, in words.

use std::path::Path;

use clap::Args;
use tether_jwt::time::Utc;
use tether_keys::register::registration;
use tether_keys::{Object, ParseError, Parsed};

use crate::exit;

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A key, certificate or CSR (PEM, DER, raw or hex), or a `pkcs11:` URI.
    #[arg(value_name = "FILE|pkcs11:URI")]
    file: String,
}

pub(crate) fn run(a: InspectArgs) -> anyhow::Result<u8> {
    if a.file.starts_with("pkcs11:") {
        let key = tether_keys::KeyHandle::open(&a.file)?;
        let public = key.public_key();
        println!(
            "{}: {} key in a PKCS#11 token (not extractable)",
            a.file,
            public.key_type()
        );
        println!("fingerprint: {}", public.fingerprint());
        println!(
            "IoT Core:    register the public key: `tether keys convert '{}' --to spki`",
            a.file
        );
        return Ok(exit::OK);
    }
    let parsed = match tether_keys::load(Path::new(&a.file)) {
        Ok(p) => p,
        Err(e) => {
            let code = match e.root() {
                ParseError::Io { .. } => exit::USAGE,
                _ => exit::INVALID,
            };
            eprintln!("{e}");
            return Ok(code);
        }
    };
    print!("{}", report(&a.file, &parsed, crate::clock::unix_secs()));
    Ok(exit::OK)
}

/// The whole report, so it can be tested without a terminal.
pub(crate) fn report(file: &str, parsed: &Parsed, now: i64) -> String {
    let mut out = format!("{file}: {} ({})\n", parsed.describe(), parsed.encoding());
    out += &format!("fingerprint: {}\n", parsed.fingerprint());
    match parsed.object() {
        Object::Certificate(c) => {
            out += &format!("subject:     {}\n", c.subject());
            out += &format!(
                "issuer:      {}{}\n",
                c.issuer(),
                if c.is_self_signed() {
                    " (self-signed)"
                } else {
                    ""
                }
            );
            out += &format!(
                "valid:       {} to {}\n",
                Utc(c.not_before()),
                Utc(c.not_after())
            );
            out += &format!("serial:      {}\n", c.serial());
            if c.is_ca() {
                out += "CA:          yes; usable as a registry CA certificate (X509_CERTIFICATE_PEM)\n";
            }
        }
        Object::Csr(c) => {
            out += &format!("subject:     {}\n", c.subject());
            out += &format!(
                "signature:   {}\n",
                if c.signature_ok() {
                    "verifies with the requested key"
                } else {
                    "DOES NOT VERIFY"
                }
            );
        }
        _ => {}
    }
    match registration(parsed, now) {
        Ok(r) if r.converted => {
            out += &format!(
                "IoT Core:    fits {} after conversion: `tether keys convert {file} --to {}`\n",
                r.format,
                if parsed.certificate().is_some() {
                    "pem"
                } else {
                    "spki"
                }
            );
        }
        Ok(r) => out += &format!("IoT Core:    register as {} (this file, as is)\n", r.format),
        Err(why) => out += &format!("IoT Core:    not registrable: {}\n", why.message_for(file)),
    }
    out
}
