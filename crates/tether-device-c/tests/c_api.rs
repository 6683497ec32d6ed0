//! The C API as firmware calls it: tokens from the built-in signer and from engine
//! callbacks (raw, DER, digest inputs, RS256), key helpers against `tether keys`,
//! and bad input answered with precise statuses without writing past any buffer.
#![allow(unsafe_code, reason = "calls the exported C functions")]

mod common;

use std::ffi::{CStr, c_char};

use common::*;
use tether_device_c::sizes::*;
use tether_device_c::tether_status::*;
use tether_device_c::*;
use tether_jwt::ecdsa_der::{MAX_DER_LEN, raw_to_der};
use tether_jwt::{Credential, PublicKey, Rules, verify};

/// What a test engine does with the input and the signature buffer.
type EngineFn<'a> = dyn FnMut(&[u8], &mut [u8]) -> (i32, usize) + 'a;

fn verifies(token: &str, public: &PublicKey) {
    let creds = [Credential::new(public.clone())];
    let rules = Rules::new("acme", NOW as i64);
    if let Err(e) = verify(token, &rules, &creds) {
        panic!("{token}: {e}");
    }
}

fn public_of(pkcs8: &[u8]) -> PublicKey {
    tether_keys::parse(pkcs8)
        .expect("parses")
        .public_key()
        .expect("has a public key")
}

#[test]
fn built_in_signer_mints_tokens_the_gateway_accepts_from_every_key_format() {
    let pkcs8 = p256_pkcs8();
    let public = public_of(&pkcs8);
    let parsed = tether_keys::parse(&pkcs8).expect("parses");
    let private = parsed.private_key().expect("private");
    let scalar = *private.p256_scalar().expect("P-256");
    let sec1 = tether_keys::convert::convert(
        &parsed,
        tether_keys::convert::Target::Sec1,
        Default::default(),
    )
    .expect("to SEC1");
    for input in [
        pkcs8.clone(),
        pem("PRIVATE KEY", &pkcs8).into_bytes(),
        sec1.bytes.clone(),
        scalar.to_vec(),
    ] {
        let key = load(&input).expect("loads");
        let token = mint(&soft_signer(&key), "acme");
        verifies(&token, &public);
        assert!(token.len() < TETHER_JWT_ES256_MAX_LEN);
    }
}

#[test]
fn engine_callbacks_raw_der_and_digest_inputs() {
    let pkcs8 = p256_pkcs8();
    let public = public_of(&pkcs8);
    let key = load(&pkcs8).expect("loads");
    for (input, format, der) in [
        (TETHER_SIGN_INPUT_SHA256, TETHER_SIG_DER, true),
        (TETHER_SIGN_INPUT_SHA256, TETHER_SIG_AUTO, true),
        (TETHER_SIGN_INPUT_SHA256, TETHER_SIG_AUTO, false),
        (TETHER_SIGN_INPUT_SHA256, TETHER_SIG_RAW, false),
    ] {
        let mut calls = 0;
        let mut engine = Engine {
            f: |digest: &[u8], sig: &mut [u8]| {
                calls += 1;
                assert_eq!(digest.len(), 32);
                let mut raw = [0u8; 64];
                // SAFETY: valid buffers.
                let st = unsafe {
                    tether_p256_sign_digest(&key, digest.as_ptr(), 32, raw.as_mut_ptr(), 64)
                };
                assert_eq!(st, TETHER_OK);
                if der {
                    let mut out = [0u8; MAX_DER_LEN];
                    let n = raw_to_der(&raw, &mut out);
                    sig[..n].copy_from_slice(&out[..n]);
                    (0, n)
                } else {
                    sig[..64].copy_from_slice(&raw);
                    (0, 64)
                }
            },
        };
        let token = mint(&engine.signer(TETHER_ALG_ES256, input, format), "acme");
        verifies(&token, &public);
        assert_eq!(calls, 1);
    }
}

#[test]
fn rs256_through_a_callback_with_each_input_kind() {
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("RSA key");
    let public = public_of(RSA_PKCS8);
    let rng = ring::rand::SystemRandom::new();
    // Message input: the engine hashes (ring does).
    let mut engine = Engine {
        f: |msg: &[u8], sig: &mut [u8]| {
            let n = pair.public().modulus_len();
            pair.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig[..n])
                .expect("signs");
            (0, n)
        },
    };
    let token = mint(
        &engine.signer(TETHER_ALG_RS256, TETHER_SIGN_INPUT_MESSAGE, 0),
        "acme",
    );
    verifies(&token, &public);
    assert!(token.len() < TETHER_JWT_RS256_MAX_LEN);
    // DigestInfo input: what a raw PKCS#1 v1.5 engine pads; check the bytes given.
    let mut seen = Vec::new();
    let mut engine = Engine {
        f: |info: &[u8], _: &mut [u8]| {
            seen = info.to_vec();
            (7, 0)
        },
    };
    let (st, token, _) = mint_cap(
        &engine.signer(TETHER_ALG_RS256, TETHER_SIGN_INPUT_SHA256_DIGEST_INFO, 0),
        "acme",
        60,
        978,
    );
    assert_eq!((st, token.as_str()), (TETHER_ERR_SIGNER_FAILED, ""));
    assert_eq!(seen.len(), 51);
    assert_eq!(&seen[..4], &[0x30, 0x31, 0x30, 0x0d]);
}

#[test]
fn buffer_one_byte_too_small_is_refused_before_signing() {
    let key = load(&p256_pkcs8()).expect("loads");
    let signer = soft_signer(&key);
    let token = mint(&signer, "acme");
    let exact = token.len() + 1;
    let (st, text, needed) = mint_cap(&signer, "acme", 1200, exact - 1);
    assert_eq!(
        (st, text.as_str(), needed),
        (TETHER_ERR_BUFFER_TOO_SMALL, "", exact)
    );
    let (st, text, len) = mint_cap(&signer, "acme", 1200, exact);
    assert_eq!((st, len), (TETHER_OK, exact - 1));
    assert_eq!(text.len(), exact - 1);
    for cap in [0, 1, 40, 150] {
        assert_eq!(
            mint_cap(&signer, "acme", 1200, cap).0,
            TETHER_ERR_BUFFER_TOO_SMALL
        );
    }
    // ES256: the engine is not asked to sign for a token that cannot fit.
    let mut calls = 0;
    let mut engine = Engine {
        f: |_: &[u8], _: &mut [u8]| {
            calls += 1;
            (1, 0)
        },
    };
    let s = engine.signer(TETHER_ALG_ES256, TETHER_SIGN_INPUT_SHA256, TETHER_SIG_RAW);
    assert_eq!(
        mint_cap(&s, "acme", 1200, exact - 1).0,
        TETHER_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(calls, 0);
}

#[test]
fn the_worst_case_token_fills_the_documented_size_exactly() {
    let key = load(&p256_pkcs8()).expect("loads");
    let signer = soft_signer(&key);
    let project = "p".repeat(TETHER_MAX_PROJECT_ID_LEN);
    let c = std::ffi::CString::new(project.clone()).expect("no NUL");
    let mut buf = vec![0u8; TETHER_JWT_ES256_MAX_LEN];
    let mut len = 0;
    // u64::MAX - 86400 still has 20 digits, as does exp.
    let iat = u64::MAX - 86_400;
    // SAFETY: valid pointers and lengths.
    let st = unsafe {
        tether_jwt_mint(
            &signer,
            c.as_ptr(),
            iat,
            86_400,
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!((st, len + 1), (TETHER_OK, TETHER_JWT_ES256_MAX_LEN));
    let too_long = "p".repeat(TETHER_MAX_PROJECT_ID_LEN + 1);
    assert_eq!(
        mint_cap(&signer, &too_long, 1200, 4096).0,
        TETHER_ERR_PROJECT_ID
    );
}

#[test]
fn null_pointers_are_reported_not_dereferenced() {
    let key = load(&p256_pkcs8()).expect("loads");
    let signer = soft_signer(&key);
    let mut buf = [0u8; 512];
    let mut len = 0;
    let null = std::ptr::null_mut();
    // SAFETY: every pointer is valid or NULL, which the API reports.
    unsafe {
        let out = buf.as_mut_ptr().cast::<c_char>();
        assert_eq!(
            tether_jwt_mint(
                std::ptr::null(),
                c"acme".as_ptr(),
                NOW,
                60,
                out,
                512,
                &mut len
            ),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_jwt_mint(&signer, std::ptr::null(), NOW, 60, out, 512, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_jwt_mint(&signer, c"acme".as_ptr(), NOW, 60, null, 512, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_jwt_mint(&signer, c"acme".as_ptr(), NOW, 60, out, 512, null.cast()),
            TETHER_OK
        );
        let no_fn = tether_signer {
            sign: None,
            ..signer
        };
        assert_eq!(
            tether_jwt_mint(&no_fn, c"acme".as_ptr(), NOW, 60, out, 512, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_p256_key_init(null.cast(), buf.as_ptr(), 32),
            TETHER_ERR_NULL_POINTER
        );
        let mut k = key.clone();
        assert_eq!(
            tether_p256_key_init(&mut k, std::ptr::null(), 32),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_p256_key_signer(std::ptr::null(), &mut signer.clone()),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_p256_sign_digest(&key, std::ptr::null(), 32, out.cast(), 64),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_public_key_convert(
                std::ptr::null(),
                0,
                TETHER_KEY_PEM,
                out.cast(),
                512,
                &mut len
            ),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_key_registration(buf.as_ptr(), 32, null, 512, &mut len, null.cast()),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_key_fingerprint(std::ptr::null(), 0, out, 512),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            tether_jwt_check(
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null(),
                null,
                0,
                null.cast()
            ),
            TETHER_ERR_NULL_POINTER
        );
        // Optional pointers may be NULL.
        let token = mint(&signer, "acme");
        let st = tether_jwt_check(
            token.as_ptr().cast(),
            token.len(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            null,
            0,
            null.cast(),
        );
        assert_eq!(st, TETHER_OK);
    }
}

#[test]
fn callback_errors_and_bad_signatures_have_their_own_status() {
    let key = load(&p256_pkcs8()).expect("loads");
    let raw_sig = |digest: &[u8]| {
        let mut raw = [0u8; 64];
        // SAFETY: valid buffers.
        unsafe { tether_p256_sign_digest(&key, digest.as_ptr(), 32, raw.as_mut_ptr(), 64) };
        raw
    };
    let run = |input, format, f: &mut EngineFn<'_>| {
        let mut engine = Engine {
            f: |i: &[u8], s: &mut [u8]| f(i, s),
        };
        mint_cap(
            &engine.signer(TETHER_ALG_ES256, input, format),
            "acme",
            600,
            512,
        )
    };
    // The callback fails.
    let (st, token, _) = run(TETHER_SIGN_INPUT_MESSAGE, TETHER_SIG_AUTO, &mut |_, _| {
        (-5, 0)
    });
    assert_eq!((st, token.as_str()), (TETHER_ERR_SIGNER_FAILED, ""));
    // A DER signature whose SEQUENCE length is one byte off.
    let (st, ..) = run(TETHER_SIGN_INPUT_SHA256, TETHER_SIG_DER, &mut |d, s| {
        let mut der = [0u8; MAX_DER_LEN];
        let n = raw_to_der(&raw_sig(d), &mut der);
        der[1] += 1;
        s[..n].copy_from_slice(&der[..n]);
        (0, n)
    });
    assert_eq!(st, TETHER_ERR_SIGNATURE_DER);
    // The same, auto-detected: it starts like DER, so it is reported as broken DER.
    let (st, ..) = run(TETHER_SIGN_INPUT_SHA256, TETHER_SIG_AUTO, &mut |d, s| {
        let mut der = [0u8; MAX_DER_LEN];
        let n = raw_to_der(&raw_sig(d), &mut der);
        s[..n].copy_from_slice(&der[..n]);
        (0, n - 1)
    });
    assert_eq!(st, TETHER_ERR_SIGNATURE_DER);
    // Raw declared but 63 bytes; a length over the buffer; RS256 of 255 bytes.
    let (st, ..) = run(TETHER_SIGN_INPUT_MESSAGE, TETHER_SIG_RAW, &mut |_, _| {
        (0, 63)
    });
    assert_eq!(st, TETHER_ERR_SIGNATURE_LENGTH);
    let (st, ..) = run(TETHER_SIGN_INPUT_MESSAGE, TETHER_SIG_AUTO, &mut |_, s| {
        (0, s.len() + 1)
    });
    assert_eq!(st, TETHER_ERR_SIGNATURE_LENGTH);
    let mut rsa = Engine {
        f: |_: &[u8], _: &mut [u8]| (0, 255),
    };
    assert_eq!(
        mint_cap(&rsa.signer(TETHER_ALG_RS256, 0, 0), "acme", 60, 978).0,
        TETHER_ERR_SIGNATURE_LENGTH
    );
    // Argument values that do not exist or do not fit the algorithm.
    for (alg, input, format) in [(3, 0, 0), (1, 2, 0), (1, 9, 0), (2, 0, 2), (1, 0, 7)] {
        let mut e = Engine {
            f: |_: &[u8], _: &mut [u8]| (0, 64),
        };
        assert_eq!(
            mint_cap(&e.signer(alg, input, format), "acme", 60, 978).0,
            TETHER_ERR_BAD_ARGUMENT
        );
    }
    let signer = soft_signer(&key);
    assert_eq!(mint_cap(&signer, "acme", 0, 512).0, TETHER_ERR_LIFETIME);
    assert_eq!(
        mint_cap(&signer, "acme", 86_401, 512).0,
        TETHER_ERR_LIFETIME
    );
    assert_eq!(
        mint_cap(&signer, "my \"project", 60, 512).0,
        TETHER_ERR_PROJECT_ID
    );
    assert_eq!(mint_cap(&signer, "", 60, 512).0, TETHER_ERR_PROJECT_ID);
}

#[test]
fn keys_in_the_wrong_format_say_which_mistake() {
    let rsa_pem = pem("PRIVATE KEY", RSA_PKCS8);
    let p8 = p256_pkcs8();
    let public_pem = {
        let mut out = [0u8; TETHER_P256_PUBLIC_PEM_LEN];
        let mut len = 0;
        // SAFETY: valid buffers.
        let st = unsafe {
            tether_public_key_convert(
                p8.as_ptr(),
                p8.len(),
                TETHER_KEY_PEM,
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        assert_eq!(st, TETHER_OK);
        out[..len].to_vec()
    };
    let cases: [(&[u8], tether_status); 9] = [
        (rsa_pem.as_bytes(), TETHER_ERR_KEY_UNSUPPORTED),
        (&public_pem, TETHER_ERR_KEY_NOT_PRIVATE),
        (b"not a key at all", TETHER_ERR_KEY_FORMAT),
        (&p8[..p8.len() - 1], TETHER_ERR_KEY_FORMAT),
        (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n", TETHER_ERR_KEY_ENCRYPTED),
        (b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMAA=\n-----END EC PRIVATE KEY-----\n", TETHER_ERR_KEY_ENCRYPTED),
        (b"-----BEGIN PRIVATE KEY-----\nMIGH*\n-----END PRIVATE KEY-----\n", TETHER_ERR_KEY_FORMAT),
        (&[0u8; 32], TETHER_ERR_KEY_INVALID),
        (&[0xffu8; 32], TETHER_ERR_KEY_INVALID),
    ];
    for (input, want) in cases {
        assert_eq!(
            load(input).err(),
            Some(want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn key_helpers_match_tether_keys() {
    for private in [p256_pkcs8(), RSA_PKCS8.to_vec()] {
        let parsed = tether_keys::parse(&private).expect("parses");
        let public = parsed.public_key().expect("public");
        let want = tether_keys::convert::pem_text("PUBLIC KEY", public.spki_der());
        let mut text = [0u8; TETHER_PUBLIC_KEY_PEM_MAX_LEN];
        let (mut len, mut format) = (0, std::ptr::null());
        // SAFETY: valid buffers.
        let st = unsafe {
            tether_key_registration(
                private.as_ptr(),
                private.len(),
                text.as_mut_ptr().cast(),
                text.len(),
                &mut len,
                &mut format,
            )
        };
        assert_eq!(st, TETHER_OK);
        assert_eq!(std::str::from_utf8(&text[..len]), Ok(want.as_str()));
        // SAFETY: a static NUL-terminated string.
        let format = unsafe { CStr::from_ptr(format) }.to_str().expect("ascii");
        let spki_pub = public.spki_der();
        let registered =
            tether_keys::register::registration(&tether_keys::parse(spki_pub).expect("spki"), 0)
                .expect("registrable");
        assert_eq!(format, registered.format.as_str());
        assert_eq!(registered.key, want);
        // One byte short: refused, the size needed reported, nothing past the buffer.
        let mut small = vec![0xa5u8; len + 8];
        let mut needed = 0;
        // SAFETY: `small` holds `len` writable bytes (plus a canary).
        let st = unsafe {
            tether_key_registration(
                private.as_ptr(),
                private.len(),
                small.as_mut_ptr().cast(),
                len,
                &mut needed,
                std::ptr::null_mut(),
            )
        };
        assert_eq!((st, needed), (TETHER_ERR_BUFFER_TOO_SMALL, len + 1));
        assert!(small[len..].iter().all(|&b| b == 0xa5));
        // The fingerprint `tether keys inspect` prints.
        let mut fp = [0u8; TETHER_FINGERPRINT_LEN];
        // SAFETY: valid buffers.
        let st = unsafe {
            tether_key_fingerprint(
                private.as_ptr(),
                private.len(),
                fp.as_mut_ptr().cast(),
                fp.len(),
            )
        };
        assert_eq!(st, TETHER_OK);
        let fp = CStr::from_bytes_until_nul(&fp)
            .expect("NUL")
            .to_str()
            .expect("ascii");
        assert_eq!(fp, parsed.fingerprint().to_string());
    }
}

#[test]
fn public_keys_convert_between_pem_der_and_raw() {
    let p8 = p256_pkcs8();
    let convert = |input: &[u8], to: u32, cap: usize| {
        let mut out = vec![0xa5u8; cap + 8];
        let mut len = 0;
        // SAFETY: valid buffers.
        let st = unsafe {
            tether_public_key_convert(
                input.as_ptr(),
                input.len(),
                to,
                out.as_mut_ptr(),
                cap,
                &mut len,
            )
        };
        assert!(out[cap..].iter().all(|&b| b == 0xa5));
        (st, out[..len.min(cap)].to_vec(), len)
    };
    let (_, der, _) = convert(&p8, TETHER_KEY_DER, 600);
    let (_, raw, _) = convert(&der, TETHER_KEY_RAW, 64);
    let (_, raw65, _) = convert(&raw, TETHER_KEY_RAW_UNCOMPRESSED, 65);
    let (_, pem_text, len) = convert(&raw65, TETHER_KEY_PEM, TETHER_P256_PUBLIC_PEM_LEN);
    assert_eq!(len + 1, TETHER_P256_PUBLIC_PEM_LEN);
    let (_, back, _) = convert(&pem_text, TETHER_KEY_DER, 91);
    assert_eq!(
        (der.len(), raw.len(), raw65[0]),
        (TETHER_P256_SPKI_LEN, 64, 4)
    );
    assert_eq!(back, der);
    assert_eq!(
        convert(&p8, TETHER_KEY_RAW, 63).0,
        TETHER_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        convert(&p8, TETHER_KEY_PEM, TETHER_P256_PUBLIC_PEM_LEN - 1).0,
        TETHER_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        convert(RSA_PKCS8, TETHER_KEY_RAW, 64).0,
        TETHER_ERR_KEY_UNSUPPORTED
    );
    assert_eq!(convert(&p8, 9, 600).0, TETHER_ERR_BAD_ARGUMENT);
    let mut off_curve = raw.clone();
    off_curve[63] ^= 1;
    assert_eq!(
        convert(&off_curve, TETHER_KEY_PEM, 600).0,
        TETHER_ERR_KEY_INVALID
    );
}

#[test]
fn check_passes_a_good_token_and_names_trailing_garbage() {
    let p8 = p256_pkcs8();
    let key = load(&p8).expect("loads");
    let token = mint(&soft_signer(&key), "acme");
    let now = Some(NOW as i64 + 5);
    let (st, result, text) = check(&token, Some(&p8), Some("acme"), now);
    assert_eq!((st, result.errors), (TETHER_OK, 0), "{text}");
    assert!(text.contains("info signature-verified"), "{text}");
    for (garbage, code) in [
        (
            format!("{token}\n"),
            tether_finding::TETHER_FINDING_SURROUNDING_WHITESPACE,
        ),
        (
            format!("{token}xyz!"),
            tether_finding::TETHER_FINDING_INVALID_BASE64,
        ),
        (
            format!("{token}.extra"),
            tether_finding::TETHER_FINDING_SEGMENT_COUNT,
        ),
        (
            format!("{token}\0\0"),
            tether_finding::TETHER_FINDING_INVALID_BASE64,
        ),
    ] {
        let (st, result, text) = check(&garbage, Some(&p8), Some("acme"), now);
        assert_eq!(
            (st, result.first_error),
            (TETHER_ERR_TOKEN_REFUSED, code),
            "{text}"
        );
        let name = CStr::from_bytes_until_nul(code.name().to_bytes_with_nul())
            .expect("c")
            .to_str()
            .expect("ascii");
        assert!(text.starts_with(&format!("error {name}")), "{text}");
    }
    // Another key: the signature does not verify, and it says the key is wrong.
    let other = p256_pkcs8();
    let (st, result, text) = check(&token, Some(&other), Some("acme"), now);
    assert_eq!(
        (st, result.first_error),
        (
            TETHER_ERR_TOKEN_REFUSED,
            tether_finding::TETHER_FINDING_SIGNATURE_MISMATCH
        )
    );
    assert!(text.contains("error wrong-key"), "{text}");
    // The text buffer one byte short: whole lines only, the size needed reported.
    let (st, cut, short) = check_cap(
        token.as_bytes(),
        Some(&other),
        Some("acme"),
        now,
        result.text_needed - 1,
    );
    assert_eq!(st, TETHER_ERR_BUFFER_TOO_SMALL);
    assert_eq!(
        (cut.errors, cut.text_needed),
        (result.errors, text.len() + 1)
    );
    assert!(
        text.starts_with(&short) && short.ends_with('\n') && short.len() < text.len(),
        "{short}"
    );
    // Too long, and an unreadable key.
    let long = "a".repeat(TETHER_CHECK_MAX_TOKEN_LEN + 1);
    assert_eq!(check(&long, None, None, None).0, TETHER_ERR_TOKEN_TOO_LONG);
    assert_eq!(
        check(&token, Some(b"junk"), None, None).0,
        TETHER_ERR_KEY_FORMAT
    );
}

#[test]
fn status_and_finding_names_are_stable() {
    let name = |p: *const c_char| {
        // SAFETY: the functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert_eq!(name(tether_status_name(9)), "TETHER_ERR_KEY_FORMAT");
    assert_eq!(name(tether_status_name(-1)), "TETHER_UNKNOWN");
    assert_eq!(name(tether_finding_name(23)), "der-signature");
    assert_eq!(name(tether_finding_name(30)), "unknown");
    for s in tether_device_c::status::ALL {
        assert_eq!(
            name(tether_status_name(s as i32)),
            s.name().to_str().expect("ascii")
        );
    }
}

/// A panic below an exported function cannot unwind into C: the process aborts.
/// The child mints with a callback that panics; the parent sees SIGABRT and never
/// the line printed after the call.
#[test]
fn a_panic_during_a_call_aborts_instead_of_unwinding_into_c() {
    if std::env::var_os("TETHER_PANIC_CHILD").is_some() {
        unsafe extern "C" fn panics(
            _: *mut std::ffi::c_void,
            _: *const u8,
            _: usize,
            _: *mut u8,
            _: usize,
            _: *mut usize,
        ) -> i32 {
            panic!("engine driver bug")
        }
        let signer = tether_signer {
            alg: TETHER_ALG_ES256,
            input: 0,
            sig_format: 0,
            sign: Some(panics),
            ctx: std::ptr::null_mut(),
        };
        let mut buf = [0u8; 512];
        // SAFETY: valid pointers.
        let _ = unsafe {
            tether_jwt_mint(
                &signer,
                c"acme".as_ptr(),
                NOW,
                60,
                buf.as_mut_ptr().cast(),
                512,
                std::ptr::null_mut(),
            )
        };
        println!("returned to the caller");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "a_panic_during_a_call_aborts_instead_of_unwinding_into_c",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TETHER_PANIC_CHILD", "1")
        .output()
        .expect("child runs");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(6), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("returned to the caller"));
}

/// Every exported function is `extern "C"`, never `extern "C-unwind"`, so the
/// abort above holds for each of them.
#[test]
fn no_exported_function_can_unwind() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut exported = 0;
    for path in walk(std::path::Path::new(src)) {
        let text = std::fs::read_to_string(&path).expect("source");
        assert!(!text.contains("C-unwind"), "{}", path.display());
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() == "#[unsafe(no_mangle)]" {
                let next = lines.get(i + 1).copied().unwrap_or_default();
                assert!(
                    next.contains("extern \"C\" fn tether_"),
                    "{}: {next}",
                    path.display()
                );
                exported += 1;
            }
        }
    }
    assert_eq!(exported, 11);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `tether_provision_request` for `acme` into `cap` bytes (and a canary after them):
/// status, text and reported length.
fn provision_request_at(
    signer: &tether_signer,
    device: &CStr,
    key: &[u8],
    (iat, exp): (u64, u64),
    cap: usize,
) -> (tether_status, String, usize) {
    let mut out = vec![0x55u8; cap + 16];
    let mut len = usize::MAX;
    // SAFETY: every pointer is valid for the length given; `out` has `cap` bytes plus
    // a canary.
    let st = unsafe {
        tether_provision_request(
            signer,
            c"acme".as_ptr(),
            device.as_ptr(),
            key.as_ptr(),
            key.len(),
            iat,
            exp,
            out.as_mut_ptr().cast::<c_char>(),
            cap,
            &mut len,
        )
    };
    assert!(
        out[cap..].iter().all(|&b| b == 0x55),
        "wrote past the buffer: {st:?}"
    );
    let text = CStr::from_bytes_until_nul(&out[..cap])
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    (st, text, len)
}

/// [`provision_request_at`] with a proof valid for 10 minutes from `NOW`.
fn provision_request(
    signer: &tether_signer,
    device: &CStr,
    key: &[u8],
    cap: usize,
) -> (tether_status, String, usize) {
    provision_request_at(signer, device, key, (NOW, NOW + 600), cap)
}

/// A P-256 key: its PKCS#8, its public key and its raw `04‖x‖y` point.
fn p256_with_point() -> (Vec<u8>, PublicKey, Vec<u8>) {
    let pkcs8 = p256_pkcs8();
    let public = public_of(&pkcs8);
    let spki = public.spki_der();
    let point = spki[spki.len() - 65..].to_vec();
    assert_eq!(point[0], 4);
    (pkcs8, public, point)
}

/// The request's parts, checked against the JSON shape the server reads: the key
/// (decoded) and the proof.
fn request_parts(text: &str) -> (Vec<u8>, String) {
    let body: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{text}");
    let public_key = body["publicKey"].as_object().expect("publicKey");
    assert_eq!(public_key.len(), 2, "{text}");
    assert_eq!(public_key["format"], "ES256_RAW");
    let key = public_key["key"].as_str().expect("key");
    // Standard base64 with its padding: 64 bytes are 86 characters and `==`.
    assert_eq!(key.len(), 88, "{key}");
    assert!(key.ends_with("=="), "{key}");
    assert!(!key.contains(['-', '_']), "{key}");
    let (decoded, quirks) = tether_jwt::b64::decode(key.as_bytes()).expect("base64");
    assert_eq!(quirks.padding_at, Some(86), "{key}");
    let proof = body["proof"].as_str().expect("proof").to_owned();
    (decoded, proof)
}

#[test]
fn a_provision_request_carries_the_raw_key_and_a_proof_the_server_accepts() {
    let (pkcs8, public, point) = p256_with_point();
    let key = load(&pkcs8).expect("loads");
    let signer = soft_signer(&key);
    for raw in [&point[..], &point[1..]] {
        let (st, text, len) = provision_request(
            &signer,
            c"sensor-0a1b2c3d",
            raw,
            TETHER_PROVISION_REQUEST_MAX_LEN,
        );
        assert_eq!(st, TETHER_OK, "{text}");
        assert_eq!(len, text.len());
        let (decoded, proof) = request_parts(&text);
        assert_eq!(decoded, point[1..], "the engine's x‖y");
        verifies(&proof, &public);
        let token = tether_jwt::Token::parse(&proof).expect("parses");
        assert_eq!(token.claims["sub"], "sensor-0a1b2c3d");
        assert_eq!(token.claims["aud"], "acme");
        assert_eq!(token.claims["iat"], NOW);
        assert_eq!(token.claims["exp"], NOW + 600);
        assert_eq!(token.header["alg"], "ES256");
    }
}

#[test]
fn a_provision_request_signed_by_an_engine_that_returns_der() {
    let (pkcs8, public, point) = p256_with_point();
    let key = load(&pkcs8).expect("loads");
    let mut calls = 0;
    let mut engine = Engine {
        f: |digest: &[u8], sig: &mut [u8]| {
            calls += 1;
            let mut raw = [0u8; 64];
            // SAFETY: valid buffers.
            let st = unsafe {
                tether_p256_sign_digest(&key, digest.as_ptr(), digest.len(), raw.as_mut_ptr(), 64)
            };
            assert_eq!(st, TETHER_OK);
            let mut der = [0u8; MAX_DER_LEN];
            let n = raw_to_der(&raw, &mut der);
            sig[..n].copy_from_slice(&der[..n]);
            (0, n)
        },
    };
    let signer = engine.signer(TETHER_ALG_ES256, TETHER_SIGN_INPUT_SHA256, TETHER_SIG_DER);
    let (st, text, _) = provision_request(&signer, c"sensor-1", &point[1..], 1024);
    assert_eq!(st, TETHER_OK, "{text}");
    let (_, proof) = request_parts(&text);
    verifies(&proof, &public);
    assert_eq!(calls, 1);
}

#[test]
fn a_provision_request_too_big_for_its_buffer_reports_the_exact_size_before_signing() {
    let (pkcs8, _, point) = p256_with_point();
    let key = load(&pkcs8).expect("loads");
    let signer = soft_signer(&key);
    let (st, text, len) = provision_request(&signer, c"sensor-0a1b2c3d", &point[1..], 1024);
    assert_eq!(st, TETHER_OK);
    let exact = len + 1;
    assert_eq!(text.len(), len);
    for cap in [0, 1, 100, exact - 1] {
        let (st, text, needed) = provision_request(&signer, c"sensor-0a1b2c3d", &point[1..], cap);
        assert_eq!(
            (st, text.as_str(), needed),
            (TETHER_ERR_BUFFER_TOO_SMALL, "", exact),
            "cap {cap}"
        );
    }
    let (st, again, len) = provision_request(&signer, c"sensor-0a1b2c3d", &point[1..], exact);
    assert_eq!((st, len), (TETHER_OK, exact - 1));
    assert_eq!(again, text, "RFC 6979: the same request again");
    // The engine is not asked to sign a request that cannot fit.
    let mut calls = 0;
    let mut engine = Engine {
        f: |_: &[u8], _: &mut [u8]| {
            calls += 1;
            (1, 0)
        },
    };
    let s = engine.signer(TETHER_ALG_ES256, TETHER_SIGN_INPUT_SHA256, TETHER_SIG_RAW);
    let (st, _, needed) = provision_request(&s, c"sensor-0a1b2c3d", &point[1..], exact - 1);
    assert_eq!((st, needed), (TETHER_ERR_BUFFER_TOO_SMALL, exact));
    assert_eq!(calls, 0);
    // A failing engine is reported as such, with nothing written.
    let (st, text, len) = provision_request(&s, c"sensor-0a1b2c3d", &point[1..], exact);
    assert_eq!((st, text.as_str(), len), (TETHER_ERR_SIGNER_FAILED, "", 0));
    assert_eq!(calls, 1);
}

#[test]
fn the_longest_provision_request_fills_the_documented_size_exactly() {
    let (pkcs8, _, point) = p256_with_point();
    let key = load(&pkcs8).expect("loads");
    let signer = soft_signer(&key);
    let project = std::ffi::CString::new("p".repeat(TETHER_MAX_PROJECT_ID_LEN)).expect("no NUL");
    let device = std::ffi::CString::new("d".repeat(TETHER_MAX_DEVICE_ID_LEN)).expect("no NUL");
    // u64::MAX - 86400 still has 20 digits, as does exp.
    let iat = u64::MAX - 86_400;
    let mut out = vec![0u8; TETHER_PROVISION_REQUEST_MAX_LEN];
    let mut len = 0;
    // SAFETY: valid pointers and lengths.
    let st = unsafe {
        tether_provision_request(
            &signer,
            project.as_ptr(),
            device.as_ptr(),
            point.as_ptr(),
            point.len(),
            iat,
            iat + 86_400,
            out.as_mut_ptr().cast::<c_char>(),
            out.len(),
            &mut len,
        )
    };
    assert_eq!((st, len + 1), (TETHER_OK, TETHER_PROVISION_REQUEST_MAX_LEN));
    let text = std::str::from_utf8(&out[..len]).expect("UTF-8");
    let (decoded, proof) = request_parts(text);
    assert_eq!(decoded, point[1..]);
    let token = tether_jwt::Token::parse(&proof).expect("parses");
    assert_eq!(token.claims["sub"], "d".repeat(TETHER_MAX_DEVICE_ID_LEN));
}

#[test]
fn bad_provision_request_input_has_its_own_status() {
    let (pkcs8, _, point) = p256_with_point();
    let key = load(&pkcs8).expect("loads");
    let signer = soft_signer(&key);
    let cap = TETHER_PROVISION_REQUEST_MAX_LEN;
    let x_y = &point[1..];
    // Keys: 64 bytes x‖y or 65 bytes 04‖x‖y, nothing else.
    let mut wrong_prefix = point.clone();
    wrong_prefix[0] = 2;
    let mut too_long = point.clone();
    too_long.push(0);
    for bad in [&x_y[..63], &point[..33], &wrong_prefix, &too_long, &[][..]] {
        let (st, text, len) = provision_request(&signer, c"sensor-1", bad, cap);
        assert_eq!(
            (st, text.as_str(), len),
            (TETHER_ERR_KEY_FORMAT, "", 0),
            "{} bytes",
            bad.len()
        );
    }
    // Device ids: IoT Core's rule.
    let long = std::ffi::CString::new("d".repeat(TETHER_MAX_DEVICE_ID_LEN + 1)).expect("no NUL");
    for bad in [
        c"",
        c"s1",
        c"1sensor",
        c"-sensor",
        c"sensor one",
        c"sensor\"1",
        c"sensor/1",
        c"sens\xc3\xa9",
        long.as_c_str(),
    ] {
        assert_eq!(
            provision_request(&signer, bad, x_y, cap).0,
            TETHER_ERR_DEVICE_ID,
            "{bad:?}"
        );
    }
    for ok in [c"abc", c"A.b_c+d~e%f-9"] {
        assert_eq!(
            provision_request(&signer, ok, x_y, cap).0,
            TETHER_OK,
            "{ok:?}"
        );
    }
    // Lifetimes: exp after iat, at most 24 h later.
    for (iat, exp) in [
        (NOW, NOW),
        (NOW, NOW - 1),
        (NOW, NOW + 86_401),
        (u64::MAX, 0),
    ] {
        assert_eq!(
            provision_request_at(&signer, c"sensor-1", x_y, (iat, exp), cap).0,
            TETHER_ERR_LIFETIME,
            "{iat} {exp}"
        );
    }
    assert_eq!(
        provision_request_at(&signer, c"sensor-1", x_y, (NOW, NOW + 86_400), cap).0,
        TETHER_OK
    );
    // An RS256 signer cannot sign for a P-256 key; nor can a malformed signer.
    let mut engine = Engine {
        f: |_: &[u8], _: &mut [u8]| (1, 0),
    };
    let rs256 = engine.signer(TETHER_ALG_RS256, TETHER_SIGN_INPUT_MESSAGE, 0);
    assert_eq!(
        provision_request(&rs256, c"sensor-1", x_y, cap).0,
        TETHER_ERR_KEY_UNSUPPORTED
    );
    let unknown = tether_signer { alg: 9, ..signer };
    assert_eq!(
        provision_request(&unknown, c"sensor-1", x_y, cap).0,
        TETHER_ERR_BAD_ARGUMENT
    );
    // Project ids: as for tether_jwt_mint.
    let mut out = vec![0u8; cap];
    let mut len = usize::MAX;
    // SAFETY: valid pointers and lengths, or NULL, which is reported.
    unsafe {
        let call = |signer: *const tether_signer,
                    project: *const c_char,
                    device: *const c_char,
                    key: *const u8,
                    out: *mut c_char,
                    len: *mut usize| {
            tether_provision_request(
                signer,
                project,
                device,
                key,
                64,
                NOW,
                NOW + 600,
                out,
                cap,
                len,
            )
        };
        let o = out.as_mut_ptr().cast::<c_char>();
        let (p, d, k) = (c"acme".as_ptr(), c"sensor-1".as_ptr(), x_y.as_ptr());
        assert_eq!(
            call(&signer, c"".as_ptr(), d, k, o, &mut len),
            TETHER_ERR_PROJECT_ID
        );
        assert_eq!(len, 0);
        assert_eq!(
            call(&signer, c"a\"b".as_ptr(), d, k, o, &mut len),
            TETHER_ERR_PROJECT_ID
        );
        use std::ptr::null;
        assert_eq!(call(null(), p, d, k, o, &mut len), TETHER_ERR_NULL_POINTER);
        assert_eq!(
            call(&signer, null(), d, k, o, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            call(&signer, p, null(), k, o, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            call(&signer, p, d, null(), o, &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(
            call(&signer, p, d, k, std::ptr::null_mut(), &mut len),
            TETHER_ERR_NULL_POINTER
        );
        assert_eq!(call(&signer, p, d, k, o, std::ptr::null_mut()), TETHER_OK);
    }
}
