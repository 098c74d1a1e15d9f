//! An export whose job was erased while it ran (PRIVACY.md P11, erase.rs). The erase sweeps
//! the prefix, but a batch in flight (an attachment still downloading) writes after that; so
//! every invocation ends by asking whether its job was erased and, if it was, removes its
//! connector's prefix itself: after its last write, so nothing it wrote is left.

use super::*;
use crate::erase::later::Resweep;
use crate::erase::{EraseError, Eraser};
use crate::ids::{ConnectorId, TenantId};
use crate::store::erasures::Erasure;

impl<P: Sources> Exporter<P> {
    /// Run the job, then remove what it wrote if it was erased meanwhile.
    pub(super) async fn run(&self, job: Job, deadline: Instant) -> Result<Outcome, ExportError> {
        let probe = job.clone();
        let root = self.root_of(&job).await?;
        let outcome = self.run_job(job, deadline).await;
        // Last, after every write of this invocation.
        if self.was_erased(&probe).await? {
            let removed = match &root {
                Some(root) => {
                    self.blobs.abort_uploads_under(root).await?;
                    self.blobs.delete_prefix(root).await?
                }
                None => 0,
            };
            tracing::info!(
                count = removed,
                "the job was erased while it ran; what it wrote since is removed"
            );
            return Ok(Outcome::Erased);
        }
        outcome
    }

    /// Whether the job was erased: a tombstone covers it (its tenant, connection or connector)
    /// and its record is gone. Both: a tenant, a connection (its id derives from the site) or
    /// a connector id can come back after an erase, and a job of theirs must run; and a job's
    /// record vanishes while it runs only by an erase.
    pub(super) async fn was_erased(&self, job: &Job) -> Result<bool, ExportError> {
        let store = &self.keeper.store;
        let scopes = [
            Erasure::Connection(&job.connection_id),
            Erasure::Connector(&job.connector_id),
        ];
        if !store.erased(&job.tenant, &scopes).await? {
            return Ok(false);
        }
        Ok(store.get_job(&job.tenant, &job.id).await?.is_none())
    }

    /// The connector prefix the job writes under (a job writes nowhere else): from its
    /// snapshot, or its connection for a job without one (none: it cannot write either).
    async fn root_of(&self, job: &Job) -> Result<Option<String>, ExportError> {
        let cloud = match &job.snapshot {
            Some(s) => Some(s.cloud_id.clone()),
            None => self
                .keeper
                .store
                .get_connection(&job.tenant, &job.connection_id)
                .await?
                .map(|c| c.cloud_id),
        };
        Ok(cloud.map(|cloud| {
            Layout::new(&job.tenant, job.product, &cloud, &job.connector_id)
                .root()
                .to_owned()
        }))
    }

    /// The eraser, for the sweeps the export function runs (leftovers, the delayed re-sweep,
    /// the asynchronous tenant erase).
    pub fn eraser(&self) -> Eraser {
        Eraser {
            store: self.keeper.store.clone(),
            blobs: self.blobs.clone(),
            queue: self.resumer.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A job that is gone when an event for it comes: if a tombstone covers its connector,
    /// sweep the connector's prefix (under every site of the tenant: the event names the
    /// connector only, and its connection may be gone too). Nothing without a tombstone or a
    /// connector id (an event from before issue 16: the erase's delayed re-sweep covers it).
    /// Returns how many object versions were removed.
    pub(super) async fn leftovers(
        &self,
        tenant: &TenantId,
        connector: Option<&ConnectorId>,
    ) -> Result<u64, ExportError> {
        let Some(connector) = connector else {
            return Ok(0);
        };
        let sweep = Resweep::connector(tenant, connector, self.clock.now());
        let removed = self.eraser().resweep(&sweep).await?;
        if removed > 0 {
            tracing::info!(
                count = removed,
                "the job was erased; what a killed invocation wrote since is removed"
            );
        }
        Ok(removed)
    }
}

impl From<EraseError> for ExportError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Store(e) => ExportError::Store(e),
            EraseError::Blob(e) => ExportError::Blob(e),
        }
    }
}
