//! tether-jwt's allocation-free key readers on arbitrary bytes: PEM, the DER
//! key file reader (PKCS#8, SEC1, PKCS#1, SPKI, raw), SubjectPublicKeyInfo and
//! DER ECDSA signatures.
//!
//! Checked: PEM never writes past its buffer and a decoded block re-encodes and
//! decodes to the same label and DER; the two SPKI readers (`PublicKey` for the
//! verifier, `keyfile` for devices) agree on what they both accept; a DER
//! signature survives raw → DER → raw.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_jwt::ecdsa_der::{MAX_DER_LEN, der_to_raw, raw_to_der};
use tether_jwt::keyfile::{self, KeyFile};
use tether_jwt::{KeyType, PublicKey, pem};

fuzz_target!(|data: &[u8]| {
    let mut der = [0u8; 4096];
    let der_len = match pem::decode(data, &mut der) {
        Ok(block) => {
            assert!(block.len <= der.len());
            let mut text = vec![0u8; pem::encoded_len(block.label.len(), block.len)];
            let n = pem::encode(block.label, &der[..block.len], &mut text)
                .expect("sized by encoded_len");
            let mut again = vec![0u8; block.len];
            let back = pem::decode(&text[..n], &mut again).expect("own PEM decodes");
            assert_eq!(back.label, block.label);
            assert_eq!(&again[..back.len], &der[..block.len]);
            Some(block.len)
        }
        Err(_) => None,
    };

    let inputs: [&[u8]; 2] = [data, der_len.map_or(&[][..], |n| &der[..n])];
    for input in inputs {
        let file = keyfile::read(input);
        if let Ok(KeyFile::P256Public { point }) = &file {
            assert_eq!(point[0], 4);
        }
        if let Ok(key) = PublicKey::from_spki_der(input) {
            assert_eq!(key.spki_der(), input);
            let file = file.expect("keyfile reads the SPKI the verifier reads");
            assert_eq!(file.key_type(), key.key_type());
            assert!(!file.is_private());
            if key.key_type() == KeyType::Rsa {
                assert_eq!(file.rsa_bits(), key.rsa_bits());
            }
        }
    }

    let mut raw = [0u8; 64];
    if der_to_raw(data, &mut raw).is_ok() {
        let mut der = [0u8; MAX_DER_LEN];
        let n = raw_to_der(&raw, &mut der);
        let mut back = [0u8; 64];
        assert_eq!(der_to_raw(&der[..n], &mut back), Ok(()));
        assert_eq!(back, raw);
    }
});
