//! Step 4: the token, judged as the server will: every `jwt diagnose` finding, and
//! the device clock against the server's.

use tether_jwt::{Context, PublicKey, Severity, diagnose};

use super::report::{Status, Step};

/// What the token step knows.
#[derive(Debug)]
pub struct Input<'a> {
    /// The token the device sends.
    pub token: &'a str,
    /// Whether the doctor minted it (with `--key`) or was given it (`--token`).
    pub minted: bool,
    /// The project id (`aud`).
    pub project: &'a str,
    /// This machine's clock.
    pub local_now: i64,
    /// The server's clock, from its HTTP `Date`, when known.
    pub server_now: Option<i64>,
    /// The device's public key, when `--key` was given.
    pub key: Option<&'a PublicKey>,
}

/// Largest clock difference that still lets tokens through (IoT Core's skew).
const SKEW: i64 = 600;

/// Diagnoses the token.
pub fn check(input: &Input<'_>) -> Step {
    let now = input.server_now.unwrap_or(input.local_now);
    let keys: Vec<PublicKey> = input.key.into_iter().cloned().collect();
    let ctx = Context {
        project: Some(input.project),
        now: Some(now),
        keys: &keys,
        ..Context::default()
    };
    let d = diagnose(input.token, &ctx);
    let mut details = Vec::new();
    if let (Some(alg), Some(claims)) = (d.algorithm, &d.claims) {
        let get = |k: &str| claims.get(k).map(|v| v.to_string()).unwrap_or_default();
        details.push(format!(
            "{alg:?}, aud {}, iat {}, exp {}",
            get("aud"),
            get("iat"),
            get("exp")
        ));
    }
    let clock = match input.server_now {
        Some(server) => {
            let offset = input.local_now - server;
            details.push(format!(
                "clock: this machine is {}{} s from the server's Date",
                if offset >= 0 { "+" } else { "" },
                offset
            ));
            Some(offset)
        }
        None => {
            details.push(
                "clock: judged with this machine's clock (no server time: give --admin-url to \
                 compare with the server's Date)"
                    .into(),
            );
            None
        }
    };
    for f in &d.findings {
        if f.severity != Severity::Info {
            details.push(format!(
                "{}: {}: {}",
                f.severity.as_str(),
                f.code,
                f.message
            ));
        }
    }
    if let Some(error) = d.findings.iter().find(|f| f.severity == Severity::Error) {
        let fix = error
            .fix
            .clone()
            .unwrap_or_else(|| "mint a new token: tether jwt mint --key KEY --project P".into());
        return Step::fail(
            "token",
            format!("the server will refuse this token ({})", error.code),
            error.message.clone(),
            fix,
        )
        .with_details(details);
    }
    if input.minted && clock.is_some_and(|o| o.abs() > SKEW) {
        return Step::fail(
            "token",
            "the device clock is off",
            format!(
                "this machine's clock differs from the server's by {} s, more than the {SKEW} s \
                 the server allows for iat/exp",
                clock.unwrap_or_default()
            ),
            "synchronise the clock (SNTP) before minting tokens",
        )
        .with_details(details);
    }
    let mut step = Step::pass(
        "token",
        if input.minted {
            "minted with --key; no finding the server would refuse"
        } else {
            "no finding the server would refuse"
        },
    )
    .with_details(details);
    if d.findings.iter().any(|f| f.severity == Severity::Warning) {
        step.status = Status::Warn;
    }
    step
}
