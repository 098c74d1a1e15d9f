//! Erase tombstones (PRIVACY.md P11): written by an erase before it sweeps, read by an export
//! that lost its job, so a batch that was mid-flight when the erase ran removes what it wrote
//! after the sweep. Keyed by hashes, so that what is left of an erased tenant for the day the
//! tombstone lives does not name it.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | erase tombstone | `ERASED#<sha256(tenant)>` | `TENANT`, `CONN#<sha256(id)>` or `CONNECTOR#<sha256(id)>` |

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
        let wanted: Vec<String> = std::iter::once(Erasure::Tenant)
            .chain(scopes.iter().copied())
            .map(|s| s.sk())
            .collect();
        Ok(out
            .items()
            .iter()
            .filter_map(|i| attrs::opt_s(i, SK))
            .any(|sk| wanted.iter().any(|w| w == sk)))
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
