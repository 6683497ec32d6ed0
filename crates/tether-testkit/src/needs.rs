//! What a test needs from the machine: a service (PostgreSQL, NATS) or a tool
//! (Mosquitto, SoftHSM, Python packages). The finders here (`env`, `tool`, `file`,
//! `python_modules`) look; [`require`] decides. On a developer's machine a missing
//! one skips the test with a line saying why; with `TETHER_TEST_REQUIRE_ALL=1`
//! (`.ci/run` exports it) it fails the test instead, so CI never passes a test that
//! did not run.
//!
//! ```ignore
//! use tether_testkit::{needs, require};
//! let Some(url) = require("PostgreSQL (TETHER_TEST_DATABASE_URL)", needs::env("TETHER_TEST_DATABASE_URL")) else {
//!     return;
//! };
//! ```

use std::path::{Path, PathBuf};

/// The variable that turns every skip into a failure when set to `1`.
pub const REQUIRE_ALL: &str = "TETHER_TEST_REQUIRE_ALL";

/// `found`, or `None` after printing why the test skips.
///
/// # Panics
/// When `found` is `None` and `TETHER_TEST_REQUIRE_ALL=1`: the message names `what`.
#[track_caller]
pub fn require<T>(what: &str, found: Option<T>) -> Option<T> {
    check(what, found, strict())
}

#[track_caller]
fn check<T>(what: &str, found: Option<T>, strict: bool) -> Option<T> {
    if found.is_none() {
        if strict {
            panic!("{what} is missing, and {REQUIRE_ALL}=1 forbids skipping this test");
        }
        eprintln!("SKIPPED: {what} is missing (set {REQUIRE_ALL}=1 to make this a failure)");
    }
    found
}

/// [`require`] for a check that says why it failed: `Err(why)` skips or fails with
/// `what: why`.
///
/// # Panics
/// As [`require`].
#[track_caller]
pub fn require_ok<T>(what: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(why) => require(&format!("{what} ({why})"), None),
    }
}

/// Whether `TETHER_TEST_REQUIRE_ALL=1` is set.
pub fn strict() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v.trim() == "1")
}

/// The value of an environment variable, `None` when it is unset or empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `path` when it exists.
pub fn file(path: impl AsRef<Path>) -> Option<PathBuf> {
    let path = path.as_ref();
    path.exists().then(|| path.to_path_buf())
}

/// Where `program` is on `PATH`.
pub fn tool(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether `python3` can import every module in `modules`; `Err` says what is missing.
pub fn python_modules(modules: &[&str]) -> Result<(), String> {
    let import = format!("import {}", modules.join(", "));
    let out = std::process::Command::new("python3")
        .args(["-c", &import])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("import failed");
        Err(format!(
            "python3 cannot `{import}`: {last}; pip install -r .ci/requirements.txt"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_things_pass_through() {
        assert_eq!(require("a thing", Some(3)), Some(3));
        assert_eq!(require_ok("a thing", Ok::<_, String>(4)), Some(4));
        assert!(tool("sh").is_some_and(|p| p.ends_with("sh")));
        assert!(file("/").is_some());
        assert_eq!(tool("no-such-tool-tether-testkit"), None);
        assert_eq!(env("TETHER_TESTKIT_SURELY_UNSET"), None);
    }

    #[test]
    fn a_missing_thing_skips_or_fails_by_the_switch() {
        assert_eq!(check::<()>("the flux capacitor", None, false), None);
        let failed = std::panic::catch_unwind(|| check::<()>("the flux capacitor", None, true));
        let panic = failed.expect_err("strict: a failure");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(
            message,
            "the flux capacitor is missing, and TETHER_TEST_REQUIRE_ALL=1 forbids skipping this test"
        );
    }
}
