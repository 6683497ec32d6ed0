//! Just enough JSON for a JWT's header and claims, without an allocator: the members
//! of one top-level object, in order. Nested values are checked and skipped; strings
//! stay escaped in the input and are compared or decoded on demand.

use core::fmt;

/// How deep arrays and objects may nest inside a member.
const MAX_DEPTH: usize = 16;

/// A member's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A string.
    Str(JsonStr<'a>),
    /// A number, as written.
    Num(&'a str),
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// An object (skipped).
    Object,
    /// An array (skipped).
    Array,
}

impl Value<'_> {
    /// The JSON type's name, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Num(_) => "number",
            Value::Bool => "boolean",
            Value::Null => "null",
            Value::Object => "object",
            Value::Array => "array",
        }
    }
}

/// A string's contents between the quotes, escapes still in place (already checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonStr<'a>(&'a str);

impl<'a> JsonStr<'a> {
    /// The decoded characters.
    pub(crate) fn chars(&self) -> impl Iterator<Item = char> + 'a {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            let mut it = rest.chars();
            let c = it.next()?;
            if c != '\\' {
                rest = it.as_str();
                return Some(c);
            }
            let e = it.next()?;
            rest = it.as_str();
            Some(match e {
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hi = hex4(rest)?;
                    rest = &rest[4..];
                    if (0xd800..0xdc00).contains(&hi) {
                        let lo = hex4(rest.get(2..)?)?;
                        rest = &rest[6..];
                        char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?
                    } else {
                        char::from_u32(hi)?
                    }
                }
                other => other,
            })
        })
    }

    /// Whether the decoded string equals `s`.
    pub(crate) fn eq(&self, s: &str) -> bool {
        self.chars().eq(s.chars())
    }

    /// The text as written when it has no escapes.
    pub(crate) fn plain(&self) -> Option<&'a str> {
        (!self.0.contains('\\')).then_some(self.0)
    }
}

impl fmt::Display for JsonStr<'_> {
    /// The decoded string, at most 40 characters (as the CLI truncates).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chars()
            .take(40)
            .try_for_each(|c| fmt::Write::write_char(f, c))
    }
}

fn hex4(s: &str) -> Option<u32> {
    u32::from_str_radix(s.get(..4)?, 16).ok()
}

/// Why the bytes are not JSON, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotJson {
    /// Byte offset in the decoded segment.
    pub(crate) at: usize,
    /// What was expected or wrong.
    pub(crate) what: &'static str,
}

/// What the top-level value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An object: its members were visited.
    Object,
    /// Another JSON value, by type name.
    Other(&'static str),
}

/// Visits the members of the object in `bytes`.
pub(crate) fn members<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(JsonStr<'a>, Value<'a>),
) -> Result<Shape, NotJson> {
    let text = core::str::from_utf8(bytes).map_err(|e| NotJson {
        at: e.valid_up_to(),
        what: "invalid UTF-8",
    })?;
    let mut p = Parser { text, at: 0 };
    p.ws();
    let shape = if p.peek() == Some(b'{') {
        p.at += 1;
        p.ws();
        if p.peek() == Some(b'}') {
            p.at += 1;
        } else {
            loop {
                p.ws();
                let key = p.string()?;
                p.ws();
                p.expect(b':', "expected ':'")?;
                p.ws();
                let value = p.value(0)?;
                visit(key, value);
                p.ws();
                match p.bump() {
                    Some(b',') => {}
                    Some(b'}') => break,
                    _ => return Err(p.error_before("expected ',' or '}'")),
                }
            }
        }
        Shape::Object
    } else {
        Shape::Other(p.value(0)?.kind())
    };
    p.ws();
    if p.at != text.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(shape)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn error(&self, what: &'static str) -> NotJson {
        NotJson { at: self.at, what }
    }

    fn error_before(&self, what: &'static str) -> NotJson {
        NotJson {
            at: self.at.saturating_sub(1),
            what,
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), NotJson> {
        if self.bump() == Some(c) {
            Ok(())
        } else {
            Err(self.error_before(what))
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, NotJson> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'{') => self.container(b'}', true, depth).map(|_| Value::Object),
            Some(b'[') => self.container(b']', false, depth).map(|_| Value::Array),
            Some(b't') => self.literal("true", Value::Bool),
            Some(b'f') => self.literal("false", Value::Bool),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &'static str, v: Value<'a>) -> Result<Value<'a>, NotJson> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(v)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn container(&mut self, close: u8, keyed: bool, depth: usize) -> Result<(), NotJson> {
        self.at += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if keyed {
                self.string()?;
                self.ws();
                self.expect(b':', "expected ':'")?;
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            match self.bump() {
                Some(b',') => {}
                Some(c) if c == close => return Ok(()),
                _ => return Err(self.error_before("expected ',' or a closing bracket")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value<'a>, NotJson> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        let n = self.digits();
        if n == 0 || (n > 1 && self.text.as_bytes()[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(Value::Num(&self.text[start..self.at]))
    }

    fn string(&mut self) -> Result<JsonStr<'a>, NotJson> {
        self.expect(b'"', "expected a string")?;
        let start = self.at;
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => return Ok(JsonStr(&self.text[start..self.at - 1])),
                Some(0..0x20) => return Err(self.error_before("control character in a string")),
                Some(b'\\') => self.escape()?,
                Some(_) => {}
            }
        }
    }

    fn escape(&mut self) -> Result<(), NotJson> {
        match self.bump() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => {
                let hi = self.hex()?;
                if (0xdc00..0xe000).contains(&hi) {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                if (0xd800..0xdc00).contains(&hi) {
                    let pair = self.text[self.at..].starts_with("\\u");
                    self.at += 2;
                    if !pair || !(0xdc00..0xe000).contains(&self.hex()?) {
                        return Err(self.error("lone surrogate in \\u escape"));
                    }
                }
                Ok(())
            }
            _ => Err(self.error_before("invalid escape")),
        }
    }

    fn hex(&mut self) -> Result<u32, NotJson> {
        let v =
            hex4(self.text.get(self.at..).unwrap_or("")).ok_or(self.error("invalid \\u escape"))?;
        self.at += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(json: &str) -> Result<(Shape, usize), NotJson> {
        let mut n = 0;
        members(json.as_bytes(), |_, _| n += 1).map(|s| (s, n))
    }

    #[test]
    fn reads_members_and_skips_nested_values() {
        let json =
            r#" {"a":"x\"\u00e9\ud83d\ude00","b":-1.5e3,"c":[1,{"d":[]}],"e":null,"f":true} "#;
        let mut seen = [None; 6];
        let shape = members(json.as_bytes(), |k, v| {
            let i = usize::from(k.0.as_bytes()[0] - b'a');
            seen[i] = Some(v);
        });
        assert_eq!(shape, Ok(Shape::Object));
        let Some(Value::Str(s)) = seen[0] else {
            panic!("a is a string")
        };
        assert!(s.eq("x\"é😀"));
        assert_eq!(seen[1], Some(Value::Num("-1.5e3")));
        assert_eq!(seen[2], Some(Value::Array));
        assert_eq!(names("[1]"), Ok((Shape::Other("array"), 0)));
        assert_eq!(names("{}"), Ok((Shape::Object, 0)));
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for bad in [
            "",
            "{",
            r#"{"a"}"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            r#"{'a':1}"#,
        ] {
            assert!(names(bad).is_err(), "{bad}");
        }
    }
}
