use core::fmt;

/// The two JWS algorithms IoT Core accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256; the signature is the raw 64-byte `r‖s`.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The `alg` header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// Parses an `alg` header value (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }

    /// The kind of key that signs with this algorithm.
    pub const fn key_type(self) -> KeyType {
        match self {
            Algorithm::Es256 => KeyType::EcP256,
            Algorithm::Rs256 => KeyType::Rsa,
        }
    }

    /// The base64url of the header Tether mints: `{"alg":"..","typ":"JWT"}`.
    pub(crate) const fn encoded_header(self) -> &'static str {
        match self {
            // {"alg":"ES256","typ":"JWT"}
            Algorithm::Es256 => "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9",
            // {"alg":"RS256","typ":"JWT"}
            Algorithm::Rs256 => "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a public or private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// An elliptic-curve key on NIST P-256 (prime256v1, secp256r1).
    EcP256,
    /// An RSA key.
    Rsa,
}

impl KeyType {
    /// The algorithm a device uses with this key.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            KeyType::EcP256 => Algorithm::Es256,
            KeyType::Rsa => Algorithm::Rs256,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::EcP256 => "EC P-256",
            KeyType::Rsa => "RSA",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_headers_match_their_json() {
        for alg in [Algorithm::Es256, Algorithm::Rs256] {
            let mut buf = [0u8; 64];
            let n = crate::b64::decode_into(alg.encoded_header().as_bytes(), &mut buf)
                .map(|(n, _)| n)
                .ok();
            let want = match alg {
                Algorithm::Es256 => &br#"{"alg":"ES256","typ":"JWT"}"#[..],
                Algorithm::Rs256 => &br#"{"alg":"RS256","typ":"JWT"}"#[..],
            };
            assert_eq!(n.map(|n| &buf[..n]), Some(want));
        }
    }
}
