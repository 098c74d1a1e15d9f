//! DynamoDB access. One table, string keys `pk`/`sk` (ARCHITECTURE.md data model):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | OAuth state | `STATE#<sha256(state)>` | `STATE` |
//! | connection | `TENANT#<tenant>` | `CONN#<connection id>` |
//!
//! Everything a tenant owns lives under its own partition, so erase is a query, never a scan.
//! Conditional writes guard every token update (`version`); transient items carry a TTL.

mod attrs;
pub mod connections;
pub mod schema;
pub mod states;

use crate::error::AwsError;

pub use connections::{Connection, ConnectionStatus, NewConnection, connection_id};
pub use states::{ConsumeStateError, PendingAuthorization};

/// The table, through one DynamoDB client.
#[derive(Debug, Clone)]
pub struct Store {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl Store {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Store {
        Store {
            ddb,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// An item is missing an attribute or has one of the wrong type.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// A conditional write lost (someone else changed the item first).
    #[error("{0}: the item changed meanwhile")]
    Conflict(&'static str),
}
