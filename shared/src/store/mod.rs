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
pub mod connectors;
pub mod jobs;
pub mod schema;
pub mod states;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::AwsError;

pub use connections::{
    Connection, ConnectionStatus, NewConnection, RefreshedTokens, connection_id,
};
pub use states::{ConsumeStateError, PendingAuthorization};

/// The table, through one DynamoDB client.
#[derive(Debug, Clone)]
pub struct Store {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// Test seam: how many of the next refreshed-token writes fail as if DynamoDB were down.
    /// Always zero in production (nothing sets it).
    failing_refreshed_writes: Arc<AtomicU32>,
}

impl Store {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Store {
        Store {
            ddb,
            table: table.into(),
            failing_refreshed_writes: Arc::default(),
        }
    }

    /// Make the next `n` writes of refreshed tokens fail (integration tests of the
    /// "Atlassian answered but we could not store it" path).
    pub fn fail_next_refreshed_writes(&self, n: u32) {
        self.failing_refreshed_writes.store(n, Ordering::SeqCst);
    }

    fn take_injected_failure(&self) -> bool {
        self.failing_refreshed_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
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
