//! Erase on request (PRIVACY.md P11): a connection, or a whole tenant. Tokens first (so nothing
//! can use the grant while the rest goes), then connectors and jobs, then every S3 object
//! version under the prefix, then the connection record itself, and the S3 prefix once more
//! (an export that was mid-batch stops at its next checkpoint, which fails once its job is
//! gone; anything it wrote meanwhile goes in the second pass).
//!
//! Idempotent and resumable: the connection record is deleted last, so an interrupted erase
//! is completed by running it again; erasing what is already gone reports zero.

use serde::Serialize;
use time::OffsetDateTime;

use crate::blob::{BlobError, BlobStore};
use crate::ids::{ConnectionId, TenantId};
use crate::store::attrs_public::{item_s, keys_of};
use crate::store::{Connection, ConnectionStatus, Store, StoreError};

/// What an erase removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Table items (connections, connectors, jobs).
    pub items: u64,
    /// S3 object versions and delete markers.
    pub objects: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

pub struct Eraser {
    pub store: Store,
    pub blobs: BlobStore,
}

impl Eraser {
    pub async fn erase_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Erased, EraseError> {
        let Some(conn) = self.store.get_connection(tenant, id).await? else {
            return Ok(Erased::default());
        };
        self.erase_loaded(&conn).await
    }

    async fn erase_loaded(&self, conn: &Connection) -> Result<Erased, EraseError> {
        let mut erased = Erased::default();
        // Tokens go first; the record (without tokens) is kept until the end so an
        // interrupted erase can be resumed.
        match &conn.grant_id {
            Some(grant) => {
                self.store
                    .set_connection_status(
                        conn,
                        grant,
                        ConnectionStatus::Revoked,
                        "erasure requested",
                        OffsetDateTime::now_utc(),
                    )
                    .await?;
                // The grant's tokens go with its last connection; other connections of the
                // same consent keep using them.
                let others = self.store.connections_of_grant(&conn.tenant, grant).await?;
                if others.iter().all(|c| c.id == conn.id) {
                    self.store.delete_grant(&conn.tenant, grant).await?;
                }
            }
            None => self.store.strip_legacy_attributes(conn).await?,
        }
        let items = self.store.tenant_items(&conn.tenant).await?;
        let connector_ids: Vec<String> = items
            .iter()
            .filter(|i| item_s(i, "sk").is_some_and(|sk| sk.starts_with("CONNECTOR#")))
            .filter(|i| item_s(i, "connection_id") == Some(conn.id.as_str()))
            .filter_map(|i| item_s(i, "connector_id").map(str::to_owned))
            .collect();
        let doomed: Vec<(String, String)> = items
            .iter()
            .filter(|i| {
                let sk = item_s(i, "sk").unwrap_or_default();
                (sk.starts_with("CONNECTOR#") || sk.starts_with("JOB#"))
                    && (item_s(i, "connection_id") == Some(conn.id.as_str())
                        || item_s(i, "connector_id")
                            .is_some_and(|c| connector_ids.iter().any(|x| x == c)))
            })
            .filter_map(keys_of)
            .collect();
        erased.items += self.store.delete_items(&doomed).await?;
        let prefix = format!("{}/{}/{}/", conn.tenant, conn.product, conn.cloud_id);
        erased.objects += self.blobs.delete_prefix(&prefix).await?;
        erased.items += self
            .store
            .delete_items(&[(
                format!("TENANT#{}", conn.tenant),
                format!("CONN#{}", conn.id),
            )])
            .await?;
        erased.objects += self.blobs.delete_prefix(&prefix).await?;
        tracing::info!(tenant = %conn.tenant, connection_id = %conn.id, items = erased.items, count = erased.objects, "connection erased");
        Ok(erased)
    }

    /// Everything of a tenant: every connection (as above), then every remaining item in its
    /// partition and every object under `{tenant}/`.
    pub async fn erase_tenant(&self, tenant: &TenantId) -> Result<Erased, EraseError> {
        let mut erased = Erased::default();
        for conn in self.store.list_connections(tenant).await? {
            let e = self.erase_loaded(&conn).await?;
            erased.items += e.items;
            erased.objects += e.objects;
        }
        let rest: Vec<(String, String)> = self
            .store
            .tenant_items(tenant)
            .await?
            .iter()
            .filter_map(keys_of)
            .collect();
        erased.items += self.store.delete_items(&rest).await?;
        let prefix = format!("{tenant}/");
        erased.objects += self.blobs.delete_prefix(&prefix).await?;
        tracing::info!(tenant = %tenant, items = erased.items, count = erased.objects, "tenant erased");
        Ok(erased)
    }
}
