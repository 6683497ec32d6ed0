//! `tether jwt`: mint, decode, verify and diagnose device tokens.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tether_jwt::time::{Span, Utc, parse_time};
use tether_jwt::{
    Claims, Context, Credential, Diagnosis, EncodingPolicy, PublicKey, Rules, Severity, Token,
    max_token_len, mint,
};

use crate::clock::unix_secs;
use crate::exit;

/// Arguments of `tether jwt`.
#[derive(Debug, Args)]
pub struct JwtArgs {
    #[command(subcommand)]
    command: JwtCommand,
}

#[derive(Debug, Subcommand)]
enum JwtCommand {
    /// Mint a device token: ES256 or RS256, from the key's type.
    ///
    /// Prints the token on stdout, ready to use as the MQTT password.
    Mint(MintArgs),
    /// Show a token's header and claims, with times in UTC. Checks nothing.
    Decode(DecodeArgs),
    /// Check a token against IoT Core's rules and the registered keys.
    ///
    /// Exit code 0 when valid, 1 when refused (the reason is printed), 2 on usage errors.
    Verify(VerifyArgs),
    /// Explain everything wrong with a token, with the fix for each finding.
    ///
    /// Exit code 0 when no finding is an error, 1 otherwise, 2 on usage errors.
    Diagnose(DiagnoseArgs),
}

#[derive(Debug, Args)]
struct MintArgs {
    /// The device's private key (PEM or DER: PKCS#8, PKCS#1, SEC1, raw P-256 scalar) or a
    /// `pkcs11:` URI.
    #[arg(long, value_name = "FILE|pkcs11:URI")]
    key: String,
    /// The project id, written into `aud`.
    #[arg(long, value_name = "PROJECT_ID")]
    project: String,
    /// Token lifetime: `90s`, `20m`, `1h`, `1d` or seconds; at most 24 h.
    #[arg(long, default_value = "20m", value_parser = parse_lifetime)]
    lifetime: u64,
    /// Issue time: RFC 3339 (`2026-11-26T10:00:00Z`) or epoch seconds; default now.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    at: Option<i64>,
    /// Add a `sub` claim: a provisioning proof, with the device id, signed by the
    /// device's new key (docs/provisioning.md).
    #[arg(long, value_name = "DEVICE_ID")]
    sub: Option<String>,
    /// Print JSON ({"token", "alg", "iat", "exp"}) instead of the bare token.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DecodeArgs {
    /// The token, or `-` to read it from stdin.
    token: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The token, or `-` to read it from stdin.
    token: String,
    /// A registered public key or certificate (or the device's private key); up to 3,
    /// tried in order.
    #[arg(long, value_name = "FILE", required = true)]
    key: Vec<PathBuf>,
    /// The project id `aud` must equal.
    #[arg(long, value_name = "PROJECT_ID")]
    project: String,
    /// Refuse `=` padding and the standard base64 alphabet (IoT Core accepted them).
    #[arg(long)]
    strict: bool,
    /// Check as of this time (RFC 3339 or epoch seconds); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    at: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DiagnoseArgs {
    /// The token, or `-` to read it from stdin.
    token: String,
    /// Public keys, certificates or private keys to check the signature with.
    #[arg(long, value_name = "FILE")]
    key: Vec<PathBuf>,
    /// The project id `aud` should equal.
    #[arg(long, value_name = "PROJECT_ID")]
    project: Option<String>,
    /// Judge times as of this moment (RFC 3339 or epoch seconds); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    at: Option<i64>,
    /// Treat padding and the standard base64 alphabet as errors.
    #[arg(long)]
    strict: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tether jwt`.
pub fn run(args: JwtArgs) -> anyhow::Result<u8> {
    match args.command {
        JwtCommand::Mint(a) => run_mint(a),
        JwtCommand::Decode(a) => run_decode(a),
        JwtCommand::Verify(a) => run_verify(a),
        JwtCommand::Diagnose(a) => run_diagnose(a),
    }
}

fn parse_at(s: &str) -> Result<i64, String> {
    parse_time(s).ok_or_else(|| {
        format!("'{s}' is not a time: use RFC 3339 (2026-11-26T10:00:00Z) or epoch seconds")
    })
}

fn parse_lifetime(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 20m, 1h or 3600"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit '{unit}' in '{s}': use s, m, h or d")),
    };
    if secs == 0 || secs > 86_400 {
        return Err(format!(
            "lifetime {s} is out of range: IoT Core accepts 1 s to 24 h"
        ));
    }
    Ok(secs)
}

/// Reads TOKEN or stdin for `-` (one trailing newline from a pipe is not part of it).
fn read_token(arg: &str) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the token from stdin")?;
    if let Some(t) = s.strip_suffix('\n') {
        s = t.strip_suffix('\r').unwrap_or(t).to_string();
    }
    Ok(s)
}

fn load_public(path: &Path) -> anyhow::Result<PublicKey> {
    let parsed = tether_keys::load(path)?;
    parsed.public_key().with_context(|| {
        format!(
            "{}: {} has no public key to verify with",
            path.display(),
            parsed.describe()
        )
    })
}

fn run_mint(a: MintArgs) -> anyhow::Result<u8> {
    let signer = tether_keys::open_signer(&a.key)?;
    let iat = a.at.unwrap_or_else(unix_secs);
    if iat < 0 {
        bail!("--at must be after 1970");
    }
    let claims = Claims {
        aud: &a.project,
        iat: iat as u64,
        exp: iat as u64 + a.lifetime,
    };
    let token = match &a.sub {
        None => {
            let mut buf = vec![0u8; max_token_len(signer.algorithm(), a.project.len())];
            let n = mint(&signer, &claims, &mut buf).context("minting the token")?;
            buf.truncate(n);
            buf
        }
        Some(sub) => {
            let len = tether_jwt::max_proof_len(signer.algorithm(), a.project.len(), sub.len());
            let mut buf = vec![0u8; len];
            let n = tether_jwt::mint_proof(&signer, &claims, sub, &mut buf)
                .context("minting the proof")?;
            buf.truncate(n);
            buf
        }
    };
    let token = String::from_utf8_lossy(&token).into_owned();
    if a.json {
        let out = json!({
            "token": token, "alg": signer.algorithm().as_str(),
            "iat": claims.iat, "exp": claims.exp, "aud": a.project, "sub": a.sub,
        });
        println!("{out:#}");
    } else {
        println!("{token}");
    }
    Ok(exit::OK)
}

fn run_decode(a: DecodeArgs) -> anyhow::Result<u8> {
    let token = read_token(&a.token)?;
    let parsed = match Token::parse(token.trim()) {
        Ok(t) => t,
        Err(e) => {
            if a.json {
                println!("{:#}", json!({ "error": e.to_string() }));
            } else {
                eprintln!("✗ {e}\n  run `tether jwt diagnose` for every problem and its fix");
            }
            return Ok(exit::INVALID);
        }
    };
    if a.json {
        let out = json!({
            "header": parsed.header,
            "claims": parsed.claims,
            "signature_bytes": parsed.signature.len(),
            "warnings": parsed.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{out:#}");
        return Ok(exit::OK);
    }
    println!("header:");
    print_object(&parsed.header);
    println!("claims:");
    print_object(&parsed.claims);
    println!("signature: {} bytes", parsed.signature.len());
    for w in &parsed.warnings {
        println!("⚠ {w}");
    }
    Ok(exit::OK)
}

fn print_object(map: &serde_json::Map<String, Value>) {
    for (k, v) in map {
        let date = match k.as_str() {
            "iat" | "exp" | "nbf" => tether_jwt::NumericDate::from_json(v).ok(),
            _ => None,
        };
        match date {
            Some(d) => println!("  {k}: {v}  ({})", Utc(d.secs)),
            None => println!("  {k}: {v}"),
        }
    }
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<u8> {
    let token = read_token(&a.token)?;
    let keys = a
        .key
        .iter()
        .map(|p| load_public(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if keys.len() > 3 {
        bail!(
            "IoT Core devices hold at most 3 credentials; {} keys given",
            keys.len()
        );
    }
    let credentials: Vec<Credential> = keys.iter().cloned().map(Credential::new).collect();
    let now = a.at.unwrap_or_else(unix_secs);
    let policy = if a.strict {
        EncodingPolicy::Strict
    } else {
        EncodingPolicy::Lenient
    };
    let rules = Rules::new(&a.project, now).with_encoding(policy);
    match tether_jwt::verify(&token, &rules, &credentials) {
        Ok(v) => {
            let key = &keys[v.credential];
            if a.json {
                let out = json!({
                    "valid": true, "alg": v.algorithm.as_str(), "key": v.credential + 1,
                    "fingerprint": key.fingerprint().to_string(), "iat": v.iat, "exp": v.exp,
                    "warnings": v.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                });
                println!("{out:#}");
            } else {
                println!(
                    "✓ valid {} token for project '{}', signed by key #{} ({})",
                    v.algorithm,
                    a.project,
                    v.credential + 1,
                    key.fingerprint()
                );
                println!("  issued  {}", Utc(v.iat));
                let left = v.exp - now;
                let when = if left >= 0 {
                    format!("in {}", Span(left.unsigned_abs()))
                } else {
                    format!("{} ago, within the allowed skew", Span(left.unsigned_abs()))
                };
                println!("  expires {} ({when})", Utc(v.exp));
                for w in &v.warnings {
                    println!("⚠ {w}");
                }
            }
            Ok(exit::OK)
        }
        Err(refusal) => {
            if a.json {
                let out = json!({ "valid": false, "reason": refusal.reason(), "message": refusal.to_string() });
                println!("{out:#}");
            } else {
                println!("✗ refused ({}): {refusal}", refusal.reason());
                println!(
                    "  run `tether jwt diagnose` with the same token and keys for every finding"
                );
            }
            Ok(exit::INVALID)
        }
    }
}

fn run_diagnose(a: DiagnoseArgs) -> anyhow::Result<u8> {
    let token = read_token(&a.token)?;
    let keys = a
        .key
        .iter()
        .map(|p| load_public(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ctx = Context {
        project: a.project.as_deref(),
        now: Some(a.at.unwrap_or_else(unix_secs)),
        keys: &keys,
        encoding: if a.strict {
            EncodingPolicy::Strict
        } else {
            EncodingPolicy::Lenient
        },
        ..Context::default()
    };
    let d = tether_jwt::diagnose(&token, &ctx);
    if a.json {
        println!("{:#}", tether_server::api::console::diagnosis_json(&d));
    } else {
        print_diagnosis(&d, &keys, ctx.project.is_some());
    }
    Ok(if d.is_valid() {
        exit::OK
    } else {
        exit::INVALID
    })
}

fn print_diagnosis(d: &Diagnosis, keys: &[PublicKey], has_project: bool) {
    if let Some(claims) = &d.claims {
        let date = |k: &str| {
            claims
                .get(k)
                .and_then(|v| tether_jwt::NumericDate::from_json(v).ok())
                .map(|d| d.secs)
        };
        let alg = d.algorithm.map_or("?", |a| a.as_str());
        let aud = claims
            .get("aud")
            .map_or_else(|| "(none)".into(), Value::to_string);
        print!("token: {alg}, aud {aud}");
        if let (Some(i), Some(e)) = (date("iat"), date("exp")) {
            print!(", issued {}, expires {}", Utc(i), Utc(e));
        }
        println!();
    }
    for (i, k) in keys.iter().enumerate() {
        println!("key #{}: {}", i + 1, k.label().replace('…', ""));
    }
    if !has_project {
        println!("(no --project given: `aud` not checked)");
    }
    for f in &d.findings {
        let mark = match f.severity {
            Severity::Error => "✗ error  ",
            Severity::Warning => "⚠ warning",
            Severity::Info => "ℹ info   ",
        };
        let at = match (f.segment, f.offset) {
            (Some(s), Some(o)) => format!(" [{s} @ byte {o}]"),
            (Some(s), None) => format!(" [{s}]"),
            _ => String::new(),
        };
        println!("{mark} {}{at}: {}", f.code, f.message);
        if let Some(fix) = &f.fix {
            println!("            fix: {fix}");
        }
    }
    let errors = d
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = d
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if errors == 0 {
        println!("result: valid ({warnings} warning(s))");
    } else {
        println!("result: INVALID ({errors} error(s), {warnings} warning(s))");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("20m"), Ok(1200));
        assert_eq!(parse_lifetime("1h"), Ok(3600));
        assert_eq!(parse_lifetime("90"), Ok(90));
        assert_eq!(parse_lifetime("1d"), Ok(86_400));
        assert!(parse_lifetime("2d").is_err_and(|e| e.contains("1 s to 24 h")));
        assert!(parse_lifetime("5y").is_err_and(|e| e.contains("unknown unit 'y'")));
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("0").is_err());
    }
}
