//! The export job machinery shared by Jira and Confluence: job creation (one running job per
//! connector), a lease per job, batched checkpoints (one per search page, and within a page
//! at most every [`CHECKPOINT_EVERY`]), a pause before the Lambda
//! deadline with an `ExportContinued` event, attachments streamed into S3, a manifest and an
//! `ExportCompleted`/`ExportFailed` event at the end.
//!
//! Every S3 key is deterministic (item id, attachment id), attachments are written before
//! their item, and the checkpoint moves only over batches whose items all landed: a crash
//! anywhere, or a re-delivered event, redoes what was not saved and ends with the same bucket
//! content.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::ExportError;
use super::keys::Layout;
use super::redact::NameBook;
use super::resume::{ResumeAt, Resumer};
use super::source::{AttachmentRef, Batch, Ctx, Item, Products, Source, Sources};
use crate::atlassian::http::{HttpError, Idempotency, ThrottleScope};
use crate::blob::{BlobError, BlobStore, Stored, metadata_value};
use crate::clock::Clock;
use crate::events::{Event, ExportCompleted, ExportContinued, ExportFailed, ExportRequested};
use crate::ids::{CloudId, JobId, Product};
use crate::secret::{ExposeSecret, Secret};
use crate::store::StoreError;
use crate::store::connectors::Connector;
use crate::store::jobs::{Job, JobStatus, LeaseTake, SKIPPED_INLINE, Skipped, Snapshot};
use crate::vault::refresh::TokenKeeper;

mod auth;
mod batches;
mod departed;
mod erased;
mod fetches;
mod flow;
mod item;
mod lifecycle;
mod manifest;
mod page;
mod run;
#[cfg(test)]
mod tests;

use auth::Session;
use fetches::Ahead;
use flow::Flow;
pub use page::MAX_EMPTY_PAGES;
use run::Run;

/// Incremental runs look back this much further than the watermark (clock skew, Jira's
/// eventual consistency).
pub const INCREMENTAL_OVERLAP: time::Duration = time::Duration::minutes(10);
/// Transient failures in a row before a job fails.
pub const MAX_ERRORS_IN_A_ROW: u32 = 5;
/// Invocations in a row that died holding the job (Lambda timeout, out of memory, crash)
/// without a checkpoint in between before the job fails: it would only die again.
pub const MAX_DEATHS_IN_A_ROW: u32 = 3;
/// Production's [`Exporter::checkpoint_every`]: a crash redoes at most this much work (plus a
/// batch), for one DynamoDB write per search page of fast items instead of one per batch.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// Production's attachment streams at once per invocation: with 8 MiB parts, about 128 MiB of
/// part buffers at most (of the function's 1,024 MiB), however many items are written at once.
/// More than the site's 8 request slots: a download holds a slot only until the site redirects
/// it to the media host (atlassian/http.rs), then streams from there; at 8 the streams, not
/// Atlassian, set the pace (bench, 50 ms per request).
pub const ATTACHMENT_STREAMS: usize = 16;
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
    /// The job was erased while this invocation ran; what it wrote is removed.
    Erased,
}

/// Runs export jobs over the products of `P`: Jira and Confluence ([`Products`]) in
/// production; a test's scripted source in the runner's own tests.
pub struct Exporter<P = Products> {
    /// Where each product's items come from.
    pub sources: P,
    pub keeper: TokenKeeper,
    pub blobs: BlobStore,
    pub job_retention: Duration,
    /// How long a job lease lasts without renewal. Renewed at every checkpoint and by a
    /// heartbeat every third of it, so a dead invocation's job is free again within this.
    pub lease_ttl: time::Duration,
    /// Stop taking new batches when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Items written at once (attachments streamed, documents put), across batch boundaries:
    /// `EXPORT_ITEM_CONCURRENCY`.
    pub item_concurrency: usize,
    /// Items per fetched batch, at most the product's own limit. Progress is saved only at
    /// batch boundaries.
    pub batch_size: usize,
    /// Attachment streams at once (a slot each, taken by `copy_attachment`): each holds a
    /// multipart part buffer, so this, not `item_concurrency`, bounds the memory attachments
    /// take. [`ATTACHMENT_STREAMS`] in production.
    pub streams: tokio::sync::Semaphore,
    /// Within a search page, progress is saved at the first batch boundary after this much
    /// time since the last save (the page's end is saved with the next page's search). Zero
    /// saves after every batch (tests that crash between items).
    pub checkpoint_every: Duration,
    /// Jira evaluates the incremental bound `updated >= "-Nm"` against its own clock, so the
    /// bound moves forward while a job runs; N includes this slack so that no page of a job
    /// shorter than it misses an item changed since the watermark. A longer job widens it and
    /// restarts its search; zero (tests) never widens.
    pub incremental_slack: time::Duration,
    /// Delayed deliveries after a wait.
    pub resumer: Resumer,
    /// The time leases, waits and resumes are decided with.
    pub clock: Clock,
    /// Documents and attachment text beside each item (issue 18).
    pub documents: crate::export::document::Settings,
    /// Test seam: holds an invocation at a named step of `complete()` so a test can crash it
    /// exactly there. `None` in production.
    pub gate: Option<Arc<StepGate>>,
}

/// Holds an invocation at one armed step (see [`Exporter::gate`]; a test's scripted source
/// holds at a numbered call with one too): the invocation signals that it got there and then
/// goes on only if [`StepGate::release`]d (the test looks at what was saved, then drops it: a
/// crash, or releases it).
#[derive(Debug)]
pub struct StepGate<K = &'static str> {
    armed: Mutex<Option<K>>,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

impl<K> Default for StepGate<K> {
    fn default() -> Self {
        StepGate {
            armed: Mutex::new(None),
            reached: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
        }
    }
}

impl<K: PartialEq> StepGate<K> {
    /// Hold the next invocation that reaches `step`.
    pub fn arm(&self, step: K) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(step);
    }

    /// Stop holding; whether the step was still armed (no invocation got there).
    pub fn disarm(&self) -> bool {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
    }

    /// Resolves once an invocation is held at the armed step.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Let the invocation held at the step go on (call only after [`StepGate::reached`]).
    pub fn release(&self) {
        self.go.notify_one();
    }

    /// Go on, unless `step` is the armed step: then disarm it, signal [`StepGate::reached`]
    /// and wait for [`StepGate::release`] (never, for a crash).
    pub async fn pass(&self, step: K) {
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
            self.go.notified().await;
        }
    }
}

/// The step after each save of a job's progress (its `items_done`) while it exports pages: a
/// [`StepGate`] holds the invocation there so a test can crash it at a chosen item count.
pub const PROGRESS_SAVED: &str = "progress-saved";

/// The step at the start of each item's write: a [`StepGate`] holds that one item (the
/// invocation's other writes and its fetches go on), so a test can keep a page from landing.
pub const ITEM_WRITE: &str = "item-write";

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
            sources: Products,
            keeper,
            blobs: BlobStore::new(aws.s3.clone(), bucket, config.kms_key_id.clone()),
            job_retention: config.job_retention,
            lease_ttl: time::Duration::minutes(2),
            deadline_margin: Duration::from_secs(60),
            item_concurrency: config.export_item_concurrency,
            batch_size: 100,
            checkpoint_every: CHECKPOINT_EVERY,
            streams: tokio::sync::Semaphore::new(ATTACHMENT_STREAMS),
            incremental_slack: time::Duration::minutes(30),
            resumer: Resumer::new(aws.sqs.clone(), config.resume_queue_url.clone())
                .with_dead_letters(config.dead_letter_queue_url.clone()),
            clock: Clock::system(),
            documents: Default::default(),
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

enum Step {
    Done,
    Paused,
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
    /// `{itemId}/{attachmentId}` of the attachment texts stored (issue 18).
    #[serde(default)]
    texts: Vec<String>,
}
