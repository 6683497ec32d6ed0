//! Object identifiers this crate recognises, and the names people know them by.

use der::asn1::ObjectIdentifier;

pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

const CURVES: &[(&str, &str)] = &[
    ("1.3.132.0.34", "P-384 (secp384r1)"),
    ("1.3.132.0.35", "P-521 (secp521r1)"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.10045.3.1.1", "P-192 (prime192v1)"),
    ("1.3.132.0.33", "P-224 (secp224r1)"),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1"),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1"),
    ("1.2.156.10197.1.301", "SM2"),
];

const ALGORITHMS: &[(&str, &str)] = &[
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.2.840.10046.2.1", "Diffie-Hellman"),
];

/// "P-384 (secp384r1)" or "curve 1.2.3…".
pub(crate) fn curve_name(oid: &ObjectIdentifier) -> String {
    lookup(CURVES, oid).unwrap_or_else(|| format!("curve {oid}"))
}

/// "Ed25519" or "OID 1.2.3…".
pub(crate) fn algorithm_name(oid: &ObjectIdentifier) -> String {
    lookup(ALGORITHMS, oid).unwrap_or_else(|| format!("OID {oid}"))
}

fn lookup(table: &[(&str, &str)], oid: &ObjectIdentifier) -> Option<String> {
    let dotted = oid.to_string();
    table
        .iter()
        .find(|(o, _)| *o == dotted)
        .map(|(_, n)| (*n).to_string())
}
