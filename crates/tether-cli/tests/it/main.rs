//! The `tether` command's integration tests, one module per command area, linked into
//! one test binary (one link step instead of ten). Most run the built binary
//! (`CARGO_BIN_EXE_tether`); `common` starts `tether serve` and sets up devices.

mod admin_cli;
mod cluster_e2e;
mod common;
mod connect_flood;
mod console_e2e;
mod crash_recovery;
mod device_cache_e2e;
mod device_gateway_e2e;
mod doctor_cli;
mod firmware_c;
mod grpc_api_e2e;
mod jwt_cli;
mod keys_cli;
mod keys_pkcs11_cli;
mod listener_limits;
mod log_budget;
mod nats_outage;
mod provisioning_e2e;
mod pubsub_e2e;
mod serve_e2e;
mod simulate_cli;
mod soak;
mod storage_cli;
