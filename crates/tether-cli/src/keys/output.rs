//! Writing results: to a file (private keys with owner-only permissions, no silent
//! overwrite) or to stdout (text only, unless stdout is redirected).

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, bail};

/// Writes `bytes` to `path`; refuses to overwrite unless `force`.
pub(crate) fn write_file(
    path: &Path,
    bytes: &[u8],
    force: bool,
    secret: bool,
) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = secret;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists; pass --force to overwrite", path.display())
        } else {
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        }
    })?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes to `out` or stdout; binary goes to a terminal only if asked for by a file.
pub(crate) fn emit(
    out: Option<&Path>,
    bytes: &[u8],
    is_text: bool,
    force: bool,
    secret: bool,
) -> anyhow::Result<()> {
    match out {
        Some(path) => write_file(path, bytes, force, secret),
        None => {
            let mut stdout = std::io::stdout().lock();
            if !is_text && stdout.is_terminal() {
                bail!("the output is binary; give --out FILE or redirect stdout");
            }
            stdout.write_all(bytes).context("writing to stdout")?;
            stdout.flush().context("writing to stdout")
        }
    }
}
