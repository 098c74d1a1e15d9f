//! Erase on request (PRIVACY.md P11): a connector, a connection, or a whole tenant. A tombstone
//! first (store/erasures.rs), then tokens (so nothing can use the grant while the rest goes),
//! then connectors and jobs, then every S3 object version under the prefix, then the
//! connection record itself, and the S3 prefix once more.
//!
//! Writes in flight: an export that was mid-batch when its job was deleted may still write
//! after the sweeps (measured: an attachment download that resumed after the erase answered).
//! Every export invocation ends by asking whether its job was erased (a tombstone covering it
//! and the job gone) and, if so, deletes its connector's prefix itself, after its last write
//! (runner/erased.rs). Whatever it wrote before the tombstone existed is in the sweep's
//! listing; whatever it wrote after, it sees the tombstone and removes.
//!
//! An invocation killed after such a write and before its clean-up leaves it behind: every
//! erase therefore ends by asking for a re-sweep after the longest invocation, and a retry of
//! the killed invocation's event sweeps too (later.rs). A tenant erase runs asynchronously in
//! the export function (later.rs).
//!
//! Idempotent and resumable: the connection record is deleted last, so an interrupted erase
//! is completed by running it again; erasing what is already gone reports zero.

pub mod later;
mod resweep;

use serde::Serialize;

use crate::blob::{BlobError, BlobStore};
use crate::clock::Clock;
use crate::error::AwsError;
use crate::export::keys::{Layout, connection_prefix, tenant_prefix};
use crate::export::resume::Resumer;
use crate::ids::{ConnectionId, ConnectorId, TenantId};
use crate::store::attrs_public::{item_s, keys_of};
use crate::store::erasures::Erasure;
use crate::store::{Connection, ConnectionStatus, Store, StoreError};
use later::Resweep;

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

impl From<AwsError> for EraseError {
    fn from(e: AwsError) -> Self {
        EraseError::Store(StoreError::Aws(e))
    }
}

pub struct Eraser {
    pub store: Store,
    pub blobs: BlobStore,
    /// The resume queue: the delayed re-sweep, the asynchronous tenant erase (later.rs).
    pub queue: Resumer,
    /// Tombstones' and messages' times.
    pub clock: Clock,
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
        self.tombstone(tenant, Erasure::Connection(id)).await?;
        let later = Resweep::connection(tenant, conn.product, &conn.cloud_id, self.clock.now());
        self.erase_loaded(&conn, Some(later)).await
    }

    /// One connector: its jobs, itself, and everything under its layout's root. `None` when
    /// there is no such connector.
    pub async fn erase_connector(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
    ) -> Result<Option<Erased>, EraseError> {
        let Some(connector) = self.store.get_connector(tenant, id).await? else {
            return Ok(None);
        };
        self.tombstone(tenant, Erasure::Connector(id)).await?;
        let mut erased = Erased::default();
        // Its jobs first; its own record last, after the re-sweep is asked for, so that an
        // interrupted erase is completed, re-sweep included, by running it again.
        let jobs: Vec<(String, String)> = self
            .store
            .tenant_items(tenant)
            .await?
            .iter()
            .filter(|i| {
                item_s(i, "sk").is_some_and(|sk| sk.starts_with("JOB#"))
                    && item_s(i, "connector_id") == Some(id.as_str())
            })
            .filter_map(keys_of)
            .collect();
        erased.items += self.store.delete_items(&jobs).await?;
        // Without its connection the site is unknown; erasing the connection (or the tenant)
        // sweeps the prefix this one is under, and the re-sweep looks under every site.
        let mut later = Resweep::connector(tenant, id, self.clock.now());
        if let Some(conn) = self
            .store
            .get_connection(tenant, &connector.connection_id)
            .await?
        {
            let root = Layout::new(tenant, conn.product, &conn.cloud_id, id);
            erased.objects += self.sweep(root.root()).await?;
            later.product = Some(conn.product);
            later.cloud_id = Some(conn.cloud_id);
        }
        self.resweep_later(later).await?;
        erased.items += self
            .store
            .delete_items(&[crate::store::connectors::connector_key(tenant, id)])
            .await?;
        tracing::info!(tenant = %tenant, connector_id = %id, items = erased.items, count = erased.objects, "connector erased");
        Ok(Some(erased))
    }

    /// Written before anything is deleted; see the module comment.
    async fn tombstone(&self, tenant: &TenantId, what: Erasure<'_>) -> Result<(), EraseError> {
        Ok(self
            .store
            .put_tombstone(tenant, what, self.clock.now())
            .await?)
    }

    /// Every object version under `prefix`, and the multipart uploads in progress there (an
    /// export's attachment upload fails instead of completing after the erase).
    async fn sweep(&self, prefix: &str) -> Result<u64, EraseError> {
        self.blobs.abort_uploads_under(prefix).await?;
        Ok(self.blobs.delete_prefix(prefix).await?)
    }

    /// One connection; `later`, the re-sweep to ask for once its jobs are gone and before its
    /// record goes (a connection erase; a tenant erase asks for its own at its end).
    async fn erase_loaded(
        &self,
        conn: &Connection,
        later: Option<Resweep>,
    ) -> Result<Erased, EraseError> {
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
                        self.clock.now(),
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
        // Each of its connectors tombstoned too: a retry of a killed invocation knows its
        // connector, not always its connection (later.rs).
        for k in connector_ids
            .iter()
            .filter_map(|k| ConnectorId::parse(k.clone()).ok())
        {
            self.tombstone(&conn.tenant, Erasure::Connector(&k)).await?;
        }
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
        let prefix = connection_prefix(&conn.tenant, conn.product, &conn.cloud_id);
        erased.objects += self.sweep(&prefix).await?;
        if let Some(later) = later {
            self.resweep_later(later).await?;
        }
        erased.items += self
            .store
            .delete_items(&[(
                format!("TENANT#{}", conn.tenant),
                format!("CONN#{}", conn.id),
            )])
            .await?;
        erased.objects += self.sweep(&prefix).await?;
        tracing::info!(tenant = %conn.tenant, connection_id = %conn.id, items = erased.items, count = erased.objects, "connection erased");
        Ok(erased)
    }

    /// Everything of a tenant: every connection (as above), then every remaining item in its
    /// partition and every object under `{tenant}/`.
    pub async fn erase_tenant(&self, tenant: &TenantId) -> Result<Erased, EraseError> {
        self.tombstone(tenant, Erasure::Tenant).await?;
        let mut erased = Erased::default();
        for conn in self.store.list_connections(tenant).await? {
            let e = self.erase_loaded(&conn, None).await?;
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
        erased.objects += self.sweep(&tenant_prefix(tenant)).await?;
        self.resweep_later(Resweep::tenant(tenant, self.clock.now()))
            .await?;
        tracing::info!(tenant = %tenant, items = erased.items, count = erased.objects, "tenant erased");
        Ok(erased)
    }
}
