//! The export harness the Jira and Confluence tests share: a world with one consented site, an
//! exporter tuned for tests, ways to drive a job (to its end, or crashing at random points),
//! and readers of what landed in the bucket, the table and the logs.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use integration_tests::fake::{FakeConfig, Fault, SeedSpec};
use lambda_http::http::StatusCode;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use shared::atlassian::http::AtlassianHttp;
use shared::atlassian::outbound::Outbound;
use shared::blob::BlobStore;
use shared::clock::Clock;
use shared::events::{ExportContinued, ExportRequested};
use shared::export::redact::find_account_ids;
use shared::export::resume::Resumer;
use shared::export::runner::{
    COMPLETE_STEPS, Exporter, Outcome, PROGRESS_SAVED, StepGate, new_job_id,
};
use shared::export::source::{Products, Sources};
use shared::ids::{ConnectorId, JobId, Product};
use shared::store::connectors::{Connector, ConnectorOptions};
use shared::store::jobs::Job;
use shared::vault::refresh::TokenKeeper;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::connect::{World, tenant};
use crate::support::{LogCapture, fast_policy};

pub(crate) const MIB: u64 = 1024 * 1024;

/// How long the exporter's job lease lasts in tests, as in production (see [`exporter_for`]);
/// on the clock the tests move.
const LEASE_TTL: Duration = Duration::from_secs(120);

/// `P`: the products the exporter runs over (Jira and Confluence through the fake site, or a
/// scripted source: runner_scripted.rs).
pub(crate) struct Export<P = Products> {
    pub(crate) w: World,
    pub(crate) exporter: Exporter<P>,
    pub(crate) cloud: String,
    pub(crate) project: String,
    pub(crate) product: Product,
}

impl Export {
    pub(crate) async fn for_product(seed: SeedSpec, product: Product) -> Export {
        Export::for_product_with(FakeConfig::default().with_sites(1, seed), product).await
    }

    /// As [`Export::for_product`], over a fake configured by `config`.
    pub(crate) async fn for_product_with(config: FakeConfig, product: Product) -> Export {
        let w = World::with_fake(config).await;
        let back = w
            .consent(&w.authorize(product.as_str(), None).await, true)
            .await;
        assert_eq!(w.callback(&back).await.status(), StatusCode::OK);
        let exporter = exporter_for(&w).await;
        let cloud = w.site.cloud_ids()[0].clone();
        let project = match product {
            Product::Jira => w
                .site
                .jira(&cloud)
                .map(|j| j.projects()[0].key.clone())
                .unwrap_or_default(),
            Product::Confluence => w
                .site
                .confluence(&cloud)
                .map(|c| c.spaces()[0].key.clone())
                .unwrap_or_default(),
        };
        Export {
            w,
            exporter,
            cloud,
            project,
            product,
        }
    }

    /// The same world, its exporter running over `sources` instead of the fake site's products.
    pub(crate) async fn with_sources<P: Sources>(self, sources: P) -> Export<P> {
        let exporter = exporter_with(&self.w, sources).await;
        Export {
            w: self.w,
            exporter,
            cloud: self.cloud,
            project: self.project,
            product: self.product,
        }
    }
}

impl<P: Sources> Export<P> {
    /// Items per batch, and so per checkpoint (at most the product's own limit).
    pub(crate) fn with_batch_size(mut self, items: usize) -> Self {
        self.exporter.batch_size = items;
        self
    }

    /// Batches and concurrency as in production (the products' own batch limits, 8 items at
    /// once), for runs of thousands of items.
    pub(crate) fn with_production_batches(mut self) -> Self {
        self.exporter.batch_size = 100;
        self.exporter.item_concurrency = 8;
        self
    }

    pub(crate) async fn connector(&self, id: &str, query: &str) -> Connector {
        let conn = self
            .w
            .store()
            .list_connections(&tenant())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let now = OffsetDateTime::now_utc();
        let c = Connector {
            tenant: tenant(),
            id: ConnectorId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            connection_id: conn[0].id.clone(),
            product: self.product,
            query: query.to_owned(),
            options: ConnectorOptions::default(),
            watermark: None,
            active_job: None,
            active_job_at: None,
            last_job: None,
            last_full_job: None,
            created_at: now,
            updated_at: now,
        };
        self.w
            .store()
            .put_connector(&c)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn request(&self, connector: &Connector, job: &JobId) -> ExportRequested {
        ExportRequested {
            tenant: tenant(),
            connector_id: connector.id.clone(),
            job_id: Some(job.clone()),
            full: false,
        }
    }

    /// One invocation of a new full-run job of `connector` (`full: true`: every item, as a
    /// first run), with a generous deadline.
    pub(crate) async fn requested_full(&self, connector: &Connector) -> Outcome {
        let request = ExportRequested {
            full: true,
            ..self.request(connector, &new_job_id())
        };
        self.exporter
            .requested(&request, far())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run a job to its end with a generous deadline. A wait Atlassian asked for is waited out
    /// on the test's clock: moved to the resume time, then the due delivery is made.
    pub(crate) async fn run(&self, connector: &Connector) -> (JobId, Outcome) {
        let job = new_job_id();
        let mut outcome = self
            .exporter
            .requested(&self.request(connector, &job), far())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        loop {
            match outcome {
                Outcome::Continued => {}
                Outcome::Waiting { until } => self.advance_to(until),
                _ => return (job, outcome),
            }
            outcome = self.continued(&job, far()).await;
        }
    }

    /// Move the clock the exporter and the fake site share to `until` (if it is later).
    pub(crate) fn advance_to(&self, until: OffsetDateTime) {
        let now = self.w.site.now();
        if until > now {
            self.advance((until - now).unsigned_abs());
        }
    }

    /// Move the shared clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.w.site.advance_clock(by);
    }

    /// Run a job to completion and say how many items it exported.
    pub(crate) async fn measured_run(&self, connector: &Connector) -> Effort {
        let (job, outcome) = self.run(connector).await;
        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
        Effort {
            items: self.job(&job).await.items_done,
        }
    }

    pub(crate) async fn continued(&self, job: &JobId, deadline: Instant) -> Outcome {
        self.exporter
            .continued(
                &ExportContinued {
                    tenant: tenant(),
                    job_id: job.clone(),
                    connector_id: None,
                },
                deadline,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run a job whose invocations crash (are dropped mid-flight) at `crashes` random points
    /// of its progress, then let it finish. The points are distinct item counts drawn (seeded)
    /// from what an uninterrupted run of the same job exported (`clean`), leaving out the last
    /// two: crash `i` comes once the job's record shows that many items done (and the crashed
    /// invocation itself made progress), after a random part of half an average item's time.
    /// So the crashes are spread over the whole export, between and within items, however
    /// fast or loaded this machine is (with one item per batch, see
    /// [`Export::with_batch_size`], each item done is a checkpoint). Until one crash has hit an
    /// open multipart upload, every other crash also comes as soon as one is open, so at least
    /// one lands inside an attachment upload.
    ///
    /// The last four crashes come inside `complete()`, one at each of its steps
    /// ([`COMPLETE_STEPS`]: finishing saved, manifest written, completion announced, job
    /// marked completed), held there by the exporter's step gate.
    ///
    /// A crashed event is delivered again as Lambda's asynchronous retries would: one minute,
    /// then two more minutes later, on the clock the test controls (never by waiting out the
    /// lease). A retry that meets the dead invocation's live lease is a retryable failure
    /// ([`Outcome::Busy`]); when both retries fail the event is dead-lettered and the sweeper
    /// resumes the job.
    pub(crate) async fn run_crashing(
        &self,
        connector: &Connector,
        crashes: usize,
        clean: &Effort,
    ) -> Crashes {
        let job = new_job_id();
        let items = clean.items as usize;
        let inside_complete = COMPLETE_STEPS.len();
        assert!(
            crashes >= inside_complete,
            "some crashes are inside complete()"
        );
        assert!(
            items >= crashes,
            "{items} items leave no room for {crashes} crash points"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        let mut item_points: Vec<u64> =
            rand::seq::index::sample(&mut rng, items - 1, crashes - inside_complete)
                .into_iter()
                .map(|i| i as u64)
                .collect();
        item_points.sort_unstable();
        let mut points: Vec<CrashAt> = item_points.into_iter().map(CrashAt::Items).collect();
        points.extend(COMPLETE_STEPS.iter().map(|s| CrashAt::Step(s)));
        let gate = self
            .exporter
            .gate
            .clone()
            .unwrap_or_else(|| panic!("the test exporter has a step gate"));
        let mut report = Crashes::default();
        let mut created = false;
        // Lambda's retries of the current event: after 1 minute, then after 2 more.
        let mut retries_left: Vec<Duration> = Vec::new();
        let mut last_was_hunt = false;
        loop {
            let deadline = far();
            let started_with = self.items_done(&job).await;
            let invocation = async {
                if created {
                    let ev = ExportContinued {
                        tenant: tenant(),
                        job_id: job.clone(),
                        connector_id: None,
                    };
                    self.exporter.continued(&ev, deadline).await
                } else {
                    // A re-delivered `ExportRequested` resumes the job it created.
                    let ev = self.request(connector, &job);
                    self.exporter.requested(&ev, deadline).await
                }
            };
            let finished = match points.get(report.crashes) {
                Some(&point) => {
                    let hunt_upload = report.mid_upload == 0
                        && !last_was_hunt
                        && matches!(point, CrashAt::Items(_));
                    match point {
                        CrashAt::Step(step) => gate.arm(step),
                        // Held after each save of the job's progress, so that the point is
                        // met exactly (the items in flight stay where they are).
                        CrashAt::Items(_) => gate.arm(PROGRESS_SAVED),
                    }
                    let crash = async {
                        let CrashAt::Items(n) = point else {
                            // Held at the step by the gate: a crash exactly there.
                            gate.reached().await;
                            return Crashed::AtGate { done: 0 };
                        };
                        loop {
                            let held = gate.reached();
                            tokio::pin!(held);
                            loop {
                                if futures::poll!(&mut held).is_ready() {
                                    break;
                                }
                                if hunt_upload && self.open_uploads().await > 0 {
                                    return Crashed::InUpload;
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            let done = self.items_done(&job).await;
                            if done >= n && done > started_with {
                                return Crashed::AtGate { done };
                            }
                            gate.arm(PROGRESS_SAVED);
                            gate.release();
                        }
                    };
                    tokio::pin!(invocation);
                    tokio::select! {
                        outcome = &mut invocation => Some(outcome),
                        crashed = crash => {
                            // Looked at while the invocation is frozen, before it is dropped.
                            report.mid_upload += usize::from(self.open_uploads().await > 0);
                            last_was_hunt = crashed == Crashed::InUpload;
                            if last_was_hunt && !gate.disarm() {
                                // Held at a save meanwhile: the signal is taken so the next
                                // wait does not see it.
                                gate.reached().await;
                            }
                            if let Crashed::AtGate { done } = crashed
                                && matches!(point, CrashAt::Items(_))
                                && done >= items as u64
                            {
                                // Every item is done: the remaining item points cannot
                                // happen; complete()'s steps come next.
                                let steps: Vec<CrashAt> =
                                    COMPLETE_STEPS.iter().map(|s| CrashAt::Step(s)).collect();
                                points.truncate(report.crashes + 1);
                                points.extend(steps);
                            }
                            None
                        }
                    }
                    // The invocation is dropped here: a crash.
                }
                None => {
                    gate.disarm();
                    Some(invocation.await)
                }
            };
            let Some(outcome) = finished else {
                if let Some(CrashAt::Step(_)) = points.get(report.crashes) {
                    report.in_complete += 1;
                }
                report.crashes += 1;
                retries_left = vec![Duration::from_secs(60), Duration::from_secs(120)];
                self.redeliver_later(&mut retries_left, &job, &mut report)
                    .await;
                continue;
            };
            match outcome.unwrap_or_else(|e| panic!("{e}")) {
                Outcome::Completed { .. } | Outcome::AlreadyFinished => break,
                Outcome::Continued => {
                    created = true;
                    retries_left.clear();
                }
                Outcome::Waiting { until } => {
                    created = true;
                    retries_left.clear();
                    self.advance_to(until);
                }
                // The dead invocation's lease is live: a retryable failure, retried later.
                Outcome::Busy => {
                    report.busy += 1;
                    self.redeliver_later(&mut retries_left, &job, &mut report)
                        .await;
                }
                other => panic!("{other:?}"),
            }
        }
        let record = self.job(&job).await;
        assert_eq!(
            record.status,
            shared::store::jobs::JobStatus::Completed,
            "{:?}",
            record.failure_reason
        );
        report
    }

    /// Wait (on the test's clock) for Lambda's next retry of the event; with none left the
    /// event is dead-lettered, and the job comes back through the sweeper once it is overdue.
    async fn redeliver_later(
        &self,
        retries_left: &mut Vec<Duration>,
        job: &JobId,
        report: &mut Crashes,
    ) {
        if !retries_left.is_empty() {
            let wait = retries_left.remove(0);
            self.advance(wait);
            return;
        }
        report.swept += 1;
        // The sweeper runs every 5 minutes.
        for _ in 0..4 {
            self.advance(Duration::from_secs(300));
            let resumed = self
                .exporter
                .sweep()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if resumed.contains(job) {
                return;
            }
        }
        panic!("the sweeper never resumed {job}");
    }

    /// A job's record, if it exists yet.
    pub(crate) async fn job_record(&self, job: &JobId) -> Option<Job> {
        self.w
            .store()
            .get_job(&tenant(), job)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Items a job's record shows done (0 before it exists).
    async fn items_done(&self, job: &JobId) -> u64 {
        self.w
            .store()
            .get_job(&tenant(), job)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map_or(0, |j| j.items_done)
    }

    /// From now on, a share `p` of the product's API calls answers 429 (`Retry-After: 0`) or
    /// 502, half each.
    pub(crate) fn inject_429_and_5xx(&self, p: f64) {
        let prefix = format!("/ex/{}/", self.product);
        let half = p / 2.0;
        self.w
            .site
            .inject(Fault::status(&prefix, 429).retry_after(0).probability(half));
        // Drawn only for calls the first rule let through.
        self.w
            .site
            .inject(Fault::status(&prefix, 502).probability(half / (1.0 - half)));
    }

    /// A job's record.
    pub(crate) async fn job(&self, job: &JobId) -> Job {
        self.w
            .store()
            .get_job(&tenant(), job)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no job {job}"))
    }

    /// A connector's S3 prefix: `{tenant}/{product}/{cloudId}/{connector}/`.
    pub(crate) fn prefix(&self, connector: &Connector) -> String {
        format!(
            "{}/{}/{}/{}/",
            tenant(),
            self.product,
            self.cloud,
            connector.id
        )
    }

    /// Every object under a connector's prefix: relative key → sha256 of its content (with the
    /// connector id normalised, since items record their attachments' keys).
    pub(crate) async fn content(&self, connector: &Connector) -> BTreeMap<String, String> {
        let prefix = self.prefix(connector);
        let keys = self
            .exporter
            .blobs
            .list_keys(&prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = BTreeMap::new();
        for key in keys {
            let rel = key[prefix.len()..].to_owned();
            if rel.starts_with("manifests/") {
                continue;
            }
            let mut body = self.object(&key).await.unwrap_or_default();
            if rel.starts_with("documents/") && rel.ends_with(".json") {
                // A document's `contentHash` is the hash of its Markdown, whose attachment links
                // name the connector: the Markdown itself is compared (normalised) instead.
                let mut meta: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{rel}: {e}"));
                meta["contentHash"] = serde_json::Value::Null;
                body = meta.to_string().into_bytes();
            }
            let body = String::from_utf8(body)
                .map(|s| s.replace(connector.id.as_str(), "CONNECTOR").into_bytes())
                .unwrap_or_else(|e| e.into_bytes());
            out.insert(rel, hex::encode(Sha256::digest(&body)));
        }
        out
    }

    /// An object's last-modified time (S3's resolution: one second), to tell a rewrite.
    pub(crate) async fn last_modified(&self, key: &str) -> String {
        self.w
            .aws
            .clients
            .s3
            .head_object()
            .bucket(&self.w.aws.names.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"))
            .last_modified()
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// An object's bytes, `None` if there is no such key.
    pub(crate) async fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.exporter
            .blobs
            .get_bytes(key)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|b| b.to_vec())
    }

    /// Every exported item document of a connector, by item id.
    pub(crate) async fn items(&self, connector: &Connector) -> BTreeMap<String, Item> {
        let prefix = format!("{}items/", self.prefix(connector));
        let keys = self
            .exporter
            .blobs
            .list_keys(&prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = BTreeMap::new();
        for (key, body) in keys.iter().zip(self.objects(&keys).await) {
            let doc: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"));
            let id = key[prefix.len()..].trim_end_matches(".json").to_owned();
            out.insert(
                id,
                Item {
                    doc,
                    bytes: body.len() as u64,
                },
            );
        }
        out
    }

    /// The bytes of each of `keys` (empty for a missing one), in order, read 8 at a time.
    async fn objects(&self, keys: &[String]) -> Vec<Vec<u8>> {
        futures::stream::iter(keys)
            .map(|key| async move { self.object(key).await.unwrap_or_default() })
            .buffered(8)
            .collect()
            .await
    }

    /// Every attachment object of a connector: key → size.
    pub(crate) async fn attachment_objects(&self, connector: &Connector) -> BTreeMap<String, u64> {
        let prefix = format!("{}attachments/", self.prefix(connector));
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .w
                .aws
                .clients
                .s3
                .list_objects_v2()
                .bucket(&self.w.aws.names.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.insert(key.to_owned(), o.size().unwrap_or(0).max(0) as u64);
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return out,
            }
        }
    }

    /// Size and SHA-256 (hex) of a stored object, read as a stream: a 200 MiB attachment is
    /// never held in memory.
    pub(crate) async fn stored_digest(&self, key: &str) -> (u64, String) {
        let mut body = self
            .w
            .aws
            .clients
            .s3
            .get_object()
            .bucket(&self.w.aws.names.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"))
            .body;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
        {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        (size, hex::encode(hasher.finalize()))
    }

    /// The manifest a completed job wrote.
    pub(crate) async fn manifest(&self, outcome: &Outcome) -> serde_json::Value {
        let Outcome::Completed { manifest } = outcome else {
            panic!("the job did not complete: {outcome:?}")
        };
        let body = self
            .object(manifest)
            .await
            .unwrap_or_else(|| panic!("no manifest at {manifest}"));
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("manifest: {e}"))
    }

    /// What the privacy scan reads (PRIVACY.md P5): every JSON object in the bucket under the
    /// tenant, every attribute of every table item, and every log line captured so far.
    pub(crate) async fn stored_and_logged_text(&self) -> String {
        let mut corpus = String::new();
        let keys = self
            .exporter
            .blobs
            .list_keys(&format!("{}/", tenant()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let json: Vec<String> = keys.into_iter().filter(|k| k.ends_with(".json")).collect();
        for body in self.objects(&json).await {
            corpus.push_str(&String::from_utf8_lossy(&body));
        }
        corpus.push_str(&String::from_utf8_lossy(&crate::connect::dump(
            &self.w.aws.scan_table().await,
        )));
        corpus.push_str(&LogCapture::global().text());
        corpus
    }

    /// Fail if any seeded account id, or anything shaped like one, is in `corpus`.
    pub(crate) fn assert_no_account_id_in(&self, corpus: &str) {
        let account_ids = self.w.site.account_ids();
        assert!(!account_ids.is_empty(), "the scan would be vacuous");
        for id in &account_ids {
            assert!(!corpus.contains(id.as_str()), "account id {id} leaked");
        }
        assert_eq!(find_account_ids(corpus), Vec::<String>::new());
    }

    /// Multipart uploads left open in the bucket (after a job: orphaned).
    /// After [`Export::run_crashing`]: every crash happened, one of them inside an open
    /// attachment upload, and `crashy` ended with exactly `clean`'s content and no multipart
    /// upload left behind.
    pub(crate) async fn assert_recovered(
        &self,
        crashed: &Crashes,
        crashes: usize,
        crashy: &Connector,
        clean: &Connector,
    ) {
        // Every crash is held by the gate at its point: at its step inside complete(), or at
        // the first save of the job's progress past its item count. So every one happens,
        // however fast or loaded the machine (item points were polled for once, and the last
        // few could be overtaken).
        assert_eq!(
            crashed.crashes, crashes,
            "{} of {crashes} crashes happened: {crashed:?}",
            crashed.crashes
        );
        assert_eq!(crashed.in_complete, COMPLETE_STEPS.len(), "{crashed:?}");
        assert!(
            crashed.busy > 0,
            "no retry met a dead invocation's live lease: {crashed:?}"
        );
        assert!(
            crashed.mid_upload > 0,
            "no crash interrupted an attachment upload: {crashed:?}"
        );
        assert_eq!(self.content(crashy).await, self.content(clean).await);
        assert_eq!(
            self.manifest_items(crashy).await,
            self.manifest_items(clean).await,
            "the manifest lists every item, however complete() was interrupted"
        );
        assert_eq!(
            self.orphaned_uploads().await,
            0,
            "a multipart upload was orphaned"
        );
    }

    /// The items listed by the one manifest under a connector's prefix.
    async fn manifest_items(&self, connector: &Connector) -> Vec<String> {
        let keys = self
            .exporter
            .blobs
            .list_keys(&format!("{}manifests/", self.prefix(connector)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.len(), 1, "one manifest: {keys:?}");
        let body = self.object(&keys[0]).await.unwrap_or_default();
        let manifest: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("manifest: {e}"));
        manifest["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    pub(crate) async fn orphaned_uploads(&self) -> usize {
        self.open_uploads().await
    }

    async fn open_uploads(&self) -> usize {
        let out = self
            .w
            .aws
            .clients
            .s3
            .list_multipart_uploads()
            .bucket(&self.w.aws.names.bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        out.uploads().len()
    }
}

/// What an uninterrupted run of a job did.
pub(crate) struct Effort {
    /// Items it exported.
    pub(crate) items: u64,
}

/// How a crash point was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crashed {
    /// Held by the step gate at the point: at a step of complete(), or at the first save of
    /// the job's progress that showed the point's item count (`done`) passed.
    AtGate { done: u64 },
    /// Inside an open attachment upload (found by looking, before the point).
    InUpload,
}

/// Where a crash of [`Export::run_crashing`] comes.
#[derive(Debug, Clone, Copy)]
enum CrashAt {
    /// Once the job's record shows this many items done.
    Items(u64),
    /// At this step of `complete()` (the exporter's step gate holds it there).
    Step(&'static str),
}

/// What [`Export::run_crashing`] did.
#[derive(Debug, Default)]
pub(crate) struct Crashes {
    pub(crate) crashes: usize,
    /// Crashes inside `complete()`.
    pub(crate) in_complete: usize,
    /// Retries that met a dead invocation's live lease (retryable failures).
    pub(crate) busy: usize,
    /// Times both retries had failed and the sweeper resumed the job.
    pub(crate) swept: usize,
    /// Crashes that dropped an invocation while one of its multipart uploads was open.
    pub(crate) mid_upload: usize,
}

/// One exported item: its document and the size of its object.
pub(crate) struct Item {
    pub(crate) doc: serde_json::Value,
    pub(crate) bytes: u64,
}

/// An exporter over a world, tuned for tests: quick retries, 5-item batches, the fake site's
/// clock.
pub(crate) async fn exporter_for(w: &World) -> Exporter {
    exporter_with(w, Products).await
}

/// As [`exporter_for`], over `sources`.
pub(crate) async fn exporter_with<P: Sources>(w: &World, sources: P) -> Exporter<P> {
    let mut keeper = TokenKeeper::from_config(&w.config, &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // One clock for the exporter and the fake site, which the tests move forward.
    let clock = Clock::from_fn(w.site.clock_fn());
    // The keeper too: it refreshes a token ahead of its expiry on the site's clock (without
    // this, a test that moves the clock by hours sent expired tokens and refreshed on 401s).
    keeper.clock = clock.clone();
    keeper.http = AtlassianHttp::new(fast_policy(), 8, Outbound::loopback())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_clock(clock.clone());
    Exporter {
        sources,
        keeper,
        blobs: BlobStore::new(
            w.aws.clients.s3.clone(),
            w.aws.names.bucket.clone(),
            w.aws.kms_key_id.clone(),
        )
        .with_part_size(5 * MIB as usize),
        job_retention: Duration::from_secs(86400),
        lease_ttl: time::Duration::seconds(LEASE_TTL.as_secs() as i64),
        deadline_margin: Duration::from_millis(0),
        item_concurrency: 4,
        batch_size: 5,
        // A save after every batch: the crash tests count on each item done being saved.
        checkpoint_every: Duration::ZERO,
        streams: tokio::sync::Semaphore::new(4),
        incremental_slack: time::Duration::ZERO,
        resumer: Resumer::new(
            w.aws.clients.sqs.clone(),
            Some(w.aws.resume_queue_url.clone()),
        ),
        clock,
        documents: Default::default(),
        gate: Some(std::sync::Arc::new(StepGate::default())),
    }
}

pub(crate) fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}
