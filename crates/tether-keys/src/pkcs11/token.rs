//! A key pair inside a PKCS#11 token, found from a [`Pkcs11Uri`] and used through
//! cryptoki.
//!
//! Opening a key goes module → slot → session → object: one initialised context per
//! module path for the whole process, the slot found by token label, a session that
//! logs in when the URI carries a PIN, then exactly one private key matching the URI's
//! label and id (none or several is an error that says which). The public key is read
//! from the token's public object into a [`tether_jwt::PublicKey`]. [`Pkcs11Key`]
//! keeps its session behind a mutex and signs there: ES256 hashes on the host and
//! signs the digest with `CKM_ECDSA` (SoftHSM 2.6 has no `CKM_ECDSA_SHA256`), giving
//! the raw `r‖s` JWS needs; RS256 uses `CKM_SHA256_RSA_PKCS`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Encode;
use tether_jwt::{Algorithm, KeyType, PublicKey, SignError, Signer};

use super::{Pkcs11Error, Pkcs11Uri};

/// DER of the P-256 named-curve OID, the `CKA_EC_PARAMS` of P-256 keys.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn call(call: &'static str) -> impl FnOnce(CkError) -> Pkcs11Error {
    move |source| Pkcs11Error::Call { call, source }
}

/// One initialised context per module for the whole process.
fn context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let contexts = CONTEXTS.get_or_init(Mutex::default);
    let mut map = contexts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let module_err = |why: String| Pkcs11Error::Module {
        module: module.display().to_string(),
        why,
    };
    if !module.exists() {
        return Err(module_err(
            "no such file (is the package installed?)".into(),
        ));
    }
    let ctx = Pkcs11::new(module).map_err(|e| module_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(module_err(format!("C_Initialize: {e}"))),
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, Pkcs11Error> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(call("C_GetSlotList"))?;
    let mut labels = Vec::new();
    for slot in slots {
        if uri.slot_id.is_some_and(|id| id != slot.id()) {
            continue;
        }
        let info = ctx.get_token_info(slot).map_err(call("C_GetTokenInfo"))?;
        let label = info.label().trim_end().to_string();
        match &uri.token {
            Some(wanted) if *wanted != label => labels.push(label),
            _ => return Ok(slot),
        }
    }
    Err(Pkcs11Error::TokenNotFound {
        wanted: uri.token.clone().unwrap_or_else(|| "*".into()),
        present: if labels.is_empty() {
            "none".into()
        } else {
            labels.join(", ")
        },
    })
}

fn open_session(uri: &Pkcs11Uri, read_write: bool) -> Result<Session, Pkcs11Error> {
    let ctx = context(&uri.module()?)?;
    let slot = find_slot(&ctx, uri)?;
    let session = if read_write {
        ctx.open_rw_session(slot).map_err(call("C_OpenSession"))?
    } else {
        ctx.open_ro_session(slot).map_err(call("C_OpenSession"))?
    };
    if let Some(pin) = uri.pin()? {
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            // Login state is per application: another session may have logged in.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                return Err(Pkcs11Error::Call {
                    call: "C_Login",
                    source: e,
                });
            }
        }
    }
    Ok(session)
}

fn template(class: ObjectClass, uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    what: &'static str,
    uri: &Pkcs11Uri,
) -> Result<ObjectHandle, Pkcs11Error> {
    let found = session
        .find_objects(&template(class, uri))
        .map_err(call("C_FindObjects"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Pkcs11Error::KeyNotFound {
            what,
            uri: uri.describe(),
            hint: if uri.pin().ok().flatten().is_none() {
                " (no PIN given, so private objects are invisible: add pin-value=, \
                 pin-source= or set TETHER_PKCS11_PIN)"
            } else {
                ""
            },
        }),
        many => Err(Pkcs11Error::Ambiguous {
            count: many.len(),
            uri: uri.describe(),
        }),
    }
}

fn attribute(
    session: &Session,
    object: ObjectHandle,
    ty: AttributeType,
) -> Result<Option<Attribute>, Pkcs11Error> {
    let mut attrs = session
        .get_attributes(object, &[ty])
        .map_err(call("C_GetAttributeValue"))?;
    Ok(attrs.pop())
}

/// The public key of a token key pair, from the public object when there is one.
fn read_public(
    session: &Session,
    private: ObjectHandle,
    uri: &Pkcs11Uri,
) -> Result<PublicKey, Pkcs11Error> {
    let key_type = match attribute(session, private, AttributeType::KeyType)? {
        Some(Attribute::KeyType(t)) => t,
        _ => {
            return Err(Pkcs11Error::UnsupportedKey(
                "the key has no CKA_KEY_TYPE".into(),
            ));
        }
    };
    let public = find_one(session, ObjectClass::PUBLIC_KEY, "public key", uri)?;
    let bad = |e: tether_jwt::KeyError| Pkcs11Error::UnsupportedKey(e.to_string());
    if key_type == CkKeyType::EC {
        if let Some(Attribute::EcParams(params)) =
            attribute(session, public, AttributeType::EcParams)?
            && params != P256_PARAMS
        {
            return Err(Pkcs11Error::UnsupportedKey(
                "EC key on a curve other than P-256; ES256 needs P-256".into(),
            ));
        }
        let Some(Attribute::EcPoint(point)) = attribute(session, public, AttributeType::EcPoint)?
        else {
            return Err(Pkcs11Error::UnsupportedKey(
                "the public key has no CKA_EC_POINT".into(),
            ));
        };
        // CKA_EC_POINT is a DER OCTET STRING around 04‖x‖y (some tokens omit the wrapper).
        let raw = match point.as_slice() {
            [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
            other => other,
        };
        PublicKey::from_p256_point(raw).map_err(bad)
    } else if key_type == CkKeyType::RSA {
        let (Some(Attribute::Modulus(n)), Some(Attribute::PublicExponent(e))) = (
            attribute(session, public, AttributeType::Modulus)?,
            attribute(session, public, AttributeType::PublicExponent)?,
        ) else {
            return Err(Pkcs11Error::UnsupportedKey(
                "the RSA public key has no modulus".into(),
            ));
        };
        let key = pkcs1::RsaPublicKeyRef {
            modulus: der::asn1::UintRef::new(&n)
                .map_err(|e| Pkcs11Error::UnsupportedKey(e.to_string()))?,
            public_exponent: der::asn1::UintRef::new(&e)
                .map_err(|e| Pkcs11Error::UnsupportedKey(e.to_string()))?,
        };
        let der = key
            .to_der()
            .map_err(|e| Pkcs11Error::UnsupportedKey(e.to_string()))?;
        PublicKey::from_rsa_pkcs1_der(&der).map_err(bad)
    } else {
        Err(Pkcs11Error::UnsupportedKey(format!(
            "key type {key_type}: only EC P-256 and RSA sign JWTs"
        )))
    }
}

/// A key pair inside a PKCS#11 token.
pub struct Pkcs11Key {
    session: Mutex<Session>,
    private: ObjectHandle,
    public: PublicKey,
    uri: Pkcs11Uri,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.uri)
            .field("public", &self.public)
            .finish()
    }
}

impl Pkcs11Key {
    /// Opens an existing key pair.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let session = open_session(uri, false)?;
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, "private key", uri)?;
        let public = read_public(&session, private, uri)?;
        Ok(Pkcs11Key {
            session: Mutex::new(session),
            private,
            public,
            uri: uri.clone(),
        })
    }

    /// Generates a non-extractable P-256 key pair in the token, labelled with the URI's
    /// `object` (required) and `id` (random when absent).
    pub fn generate_p256(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let label = uri
            .object
            .clone()
            .ok_or_else(|| Pkcs11Error::Uri("give the new key a label: object=NAME".into()))?;
        let session = open_session(uri, true)?;
        if uri.pin()?.is_none() {
            return Err(Pkcs11Error::Uri(
                "a PIN is needed to create private keys: pin-value=, pin-source= or TETHER_PKCS11_PIN".into(),
            ));
        }
        let by_label = Pkcs11Uri {
            id: None,
            ..uri.clone()
        };
        let existing = session
            .find_objects(&template(ObjectClass::PRIVATE_KEY, &by_label))
            .map_err(call("C_FindObjects"))?;
        if !existing.is_empty() {
            return Err(Pkcs11Error::Exists(label));
        }
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => session
                .generate_random_vec(16)
                .map_err(call("C_GenerateRandom"))?,
        };
        let label = label.into_bytes();
        let public_template = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id.clone()),
        ];
        let (_, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(call("C_GenerateKeyPair"))?;
        let exact = Pkcs11Uri {
            id: Some(id),
            ..uri.clone()
        };
        let public = read_public(&session, private, &exact)?;
        Ok(Pkcs11Key {
            session: Mutex::new(session),
            private,
            public,
            uri: exact,
        })
    }

    /// The public key (to register, or to verify this key's tokens).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The URI this key was opened with (and its id, after generation).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// Signs `message` with the token: ES256 → raw `r‖s`, RS256 → PKCS#1 v1.5.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.public.key_type() {
            KeyType::EcP256 => {
                // SoftHSM 2.6 lacks CKM_ECDSA_SHA256: hash here, sign the digest there.
                let digest = ring::digest::digest(&ring::digest::SHA256, message);
                let sig = session
                    .sign(&Mechanism::Ecdsa, self.private, digest.as_ref())
                    .map_err(call("C_Sign"))?;
                if sig.len() == 64 {
                    return Ok(sig);
                }
                let mut raw = [0u8; 64];
                tether_jwt::ecdsa_der::der_to_raw(&sig, &mut raw).map_err(|_| {
                    Pkcs11Error::UnsupportedKey(format!(
                        "token returned a {}-byte ECDSA signature",
                        sig.len()
                    ))
                })?;
                Ok(raw.to_vec())
            }
            KeyType::Rsa => session
                .sign(&Mechanism::Sha256RsaPkcs, self.private, message)
                .map_err(call("C_Sign")),
        }
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        let sig = self
            .sign_message(message)
            .map_err(|e| SignError::Backend(e.to_string()))?;
        let out = out
            .get_mut(..sig.len())
            .ok_or(SignError::BufferTooSmall { needed: sig.len() })?;
        out.copy_from_slice(&sig);
        Ok(sig.len())
    }
}
