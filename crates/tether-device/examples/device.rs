//! A device that connects, reports its status, prints config and commands, and sends
//! a telemetry event every 10 seconds.
//!
//! Run with:
//!   cargo run -p tether-device --example device -- localhost:8883 tether-data/ca.pem \
//!       projects/P/locations/us-central1/registries/R/devices/D device.key.pem
//! (a second `HOST:PORT` after the first endpoint, e.g. `localhost:443`, is a fallback).

use std::time::Duration;

use tether_device::{Device, DeviceOptions, DevicePath, Endpoint, QoS, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, ca, client_id, key, rest @ ..] = args.as_slice() else {
        eprintln!("usage: device HOST:PORT CA.pem CLIENT_ID KEY [FALLBACK_HOST:PORT]");
        std::process::exit(2);
    };
    let mut options = DeviceOptions::new(
        DevicePath::parse(client_id)?,
        tether_device::open_signer(key)?,
    )
    .ca_pem(&std::fs::read(ca)?)?;
    for e in std::iter::once(endpoint).chain(rest) {
        let (host, port) = e.rsplit_once(':').ok_or("endpoint must be HOST:PORT")?;
        options = options.endpoint(Endpoint::new(host, port.parse()?));
    }

    // The first connect reports a typed reason: Tls { cause: UnknownIssuer }, Refused {
    // code: NotAuthorized }, Tcp, Dns, …
    let mut device = match Device::connect(options).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            std::process::exit(1);
        }
    };
    let mut status = device.status();
    let mut commands = device.take_commands().ok_or("commands already taken")?;
    let mut config = device.config();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut n = 0u64;
    loop {
        tokio::select! {
            Ok(()) = status.changed() => match &*status.borrow_and_update() {
                Status::Connected { endpoint, token_expires, .. } => println!(
                    "connected to {}:{} (token expires at {token_expires})",
                    endpoint.host, endpoint.port
                ),
                Status::Backoff { attempt, wait, last_error } => {
                    println!("retry #{attempt} in {wait:?}: {last_error}");
                }
                other => println!("{other:?}"),
            },
            Ok(()) = config.changed() => {
                if let Some(c) = &*config.borrow_and_update() {
                    println!("config: {}", String::from_utf8_lossy(&c.payload));
                }
            }
            Some(cmd) = commands.recv() => println!(
                "command {:?}: {}",
                cmd.subfolder,
                String::from_utf8_lossy(&cmd.payload)
            ),
            _ = tick.tick() => {
                n += 1;
                let event = format!("{{\"n\":{n}}}");
                if let Err(e) = device.publish_event(None, event, QoS::AtLeastOnce).await {
                    eprintln!("event not sent: {e}");
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    device.disconnect().await;
    Ok(())
}
