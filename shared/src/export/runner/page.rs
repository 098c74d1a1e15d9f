//! One search page at a time: the query (incremental window), paging guards, restarts, a
//! checkpoint per page; the page's batches are exported by [`super::batches`].

use futures::{StreamExt, TryFutureExt, TryStreamExt};

use super::*;

impl<P: Sources> Exporter<P> {
    pub(super) async fn drive(
        &self,
        job: &mut Job,
        owner: &str,
        deadline: Instant,
    ) -> Result<Step, ExportError> {
        let store = &self.keeper.store;
        let (connector, connection) = futures::try_join!(
            store.get_connector(&job.tenant, &job.connector_id),
            store.get_connection(&job.tenant, &job.connection_id)
        )?;
        let mut connector =
            connector.ok_or_else(|| ExportError::Terminal("the connector was deleted".into()))?;
        let mut connection =
            connection.ok_or_else(|| ExportError::Terminal("the connection was deleted".into()))?;
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
        // Beside the site's hold (AWS only, nothing sent to Atlassian): a crashed invocation may
        // have left multipart uploads behind (nobody else writes here), and a first invocation
        // asks whether the connector's prefix is empty.
        let first = job.invocations == 1;
        let attachments = layout.attachments_root();
        let (hold, _aborted, fresh) = futures::try_join!(
            self.site_hold(&connection.cloud_id),
            self.blobs.abort_uploads_under(&attachments).err_into(),
            async {
                if first {
                    self.blobs.is_empty_under(layout.root()).await
                } else {
                    Ok(false)
                }
            }
            .err_into(),
        )?;
        if let Some(until) = hold {
            return Err(site_waiting(until));
        }
        let session = self.open_session(job).await?;
        let ctx = Ctx {
            http: &self.keeper.http,
            urls: &self.keeper.urls,
            cloud_id: &connection.cloud_id,
            site_url: &connection.site_url,
        };
        let run = Run {
            owner,
            connector: &connector,
            layout: &layout,
            ctx: &ctx,
            session: &session,
            deadline,
            fresh,
        };
        match job.product {
            Product::Jira => self.drive_source(self.sources.jira(), job, &run).await,
            Product::Confluence => {
                self.drive_source(self.sources.confluence(), job, &run)
                    .await
            }
        }
    }

    pub(super) async fn drive_source<S: Source>(
        &self,
        source: &S,
        job: &mut Job,
        run: &Run<'_>,
    ) -> Result<Step, ExportError> {
        let Run {
            owner,
            connector,
            layout,
            ctx,
            session,
            deadline,
            ..
        } = *run;
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
        // What the fetch side got ahead of the writes: the next page's search, its first batch.
        let mut ahead = Ahead::default();
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
                && let Some((slack, elapsed)) = self.slack_outlived(job)
            {
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
            let cp = &job.checkpoint;
            if cp.page_ids.is_empty() {
                let cursor = cp.next_page.clone();
                let (query, cursor) = (&query, cursor.as_deref());
                let page = match ahead.take_page(query, cursor) {
                    Some(fetched) => fetched,
                    None => {
                        self.authed(job, session, |t| async move {
                            source.page(ctx, &t, query, cursor).await
                        })
                        .await
                    }
                };
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
                open_page(job, ids, page.next);
                if job.checkpoint.page_ids.is_empty() {
                    self.close_page(job, layout, &[]).await?;
                }
                self.checkpoint(job, owner, ctx.cloud_id).await?;
                continue;
            }
            let flow = Box::pin(self.run_page(source, job, run, &query, &mut ahead)).await?;
            if flow == Flow::OutOfTime {
                return Ok(Step::Paused);
            }
        }
    }

    /// The slack and the time the job has run, when an incremental job has (nearly) outlived
    /// its look-back slack: its search must restart with a wider one before the next page.
    pub(super) fn slack_outlived(&self, job: &Job) -> Option<(time::Duration, time::Duration)> {
        if job.since.is_none() || self.incremental_slack <= time::Duration::ZERO {
            return None;
        }
        let slack = job
            .checkpoint
            .slack_minutes
            .map_or(self.incremental_slack, time::Duration::minutes);
        let elapsed = self.clock.now() - job.started_at;
        (elapsed + SLACK_MARGIN >= slack).then_some((slack, elapsed))
    }

    /// Save the job's progress, renewing its lease; then stop if the site asked every job of it
    /// to wait (another job saw the quota 429).
    pub(super) async fn checkpoint(
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

    /// Full documents for `ids`, not yet redacted (each item is redacted where it is written,
    /// on the blocking pool: item.rs).
    pub(super) async fn fetch_batch<S: Source>(
        &self,
        source: &S,
        job: &Job,
        ctx: &Ctx<'_>,
        session: &Session,
        ids: &[String],
        all_comments: bool,
    ) -> Result<Batch, ExportError> {
        self.authed(job, session, |t| async move {
            source.fetch(ctx, &t, ids, all_comments).await
        })
        .await
    }

    /// Every id this job recorded as exported or skipped in its S3 state.
    pub(super) async fn exported_ids(
        &self,
        job: &Job,
        layout: &Layout,
    ) -> Result<BTreeSet<String>, ExportError> {
        let mut done = BTreeSet::new();
        self.each_state_page(job, layout, |page| {
            done.extend(page.items);
            done.extend(page.skipped.into_iter().map(|s| s.id));
        })
        .await?;
        Ok(done)
    }

    /// `each` of the job's finished pages in its S3 state, in key order, [`STATE_READS`] read
    /// at once (each page is dropped once `each` took it). An unreadable page is an error (tried
    /// again later), never an empty page.
    pub(super) async fn each_state_page(
        &self,
        job: &Job,
        layout: &Layout,
        mut each: impl FnMut(StatePage),
    ) -> Result<(), ExportError> {
        let keys = self.blobs.list_keys(&layout.state(&job.id)).await?;
        futures::stream::iter(keys)
            .map(|key| async move {
                let body = self.blobs.get_bytes(&key).await?.ok_or_else(|| {
                    ExportError::Store(StoreError::Malformed(format!(
                        "job state page {key} was listed but could not be read"
                    )))
                })?;
                serde_json::from_slice::<StatePage>(&body).map_err(|_| {
                    ExportError::Store(StoreError::Malformed(format!(
                        "job state page {key} is not readable"
                    )))
                })
            })
            .buffered(STATE_READS)
            .try_for_each(|page| {
                each(page);
                futures::future::ready(Ok(()))
            })
            .await
    }

    /// Record a finished page's exported ids and skips in the job's S3 state (the manifest is
    /// built from these, so its item list is complete across any number of invocations).
    pub(super) async fn close_page(
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
        let body = json!({
            "items": exported,
            "skipped": job.checkpoint.page_skipped,
            "texts": job.checkpoint.page_texts,
        });
        self.blobs
            .put_bytes_expiring(
                &layout.state_page(&job.id, job.checkpoint.page_no),
                Bytes::from(body.to_string()),
                "application/json",
            )
            .await?;
        Ok(())
    }
}

/// State pages read from S3 at once (a job of a million items has 2,000 of them: read one at a
/// time, the manifest would wait on 2,000 round trips).
const STATE_READS: usize = 16;
/// A job widens its look-back slack when less than this is left of it.
const SLACK_MARGIN: time::Duration = time::Duration::minutes(5);
/// Times a search may restart (an expired cursor) before the job fails.
const MAX_SEARCH_RESTARTS: u32 = 3;
/// Empty pages in a row that still promise more before the job fails.
pub const MAX_EMPTY_PAGES: u32 = 20;
/// Cursors remembered to detect a paging loop.
const RECENT_CURSORS: usize = 16;

/// Make `ids` (a search page, guarded and filtered) the job's current page; `next` is the
/// cursor of the page after it.
pub(super) fn open_page(job: &mut Job, ids: Vec<String>, next: Option<String>) {
    let cp = &mut job.checkpoint;
    cp.page_no += 1;
    cp.search_done = next.is_none();
    cp.next_page = next;
    cp.page_ids = ids;
    cp.done_in_page = 0;
    cp.page_skipped.clear();
    cp.page_texts.clear();
    job.phase = "exporting".into();
}

/// Fail the job with a clear reason when the search's paging goes wrong: a cursor seen
/// before (Atlassian would serve the same pages forever), or page after page of nothing.
pub(super) fn guard_paging(
    cp: &mut crate::store::jobs::Checkpoint,
    page: &crate::export::source::Page,
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
