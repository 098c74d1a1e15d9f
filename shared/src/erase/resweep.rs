//! What a re-sweep removes (later.rs): the connector roots it names that a tombstone covers
//! and that did not come back. A connector's root is `{tenant}/{product}/{cloud}/{connector}/`
//! (export/keys.rs); where the message names no product, site or connector, they are listed
//! level by level (ListObjectVersions with a delimiter: the erase's own permission), and a
//! site's connection id derives from (tenant, product, site), so its tombstone is found too.

use super::later::Resweep;
use super::{EraseError, Eraser};
use crate::export::keys::{Layout, connection_prefix, tenant_prefix};
use crate::ids::{CloudId, ConnectorId, Product};
use crate::store::connections::connection_id;
use crate::store::erasures::Erasure;

impl Eraser {
    /// Sweep the connector roots `sweep` names that a tombstone covers (the tenant's, the
    /// connection's or the connector's) and that did not come back (no connector of that id
    /// on that site now). Returns how many object versions were removed.
    pub async fn resweep(&self, sweep: &Resweep) -> Result<u64, EraseError> {
        let tenant = &sweep.tenant;
        let tombstones = self.store.tombstones(tenant).await?;
        if tombstones.is_empty() {
            return Ok(0);
        }
        // The tenant erased and nothing of it back: everything under its prefix.
        if sweep.whole_tenant()
            && tombstones.cover(&[])
            && self.store.tenant_items(tenant).await?.is_empty()
        {
            return self.sweep(&tenant_prefix(tenant)).await;
        }
        let mut removed = 0;
        for (product, cloud, connector) in self.roots(sweep).await? {
            let conn = connection_id(tenant, product, &cloud);
            if !tombstones.cover(&[Erasure::Connection(&conn), Erasure::Connector(&connector)]) {
                continue;
            }
            let back = self
                .store
                .get_connector(tenant, &connector)
                .await?
                .is_some_and(|c| c.connection_id == conn);
            if back {
                continue;
            }
            removed += self
                .sweep(Layout::new(tenant, product, &cloud, &connector).root())
                .await?;
        }
        Ok(removed)
    }

    /// The connector roots under what `sweep` names: listed level by level where it names
    /// no product, site or connector.
    async fn roots(
        &self,
        sweep: &Resweep,
    ) -> Result<Vec<(Product, CloudId, ConnectorId)>, EraseError> {
        let tenant = &sweep.tenant;
        let products = sweep.product.map_or(Product::ALL.to_vec(), |p| vec![p]);
        let mut roots = Vec::new();
        for product in products {
            let clouds = match &sweep.cloud_id {
                Some(c) => vec![c.clone()],
                None => {
                    let under = format!("{}{product}/", tenant_prefix(tenant));
                    self.dirs(&under, CloudId::parse).await?
                }
            };
            for cloud in clouds {
                let connectors = match &sweep.connector_id {
                    Some(k) => vec![k.clone()],
                    None => {
                        let under = connection_prefix(tenant, product, &cloud);
                        self.dirs(&under, ConnectorId::parse).await?
                    }
                };
                roots.extend(connectors.into_iter().map(|k| (product, cloud.clone(), k)));
            }
        }
        Ok(roots)
    }

    /// The ids named by the "directories" right under `prefix` (names that are not ids are
    /// not ours: skipped).
    async fn dirs<T, E>(
        &self,
        prefix: &str,
        parse: impl Fn(String) -> Result<T, E>,
    ) -> Result<Vec<T>, EraseError> {
        Ok(self
            .blobs
            .list_dirs(prefix)
            .await?
            .iter()
            .filter_map(|d| d.strip_prefix(prefix)?.strip_suffix('/'))
            .filter_map(|name| parse(name.to_owned()).ok())
            .collect())
    }
}
