//! The little DER this crate reads and writes: SubjectPublicKeyInfo, PKCS#1 RSA
//! public keys and the private keys [`crate::keyfile`] reads. Reading needs no
//! allocator; everything else lives in `tether-keys`.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
#[cfg(feature = "alloc")]
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

// DER contents of the object identifiers we recognise.
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A reader over one level of DER.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Reads one TLV; returns its tag and contents.
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let tag = *self.input.first().ok_or("unexpected end of data")?;
        let first = *self.input.get(1).ok_or("unexpected end of data")?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 {
                return Err("unsupported length encoding");
            }
            let bytes = self.input.get(2..2 + n).ok_or("unexpected end of data")?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 || bytes[0] == 0 {
                return Err("non-minimal length encoding");
            }
            (len, 2 + n)
        };
        let body = self
            .input
            .get(header..header + len)
            .ok_or("length runs past the end")?;
        self.input = &self.input[header + len..];
        Ok((tag, body))
    }

    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], &'static str> {
        match self.read_any()? {
            (t, body) if t == tag => Ok(body),
            _ => Err(match tag {
                TAG_SEQUENCE => "expected a SEQUENCE",
                TAG_INTEGER => "expected an INTEGER",
                TAG_BIT_STRING => "expected a BIT STRING",
                TAG_OID => "expected an OBJECT IDENTIFIER",
                TAG_OCTET_STRING => "expected an OCTET STRING",
                _ => "unexpected tag",
            }),
        }
    }
}

/// Appends a TLV with a definite length.
#[cfg(feature = "alloc")]
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
}

/// The unsigned big-endian magnitude of a DER INTEGER body.
pub(crate) fn unsigned(int: &[u8]) -> &[u8] {
    let mut v = int;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    v
}
