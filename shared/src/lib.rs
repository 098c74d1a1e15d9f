//! Everything that is not a Lambda entry point. See ARCHITECTURE.md for the module map.

pub mod atlassian;
pub mod aws;
pub mod blob;
pub mod clock;
pub mod config;
pub mod connect;
pub mod erase;
pub mod error;
pub mod events;
pub mod export;
pub mod ids;
mod offload;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod vault;

#[cfg(test)]
mod props;
