//! The fake server's CONNECT check: client id, registered keys, JWT, with IoT Core's
//! CONNACK codes and the refusal reason kept as the device's last error.

use std::sync::Mutex;

use tether_iot::ClientId;
use tether_jwt::{Credential, Rules};
use tether_mqtt::{Connect, ConnectReturnCode};

use super::{FakeServerOptions, State, lock};

/// Checks a CONNECT; the token's `exp` when accepted.
pub(super) fn authenticate(
    connect: &Connect,
    options: &FakeServerOptions,
    state: &Mutex<State>,
) -> Result<i64, ConnectReturnCode> {
    let id = connect.client_id.as_str();
    let Ok(client) = ClientId::parse(id) else {
        refuse(state, id, ConnectReturnCode::IdentifierRejected, None);
        return Err(ConnectReturnCode::IdentifierRejected);
    };
    let keys = lock(state).keys.get(id).cloned();
    let Some(keys) = keys else {
        let why = format!("mqtt: SERVER: device '{}' is not registered", client.device);
        refuse(state, id, options.unknown_device, Some(why));
        return Err(options.unknown_device);
    };
    let Some(token) = connect
        .password
        .as_deref()
        .and_then(|p| std::str::from_utf8(p).ok())
    else {
        let why = "mqtt: SERVER: the password (JWT) is missing or not text".to_string();
        refuse(
            state,
            id,
            ConnectReturnCode::BadUserNameOrPassword,
            Some(why),
        );
        return Err(ConnectReturnCode::BadUserNameOrPassword);
    };
    let now = i64::try_from(options.clock.unix_now()).unwrap_or(i64::MAX);
    let mut rules = Rules::new(client.project, now);
    rules.skew_secs = options.skew_secs;
    let credentials: Vec<Credential> = keys.into_iter().map(Credential::new).collect();
    match tether_jwt::verify(token, &rules, &credentials) {
        Ok(verified) => Ok(verified.exp),
        Err(refusal) => {
            let why = format!("mqtt: SERVER: {refusal}");
            refuse(state, id, ConnectReturnCode::NotAuthorized, Some(why));
            Err(ConnectReturnCode::NotAuthorized)
        }
    }
}

fn refuse(state: &Mutex<State>, client_id: &str, code: ConnectReturnCode, why: Option<String>) {
    let mut s = lock(state);
    s.refusals.push((client_id.to_string(), code));
    if let Some(why) = why {
        s.last_error.insert(client_id.to_string(), why);
    }
}
