//! RFC 7512 `pkcs11:` URIs: which module, token and object, and where the PIN is.

use std::fmt;
use std::path::PathBuf;

use super::Pkcs11Error;

/// Environment variable consulted for the PIN when the URI has none.
pub const PIN_ENV: &str = "TETHER_PKCS11_PIN";
/// Environment variable consulted for the module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "TETHER_PKCS11_MODULE";

/// A parsed `pkcs11:` URI. Supported attributes: path `token`, `object`, `id`,
/// `type` (ignored: keys are looked up by class), `slot-id`; query `module-path`,
/// `pin-value`, `pin-source` (a file, `file:` prefix optional).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: Option<String>,
    /// Object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// Object id (`CKA_ID`), raw bytes.
    pub id: Option<Vec<u8>>,
    /// Slot number.
    pub slot_id: Option<u64>,
    /// The PKCS#11 module (shared library).
    pub module_path: Option<PathBuf>,
    /// The PIN itself.
    pub pin_value: Option<String>,
    /// A file holding the PIN.
    pub pin_source: Option<PathBuf>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("object", &self.object)
            .field("id", &self.id)
            .field("slot_id", &self.slot_id)
            .field("module_path", &self.module_path)
            .field("pin_value", &self.pin_value.as_ref().map(|_| "***"))
            .field("pin_source", &self.pin_source)
            .finish()
    }
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=T;object=O?module-path=/x.so&pin-value=1234`.
    pub fn parse(uri: &str) -> Result<Self, Pkcs11Error> {
        let bad = |why: String| Pkcs11Error::Uri(why);
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("a PKCS#11 URI starts with 'pkcs11:'".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("'{attr}' has no '='")))?;
            let bytes =
                percent_decode(value).ok_or_else(|| bad(format!("bad %-escape in '{attr}'")))?;
            match name {
                "token" => out.token = Some(text(bytes, name)?),
                "object" => out.object = Some(text(bytes, name)?),
                "id" => out.id = Some(bytes),
                "slot-id" => {
                    let v = text(bytes, name)?;
                    out.slot_id = Some(
                        v.parse()
                            .map_err(|_| bad(format!("slot-id '{v}' is not a number")))?,
                    );
                }
                "type"
                | "manufacturer"
                | "model"
                | "serial"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {}
                other => {
                    return Err(bad(format!(
                        "unknown attribute '{other}' (supported: token, object, id, slot-id, type)"
                    )));
                }
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("'{attr}' has no '='")))?;
            let bytes =
                percent_decode(value).ok_or_else(|| bad(format!("bad %-escape in '{attr}'")))?;
            let value = text(bytes, name)?;
            match name {
                "module-path" => out.module_path = Some(PathBuf::from(value)),
                "pin-value" => out.pin_value = Some(value),
                "pin-source" => {
                    let file = value.strip_prefix("file:").unwrap_or(&value);
                    out.pin_source = Some(PathBuf::from(file));
                }
                "module-name" => {
                    return Err(bad("module-name is not supported; give module-path".into()));
                }
                other => {
                    return Err(bad(format!(
                        "unknown query attribute '{other}' (supported: module-path, pin-value, pin-source)"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The module: `module-path`, else `$TETHER_PKCS11_MODULE`.
    pub fn module(&self) -> Result<PathBuf, Pkcs11Error> {
        if let Some(p) = &self.module_path {
            return Ok(p.clone());
        }
        std::env::var_os(MODULE_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| {
                Pkcs11Error::Uri(format!(
                    "no module-path in the URI and {MODULE_ENV} is not set (SoftHSM on Debian: \
                 ?module-path=/usr/lib/softhsm/libsofthsm2.so)"
                ))
            })
    }

    /// The PIN: `pin-value`, else the `pin-source` file (trailing newline dropped),
    /// else `$TETHER_PKCS11_PIN`, else none.
    pub fn pin(&self) -> Result<Option<String>, Pkcs11Error> {
        if let Some(v) = &self.pin_value {
            return Ok(Some(v.clone()));
        }
        if let Some(path) = &self.pin_source {
            let pin = std::fs::read_to_string(path).map_err(|e| {
                Pkcs11Error::Uri(format!("cannot read pin-source {}: {e}", path.display()))
            })?;
            return Ok(Some(pin.trim_end_matches(['\r', '\n']).to_string()));
        }
        Ok(std::env::var(PIN_ENV).ok())
    }

    /// Token and object, for messages (never the PIN).
    pub fn describe(&self) -> String {
        format!(
            "token '{}' object '{}'",
            self.token.as_deref().unwrap_or("*"),
            self.object.as_deref().unwrap_or("*")
        )
    }
}

fn text(bytes: Vec<u8>, name: &str) -> Result<String, Pkcs11Error> {
    String::from_utf8(bytes).map_err(|_| Pkcs11Error::Uri(format!("{name} is not UTF-8")))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query_attributes() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=my%20token;object=dev-1;id=%01%ff;type=private\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        )
        .expect("valid URI");
        assert_eq!(uri.token.as_deref(), Some("my token"));
        assert_eq!(uri.object.as_deref(), Some("dev-1"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 0xff][..]));
        assert_eq!(uri.pin().ok().flatten().as_deref(), Some("1234"));
        assert!(!format!("{uri:?}").contains("1234"));
    }

    #[test]
    fn refuses_unknown_attributes_and_bad_escapes() {
        let refusal = |uri| match Pkcs11Uri::parse(uri) {
            Err(Pkcs11Error::Uri(why)) => why,
            other => panic!("{uri}: {other:?}"),
        };
        assert_eq!(
            refusal("pkcs11:colour=red"),
            "unknown attribute 'colour' (supported: token, object, id, slot-id, type)"
        );
        assert_eq!(refusal("pkcs11:object=%zz"), "bad %-escape in 'object=%zz'");
        assert_eq!(refusal("file:x"), "a PKCS#11 URI starts with 'pkcs11:'");
    }
}
