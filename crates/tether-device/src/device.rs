//! The application's handle: publish, state, gateway helpers, and the streams of
//! config, commands and gateway errors. A driver task (see [`crate::driver`]) owns
//! the connection.

use tether_mqtt::{QoS, TopicName};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::driver::{Driver, Request};
use crate::error::{ConnectError, GatewayError, PublishError};
use crate::messages::{Command, Config, Status};
use crate::options::{DeviceOptions, DevicePath};

/// A connected device. Dropping it (or [`Device::disconnect`]) ends the connection.
#[derive(Debug)]
pub struct Device {
    path: DevicePath,
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    config: watch::Receiver<Option<Config>>,
    configs: Option<mpsc::Receiver<Config>>,
    commands: Option<mpsc::Receiver<Command>>,
    errors: Option<mpsc::Receiver<GatewayError>>,
    task: Option<JoinHandle<()>>,
}

impl Device {
    /// Connects (one round over the endpoints) and starts the task that keeps the
    /// connection: token refresh before expiry, reconnects with backoff, failover.
    ///
    /// # Errors
    /// The typed reason the first round failed; with several endpoints that all failed
    /// at the network or TLS level, [`ConnectError::AllEndpoints`].
    pub async fn connect(options: DeviceOptions) -> Result<Device, ConnectError> {
        let path = options.device.clone();
        let (requests, rx) = mpsc::channel(64);
        let (driver, outputs) = Driver::new(options, rx)?;
        let (driver, conn) = driver.first_connect().await?;
        let task = tokio::spawn(driver.run(conn));
        Ok(Device {
            path,
            requests,
            status: outputs.status,
            config: outputs.config,
            configs: Some(outputs.streams.configs),
            commands: Some(outputs.streams.commands),
            errors: Some(outputs.streams.errors),
            task: Some(task),
        })
    }

    /// The device's path (client id).
    pub fn path(&self) -> &DevicePath {
        &self.path
    }

    /// The connection status, as a watch.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The latest configuration of this device (`None` until the first arrives).
    pub fn config(&self) -> watch::Receiver<Option<Config>> {
        self.config.clone()
    }

    /// Every configuration received (this device's and attached devices'), in order.
    /// Available once; unread messages beyond 64 are dropped with a warning.
    pub fn take_configs(&mut self) -> Option<mpsc::Receiver<Config>> {
        self.configs.take()
    }

    /// The commands received. Available once; unread commands beyond 64 are dropped
    /// with a warning.
    pub fn take_commands(&mut self) -> Option<mpsc::Receiver<Command>> {
        self.commands.take()
    }

    /// The gateway's errors topic (with [`DeviceOptions::gateway`]). Available once.
    pub fn take_errors(&mut self) -> Option<mpsc::Receiver<GatewayError>> {
        self.errors.take()
    }

    /// Publishes telemetry to `/devices/{id}/events[/{subfolder}]`. QoS 1 returns after
    /// the PUBACK (resent across reconnects until then); QoS 0 once written.
    ///
    /// # Errors
    /// QoS 0 while disconnected, an invalid subfolder, a shut-down device.
    pub async fn publish_event(
        &self,
        subfolder: Option<&str>,
        payload: impl Into<Vec<u8>>,
        qos: QoS,
    ) -> Result<(), PublishError> {
        self.publish_event_for(&self.path.device, subfolder, payload, qos)
            .await
    }

    /// Publishes state to `/devices/{id}/state` (QoS 1).
    ///
    /// # Errors
    /// As [`Device::publish_event`].
    pub async fn set_state(&self, payload: impl Into<Vec<u8>>) -> Result<(), PublishError> {
        self.set_state_for(&self.path.device, payload).await
    }

    /// A gateway publishes telemetry for an attached device.
    ///
    /// # Errors
    /// As [`Device::publish_event`].
    pub async fn publish_event_for(
        &self,
        device_id: &str,
        subfolder: Option<&str>,
        payload: impl Into<Vec<u8>>,
        qos: QoS,
    ) -> Result<(), PublishError> {
        let topic = match subfolder {
            Some(s) => format!("/devices/{device_id}/events/{s}"),
            None => format!("/devices/{device_id}/events"),
        };
        self.publish(topic, payload.into(), qos).await
    }

    /// A gateway publishes state for an attached device (QoS 1).
    ///
    /// # Errors
    /// As [`Device::publish_event`].
    pub async fn set_state_for(
        &self,
        device_id: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PublishError> {
        let topic = format!("/devices/{device_id}/state");
        self.publish(topic, payload.into(), QoS::AtLeastOnce).await
    }

    /// A gateway attaches a device: `{"authorization": token}` (or `{}` for
    /// association-only auth) to `/devices/{device}/attach`. Returns after the PUBACK
    /// (the attach succeeded); then the device's config and commands arrive on this
    /// connection. Re-attached after every reconnect with the same token: attach again
    /// with a fresh token before it expires.
    ///
    /// # Errors
    /// [`PublishError::Attach`] when the server reports the failure on the errors topic.
    pub async fn attach(&self, device_id: &str, token: Option<&str>) -> Result<(), PublishError> {
        check_id(device_id)?;
        let payload = match token {
            Some(t) => serde_json::json!({ "authorization": t }).to_string(),
            None => "{}".to_string(),
        };
        let (done, rx) = oneshot::channel();
        self.send(Request::Attach {
            device: device_id.to_string(),
            payload: payload.into_bytes(),
            done,
        })
        .await?;
        rx.await.map_err(|_| PublishError::Closed)?
    }

    /// A gateway detaches a device (`{}` to `/devices/{device}/detach`).
    ///
    /// # Errors
    /// As [`Device::publish_event`].
    pub async fn detach(&self, device_id: &str) -> Result<(), PublishError> {
        check_id(device_id)?;
        let (done, rx) = oneshot::channel();
        self.send(Request::Detach {
            device: device_id.to_string(),
            done,
        })
        .await?;
        rx.await.map_err(|_| PublishError::Closed)?
    }

    /// Sends DISCONNECT and stops the driver. Unacknowledged QoS 1 messages fail with
    /// [`PublishError::Closed`].
    pub async fn disconnect(mut self) {
        let (done, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown { done }).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn publish(&self, topic: String, payload: Vec<u8>, qos: QoS) -> Result<(), PublishError> {
        let topic = TopicName::new(topic).map_err(|e| PublishError::Topic(e.to_string()))?;
        if qos == QoS::AtMostOnce && !matches!(*self.status.borrow(), Status::Connected { .. }) {
            return Err(PublishError::NotConnected);
        }
        let (done, rx) = oneshot::channel();
        self.send(Request::Publish {
            topic,
            payload,
            qos,
            done,
        })
        .await?;
        rx.await.map_err(|_| PublishError::Closed)?
    }

    async fn send(&self, request: Request) -> Result<(), PublishError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| PublishError::Closed)
    }
}

fn check_id(device_id: &str) -> Result<(), PublishError> {
    tether_iot::validate_id(device_id).map_err(|e| PublishError::Topic(e.to_string()))
}
