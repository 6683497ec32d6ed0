//! `tether gateways bind|unbind|list-bound-devices` (alias `list-devices`), as
//! `gcloud iot devices gateways`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{CliError, Client};
use super::{Conn, output};

/// Bind devices to gateways.
#[derive(Debug, Args)]
pub struct GatewaysArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: GatewaysCommand,
}

/// A gateway and a device of one registry.
#[derive(Debug, Args)]
struct Pair {
    /// Gateway id or numId.
    #[arg(long)]
    gateway: String,
    /// Device id or numId.
    #[arg(long)]
    device: String,
    /// Registry id.
    #[arg(long)]
    registry: String,
}

#[derive(Debug, Subcommand)]
enum GatewaysCommand {
    /// Let the gateway act for the device.
    Bind(Pair),
    /// Remove the binding.
    Unbind(Pair),
    /// List the devices bound to a gateway.
    #[command(visible_alias = "list-devices")]
    ListBoundDevices {
        /// Gateway id or numId.
        #[arg(long)]
        gateway: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
}

/// Runs `tether gateways …`.
pub fn run(args: GatewaysArgs) -> anyhow::Result<u8> {
    let conn = args.conn.clone();
    super::run(&args.conn, |client| async move {
        exec(&client, &conn, args.command).await
    })
}

async fn exec(client: &Client, conn: &Conn, command: GatewaysCommand) -> Result<(), CliError> {
    match command {
        GatewaysCommand::Bind(p) => {
            let body = json!({"gatewayId": p.gateway, "deviceId": p.device});
            client
                .post(
                    &format!("{}:bindDeviceToGateway", conn.registry(&p.registry)?),
                    body,
                )
                .await?;
            eprintln!("Bound device [{}] to gateway [{}].", p.device, p.gateway);
        }
        GatewaysCommand::Unbind(p) => {
            let body = json!({"gatewayId": p.gateway, "deviceId": p.device});
            client
                .post(
                    &format!("{}:unbindDeviceFromGateway", conn.registry(&p.registry)?),
                    body,
                )
                .await?;
            eprintln!(
                "Unbound device [{}] from gateway [{}].",
                p.device, p.gateway
            );
        }
        GatewaysCommand::ListBoundDevices { gateway, registry } => {
            let items = client
                .list_all(
                    &format!("{}/devices", conn.registry(&registry)?),
                    "devices",
                    &[("gatewayListOptions.associationsGatewayId", gateway)],
                    0,
                )
                .await?;
            output::list(conn.format, &items, &[("ID", "/id"), ("NUM_ID", "/numId")]);
        }
    }
    Ok(())
}
