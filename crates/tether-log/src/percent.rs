//! Percent-escaping of a name into one token (`%XX` for each byte not kept),
//! reversible so the name can be read back from the token. The log escapes
//! topics into directory names; the NATS sink escapes them into subject tokens.
//! Each caller chooses which bytes stay as they are.

/// `text` with every byte for which `keep(index, byte)` is false written as
/// `%XX` (upper-case hex). `index` is the byte's position in `text`.
pub fn encode(text: &str, keep: impl Fn(usize, u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, b) in text.bytes().enumerate() {
        if keep(i, b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`]: `%XX` (either case) becomes its byte, and every
/// other byte must satisfy `literal`. None for a malformed escape, a byte
/// `literal` refuses, or a result that is not UTF-8.
///
/// This does not check that `token` is exactly what `encode` would produce
/// (e.g. `%41` for a kept `A`); a caller that needs that compares the
/// round trip.
pub fn decode(token: &str, literal: impl Fn(u8) -> bool) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if literal(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alnum(_: usize, b: u8) -> bool {
        b.is_ascii_alphanumeric()
    }

    #[test]
    fn round_trips_and_escapes_what_is_not_kept() {
        for text in ["", "abc", "a.b/c", "%", "é ü", "a%2Eb"] {
            let token = encode(text, alnum);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'%')
            );
            assert_eq!(
                decode(&token, |b| b.is_ascii_alphanumeric()).as_deref(),
                Some(text)
            );
        }
        assert_eq!(encode("a.b", alnum), "a%2Eb");
        assert_eq!(encode(".a.", |i, b| b != b'.' || i > 0), "%2Ea.");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let any = |_| true;
        for bad in ["%", "%2", "%zz", "%FF"] {
            assert_eq!(decode(bad, any), None, "{bad}");
        }
        assert_eq!(decode("a.b", |b| b != b'.'), None);
        assert_eq!(decode("%2e", any).as_deref(), Some("."));
    }
}
