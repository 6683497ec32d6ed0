//! `tether keys inspect`: what a file is, in words.

use std::path::Path;

use clap::Args;
use serde_json::{Value, json};
use tether_jwt::time::Utc;
use tether_keys::register::registration;
use tether_keys::{Object, ParseError, Parsed};

use crate::exit;

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A key, certificate or CSR (PEM, DER, raw or hex), or a `pkcs11:` URI.
    #[arg(value_name = "FILE|pkcs11:URI")]
    file: String,
    /// Print one JSON object instead of text (errors too, as `{"file", "error"}`).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(a: InspectArgs) -> anyhow::Result<u8> {
    if a.file.starts_with("pkcs11:") {
        return token_key(&a);
    }
    let parsed = match tether_keys::load(Path::new(&a.file)) {
        Ok(p) => p,
        Err(e) => {
            let code = match e.root() {
                ParseError::Io { .. } => exit::USAGE,
                _ => exit::INVALID,
            };
            if a.json {
                println!("{:#}", json!({"file": a.file, "error": e.to_string()}));
            } else {
                eprintln!("{e}");
            }
            return Ok(code);
        }
    };
    let now = crate::clock::unix_secs();
    if a.json {
        println!("{:#}", facts(&a.file, &parsed, now));
    } else {
        print!("{}", report(&a.file, &parsed, now));
    }
    Ok(exit::OK)
}

/// A key in a PKCS#11 token: it never leaves the token, so only its public half is shown.
fn token_key(a: &InspectArgs) -> anyhow::Result<u8> {
    let key = match tether_keys::KeyHandle::open(&a.file) {
        Ok(key) => key,
        Err(e) if a.json => {
            println!("{:#}", json!({"file": a.file, "error": e.to_string()}));
            return Ok(exit::INVALID);
        }
        Err(e) => return Err(e.into()),
    };
    let public = key.public_key();
    let kind = format!(
        "{} key in a PKCS#11 token (not extractable)",
        public.key_type()
    );
    let convert = format!("tether keys convert {} --to spki", shell_quote(&a.file));
    if a.json {
        println!(
            "{:#}",
            json!({
                "file": a.file,
                "kind": kind,
                "fingerprint": public.fingerprint().to_string(),
                "iotCore": {"registrable": true, "asIs": false, "convertWith": convert},
            })
        );
    } else {
        println!("{}: {kind}", a.file);
        println!("fingerprint: {}", public.fingerprint());
        println!("IoT Core:    register the public key: `{convert}`");
    }
    Ok(exit::OK)
}

/// `s` as one POSIX shell word (pkcs11: URIs hold `;` and `?`).
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What `--json` prints: the same facts as [`report`], plus the exact text to register.
pub(crate) fn facts(file: &str, parsed: &Parsed, now: i64) -> Value {
    let mut out = json!({
        "file": file,
        "kind": parsed.describe().to_string(),
        "encoding": parsed.encoding().to_string(),
        "fingerprint": parsed.fingerprint().to_string(),
    });
    match parsed.object() {
        Object::Certificate(c) => {
            out["certificate"] = json!({
                "subject": c.subject().to_string(),
                "issuer": c.issuer().to_string(),
                "selfSigned": c.is_self_signed(),
                "notBefore": Utc(c.not_before()).to_string(),
                "notAfter": Utc(c.not_after()).to_string(),
                "serial": c.serial(),
                "ca": c.is_ca(),
            });
        }
        Object::Csr(c) => {
            out["csr"] = json!({
                "subject": c.subject().to_string(),
                "signatureVerifies": c.signature_ok(),
            });
        }
        _ => {}
    }
    out["iotCore"] = match registration(parsed, now) {
        Ok(r) => json!({
            "registrable": true,
            "format": r.format.to_string(),
            "asIs": !r.converted,
            "key": r.key,
        }),
        Err(why) => json!({"registrable": false, "reason": why.message_for(file)}),
    };
    out
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

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoted_for_a_posix_shell() {
        assert_eq!(shell_quote("dev.key.pem"), "dev.key.pem");
        assert_eq!(
            shell_quote("pkcs11:token=t;object=k?pin-value=1"),
            "'pkcs11:token=t;object=k?pin-value=1'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
