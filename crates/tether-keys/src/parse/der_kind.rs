//! Which DER structure a blob holds, recognised by its shape (the sequence of tags),
//! so that a wrong guess never turns into a misleading parser message.

use super::ParseError;
use crate::tlv::{BIT_STRING, INTEGER, OCTET_STRING, OID, Reader, SEQUENCE, TlvError};

/// DER structures this crate tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerKind {
    Pkcs8,
    Pkcs1Private,
    Sec1,
    Spki,
    Pkcs1Public,
    Certificate,
    Csr,
}

const CONTEXT_0: u8 = 0xa0;

fn truncated(e: TlvError, total: usize) -> ParseError {
    match e {
        TlvError::Truncated { .. } | TlvError::End => {
            ParseError::Truncated(format!("{e} (the data is {total} bytes; was it cut off?)"))
        }
        TlvError::BadLength => ParseError::malformed("DER", e),
    }
}

pub(crate) fn classify(der: &[u8]) -> Result<DerKind, ParseError> {
    let total = der.len();
    let mut outer = Reader::new(der);
    let top = outer.next().map_err(|e| truncated(e, total))?;
    if top.tag != SEQUENCE {
        return Err(ParseError::malformed(
            "DER",
            format!("expected a SEQUENCE (0x30), found tag 0x{:02x}", top.tag),
        ));
    }
    if !outer.is_empty() {
        return Err(ParseError::Trailing {
            what: "DER structure",
            extra: outer.remaining(),
        });
    }
    let mut r = Reader::new(top.value);
    let first = r.next().map_err(|e| truncated(e, total))?;
    let second = r.next().map_err(|e| truncated(e, total))?;
    let third_tag = r.peek_tag();
    let starts_with = |value: &[u8], tag: u8| value.first() == Some(&tag);
    match (first.tag, second.tag) {
        (INTEGER, SEQUENCE) if first.value == [3] => Err(ParseError::Pkcs12),
        (INTEGER, SEQUENCE)
            if starts_with(second.value, OID) && third_tag == Some(OCTET_STRING) =>
        {
            Ok(DerKind::Pkcs8)
        }
        (INTEGER, INTEGER) if first.value == [0] && third_tag.is_some() => {
            Ok(DerKind::Pkcs1Private)
        }
        (INTEGER, INTEGER) if third_tag.is_none() => Ok(DerKind::Pkcs1Public),
        (INTEGER, OCTET_STRING) if first.value == [1] => Ok(DerKind::Sec1),
        (SEQUENCE, BIT_STRING) if starts_with(first.value, OID) => Ok(DerKind::Spki),
        (SEQUENCE, OCTET_STRING)
            if starts_with(first.value, SEQUENCE) || starts_with(first.value, OID) =>
        {
            Err(ParseError::Encrypted {
                label: "EncryptedPrivateKeyInfo (DER)".into(),
                file: None,
            })
        }
        (SEQUENCE, SEQUENCE) if third_tag == Some(BIT_STRING) => {
            let mut tbs = Reader::new(first.value);
            let a = tbs.next().map_err(|e| truncated(e, total))?;
            if a.tag == CONTEXT_0 {
                return Ok(DerKind::Certificate);
            }
            // v1 certificate: serial, then AlgorithmIdentifier (starts with an OID);
            // CSR: version 0, then a Name (a SEQUENCE of SETs).
            let b = tbs.next().map_err(|e| truncated(e, total))?;
            if starts_with(b.value, OID) {
                Ok(DerKind::Certificate)
            } else {
                Ok(DerKind::Csr)
            }
        }
        _ => Err(ParseError::malformed(
            "DER",
            "a SEQUENCE that is not a key, certificate or CSR this tool knows",
        )),
    }
}
