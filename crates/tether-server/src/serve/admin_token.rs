//! The admin token: the one given, or one generated on first start (shown once, kept
//! in `DATA_DIR/admin-token` with mode 0600) and checked against its SHA-256 digest in
//! `DATA_DIR/admin-token.sha256`, so deleting the plaintext file keeps the token valid.

use std::path::{Path, PathBuf};

use super::settings::Settings;
use super::{ServeError, io};
use crate::api::auth::{AdminAuth, DIGEST_LEN, token_digest};

/// The plaintext admin token file (mode 0600), written on first start.
pub const TOKEN_FILE: &str = "admin-token";
/// The token's SHA-256 (hex): what the server checks against.
pub const TOKEN_DIGEST_FILE: &str = "admin-token.sha256";

/// Where the admin token came from, for the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `--admin-token` or `TETHER_ADMIN_TOKEN`.
    Given,
    /// Generated now; the plaintext is shown once.
    Generated {
        /// The token.
        token: String,
        /// Where it was saved (mode 0600).
        file: PathBuf,
    },
    /// Generated on an earlier start.
    Stored {
        /// The plaintext file, if it is still there.
        file: Option<PathBuf>,
        /// The digest file.
        digest_file: PathBuf,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; DIGEST_LEN]> {
    let text = text.trim();
    if text.len() != DIGEST_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `contents` to a new file readable only by the owner.
fn write_private(path: &Path, contents: &str) -> Result<(), ServeError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(io(format!("cannot write {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(io(format!("cannot write {}", path.display())))
}

fn new_token() -> Result<String, ServeError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ServeError::Config("the system random generator failed".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Chooses the admin token: the given one, the stored digest, or a new one.
pub(super) fn prepare_admin(settings: &Settings) -> Result<(AdminAuth, TokenOrigin), ServeError> {
    let dir = &settings.data_dir;
    let file = dir.join(TOKEN_FILE);
    let digest_file = dir.join(TOKEN_DIGEST_FILE);
    if let Some(token) = &settings.admin_token {
        let auth = AdminAuth::from_token(
            token,
            "the value of --admin-token / TETHER_ADMIN_TOKEN given to `tether serve`",
        );
        return Ok((auth, TokenOrigin::Given));
    }
    if digest_file.exists() {
        let text = std::fs::read_to_string(&digest_file)
            .map_err(io(format!("cannot read {}", digest_file.display())))?;
        let digest = unhex(&text).ok_or_else(|| {
            ServeError::Config(format!(
                "{} does not hold a SHA-256 hex digest; delete it (and {}) to generate a new admin token",
                digest_file.display(),
                file.display()
            ))
        })?;
        let plain = file.exists().then(|| file.clone());
        let hint = match &plain {
            Some(f) => format!("the file {}", f.display()),
            None => format!(
                "the token printed when {} was created (delete that file to generate a new one)",
                digest_file.display()
            ),
        };
        return Ok((
            AdminAuth::from_digest(digest, hint),
            TokenOrigin::Stored {
                file: plain,
                digest_file,
            },
        ));
    }
    let token = new_token()?;
    write_private(&file, &format!("{token}\n"))?;
    write_private(&digest_file, &format!("{}\n", hex(&token_digest(&token))))?;
    let auth = AdminAuth::from_token(&token, format!("the file {}", file.display()));
    Ok((auth, TokenOrigin::Generated { token, file }))
}

pub(super) fn create_data_dir(dir: &Path) -> Result<(), ServeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(format!(
        "cannot create the data directory {}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::ServeOptions;

    #[test]
    fn hex_round_trip() {
        let d = token_digest("abc");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn token_is_generated_once_and_private() -> Result<(), ServeError> {
        let dir = tempfile::tempdir().map_err(io("tempdir"))?;
        let settings = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..ServeOptions::default()
        }
        .resolve()?;
        let (auth, origin) = prepare_admin(&settings)?;
        let TokenOrigin::Generated { token, file } = origin else {
            panic!("expected a new token, got {origin:?}");
        };
        assert!(auth.check(Some(&format!("Bearer {token}"))).is_ok());
        let saved = std::fs::read_to_string(&file).map_err(io("read"))?;
        assert_eq!(saved.trim(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file)
                .map_err(io("stat"))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, origin) = prepare_admin(&settings)?;
        assert!(matches!(origin, TokenOrigin::Stored { file: Some(_), .. }));
        assert!(again.check(Some(&format!("Bearer {token}"))).is_ok());
        Ok(())
    }
}
