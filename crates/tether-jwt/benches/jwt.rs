//! Mint and verify, ES256 and RS256: tether beside the `jsonwebtoken` crate (on the
//! same ring crypto) and beside the raw ring operation, in one run.
//!
//! Run with: cargo bench -p tether-jwt --bench jwt --features p256-table

#[path = "../tests/common/jsonwebtoken_ring.rs"]
mod jsonwebtoken_ring;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm as JAlg, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use tether_jwt::signers::{P256Signer, RingEs256Signer, RingRs256Signer};
use tether_jwt::{Claims, Credential, Rules, Signer, mint, verify};

const RSA_PKCS8: &[u8] = include_bytes!("../tests/data/rsa2048-pkcs8.der");
const NOW: i64 = 1_790_000_000;

#[derive(Serialize, Deserialize)]
struct IotClaims {
    iat: i64,
    exp: i64,
    aud: String,
}

fn tether_token(s: &dyn Signer) -> String {
    let mut buf = [0u8; 1024];
    let n = mint(
        s,
        &Claims {
            aud: "acme",
            iat: NOW as u64,
            exp: NOW as u64 + 1200,
        },
        &mut buf,
    )
    .expect("mint");
    String::from_utf8(buf[..n].to_vec()).expect("ascii")
}

fn bench(c: &mut Criterion) {
    jsonwebtoken_ring::install();
    let rng = SystemRandom::new();
    let ec_pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("gen");
    let ec_pair = EcdsaKeyPair::from_pkcs8(
        &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_pkcs8.as_ref(),
        &rng,
    )
    .expect("ec");
    let es = RingEs256Signer::from_pkcs8(ec_pkcs8.as_ref()).expect("es");
    let rsa = RingRs256Signer::from_pkcs8(RSA_PKCS8).expect("rsa");
    let rsa_pair = rs::RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("rsa");
    let claims = IotClaims {
        iat: NOW,
        exp: NOW + 1200,
        aud: "acme".into(),
    };

    for (name, signer, jalg, enc_key, dec_key, public) in [
        (
            "es256",
            &es as &dyn Signer,
            JAlg::ES256,
            EncodingKey::from_ec_der(ec_pkcs8.as_ref()),
            DecodingKey::from_ec_der(ec_pair.public_key().as_ref()),
            es.public_key(),
        ),
        (
            "rs256",
            &rsa as &dyn Signer,
            JAlg::RS256,
            EncodingKey::from_rsa_der(RSA_PKCS8),
            DecodingKey::from_rsa_der(rsa_pair.public().as_ref()),
            rsa.public_key(),
        ),
    ] {
        let token = tether_token(signer);
        let (input, _) = token.rsplit_once('.').expect("parts");
        let sig = tether_jwt::b64::decode(token.rsplit_once('.').expect("parts").1.as_bytes())
            .expect("b64")
            .0;

        let mut g = c.benchmark_group(format!("{name}/mint"));
        g.bench_function("tether", |b| {
            let mut buf = [0u8; 1024];
            b.iter(|| {
                mint(
                    signer,
                    &Claims {
                        aud: "acme",
                        iat: NOW as u64,
                        exp: NOW as u64 + 1200,
                    },
                    &mut buf,
                )
                .expect("mint")
            })
        });
        g.bench_function("jsonwebtoken", |b| {
            b.iter(|| jsonwebtoken::encode(&Header::new(jalg), &claims, &enc_key).expect("encode"))
        });
        g.bench_function("ring_sign_only", |b| {
            let mut out = [0u8; 512];
            b.iter(|| {
                signer
                    .sign(black_box(input.as_bytes()), &mut out)
                    .expect("sign")
            })
        });
        g.finish();

        let creds = [Credential::new(public.clone())];
        let rules = Rules::new("acme", NOW);
        let mut validation = Validation::new(jalg);
        validation.validate_exp = false;
        validation.set_audience(&["acme"]);
        validation.set_required_spec_claims(&["iat", "exp", "aud"]);
        let ring_alg: &dyn rs::VerificationAlgorithm = match name {
            "es256" => &rs::ECDSA_P256_SHA256_FIXED,
            _ => &rs::RSA_PKCS1_2048_8192_SHA256,
        };
        let mut g = c.benchmark_group(format!("{name}/verify"));
        g.bench_function("tether", |b| {
            b.iter(|| verify(black_box(&token), &rules, &creds).expect("valid"))
        });
        g.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<IotClaims>(black_box(&token), &dec_key, &validation)
                    .expect("valid")
            })
        });
        g.bench_function("ring_verify_only", |b| {
            b.iter(|| {
                rs::UnparsedPublicKey::new(ring_alg, public.key_bytes())
                    .verify(black_box(input.as_bytes()), &sig)
                    .expect("valid")
            })
        });
        g.finish();
    }

    // The no_std device path (RustCrypto P-256), for firmware planning.
    let p256 = P256Signer::from_scalar(&[7u8; 32]).expect("scalar");
    c.bench_function("es256/mint/tether_p256_no_std", |b| {
        let mut buf = [0u8; 512];
        b.iter(|| {
            mint(
                &p256,
                &Claims {
                    aud: "acme",
                    iat: NOW as u64,
                    exp: NOW as u64 + 1200,
                },
                &mut buf,
            )
            .expect("mint")
        })
    });
}

/// The bare ES256 signature over a token's signing input, on each P-256 signer in one
/// run: ring (the floor), the `p256` crate's own (generic multiplication), and
/// `P256Signer` (with `--features p256-table`, the fixed-base table).
fn sign(c: &mut Criterion) {
    use p256::ecdsa::signature::Signer as _;
    let input = tether_token(&P256Signer::from_scalar(&[7u8; 32]).expect("scalar"));
    let input = input
        .rsplit_once('.')
        .expect("three parts")
        .0
        .as_bytes()
        .to_vec();
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("gen");
    let pair = EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("ec");
    let crate_key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("scalar");
    let ours = P256Signer::from_scalar(&[7u8; 32]).expect("scalar");
    let mut g = c.benchmark_group("es256/sign");
    g.bench_function("ring", |b| {
        b.iter(|| pair.sign(&rng, black_box(&input)).expect("sign"))
    });
    g.bench_function("p256_crate", |b| {
        b.iter(|| -> p256::ecdsa::Signature { crate_key.sign(black_box(&input)) })
    });
    let name = if cfg!(feature = "p256-table") {
        "tether_p256_table"
    } else {
        "tether_p256"
    };
    g.bench_function(name, |b| {
        let mut out = [0u8; 64];
        b.iter(|| ours.sign(black_box(&input), &mut out).expect("sign"))
    });
    g.finish();
}

/// What a refused ES256 token costs beyond its failed verification: the two public
/// keys recovered from its signature, named in the refusal (tether-server's
/// `bridge::auth`).
fn recovery(c: &mut Criterion) {
    let signer = P256Signer::from_scalar(&[9u8; 32]).expect("scalar");
    let token = tether_token(&signer);
    c.bench_function("es256/refused/recover_signers", |b| {
        b.iter(|| tether_jwt::token_es256_signers(black_box(&token)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60).measurement_time(std::time::Duration::from_secs(3));
    targets = bench, sign, recovery
}
criterion_main!(benches);
