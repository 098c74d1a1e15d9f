//! The export job machinery shared by Jira and Confluence: job creation (one running job per
//! connector), a lease per job, a checkpoint after every batch, a pause before the Lambda
//! deadline with an `ExportContinued` event, attachments streamed into S3, a manifest and an
//! `ExportCompleted`/`ExportFailed` event at the end.
//!
//! Every S3 key is deterministic (item id, attachment id), attachments are written before
//! their item, and the checkpoint moves only after both: a crash anywhere, or a re-delivered
//! event, redoes at most one batch and ends with the same bucket content.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::confluence::Confluence;
use super::keys::Layout;
use super::redact::NameBook;
use super::resume::{ResumeAt, Resumer};
use super::source::{AttachmentRef, Batch, Ctx, Item, Source};
use super::{ExportError, jira::Jira};
use crate::atlassian::http::{HttpError, Idempotency, ThrottleScope};
use crate::blob::{BlobError, BlobStore, Stored, metadata_value};
use crate::clock::Clock;
use crate::events::{
    Event, ExportCompleted, ExportContinued, ExportFailed, ExportRequested, RevocationReason,
};
use crate::ids::{CloudId, JobId, Product, TenantId};
use crate::secret::{ExposeSecret, Secret};
use crate::store::StoreError;
use crate::store::connectors::Connector;
use crate::store::jobs::{Job, JobStatus, LeaseTake, SKIPPED_INLINE, Skipped, Snapshot};
use crate::vault::refresh::{Need, Obtained, TokenKeeper};

/// Incremental runs look back this much further than the watermark (clock skew, Jira's
/// eventual consistency).
pub const INCREMENTAL_OVERLAP: time::Duration = time::Duration::minutes(10);
/// Transient failures in a row before a job fails.
pub const MAX_ERRORS_IN_A_ROW: u32 = 5;
/// Invocations in a row that died holding the job (Lambda timeout, out of memory, crash)
/// without a checkpoint in between before the job fails: it would only die again.
pub const MAX_DEATHS_IN_A_ROW: u32 = 3;
/// Attempts to copy one attachment when its download breaks midway.
const ATTACHMENT_ATTEMPTS: u32 = 3;

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        manifest: String,
    },
    Failed {
        reason: String,
    },
    /// Paused before the deadline; `ExportContinued` was published.
    Continued,
    /// Atlassian asked us to wait: the job is `waiting` and a delayed delivery resumes it at
    /// `until` (a delivery before that does nothing).
    Waiting {
        until: OffsetDateTime,
    },
    /// Another invocation holds the job's lease; nothing done. The export function answers
    /// this with a retryable error: Lambda delivers the event again a minute or two later,
    /// when a crashed holder's lease has lapsed.
    Busy,
    /// The job had already ended (a re-delivered event).
    AlreadyFinished,
    /// Another job of the connector is running; this request was refused.
    AlreadyRunning {
        job: JobId,
    },
}

pub struct Exporter {
    pub keeper: TokenKeeper,
    pub blobs: BlobStore,
    pub job_retention: Duration,
    /// How long a job lease lasts without renewal. Renewed at every checkpoint and by a
    /// heartbeat every third of it, so a dead invocation's job is free again within this.
    pub lease_ttl: time::Duration,
    /// Stop taking new batches when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Items exported at once within a batch.
    pub item_concurrency: usize,
    /// Items per batch (and per checkpoint), at most the product's own limit.
    pub batch_size: usize,
    /// Jira evaluates the incremental bound `updated >= "-Nm"` against its own clock, so the
    /// bound moves forward while a job runs; N includes this slack so that no page of a job
    /// shorter than it misses an item changed since the watermark. A longer job widens it and
    /// restarts its search; zero (tests) never widens.
    pub incremental_slack: time::Duration,
    /// Delayed deliveries after a wait.
    pub resumer: Resumer,
    /// The time leases, waits and resumes are decided with.
    pub clock: Clock,
    /// Test seam: holds an invocation at a named step of `complete()` so a test can crash it
    /// exactly there. `None` in production.
    pub gate: Option<Arc<StepGate>>,
}

/// Holds an invocation at one armed step (see [`Exporter::gate`]): the invocation signals
/// that it got there and then never goes on (the test drops it: a crash).
#[derive(Debug, Default)]
pub struct StepGate {
    armed: Mutex<Option<&'static str>>,
    reached: tokio::sync::Notify,
}

impl StepGate {
    /// Hold the next invocation that reaches `step`.
    pub fn arm(&self, step: &'static str) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(step);
    }

    /// Resolves once an invocation is held at the armed step.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    async fn pass(&self, step: &'static str) {
        let hold = {
            let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
            if *armed == Some(step) {
                *armed = None;
                true
            } else {
                false
            }
        };
        if hold {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

/// The steps of `complete()` a [`StepGate`] can hold an invocation at.
pub const COMPLETE_STEPS: [&str; 4] = [
    "finishing-saved",
    "manifest-written",
    "completion-announced",
    "job-finished",
];

impl Exporter {
    /// Build from validated config and the cold start's AWS clients.
    pub async fn from_config(
        config: &crate::config::Config,
        aws: &crate::aws::AwsClients,
    ) -> Result<Exporter, crate::error::StartupError> {
        let keeper = TokenKeeper::from_config(config, aws).await?;
        let bucket = config.bucket()?.to_owned();
        Ok(Exporter {
            keeper,
            blobs: BlobStore::new(aws.s3.clone(), bucket, config.kms_key_id.clone()),
            job_retention: config.job_retention,
            lease_ttl: time::Duration::minutes(2),
            deadline_margin: Duration::from_secs(60),
            item_concurrency: 8,
            batch_size: 100,
            incremental_slack: time::Duration::minutes(30),
            resumer: Resumer::new(aws.sqs.clone(), config.resume_queue_url.clone())
                .with_dead_letters(config.dead_letter_queue_url.clone()),
            clock: Clock::system(),
            gate: None,
        })
    }
}

/// A new job id: date (for humans) and 80 random bits.
pub fn new_job_id() -> JobId {
    let mut raw = [0u8; 10];
    rand::rng().fill_bytes(&mut raw);
    let now = OffsetDateTime::now_utc();
    let id = format!(
        "job-{}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        hex::encode(raw)
    );
    JobId::parse(id).unwrap_or_else(|_| unreachable!("generated job ids are valid"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The access token shared by a job's concurrent calls, renewed once when Atlassian says 401.
struct Session {
    token: Mutex<Secret>,
}

impl Session {
    fn current(&self) -> Secret {
        self.token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

enum Step {
    Done,
    Paused,
}

impl Exporter {
    async fn step(&self, name: &'static str) {
        if let Some(gate) = &self.gate {
            gate.pass(name).await;
        }
    }

    /// `ExportRequested`: create the job (or resume it, if the event is a re-delivery) and run.
    pub async fn requested(
        &self,
        ev: &ExportRequested,
        deadline: Instant,
    ) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
        let connector = store
            .get_connector(&ev.tenant, &ev.connector_id)
            .await?
            .ok_or_else(|| {
                ExportError::Terminal(format!("connector {} not found", ev.connector_id))
            })?;
        let job_id = ev.job_id.clone().unwrap_or_else(new_job_id);
        if let Some(job) = store.get_job(&ev.tenant, &job_id).await? {
            return self.run(job, deadline).await;
        }
        let now = self.clock.now();
        let full_run = ev.full || connector.watermark.is_none();
        let cloud_id = store
            .get_connection(&ev.tenant, &connector.connection_id)
            .await?
            .map(|c| c.cloud_id);
        let job = Job {
            tenant: ev.tenant.clone(),
            id: job_id.clone(),
            connector_id: connector.id.clone(),
            connection_id: connector.connection_id.clone(),
            product: connector.product,
            status: JobStatus::Running,
            phase: "searching".into(),
            full_run,
            since: if full_run {
                None
            } else {
                connector.watermark.map(|w| w - INCREMENTAL_OVERLAP)
            },
            checkpoint: Default::default(),
            items_done: 0,
            attachments_done: 0,
            bytes_done: 0,
            skipped_count: 0,
            skipped: Vec::new(),
            invocations: 0,
            started_at: now,
            updated_at: now,
            finished_at: None,
            failure_reason: None,
            resume_at: None,
            lease_expires_at: None,
            deaths: 0,
            snapshot: cloud_id.map(|cloud_id| Snapshot {
                query: connector.query.clone(),
                options: connector.options,
                cloud_id,
            }),
        };
        store.create_job(&job).await?;
        match self.claim(&connector, &job_id).await? {
            Some(other) if other != job_id => {
                let mut job = job;
                job.status = JobStatus::Failed;
                job.phase = "done".into();
                job.failure_reason = Some(format!(
                    "another export of this connector is running ({other})"
                ));
                job.finished_at = Some(now);
                store.finish_job(&job, None, self.job_retention).await?;
                Ok(Outcome::AlreadyRunning { job: other })
            }
            _ => self.run(job, deadline).await,
        }
    }

    /// Take the connector's running-job slot, clearing it first if its holder is gone or over.
    async fn claim(
        &self,
        connector: &Connector,
        job: &JobId,
    ) -> Result<Option<JobId>, ExportError> {
        let store = &self.keeper.store;
        let holder = store
            .claim_active_job(&connector.tenant, &connector.id, job, self.clock.now())
            .await?;
        match &holder {
            Some(other) if other != job => {
                let alive = store
                    .holds_slot(&connector.tenant, &connector.id, other, self.clock.now())
                    .await?;
                if alive {
                    return Ok(holder);
                }
                store
                    .finish_active_job(&connector.tenant, &connector.id, other, None, None)
                    .await?;
                Ok(store
                    .claim_active_job(&connector.tenant, &connector.id, job, self.clock.now())
                    .await?)
            }
            _ => Ok(holder),
        }
    }

    /// `ExportContinued`: resume the job from its checkpoint.
    pub async fn continued(
        &self,
        ev: &ExportContinued,
        deadline: Instant,
    ) -> Result<Outcome, ExportError> {
        match self.keeper.store.get_job(&ev.tenant, &ev.job_id).await? {
            Some(job) => self.run(job, deadline).await,
            None => Ok(Outcome::AlreadyFinished),
        }
    }

    async fn run(&self, mut job: Job, deadline: Instant) -> Result<Outcome, ExportError> {
        if job.status == JobStatus::Completed
            && let Some(snapshot) = &job.snapshot
        {
            let layout = Layout::new(
                &job.tenant,
                job.product,
                &snapshot.cloud_id,
                &job.connector_id,
            );
            self.after_completion(&job, &layout).await?;
        }
        if !job.status.is_live() {
            return Ok(Outcome::AlreadyFinished);
        }
        let store = &self.keeper.store;
        let now = self.clock.now();
        if job.status == JobStatus::Waiting
            && let Some(until) = job.resume_at
            && until > now
        {
            // A delivery before the wait is over (a duplicate, or the sweeper racing the
            // queue): the delivery for `until` is already on its way.
            return Ok(Outcome::Waiting { until });
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let owner = hex::encode(raw);
        let LeaseTake::Taken { died, deaths } = store
            .take_job_lease(&job, &owner, now, now + self.lease_ttl)
            .await?
        else {
            return Ok(Outcome::Busy);
        };
        job.status = JobStatus::Running;
        job.resume_at = None;
        job.invocations += 1;
        job.deaths = deaths;
        let job_key = job.clone();
        if died {
            tracing::warn!(job_id = %job.id, deaths, "the job's previous invocation died holding it");
        }
        if deaths >= MAX_DEATHS_IN_A_ROW {
            let reason = format!(
                "the export stopped without finishing {deaths} times in a row at the same point \
                 (Lambda timeout, out of memory or crash); retrying would only repeat it"
            );
            let (tenant, id) = (job.tenant.clone(), job.id.clone());
            let outcome = self.fail(job, &owner, reason.clone()).await?;
            self.resumer
                .dead_letter(&tenant, &id, &reason)
                .await
                .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
            return Ok(outcome);
        }
        let span = tracing::info_span!("export", tenant = %job.tenant, job_id = %job.id, connector_id = %job.connector_id, product = %job.product);
        let _entered = span.enter();
        let result = {
            let drive = self.drive(&mut job, &owner, deadline);
            let heartbeat = self.heartbeat(&job_key, &owner);
            tokio::select! {
                r = drive => r,
                lost = heartbeat => Err(lost),
            }
        };
        match result {
            Ok(Step::Done) => self.complete(job, &owner).await,
            Ok(Step::Paused) | Err(ExportError::OutOfTime) => {
                job.checkpoint.errors_in_a_row = 0;
                self.pause(&job, &owner).await?;
                Ok(Outcome::Continued)
            }
            Err(ExportError::LeaseLost) => Ok(Outcome::Busy),
            Err(e) if e.is_terminal() => self.fail(job, &owner, e.to_string()).await,
            // Atlassian said when to come back: a wait, never counted as a failure.
            Err(e) if let Some((until, scope)) = e.wait(self.clock.now()) => {
                self.wait(job, &owner, until, scope).await
            }
            Err(e) => {
                job.checkpoint.errors_in_a_row += 1;
                tracing::warn!(error = %e, attempt = job.checkpoint.errors_in_a_row, "export hit a transient failure");
                if job.checkpoint.errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                    return self
                        .fail(
                            job,
                            &owner,
                            format!("gave up after repeated failures; last: {e}"),
                        )
                        .await;
                }
                self.pause(&job, &owner).await?;
                Ok(Outcome::Continued)
            }
        }
    }

    /// Renew the lease every third of its life while the invocation works (a batch of large
    /// attachments can outlast it). Returns only if the lease was lost.
    async fn heartbeat(&self, job: &Job, owner: &str) -> ExportError {
        let period = (self.lease_ttl / 3_i32)
            .unsigned_abs()
            .max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let until = self.clock.now() + self.lease_ttl;
            match self.keeper.store.renew_job_lease(job, owner, until).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => return ExportError::LeaseLost,
                // A failed renewal is retried at the next beat (the lease outlives two).
                Err(e) => tracing::warn!(error = %e, "job lease renewal failed"),
            }
        }
    }

    /// Save, let go of the job, and ask for a continuation.
    async fn pause(&self, job: &Job, owner: &str) -> Result<(), ExportError> {
        let store = &self.keeper.store;
        let now = self.clock.now();
        store
            .save_job(job, owner, now + self.lease_ttl)
            .await
            .map_err(lost)?;
        store
            .release_job_lease(job, owner, now + self.lease_ttl)
            .await?;
        self.keeper
            .events
            .publish(&Event::ExportContinued(ExportContinued {
                tenant: job.tenant.clone(),
                job_id: job.id.clone(),
            }))
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        tracing::info!(items = job.items_done, bytes = job.bytes_done, phase = %job.phase, "export paused; continuation requested");
        Ok(())
    }

    /// Atlassian asked us to come back at `until`: for the whole site (recorded where every job
    /// and the token refresh of the site read it) or for one endpoint (this job only). Ask for
    /// a delivery at that time, then mark the job `waiting` and let go of it.
    async fn wait(
        &self,
        mut job: Job,
        owner: &str,
        until: OffsetDateTime,
        scope: ThrottleScope,
    ) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
        let now = self.clock.now();
        // Whole seconds, rounded up: what the table keeps, so a delivery at `until` is never
        // a moment early for it.
        let mut until = ceil_second(until.max(now));
        if scope == ThrottleScope::Site
            && let Some(conn) = store
                .get_connection(&job.tenant, &job.connection_id)
                .await?
        {
            until = store.hold_site(&conn.cloud_id, until).await?;
            self.keeper
                .http
                .hold_site_until(conn.cloud_id.as_str(), until);
        }
        // The delivery first: a job marked waiting without one would wait for the sweeper.
        self.resumer
            .schedule(
                &ResumeAt {
                    tenant: job.tenant.clone(),
                    job_id: job.id.clone(),
                    at: until,
                },
                now,
            )
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        job.status = JobStatus::Waiting;
        job.resume_at = Some(until);
        job.updated_at = now;
        store.wait_job(&job, owner, until).await.map_err(lost)?;
        tracing::info!(resume_at = %rfc3339(until), site_wide = scope == ThrottleScope::Site, items = job.items_done, "Atlassian asked us to wait; the job resumes then");
        Ok(Outcome::Waiting { until })
    }

    /// A resume-queue message: when its time has come, publish `ExportContinued` (the job then
    /// runs through the bus, with Lambda's retries and the dead-letter queue); before that,
    /// send it on with the delay left (SQS delays at most 15 minutes).
    pub async fn resume_due(&self, msg: &ResumeAt) -> Result<bool, ExportError> {
        let now = self.clock.now();
        if msg.at > now {
            self.resumer
                .schedule(msg, now)
                .await
                .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
            return Ok(false);
        }
        self.keeper
            .events
            .publish(&Event::ExportContinued(ExportContinued {
                tenant: msg.tenant.clone(),
                job_id: msg.job_id.clone(),
            }))
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        Ok(true)
    }

    /// The sweeper (a schedule every few minutes): every job that has not ended and is overdue
    /// in the `jobs-due` index — an invocation died holding it and its lease lapsed, its
    /// continuation or its resume was lost — gets an `ExportContinued`. Returns those jobs.
    pub async fn sweep(&self) -> Result<Vec<JobId>, ExportError> {
        let store = &self.keeper.store;
        let now = self.clock.now();
        let mut resumed = Vec::new();
        for (tenant, id) in store.due_jobs(now).await? {
            let Some(job) = store.get_job(&tenant, &id).await? else {
                continue;
            };
            let overdue = match job.status {
                JobStatus::Running => job.lease_expires_at.is_none_or(|t| t < now),
                JobStatus::Waiting => job.resume_at.is_none_or(|t| t <= now),
                JobStatus::Completed | JobStatus::Failed => false,
            };
            if !overdue {
                continue;
            }
            self.keeper
                .events
                .publish(&Event::ExportContinued(ExportContinued {
                    tenant: tenant.clone(),
                    job_id: id.clone(),
                }))
                .await
                .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
            tracing::info!(tenant = %tenant, job_id = %id, status = job.status.as_str(), "sweeper resumed an overdue job");
            resumed.push(id);
        }
        Ok(resumed)
    }

    /// When the site must not be called before, if that is later than now: what this process
    /// knows, else what any job (or the token refresh) of the site recorded in the table.
    async fn site_hold(&self, cloud: &CloudId) -> Result<Option<OffsetDateTime>, ExportError> {
        if let Some(until) = self.keeper.http.site_held_until(cloud.as_str()) {
            return Ok(Some(until));
        }
        let stored = self.keeper.store.site_not_before(cloud).await?;
        match stored {
            Some(until) if until > self.clock.now() => {
                self.keeper.http.hold_site_until(cloud.as_str(), until);
                Ok(Some(until))
            }
            _ => Ok(None),
        }
    }

    async fn fail(
        &self,
        mut job: Job,
        owner: &str,
        reason: String,
    ) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
        job.status = JobStatus::Failed;
        job.phase = "done".into();
        job.failure_reason = Some(reason.clone());
        job.finished_at = Some(self.clock.now());
        job.updated_at = self.clock.now();
        match store
            .finish_job(&job, Some(owner), self.job_retention)
            .await
        {
            Err(StoreError::Conflict(_)) => return Ok(Outcome::Busy),
            other => other?,
        }
        store
            .finish_active_job(&job.tenant, &job.connector_id, &job.id, None, None)
            .await?;
        tracing::warn!(reason = %reason, "export failed");
        self.keeper
            .events
            .publish(&Event::ExportFailed(ExportFailed {
                tenant: job.tenant.clone(),
                connector_id: job.connector_id.clone(),
                job_id: job.id.clone(),
                reason: reason.clone(),
            }))
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        Ok(Outcome::Failed { reason })
    }

    async fn drive(
        &self,
        job: &mut Job,
        owner: &str,
        deadline: Instant,
    ) -> Result<Step, ExportError> {
        let store = &self.keeper.store;
        let mut connector = store
            .get_connector(&job.tenant, &job.connector_id)
            .await?
            .ok_or_else(|| ExportError::Terminal("the connector was deleted".into()))?;
        let mut connection = store
            .get_connection(&job.tenant, &job.connection_id)
            .await?
            .ok_or_else(|| ExportError::Terminal("the connection was deleted".into()))?;
        // The job runs what the connector said when it started (a cursor belongs to its query).
        if let Some(snapshot) = &job.snapshot {
            connector.query = snapshot.query.clone();
            connector.options = snapshot.options;
            connection.cloud_id = snapshot.cloud_id.clone();
        }
        let layout = Layout::new(
            &job.tenant,
            job.product,
            &connection.cloud_id,
            &job.connector_id,
        );
        if let Some(until) = self.site_hold(&connection.cloud_id).await? {
            return Err(site_waiting(until));
        }
        let (token, _) = self
            .keeper
            .access_token(
                &job.tenant,
                &job.connection_id,
                Need::AccessToken,
                OffsetDateTime::now_utc(),
            )
            .await?;
        let session = Session {
            token: Mutex::new(token.token),
        };
        let ctx = Ctx {
            http: &self.keeper.http,
            urls: &self.keeper.urls,
            cloud_id: &connection.cloud_id,
        };
        // A crashed invocation may have left multipart uploads behind; nobody else writes here.
        self.blobs
            .abort_uploads_under(&layout.attachments_root())
            .await?;
        match job.product {
            Product::Jira => {
                self.drive_source(
                    &Jira, job, owner, &connector, &layout, &ctx, &session, deadline,
                )
                .await
            }
            Product::Confluence => {
                self.drive_source(
                    &Confluence,
                    job,
                    owner,
                    &connector,
                    &layout,
                    &ctx,
                    &session,
                    deadline,
                )
                .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive_source<S: Source>(
        &self,
        source: &S,
        job: &mut Job,
        owner: &str,
        connector: &Connector,
        layout: &Layout,
        ctx: &Ctx<'_>,
        session: &Session,
        deadline: Instant,
    ) -> Result<Step, ExportError> {
        // Derived from stored values only, so every invocation of the job builds the same query
        // (a page cursor is valid only for the query that produced it). Jira and Confluence
        // evaluate the relative bound `updated >= "-Nm"` on their clock when each page is
        // asked for, so the bound moves forward while the job runs: N covers the time since the
        // watermark (with its overlap for clock skew and search lag) plus a slack for the job's
        // own duration. A job that outlives its slack widens it and restarts its search
        // (skipping what it exported), so the window stays as small as correctness allows.
        let query_for = |job: &Job| {
            let slack = job
                .checkpoint
                .slack_minutes
                .map_or(self.incremental_slack, time::Duration::minutes);
            let since_minutes = job
                .since
                .map(|s| ((job.started_at - s) + slack).whole_minutes().max(1));
            source.effective_query(&connector.query, since_minutes)
        };
        let mut query = query_for(job);
        // The next batch of the current page, fetched while the previous one was written:
        // ((page number, first index), result).
        let mut prefetched: Option<((u32, usize), Result<Batch, ExportError>)> = None;
        // After a search restart: the ids this job already exported (read once).
        let mut done_before: Option<BTreeSet<String>> = None;
        loop {
            if Instant::now() + self.deadline_margin >= deadline {
                return Ok(Step::Paused);
            }
            let cp = &job.checkpoint;
            if cp.page_ids.is_empty() && cp.search_done {
                return Ok(Step::Done);
            }
            if cp.page_ids.is_empty()
                && job.since.is_some()
                && self.incremental_slack > time::Duration::ZERO
            {
                let slack = cp
                    .slack_minutes
                    .map_or(self.incremental_slack, time::Duration::minutes);
                let elapsed = self.clock.now() - job.started_at;
                if elapsed + SLACK_MARGIN >= slack {
                    let cp = &mut job.checkpoint;
                    let wider = (slack.max(elapsed) * 2_i32).whole_minutes();
                    tracing::info!(
                        slack_minutes = wider,
                        "the job outlived its look-back slack; the search restarts with a wider one"
                    );
                    cp.slack_minutes = Some(wider);
                    cp.widened += 1;
                    cp.next_page = None;
                    cp.recent_cursors.clear();
                    cp.empty_pages = 0;
                    done_before = None;
                    query = query_for(job);
                    self.checkpoint(job, owner, ctx.cloud_id).await?;
                    continue;
                }
            }
            let cp = &job.checkpoint;
            if cp.page_ids.is_empty() {
                let cursor = cp.next_page.clone();
                let (query, cursor) = (&query, cursor.as_deref());
                let page = self
                    .authed(job, session, |t| async move {
                        source.page(ctx, &t, query, cursor).await
                    })
                    .await;
                let page = match page {
                    Err(ExportError::CursorExpired) => {
                        let cp = &mut job.checkpoint;
                        cp.restarts += 1;
                        if cp.restarts > MAX_SEARCH_RESTARTS {
                            return Err(ExportError::Terminal(format!(
                                "the search's page cursor expired {MAX_SEARCH_RESTARTS} times; \
                                 the export cannot keep its place in the results"
                            )));
                        }
                        tracing::info!(
                            restarts = cp.restarts,
                            "page cursor expired; the search restarts and skips what was exported"
                        );
                        cp.next_page = None;
                        cp.recent_cursors.clear();
                        cp.empty_pages = 0;
                        done_before = None;
                        self.checkpoint(job, owner, ctx.cloud_id).await?;
                        continue;
                    }
                    other => other?,
                };
                guard_paging(&mut job.checkpoint, &page)?;
                let mut ids = page.ids;
                if job.checkpoint.restarts > 0 || job.checkpoint.widened > 0 {
                    // After a restart the first pages repeat what this job exported already.
                    if done_before.is_none() {
                        done_before = Some(self.exported_ids(job, layout).await?);
                    }
                    if let Some(done) = &done_before {
                        ids.retain(|id| !done.contains(id));
                    }
                }
                let cp = &mut job.checkpoint;
                cp.page_no += 1;
                cp.search_done = page.next.is_none();
                cp.next_page = page.next;
                cp.page_ids = ids;
                cp.done_in_page = 0;
                cp.page_skipped.clear();
                job.phase = "exporting".into();
                if job.checkpoint.page_ids.is_empty() {
                    self.close_page(job, layout, &[]).await?;
                }
                self.checkpoint(job, owner, ctx.cloud_id).await?;
                continue;
            }
            let batch_size = S::BATCH.min(self.batch_size.max(1));
            let page_len = job.checkpoint.page_ids.len();
            let start = job.checkpoint.done_in_page;
            let end = (start + batch_size).min(page_len);
            let all_comments = connector.options.all_comments;
            let at = (job.checkpoint.page_no, start);
            let batch = match prefetched.take() {
                Some((from, fetched)) if from == at => fetched?,
                _ => {
                    let ids = &job.checkpoint.page_ids[start..end];
                    self.fetch_batch(source, job, ctx, session, ids, all_comments)
                        .await?
                }
            };
            // While this batch is written, the next one of the page is fetched: Atlassian's
            // latency and S3's overlap instead of adding up. The checkpoint still moves one
            // whole batch at a time; a prefetched batch not used (a pause) is just dropped.
            let next = &job.checkpoint.page_ids[end..(end + batch_size).min(page_len)];
            let export = futures::stream::iter(batch.items)
                .map(|item| {
                    self.export_item(
                        job,
                        layout,
                        ctx,
                        session,
                        item,
                        connector.options.attachments,
                        deadline,
                    )
                })
                .buffer_unordered(self.item_concurrency.max(1))
                .collect::<Vec<Result<ItemResult, ExportError>>>();
            let prefetch = async {
                if next.is_empty() {
                    None
                } else {
                    Some(
                        self.fetch_batch(source, job, ctx, session, next, all_comments)
                            .await,
                    )
                }
            };
            let (exported, next_batch) = futures::join!(export, prefetch);
            prefetched = next_batch.map(|b| ((job.checkpoint.page_no, end), b));
            let mut skipped = batch.skipped;
            let mut unchanged = 0u64;
            for r in exported {
                let r = r?;
                unchanged += u64::from(r.unchanged);
                job.items_done += 1;
                job.attachments_done += r.attachments;
                job.bytes_done += r.bytes;
                skipped.extend(r.skipped);
            }
            job.skipped_count += skipped.len() as u64;
            for s in &skipped {
                if job.skipped.len() < SKIPPED_INLINE {
                    job.skipped.push(s.clone());
                }
            }
            job.checkpoint.page_skipped.extend(skipped);
            job.checkpoint.done_in_page = end;
            job.checkpoint.errors_in_a_row = 0;
            if end >= job.checkpoint.page_ids.len() {
                let ids = std::mem::take(&mut job.checkpoint.page_ids);
                self.close_page(job, layout, &ids).await?;
                job.checkpoint.done_in_page = 0;
                job.checkpoint.page_skipped.clear();
            }
            self.checkpoint(job, owner, ctx.cloud_id).await?;
            tracing::debug!(
                items = job.items_done,
                bytes = job.bytes_done,
                unchanged,
                "batch exported"
            );
        }
    }

    /// Save the job's progress, renewing its lease; then stop if the site asked every job of it
    /// to wait (another job saw the quota 429).
    async fn checkpoint(
        &self,
        job: &mut Job,
        owner: &str,
        cloud: &CloudId,
    ) -> Result<(), ExportError> {
        let now = self.clock.now();
        job.updated_at = now;
        // Progress: whatever killed earlier invocations did not kill this one here.
        job.deaths = 0;
        self.keeper
            .store
            .save_job(job, owner, now + self.lease_ttl)
            .await
            .map_err(lost)?;
        match self.site_hold(cloud).await? {
            Some(until) => Err(site_waiting(until)),
            None => Ok(()),
        }
    }

    /// Full, redacted documents for `ids`.
    async fn fetch_batch<S: Source>(
        &self,
        source: &S,
        job: &Job,
        ctx: &Ctx<'_>,
        session: &Session,
        ids: &[String],
        all_comments: bool,
    ) -> Result<Batch, ExportError> {
        let mut batch = self
            .authed(job, session, |t| async move {
                source.fetch(ctx, &t, ids, all_comments).await
            })
            .await?;
        for item in &mut batch.items {
            // Names are learned from the document itself only, so an item's redacted form
            // never depends on which items an invocation happened to see before it.
            source.redact(&mut item.doc, &mut NameBook::default());
        }
        Ok(batch)
    }

    /// Every id this job recorded as exported or skipped in its S3 state.
    async fn exported_ids(
        &self,
        job: &Job,
        layout: &Layout,
    ) -> Result<BTreeSet<String>, ExportError> {
        let mut done = BTreeSet::new();
        for key in self.blobs.list_keys(&layout.state(&job.id)).await? {
            let body = self.blobs.get_bytes(&key).await?.ok_or_else(|| {
                ExportError::Store(StoreError::Malformed(format!(
                    "job state page {key} was listed but could not be read"
                )))
            })?;
            let page: StatePage = serde_json::from_slice(&body).map_err(|_| {
                ExportError::Store(StoreError::Malformed(format!(
                    "job state page {key} is not readable"
                )))
            })?;
            done.extend(page.items);
            done.extend(page.skipped.into_iter().map(|s| s.id));
        }
        Ok(done)
    }

    /// Record a finished page's exported ids and skips in the job's S3 state (the manifest is
    /// built from these, so its item list is complete across any number of invocations).
    async fn close_page(
        &self,
        job: &Job,
        layout: &Layout,
        ids: &[String],
    ) -> Result<(), ExportError> {
        let skipped: BTreeSet<&str> = job
            .checkpoint
            .page_skipped
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        let exported: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !skipped.contains(id))
            .collect();
        let body = json!({ "items": exported, "skipped": job.checkpoint.page_skipped });
        self.blobs
            .put_bytes_expiring(
                &layout.state_page(&job.id, job.checkpoint.page_no),
                Bytes::from(body.to_string()),
                "application/json",
            )
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn export_item(
        &self,
        job: &Job,
        layout: &Layout,
        ctx: &Ctx<'_>,
        session: &Session,
        mut item: Item,
        with_attachments: bool,
        deadline: Instant,
    ) -> Result<ItemResult, ExportError> {
        let mut result = ItemResult::default();
        if with_attachments {
            for att in std::mem::take(&mut item.attachments) {
                // Inside a batch too: a batch of large attachments must not outrun the
                // invocation. The batch is redone by the continuation (same keys).
                if Instant::now() + self.deadline_margin >= deadline {
                    return Err(ExportError::OutOfTime);
                }
                let key = layout.attachment(&item.id, &att.id, &att.filename);
                match self.copy_attachment(job, ctx, session, &att, &key).await? {
                    Ok(stored) => {
                        result.attachments += 1;
                        result.bytes += stored.bytes;
                        mark_exported(&mut item.doc, &att.id, &key, &stored.sha256_hex);
                    }
                    Err(reason) => result.skipped.push(Skipped {
                        id: format!("{}/attachment/{}", item.id, att.id),
                        reason,
                    }),
                }
            }
        }
        let body = serde_json::to_vec(&item.doc)
            .map_err(|e| ExportError::Terminal(format!("item {}: {e}", item.id)))?;
        result.bytes += body.len() as u64;
        // An unchanged item (an incremental run's overlap, a redone batch) is not written
        // again: no new object version for the same content.
        let key = layout.item(&item.id);
        let sha256 = hex::encode(sha2::Sha256::digest(&body));
        if self
            .blobs
            .metadata_of(&key, CONTENT_SHA256)
            .await?
            .as_deref()
            == Some(&sha256)
        {
            result.unchanged = true;
            return Ok(result);
        }
        self.blobs
            .put_bytes(
                &key,
                Bytes::from(body),
                "application/json",
                &[("item-id", &item.id), (CONTENT_SHA256, &sha256)],
            )
            .await?;
        Ok(result)
    }

    /// Stream one attachment into S3. `Ok(Err(reason))` when Atlassian refuses it (403/404):
    /// recorded and skipped, the export goes on.
    async fn copy_attachment(
        &self,
        job: &Job,
        ctx: &Ctx<'_>,
        session: &Session,
        att: &AttachmentRef,
        key: &str,
    ) -> Result<Result<Stored, String>, ExportError> {
        let original = metadata_value(&att.filename);
        let metadata = [
            ("original-filename", original.as_str()),
            ("attachment-id", att.id.as_str()),
        ];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let download = self
                .authed(job, session, |t| async move {
                    let req = ctx
                        .http
                        .request(Method::GET, att.url.clone())
                        .bearer_auth(t.expose_secret())
                        .build()
                        .map_err(|_| {
                            ExportError::Terminal("attachment request could not be built".into())
                        })?;
                    ctx.http
                        .send(
                            "attachment.download",
                            ctx.cloud_id.as_str(),
                            Idempotency::Safe,
                            req,
                        )
                        .await
                        .map_err(ExportError::from)
                })
                .await;
            let resp = match download {
                Ok(resp) => resp,
                Err(ExportError::Http(HttpError::Status { status, .. }))
                    if matches!(status.as_u16(), 403 | 404 | 410) =>
                {
                    return Ok(Err(format!(
                        "Atlassian answered {status} for the attachment"
                    )));
                }
                Err(e) => return Err(e),
            };
            match self
                .blobs
                .put_stream(
                    key,
                    resp.bytes_stream(),
                    &att.mime_type,
                    &metadata,
                    att.size,
                )
                .await
            {
                Ok(stored) => return Ok(Ok(stored)),
                Err(BlobError::Aws(e)) => return Err(ExportError::Store(StoreError::Aws(e))),
                Err(e) if attempt < ATTACHMENT_ATTEMPTS => {
                    tracing::info!(error = %e, attempt, "attachment download broke; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Call Atlassian with the session's token; on 401 renew it once (another caller may have
    /// rotated it) and retry; a 401 on a token we just refreshed means access was revoked.
    async fn authed<T, F, Fut>(
        &self,
        job: &Job,
        session: &Session,
        call: F,
    ) -> Result<T, ExportError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, ExportError>>,
    {
        let token = session.current();
        match call(token.clone()).await {
            Err(ExportError::Unauthorized(_)) => {
                let (fresh, obtained) = self.renew(job, session, &token).await?;
                match call(fresh).await {
                    Err(ExportError::Unauthorized(_)) if obtained == Obtained::Refreshed => {
                        if let Some(conn) = self
                            .keeper
                            .store
                            .get_connection(&job.tenant, &job.connection_id)
                            .await?
                        {
                            self.keeper
                                .revoke(
                                    &conn,
                                    RevocationReason::Unauthorized,
                                    OffsetDateTime::now_utc(),
                                )
                                .await?;
                        }
                        Err(ExportError::Revoked)
                    }
                    Err(ExportError::Unauthorized(_)) => Err(ExportError::Revoked),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn renew(
        &self,
        job: &Job,
        session: &Session,
        stale: &Secret,
    ) -> Result<(Secret, Obtained), ExportError> {
        let current = session.current();
        if current.expose_secret() != stale.expose_secret() {
            return Ok((current, Obtained::FromWinner));
        }
        // Ask for a token valid well past now: forces a refresh unless someone just did one.
        let later = OffsetDateTime::now_utc() + time::Duration::hours(2);
        let (fresh, obtained) = self
            .keeper
            .access_token(&job.tenant, &job.connection_id, Need::AccessToken, later)
            .await?;
        if let Ok(mut t) = session.token.lock() {
            *t = fresh.token.clone();
        }
        Ok((fresh.token, obtained))
    }

    /// All pages done: write the manifest, announce it, end the job, move the watermark,
    /// clean up. Resumable at every step: the job is saved in the `finishing` phase first; the
    /// manifest is written once (a later invocation reads the one written); the completion is
    /// announced before the job is marked completed (a crash in between announces it again,
    /// never not at all; consumers tell repeats by the job id); the job state in S3 is deleted
    /// only after the job has ended.
    async fn complete(&self, mut job: Job, owner: &str) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
        let connector = store
            .get_connector(&job.tenant, &job.connector_id)
            .await?
            .ok_or_else(|| ExportError::Terminal("the connector was deleted".into()))?;
        let cloud_id = match &job.snapshot {
            Some(s) => s.cloud_id.clone(),
            None => {
                store
                    .get_connection(&job.tenant, &job.connection_id)
                    .await?
                    .ok_or_else(|| ExportError::Terminal("the connection was deleted".into()))?
                    .cloud_id
            }
        };
        let layout = Layout::new(&job.tenant, job.product, &cloud_id, &job.connector_id);
        let manifest_key = layout.manifest(&job.id);
        job.phase = "finishing".into();
        // Each step of finishing that is done is progress: saved, so that invocations dying at
        // successive steps are not taken for one that keeps dying at the same point.
        self.progress(&mut job, owner).await?;
        self.step("finishing-saved").await;
        let manifest = match self.blobs.get_bytes(&manifest_key).await? {
            // Written by an invocation that died after it: the one manifest of this job.
            Some(body) => serde_json::from_slice::<Value>(&body).map_err(|_| {
                ExportError::Terminal(format!("the manifest of job {} is not JSON", job.id))
            })?,
            None => {
                let manifest = self
                    .build_manifest(&job, &connector, &layout, &cloud_id)
                    .await?;
                let body = Bytes::from(manifest.to_string());
                if job.full_run {
                    // Kept until the next full run: removal detection compares with it.
                    self.blobs
                        .put_bytes(&manifest_key, body, "application/json", &[])
                        .await?;
                } else {
                    self.blobs
                        .put_bytes_expiring(&manifest_key, body, "application/json")
                        .await?;
                }
                manifest
            }
        };
        self.progress(&mut job, owner).await?;
        self.step("manifest-written").await;
        let count = |name: &str| manifest["counts"][name].as_u64().unwrap_or(0);
        let (items, skipped, removed) = (count("items"), count("skipped"), count("removed"));
        let finished = manifest["finished_at"]
            .as_str()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(|| self.clock.now());
        self.keeper
            .events
            .publish(&Event::ExportCompleted(ExportCompleted {
                tenant: job.tenant.clone(),
                connector_id: job.connector_id.clone(),
                job_id: job.id.clone(),
                items,
                attachments: job.attachments_done,
                bytes: job.bytes_done,
                skipped,
                removed,
                manifest: manifest_key.clone(),
            }))
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        self.progress(&mut job, owner).await?;
        self.step("completion-announced").await;

        job.status = JobStatus::Completed;
        job.phase = "done".into();
        job.finished_at = Some(finished);
        job.updated_at = finished;
        job.skipped_count = skipped;
        match store
            .finish_job(&job, Some(owner), self.job_retention)
            .await
        {
            Err(StoreError::Conflict(_)) => return Ok(Outcome::Busy),
            other => other?,
        }
        self.step("job-finished").await;
        self.after_completion(&job, &layout).await?;
        tracing::info!(
            items,
            attachments = job.attachments_done,
            bytes = job.bytes_done,
            skipped,
            outcome = "completed",
            "export completed"
        );
        Ok(Outcome::Completed {
            manifest: manifest_key,
        })
    }

    /// Save the job as it is, as progress (no death since), renewing the lease.
    async fn progress(&self, job: &mut Job, owner: &str) -> Result<(), ExportError> {
        job.deaths = 0;
        job.updated_at = self.clock.now();
        self.keeper
            .store
            .save_job(job, owner, job.updated_at + self.lease_ttl)
            .await
            .map_err(lost)
    }

    /// What follows a job's completion: free the connector's slot and move its watermark, let
    /// the previous full run's manifest expire, remove the job's S3 state. Idempotent: a
    /// redelivery that finds the job completed runs it again (an invocation may have died
    /// right after marking the job completed).
    async fn after_completion(&self, job: &Job, layout: &Layout) -> Result<(), ExportError> {
        let store = &self.keeper.store;
        let connector = store.get_connector(&job.tenant, &job.connector_id).await?;
        let prev_full = connector.as_ref().and_then(|c| c.last_full_job.clone());
        if connector.is_some_and(|c| c.active_job.as_ref() == Some(&job.id)) {
            store
                .finish_active_job(
                    &job.tenant,
                    &job.connector_id,
                    &job.id,
                    Some((job.started_at, job.full_run)),
                    job.snapshot.as_ref().map(|s| s.query.as_str()),
                )
                .await?;
            // The previous full run's manifest is no longer compared with: it may expire.
            if job.full_run
                && let Some(prev) = prev_full.filter(|p| *p != job.id)
            {
                self.blobs.mark_expiring(&layout.manifest(&prev)).await?;
            }
        }
        // A crash here leaves pages the lifecycle removes (they are tagged to expire).
        self.blobs.delete_prefix(&layout.state(&job.id)).await?;
        self.blobs
            .abort_uploads_under(&layout.attachments_root())
            .await?;
        Ok(())
    }

    /// The manifest, from the pages recorded in the job's S3 state. An unreadable page is an
    /// error (tried again later), never an empty page: the manifest lists every item.
    async fn build_manifest(
        &self,
        job: &Job,
        connector: &Connector,
        layout: &Layout,
        cloud_id: &CloudId,
    ) -> Result<Value, ExportError> {
        let mut items: BTreeSet<String> = BTreeSet::new();
        let mut skipped: Vec<Skipped> = Vec::new();
        for key in self.blobs.list_keys(&layout.state(&job.id)).await? {
            let body = self.blobs.get_bytes(&key).await?.ok_or_else(|| {
                ExportError::Store(StoreError::Malformed(format!(
                    "job state page {key} was listed but could not be read"
                )))
            })?;
            let page: StatePage = serde_json::from_slice(&body).map_err(|_| {
                ExportError::Store(StoreError::Malformed(format!(
                    "job state page {key} is not readable"
                )))
            })?;
            items.extend(page.items);
            skipped.extend(page.skipped);
        }
        let removed: Vec<String> = match (&connector.last_full_job, job.full_run) {
            (Some(prev), true) => self
                .previous_items(layout, prev)
                .await?
                .into_iter()
                .filter(|id| !items.contains(id))
                .collect(),
            _ => Vec::new(),
        };
        Ok(json!({
            "job_id": job.id,
            "tenant": job.tenant,
            "connector_id": job.connector_id,
            "connection_id": job.connection_id,
            "product": job.product,
            "cloud_id": cloud_id,
            "full_run": job.full_run,
            "since": job.since.map(rfc3339),
            "started_at": rfc3339(job.started_at),
            "finished_at": rfc3339(self.clock.now()),
            "watermark": rfc3339(job.started_at),
            "counts": {
                "items": items.len(),
                "attachments": job.attachments_done,
                "bytes": job.bytes_done,
                "skipped": skipped.len(),
                "removed": removed.len(),
            },
            "items": items,
            "removed": removed,
            "skipped": skipped,
            "layout": {
                "items": format!("{}items/", layout.root()),
                "attachments": layout.attachments_root(),
            },
        }))
    }

    async fn previous_items(
        &self,
        layout: &Layout,
        job: &JobId,
    ) -> Result<Vec<String>, ExportError> {
        let Some(body) = self.blobs.get_bytes(&layout.manifest(job)).await? else {
            return Ok(Vec::new());
        };
        let manifest: Value = serde_json::from_slice(&body).unwrap_or_default();
        Ok(manifest["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

/// A job widens its look-back slack when less than this is left of it.
const SLACK_MARGIN: time::Duration = time::Duration::minutes(5);
/// Times a search may restart (an expired cursor) before the job fails.
const MAX_SEARCH_RESTARTS: u32 = 3;
/// Empty pages in a row that still promise more before the job fails.
pub const MAX_EMPTY_PAGES: u32 = 20;
/// Cursors remembered to detect a paging loop.
const RECENT_CURSORS: usize = 16;

/// Fail the job with a clear reason when the search's paging goes wrong: a cursor seen
/// before (Atlassian would serve the same pages forever), or page after page of nothing.
fn guard_paging(
    cp: &mut crate::store::jobs::Checkpoint,
    page: &super::source::Page,
) -> Result<(), ExportError> {
    if let Some(next) = &page.next {
        let fingerprint = hex::encode(&sha2::Sha256::digest(next.as_bytes())[..8]);
        if cp.recent_cursors.contains(&fingerprint) {
            return Err(ExportError::Terminal(
                "the search returned a page cursor it had returned before: its paging loops, \
                 so the export stopped instead of exporting the same pages forever"
                    .into(),
            ));
        }
        cp.recent_cursors.push(fingerprint);
        if cp.recent_cursors.len() > RECENT_CURSORS {
            cp.recent_cursors.remove(0);
        }
    }
    if page.ids.is_empty() && page.next.is_some() {
        cp.empty_pages += 1;
        if cp.empty_pages >= MAX_EMPTY_PAGES {
            return Err(ExportError::Terminal(format!(
                "the search returned {MAX_EMPTY_PAGES} empty pages in a row that each promised \
                 more; the export stopped"
            )));
        }
    } else {
        cp.empty_pages = 0;
    }
    Ok(())
}

fn site_waiting(until: OffsetDateTime) -> ExportError {
    ExportError::Http(HttpError::SiteWaiting {
        endpoint: "site",
        until,
    })
}

/// `t` rounded up to a whole second.
fn ceil_second(t: OffsetDateTime) -> OffsetDateTime {
    if t.nanosecond() == 0 {
        t
    } else {
        t.replace_nanosecond(0).unwrap_or(t) + time::Duration::SECOND
    }
}

fn lost(e: StoreError) -> ExportError {
    match e {
        StoreError::Conflict(_) => ExportError::LeaseLost,
        other => ExportError::Store(other),
    }
}

/// One finished search page in the job's S3 state.
#[derive(serde::Deserialize)]
struct StatePage {
    items: Vec<String>,
    #[serde(default)]
    skipped: Vec<Skipped>,
}

#[derive(Default)]
struct ItemResult {
    attachments: u64,
    bytes: u64,
    skipped: Vec<Skipped>,
    /// The stored item already had this content: not written.
    unchanged: bool,
}

/// Object metadata holding an item's SHA-256 (hex), to skip rewriting unchanged items.
const CONTENT_SHA256: &str = "content-sha256";

/// Note in the item's JSON where its attachment landed.
fn mark_exported(doc: &mut Value, attachment_id: &str, key: &str, sha256: &str) {
    // Jira lists attachments in `fields.attachment`, our Confluence items in `attachments`.
    let list = if doc.pointer("/fields/attachment").is_some() {
        "/fields/attachment"
    } else {
        "/attachments"
    };
    let Some(list) = doc.pointer_mut(list).and_then(Value::as_array_mut) else {
        return;
    };
    for a in list {
        if a["id"].as_str() == Some(attachment_id) {
            a["exportedKey"] = Value::String(key.to_owned());
            a["sha256"] = Value::String(sha256.to_owned());
        }
    }
}

pub fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{tenant}/")
}
