//! DynamoDB access. One table, string keys `pk`/`sk` (ARCHITECTURE.md data model):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | OAuth state | `STATE#<sha256(state)>` | `STATE` |
//! | grant (token family) | `TENANT#<tenant>` | `GRANT#<grant id>` |
//! | connection | `TENANT#<tenant>` | `CONN#<connection id>` |
//! | site choice (chooser page) | `CHOICE#<sha256(selection)>` | `CHOICE` |
//! | erase tombstone (a day) | `ERASED#<sha256(tenant)>` | `TENANT`, `CONN#…`, `CONNECTOR#…` |
//!
//! Everything a tenant owns lives under its own partition, so erase is a query, never a scan.
//! Conditional writes guard every token update (`version`); transient items carry a TTL.

mod attrs;

/// Item accessors for modules outside the store (erase).
pub mod attrs_public {
    use super::attrs::{self, Item};
    use super::schema::{PK, SK};

    pub fn item_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
        attrs::opt_s(item, name)
    }

    pub fn keys_of(item: &Item) -> Option<(String, String)> {
        Some((
            attrs::opt_s(item, PK)?.to_owned(),
            attrs::opt_s(item, SK)?.to_owned(),
        ))
    }
}
pub mod choices;
pub mod connections;
pub mod connectors;
pub mod erasures;
pub mod grants;
pub mod jobs;
pub mod schema;
pub mod sites;
pub mod states;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::AwsError;

pub use connections::{Connection, ConnectionStatus, NewConnection, connection_id};
pub use grants::{Grant, GrantStatus, NewGrant, RefreshedTokens};
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

/// The partition of everything a tenant owns.
pub(crate) fn tenant_pk(tenant: &crate::ids::TenantId) -> String {
    format!("TENANT#{tenant}")
}

pub(crate) fn is_conditional_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)
        == Some("ConditionalCheckFailedException")
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

/// A tenant's items, for erase: everything under `TENANT#<tenant>`.
impl Store {
    pub async fn tenant_items(
        &self,
        tenant: &crate::ids::TenantId,
    ) -> Result<Vec<attrs::Item>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", attrs::s(format!("TENANT#{tenant}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:Query(tenant)", &e))?;
            found.extend(out.items().iter().cloned());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// Delete items by key, 25 at a time, retrying what DynamoDB leaves unprocessed.
    pub async fn delete_items(&self, keys: &[(String, String)]) -> Result<u64, StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let mut deleted = 0;
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for (pk, sk) in chunk {
                let delete = DeleteRequest::builder()
                    .key(schema::PK, attrs::s(pk))
                    .key(schema::SK, attrs::s(sk))
                    .build()
                    .map_err(|e| StoreError::Malformed(e.to_string()))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut pending = requests;
            for _ in 0..8 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .ddb
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| AwsError::new("dynamodb:BatchWriteItem(delete)", &e))?;
                let left = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                deleted += (pending.len() - left.len()) as u64;
                pending = left;
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Conflict(
                    "delete items: DynamoDB kept throttling",
                ));
            }
        }
        Ok(deleted)
    }
}
