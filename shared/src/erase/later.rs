//! What an erase leaves to the export function, through the resume queue (PRIVACY.md P11):
//!
//! - **The delayed re-sweep.** An export invocation can be killed (Lambda timeout, out of
//!   memory) after writing under an erased prefix and before its own clean-up
//!   (export/runner/erased.rs). Every erase therefore ends by sending one message,
//!   `{"sweep": {...}}`, delayed by SQS's maximum of 900 s: longer than any export invocation
//!   (the export function's timeout is below it, infra/template.yaml), and sent after the job
//!   records are gone, so every invocation that could still write has ended by then. Its
//!   handler sweeps again only what a tombstone still covers and what has not come back (a
//!   connector created again under the same site): idempotent, and harmless to a tenant that
//!   connected again.
//! - **A retry's sweep.** Lambda retries the killed invocation's event a minute or two later;
//!   the retry finds the job (or connector) gone and calls [`Eraser::resweep`] for the
//!   connector the event names, before the delayed message comes.
//! - **The asynchronous tenant erase.** `DELETE /tenants/{id}` records a tombstone and a
//!   `running` state and sends `{"erase_tenant": {...}}`; the export function runs the erase
//!   (which may outlast the API's 30 s) and records `done` with what it removed.
//!
//! Every message carries its due time; a delivery before it (a queue whose delays are capped:
//! tests, which move a clock instead of waiting) is sent on with the delay left.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{EraseError, Erased, Eraser};
use crate::ids::{CloudId, ConnectorId, Product, TenantId};
use crate::store::erasures::{EraseState, Erasure};

/// How long after an erase its prefixes are swept again: SQS's longest delay, longer than
/// the export function's timeout.
pub const RESWEEP_AFTER: time::Duration = time::Duration::seconds(900);

/// A message for the eraser on the resume queue (beside the jobs' `ResumeAt`):
/// `{"sweep": {...}}` or `{"erase_tenant": {...}}`. Read strictly: an unknown field is an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseTask {
    Sweep(Resweep),
    EraseTenant(TenantErase),
}

/// Sweep again the connector roots under a tenant, a connection (product and site) or one
/// connector (under every site when the site is not named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resweep {
    pub tenant: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_id: Option<CloudId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<ConnectorId>,
    /// Not before (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Erase a whole tenant (`DELETE /tenants/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantErase {
    pub tenant: TenantId,
}

impl Resweep {
    pub fn tenant(tenant: &TenantId, at: OffsetDateTime) -> Resweep {
        Resweep {
            tenant: tenant.clone(),
            product: None,
            cloud_id: None,
            connector_id: None,
            at,
        }
    }

    pub fn connection(
        tenant: &TenantId,
        product: Product,
        cloud: &CloudId,
        at: OffsetDateTime,
    ) -> Resweep {
        Resweep {
            product: Some(product),
            cloud_id: Some(cloud.clone()),
            ..Resweep::tenant(tenant, at)
        }
    }

    pub fn connector(tenant: &TenantId, connector: &ConnectorId, at: OffsetDateTime) -> Resweep {
        Resweep {
            connector_id: Some(connector.clone()),
            ..Resweep::tenant(tenant, at)
        }
    }

    pub(super) fn whole_tenant(&self) -> bool {
        self.product.is_none() && self.cloud_id.is_none() && self.connector_id.is_none()
    }
}

/// What handling a task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDone {
    /// Not due yet: sent on with the delay left.
    SentOn,
    /// Swept: this many object versions removed.
    Swept(u64),
    /// The tenant erase ran.
    TenantErased(Erased),
}

impl Eraser {
    /// Ask for the delayed re-sweep of what an erase just swept.
    pub(super) async fn resweep_later(&self, mut sweep: Resweep) -> Result<(), EraseError> {
        let now = self.clock.now();
        sweep.at = now + RESWEEP_AFTER;
        if !self
            .queue
            .send_at(&EraseTask::Sweep(sweep), now + RESWEEP_AFTER, now)
            .await?
        {
            tracing::warn!("no resume queue configured; no delayed re-sweep after the erase");
        }
        Ok(())
    }

    /// Handle a task from the queue.
    pub async fn handle(&self, task: &EraseTask) -> Result<TaskDone, EraseError> {
        let now = self.clock.now();
        match task {
            EraseTask::Sweep(s) if s.at > now => {
                self.queue.send_at(task, s.at, now).await?;
                Ok(TaskDone::SentOn)
            }
            EraseTask::Sweep(s) => Ok(TaskDone::Swept(self.resweep(s).await?)),
            EraseTask::EraseTenant(t) => Ok(TaskDone::TenantErased(
                self.run_tenant_erase(&t.tenant).await?,
            )),
        }
    }

    /// `DELETE /tenants/{id}`: the tombstone (writers stop from now on), a `running` state,
    /// and the erase sent to the export function. Without a queue the erase runs here and its
    /// result is returned.
    pub async fn start_tenant_erase(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<Erased>, EraseError> {
        let now = self.clock.now();
        self.tombstone(tenant, Erasure::Tenant).await?;
        let running = EraseState::default();
        self.store.put_erase_state(tenant, &running, now).await?;
        let task = EraseTask::EraseTenant(TenantErase {
            tenant: tenant.clone(),
        });
        if self.queue.send_at(&task, now, now).await? {
            return Ok(None);
        }
        Ok(Some(self.run_tenant_erase(tenant).await?))
    }

    /// The tenant erase, then its `done` state with what it removed. Idempotent: a second run
    /// (a re-delivered message) removes nothing more and records zero.
    pub async fn run_tenant_erase(&self, tenant: &TenantId) -> Result<Erased, EraseError> {
        let erased = self.erase_tenant(tenant).await?;
        let done = EraseState {
            done: true,
            items: erased.items,
            objects: erased.objects,
        };
        self.store
            .put_erase_state(tenant, &done, self.clock.now())
            .await?;
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("globex").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tasks_read_strictly() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let task = EraseTask::Sweep(Resweep::tenant(&tenant(), at));
        let json = serde_json::to_string(&task).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"sweep":{"tenant":"globex","at":"1970-01-01T00:00:00Z"}}"#
        );
        let back: EraseTask = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, task);
        for bad in [
            r#"{"sweep":{"tenant":"globex","at":"1970-01-01T00:00:00Z","prefix":"x/"}}"#,
            r#"{"sweep":{"at":"1970-01-01T00:00:00Z"}}"#,
            r#"{"erase_tenant":{"tenant":"globex","also":1}}"#,
            r#"{"erase_everything":{"tenant":"globex"}}"#,
            r#"{"tenant":"globex","job_id":"job-20260101-00","at":"1970-01-01T00:00:00Z"}"#,
        ] {
            assert!(serde_json::from_str::<EraseTask>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_resweep_waits_out_sqs_longest_delay() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            crate::export::resume::delay_secs(now + RESWEEP_AFTER, now),
            900
        );
    }
}
