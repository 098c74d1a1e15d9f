//! Export jobs: progress you can watch (phase, items, bytes), the checkpoint that lets an
//! export of any size finish over several invocations, and a lease so two invocations never
//! run the same job (renewed at every checkpoint). Finished jobs carry a TTL (PRIVACY.md P9).
//!
//! A job that has not ended is in the sparse `jobs-due` index, keyed by when somebody must
//! look at it again: its lease expiry while it runs, its resume time while it waits. The
//! sweeper queries the index for what is overdue (a job whose invocation died, a wait whose
//! delivery was lost); it never scans.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::attrs::{self, Item};
use super::connectors::pk;
use super::schema::{JOB_DUE_AT, JOB_DUE_BUCKET, JOB_DUE_BUCKET_VALUE, JOB_DUE_INDEX, PK, SK, TTL};
use super::{Store, StoreError, is_conditional_failure};
use crate::error::AwsError;
use crate::ids::{CloudId, ConnectionId, ConnectorId, JobId, Product, TenantId};
use crate::store::connectors::ConnectorOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    /// Atlassian asked us to wait (quota 429, 503 with `Retry-After`): resumes at `resume_at`.
    Waiting,
    Completed,
    Failed,
}

impl JobStatus {
    /// Not ended: running, or waiting to resume.
    pub fn is_live(self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Waiting)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Waiting => "waiting",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "running" => Ok(JobStatus::Running),
            "waiting" => Ok(JobStatus::Waiting),
            "completed" => Ok(JobStatus::Completed),
            "failed" => Ok(JobStatus::Failed),
            _ => Err(()),
        }
    }
}

/// Where a job is in its result set. Saved after every batch, so a crash loses at most one
/// batch of work, which is then redone with the same deterministic keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Pages of search results taken so far.
    pub page_no: u32,
    /// The cursor for the next page (Jira `nextPageToken`, Confluence `cursor` link).
    pub next_page: Option<String>,
    /// The ids of the current page, and how many of them are done.
    pub page_ids: Vec<String>,
    pub done_in_page: usize,
    /// No more pages.
    pub search_done: bool,
    /// Items of the current page that were skipped, and why.
    #[serde(default)]
    pub page_skipped: Vec<Skipped>,
    /// `{itemId}/{attachmentId}` of the attachment texts stored for the current page (the
    /// manifest lists their keys).
    #[serde(default)]
    pub page_texts: Vec<String>,
    /// Transient failures in a row (reset by progress); the job fails after a few.
    #[serde(default)]
    pub errors_in_a_row: u32,
    /// Search pages in a row that held no id but promised more.
    #[serde(default)]
    pub empty_pages: u32,
    /// Fingerprints of the last cursors followed: a cursor seen again means the paging loops.
    #[serde(default)]
    pub recent_cursors: Vec<String>,
    /// Times the search restarted from its first page (an expired cursor); ids exported
    /// before are then skipped.
    #[serde(default)]
    pub restarts: u32,
    /// An incremental job's look-back slack, once it had to be widened (minutes).
    #[serde(default)]
    pub slack_minutes: Option<i64>,
    /// Times the slack was widened (each a restart of the search).
    #[serde(default)]
    pub widened: u32,
}

/// An item that was not exported, and why (no content, only ids and reasons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// How many skipped entries the job record keeps inline (all are in the job's S3 state).
pub const SKIPPED_INLINE: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tenant: TenantId,
    pub id: JobId,
    pub connector_id: ConnectorId,
    pub connection_id: ConnectionId,
    pub product: Product,
    pub status: JobStatus,
    /// `searching`, `exporting`, `finishing`, `done`.
    pub phase: String,
    /// Not incremental: exports everything and detects removed items.
    pub full_run: bool,
    /// Incremental lower bound used in the query.
    pub since: Option<OffsetDateTime>,
    pub checkpoint: Checkpoint,
    pub items_done: u64,
    pub attachments_done: u64,
    pub bytes_done: u64,
    pub skipped_count: u64,
    pub skipped: Vec<Skipped>,
    pub invocations: u32,
    pub started_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub failure_reason: Option<String>,
    /// While `waiting`: when it resumes.
    pub resume_at: Option<OffsetDateTime>,
    /// While an invocation holds the job: when its lease lapses.
    pub lease_expires_at: Option<OffsetDateTime>,
    /// Invocations in a row that died holding the job (timeout, out of memory, crash) without
    /// a checkpoint in between; the job fails after a few.
    pub deaths: u32,
    /// What the job exports, as the connector said when the job started: a change of the
    /// connector meanwhile applies to the next run, never to this one's cursor. `None` only on
    /// jobs created before snapshots existed (they read the connector).
    pub snapshot: Option<Snapshot>,
}

/// The connector's query and options and the site, taken when the job starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub query: String,
    pub options: ConnectorOptions,
    pub cloud_id: CloudId,
}

/// What taking a job's lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTake {
    /// Ours. `died` when the previous holder never let go (its lease lapsed): one more death.
    Taken { died: bool, deaths: u32 },
    /// Another live invocation holds it, the wait is not over, or the job ended.
    Refused,
}

fn sk(id: &JobId) -> String {
    format!("JOB#{id}")
}

fn malformed(what: &str) -> StoreError {
    StoreError::Malformed(what.to_owned())
}

fn id<T>(r: Result<T, crate::ids::InvalidId>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Malformed(e.to_string()))
}

fn job_from(item: &Item) -> Result<Job, StoreError> {
    Ok(Job {
        tenant: id(TenantId::parse(attrs::get_s(item, "tenant")?))?,
        id: id(JobId::parse(attrs::get_s(item, "job_id")?))?,
        connector_id: id(ConnectorId::parse(attrs::get_s(item, "connector_id")?))?,
        connection_id: id(ConnectionId::parse(attrs::get_s(item, "connection_id")?))?,
        product: attrs::parse(item, "product")?,
        status: attrs::parse(item, "status")?,
        phase: attrs::opt_s(item, "phase")
            .unwrap_or("searching")
            .to_owned(),
        full_run: attrs::opt_n::<u8>(item, "full_run").unwrap_or(0) == 1,
        since: attrs::opt_time(item, "since"),
        checkpoint: attrs::opt_s(item, "checkpoint")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| malformed("checkpoint"))?
            .unwrap_or_default(),
        items_done: attrs::opt_n(item, "items_done").unwrap_or(0),
        attachments_done: attrs::opt_n(item, "attachments_done").unwrap_or(0),
        bytes_done: attrs::opt_n(item, "bytes_done").unwrap_or(0),
        skipped_count: attrs::opt_n(item, "skipped_count").unwrap_or(0),
        skipped: attrs::opt_s(item, "skipped")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| malformed("skipped"))?
            .unwrap_or_default(),
        invocations: attrs::opt_n(item, "invocations").unwrap_or(0),
        started_at: attrs::get_time(item, "started_at")?,
        updated_at: attrs::get_time(item, "updated_at")?,
        finished_at: attrs::opt_time(item, "finished_at"),
        failure_reason: attrs::opt_s(item, "failure_reason").map(str::to_owned),
        resume_at: attrs::opt_time(item, "resume_at"),
        lease_expires_at: attrs::opt_time(item, "lease_expires_at"),
        deaths: attrs::opt_n(item, "deaths").unwrap_or(0),
        snapshot: attrs::opt_s(item, "snapshot")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| malformed("snapshot"))?,
    })
}

impl Store {
    /// Create the job unless it exists (a re-delivered request). Returns whether it was created.
    pub async fn create_job(&self, job: &Job) -> Result<bool, StoreError> {
        let mut put = self.ddb.put_item();
        if let Some(snapshot) = &job.snapshot {
            let body = serde_json::to_string(snapshot).map_err(|_| malformed("snapshot"))?;
            put = put.item("snapshot", attrs::s(body));
        }
        let result = put
            .table_name(&self.table)
            .item(PK, attrs::s(pk(&job.tenant)))
            .item(SK, attrs::s(sk(&job.id)))
            .item("tenant", attrs::s(job.tenant.as_str()))
            .item("job_id", attrs::s(job.id.as_str()))
            .item("connector_id", attrs::s(job.connector_id.as_str()))
            .item("connection_id", attrs::s(job.connection_id.as_str()))
            .item("product", attrs::s(job.product.as_str()))
            .item("status", attrs::s(job.status.as_str()))
            .item("phase", attrs::s(&job.phase))
            .item("full_run", attrs::n(u8::from(job.full_run)))
            .item("started_at", attrs::epoch(job.started_at))
            .item("updated_at", attrs::epoch(job.updated_at))
            .item("invocations", attrs::n(0))
            .item(JOB_DUE_BUCKET, attrs::s(JOB_DUE_BUCKET_VALUE))
            .item(JOB_DUE_AT, attrs::epoch(job.started_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let created = match result {
            Ok(_) => true,
            Err(e) if is_conditional_failure(&e) => false,
            Err(e) => return Err(AwsError::new("dynamodb:PutItem(job)", &e).into()),
        };
        if created && let Some(since) = job.since {
            self.ddb
                .update_item()
                .table_name(&self.table)
                .key(PK, attrs::s(pk(&job.tenant)))
                .key(SK, attrs::s(sk(&job.id)))
                .update_expression("SET since = :s")
                .expression_attribute_values(":s", attrs::epoch(since))
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:UpdateItem(job since)", &e))?;
        }
        Ok(created)
    }

    pub async fn get_job(&self, tenant: &TenantId, id: &JobId) -> Result<Option<Job>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(tenant)))
            .key(SK, attrs::s(sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(job)", &e))?;
        out.item.as_ref().map(job_from).transpose()
    }

    /// Take the job's lease: a running job whose lease is free (or lapsed), or a waiting job
    /// whose resume time has come (it becomes running). `Ok(false)` otherwise: another live
    /// invocation has it, the wait is not over, or the job ended.
    pub async fn take_job_lease(
        &self,
        job: &Job,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseTake, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .update_expression(
                "SET lease_owner = :o, lease_expires_at = :until, invocations = invocations + :one, \
                 #s = :running, #due = :until REMOVE resume_at",
            )
            .condition_expression(
                "(#s = :running OR (#s = :waiting AND (attribute_not_exists(resume_at) OR resume_at <= :now))) \
                 AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now OR lease_owner = :o)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#due", JOB_DUE_AT)
            .expression_attribute_values(":o", attrs::s(owner))
            .expression_attribute_values(":until", attrs::epoch(until))
            .expression_attribute_values(":now", attrs::epoch(now))
            .expression_attribute_values(":running", attrs::s(JobStatus::Running.as_str()))
            .expression_attribute_values(":waiting", attrs::s(JobStatus::Waiting.as_str()))
            .expression_attribute_values(":one", attrs::n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_conditional_failure(&e) => return Ok(LeaseTake::Refused),
            Err(e) => return Err(AwsError::new("dynamodb:UpdateItem(job lease)", &e).into()),
        };
        // A holder that let go removed its lease; one still named there died holding it.
        let died = attrs::opt_s(&old, "lease_owner").is_some_and(|o| o != owner);
        let mut deaths = attrs::opt_n(&old, "deaths").unwrap_or(0u32);
        if died {
            deaths += 1;
            self.ddb
                .update_item()
                .table_name(&self.table)
                .key(PK, attrs::s(pk(&job.tenant)))
                .key(SK, attrs::s(sk(&job.id)))
                .update_expression("SET deaths = :d")
                .condition_expression("lease_owner = :o")
                .expression_attribute_values(":d", attrs::n(deaths))
                .expression_attribute_values(":o", attrs::s(owner))
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:UpdateItem(job deaths)", &e))?;
        }
        Ok(LeaseTake::Taken { died, deaths })
    }

    /// Extend our lease to `until` (a heartbeat while a long batch runs). `Conflict` if the
    /// lease is no longer ours.
    pub async fn renew_job_lease(
        &self,
        job: &Job,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .update_expression("SET lease_expires_at = :u, #due = :u")
            .condition_expression("lease_owner = :o")
            .expression_attribute_names("#due", JOB_DUE_AT)
            .expression_attribute_values(":u", attrs::epoch(until))
            .expression_attribute_values(":o", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict("renew job lease")),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(job renew)", &e).into()),
        }
    }

    /// Jobs that have not ended and are due for a look at `now` (lease lapsed, resume time
    /// come, continuation overdue), from the `jobs-due` index: never a scan.
    pub async fn due_jobs(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, JobId)>, StoreError> {
        let mut due = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(JOB_DUE_INDEX)
                .key_condition_expression("#b = :bucket AND #d <= :now")
                .expression_attribute_names("#b", JOB_DUE_BUCKET)
                .expression_attribute_names("#d", JOB_DUE_AT)
                .expression_attribute_values(":bucket", attrs::s(JOB_DUE_BUCKET_VALUE))
                .expression_attribute_values(":now", attrs::epoch(now))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:Query(jobs-due)", &e))?;
            for item in out.items() {
                let pk = attrs::get_s(item, PK)?;
                let sk = attrs::get_s(item, SK)?;
                let (Some(tenant), Some(job)) =
                    (pk.strip_prefix("TENANT#"), sk.strip_prefix("JOB#"))
                else {
                    continue;
                };
                due.push((id(TenantId::parse(tenant))?, id(JobId::parse(job))?));
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(due),
            }
        }
    }

    /// Save progress and checkpoint and renew the lease until `lease_until`, only while we hold
    /// the lease (and the job still exists: an erase stops a running export here).
    /// [`StoreError::Conflict`] otherwise.
    pub async fn save_job(
        &self,
        job: &Job,
        owner: &str,
        lease_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let checkpoint =
            serde_json::to_string(&job.checkpoint).map_err(|_| malformed("checkpoint"))?;
        let skipped = serde_json::to_string(&job.skipped).map_err(|_| malformed("skipped"))?;
        let mut update = attrs::Update::default();
        update.set("phase", attrs::s(&job.phase));
        update.set("checkpoint", attrs::s(checkpoint));
        update.set("items_done", attrs::n(job.items_done));
        update.set("attachments_done", attrs::n(job.attachments_done));
        update.set("bytes_done", attrs::n(job.bytes_done));
        update.set("skipped_count", attrs::n(job.skipped_count));
        update.set("skipped", attrs::s(skipped));
        update.set("updated_at", attrs::epoch(job.updated_at));
        update.set("lease_expires_at", attrs::epoch(lease_until));
        update.set(JOB_DUE_AT, attrs::epoch(lease_until));
        update.set("deaths", attrs::n(job.deaths));
        let (lease, o) = (update.name("lease_owner"), update.value(attrs::s(owner)));
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .condition_expression(format!("{lease} = {o}"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict("save job progress")),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(job progress)", &e).into()),
        }
    }

    /// Let go of the job (a continuation was requested). The sweeper looks at it again at
    /// `due` if no invocation has taken it by then (a lost continuation).
    pub async fn release_job_lease(
        &self,
        job: &Job,
        owner: &str,
        due: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .update_expression("SET #due = :due REMOVE lease_owner, lease_expires_at")
            .condition_expression("lease_owner = :o")
            .expression_attribute_names("#due", JOB_DUE_AT)
            .expression_attribute_values(":due", attrs::epoch(due))
            .expression_attribute_values(":o", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(job release)", &e).into()),
        }
    }

    /// Atlassian asked us to wait: save progress, mark the job `waiting` until `until`, and let
    /// go of it (conditional on our lease). Only a delivery at or after `until` takes it again.
    pub async fn wait_job(
        &self,
        job: &Job,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let checkpoint =
            serde_json::to_string(&job.checkpoint).map_err(|_| malformed("checkpoint"))?;
        let skipped = serde_json::to_string(&job.skipped).map_err(|_| malformed("skipped"))?;
        let mut update = attrs::Update::default();
        update.set("status", attrs::s(JobStatus::Waiting.as_str()));
        update.set("resume_at", attrs::epoch_ceil(until));
        update.set(JOB_DUE_AT, attrs::epoch_ceil(until));
        update.set("phase", attrs::s(&job.phase));
        update.set("checkpoint", attrs::s(checkpoint));
        update.set("items_done", attrs::n(job.items_done));
        update.set("attachments_done", attrs::n(job.attachments_done));
        update.set("bytes_done", attrs::n(job.bytes_done));
        update.set("skipped_count", attrs::n(job.skipped_count));
        update.set("skipped", attrs::s(skipped));
        update.set("updated_at", attrs::epoch(job.updated_at));
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let (lease, o) = (update.name("lease_owner"), update.value(attrs::s(owner)));
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .condition_expression(format!("{lease} = {o}"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict("job wait")),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(job wait)", &e).into()),
        }
    }

    /// End the job (completed or failed), with its final progress; the record then expires
    /// after `retention`. Conditional on our lease when `owner` is given.
    pub async fn finish_job(
        &self,
        job: &Job,
        owner: Option<&str>,
        retention: std::time::Duration,
    ) -> Result<(), StoreError> {
        let finished = job.finished_at.unwrap_or(job.updated_at);
        let expires = finished
            + time::Duration::seconds(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 4));
        let skipped = serde_json::to_string(&job.skipped).map_err(|_| malformed("skipped"))?;
        let mut update = attrs::Update::default();
        update.set("status", attrs::s(job.status.as_str()));
        update.set("phase", attrs::s(&job.phase));
        update.set("items_done", attrs::n(job.items_done));
        update.set("attachments_done", attrs::n(job.attachments_done));
        update.set("bytes_done", attrs::n(job.bytes_done));
        update.set("skipped_count", attrs::n(job.skipped_count));
        update.set("skipped", attrs::s(skipped));
        update.set("updated_at", attrs::epoch(job.updated_at));
        update.set("finished_at", attrs::epoch(finished));
        update.set(TTL, attrs::epoch(expires));
        if let Some(reason) = &job.failure_reason {
            update.set("failure_reason", attrs::s(reason));
        }
        update.remove("checkpoint");
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        update.remove("resume_at");
        update.remove(JOB_DUE_BUCKET);
        update.remove(JOB_DUE_AT);
        let cond = match owner {
            Some(owner) => {
                let (lease, o) = (update.name("lease_owner"), update.value(attrs::s(owner)));
                format!("{lease} = {o}")
            }
            None => {
                let p = update.name(PK);
                format!("attribute_exists({p})")
            }
        };
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(pk(&job.tenant)))
            .key(SK, attrs::s(sk(&job.id)))
            .condition_expression(cond)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict("finish job")),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(job finish)", &e).into()),
        }
    }
}
