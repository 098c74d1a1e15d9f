//! Erase tombstones (PRIVACY.md P11): written by an erase before it sweeps, read by an export
//! that lost its job, so a batch that was mid-flight when the erase ran removes what it wrote
//! after the sweep. Keyed by hashes, so that what is left of an erased tenant for the day the
//! tombstone lives does not name it.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | erase tombstone | `ERASED#<sha256(tenant)>` | `TENANT`, `CONN#<sha256(id)>` or `CONNECTOR#<sha256(id)>` |
//! | tenant erase state | `ERASED#<sha256(tenant)>` | `STATUS` (`done`, `items`, `objects`) |

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::attrs;
use super::schema::{PK, SK, TTL};
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::{ConnectionId, ConnectorId, TenantId};

/// How long a tombstone outlives its erase: far longer than any write in flight can take (an
/// export invocation lasts at most Lambda's 15 minutes).
pub const TOMBSTONE_LIFETIME: time::Duration = time::Duration::days(1);

/// What an erase removed.
#[derive(Debug, Clone, Copy)]
pub enum Erasure<'a> {
    Tenant,
    Connection(&'a ConnectionId),
    Connector(&'a ConnectorId),
}

fn hashed(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn pk(tenant: &TenantId) -> String {
    format!("ERASED#{}", hashed(tenant.as_str()))
}

impl Erasure<'_> {
    fn sk(&self) -> String {
        match self {
            Erasure::Tenant => "TENANT".to_owned(),
            Erasure::Connection(id) => format!("CONN#{}", hashed(id.as_str())),
            Erasure::Connector(id) => format!("CONNECTOR#{}", hashed(id.as_str())),
        }
    }
}

impl Store {
    /// Record that `what` of `tenant` is being erased (before anything is deleted).
    pub async fn put_tombstone(
        &self,
        tenant: &TenantId,
        what: Erasure<'_>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item(PK, attrs::s(pk(tenant)))
            .item(SK, attrs::s(what.sk()))
            .item(TTL, attrs::epoch(now + TOMBSTONE_LIFETIME))
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:PutItem(tombstone)", &e))?;
        Ok(())
    }

    /// Whether an erase of the tenant, or of one of `scopes` in it, was recorded (a consistent
    /// read: a tombstone written before this call is seen).
    pub async fn erased(
        &self,
        tenant: &TenantId,
        scopes: &[Erasure<'_>],
    ) -> Result<bool, StoreError> {
        Ok(self.tombstones(tenant).await?.cover(scopes))
    }

    /// The tenant's tombstones (one consistent query of its erase partition).
    pub async fn tombstones(&self, tenant: &TenantId) -> Result<Tombstones, StoreError> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", attrs::s(pk(tenant)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:Query(tombstones)", &e))?;
        Ok(Tombstones {
            sks: out
                .items()
                .iter()
                .filter_map(|i| attrs::opt_s(i, SK))
                .filter(|sk| *sk != STATUS_SK)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Record the state of a tenant erase (`DELETE /tenants/{id}`, asynchronous): kept for
    /// [`TOMBSTONE_LIFETIME`], under the tombstones' hashed key.
    pub async fn put_erase_state(
        &self,
        tenant: &TenantId,
        state: &EraseState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item(PK, attrs::s(pk(tenant)))
            .item(SK, attrs::s(STATUS_SK))
            .item("done", AttributeValue::Bool(state.done))
            .item("items", attrs::n(state.items))
            .item("objects", attrs::n(state.objects))
            .item(TTL, attrs::epoch(now + TOMBSTONE_LIFETIME))
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:PutItem(erase state)", &e))?;
        Ok(())
    }

    /// The state of the tenant's last erase, if one was requested within
    /// [`TOMBSTONE_LIFETIME`].
    pub async fn erase_state(&self, tenant: &TenantId) -> Result<Option<EraseState>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(tenant)))
            .key(SK, attrs::s(STATUS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(erase state)", &e))?;
        Ok(out.item().map(|i| EraseState {
            done: matches!(i.get("done"), Some(AttributeValue::Bool(true))),
            items: attrs::opt_n(i, "items").unwrap_or(0),
            objects: attrs::opt_n(i, "objects").unwrap_or(0),
        }))
    }
}

/// The sort key of a tenant erase's state item (beside its tombstones).
const STATUS_SK: &str = "STATUS";

/// A tenant erase: running, or done with what it removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EraseState {
    pub done: bool,
    pub items: u64,
    pub objects: u64,
}

/// What erases of one tenant were recorded.
#[derive(Debug, Clone, Default)]
pub struct Tombstones {
    sks: Vec<String>,
}

impl Tombstones {
    /// No erase of the tenant or of anything in it.
    pub fn is_empty(&self) -> bool {
        self.sks.is_empty()
    }

    /// Whether the tenant, or one of `scopes`, was erased.
    pub fn cover(&self, scopes: &[Erasure<'_>]) -> bool {
        std::iter::once(Erasure::Tenant)
            .chain(scopes.iter().copied())
            .map(|s| s.sk())
            .any(|w| self.sks.contains(&w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstone_keys_do_not_name_what_was_erased() {
        let tenant = TenantId::parse("globex").unwrap_or_else(|e| panic!("{e}"));
        let conn = ConnectionId::parse("conn-1").unwrap_or_else(|e| panic!("{e}"));
        let keys = [
            pk(&tenant),
            Erasure::Connection(&conn).sk(),
            Erasure::Tenant.sk(),
        ];
        assert!(
            keys.iter()
                .all(|k| !k.contains("globex") && !k.contains("conn-1"))
        );
    }
}
