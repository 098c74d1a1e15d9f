//! The end of a job: `complete()` in resumable steps and the manifest it writes once.

use futures::TryFutureExt;

use super::*;

impl<P: Sources> Exporter<P> {
    /// All pages done: write the manifest, announce it, end the job, move the watermark,
    /// clean up. Resumable at every step: the job is saved in the `finishing` phase first; the
    /// manifest is written once (a later invocation reads the one written); the completion is
    /// announced before the job is marked completed (a crash in between announces it again,
    /// never not at all; consumers tell repeats by the job id); the job state in S3 is deleted
    /// only after the job has ended.
    pub(super) async fn complete(&self, mut job: Job, owner: &str) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
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
        // Whether an earlier invocation wrote the manifest is asked beside the save, and so is
        // the connector (its last full run is what removals are found against).
        let (tenant, connector_id) = (job.tenant.clone(), job.connector_id.clone());
        let (connector, saved, written) = futures::join!(
            store.get_connector(&tenant, &connector_id),
            self.progress(&mut job, owner),
            self.blobs.get_bytes(&manifest_key)
        );
        saved?;
        let connector =
            connector?.ok_or_else(|| ExportError::Terminal("the connector was deleted".into()))?;
        self.step("finishing-saved").await;
        let manifest = match written? {
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
    pub(super) async fn progress(&self, job: &mut Job, owner: &str) -> Result<(), ExportError> {
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
    pub(super) async fn after_completion(
        &self,
        job: &Job,
        layout: &Layout,
    ) -> Result<(), ExportError> {
        let store = &self.keeper.store;
        let connector_side = async {
            let connector = store.get_connector(&job.tenant, &job.connector_id).await?;
            let prev_full = connector.as_ref().and_then(|c| c.last_full_job.clone());
            let ours = connector.is_some_and(|c| c.active_job.as_ref() == Some(&job.id));
            if !ours {
                return Ok(());
            }
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
            Ok::<_, ExportError>(())
        };
        // The three are independent, so they go out at once. A crash part-way leaves state
        // pages the lifecycle removes (they are tagged to expire) and uploads the next run's
        // start aborts; a redelivery runs all three again.
        let (state, attachments) = (layout.state(&job.id), layout.attachments_root());
        futures::try_join!(
            connector_side,
            self.blobs.delete_prefix(&state).err_into(),
            self.blobs.abort_uploads_under(&attachments).err_into(),
        )?;
        Ok(())
    }

    /// The manifest, from the pages recorded in the job's S3 state (read beside the previous
    /// full run's manifest). An unreadable page is an error (tried again later), never an empty
    /// page: the manifest lists every item.
    pub(super) async fn build_manifest(
        &self,
        job: &Job,
        connector: &Connector,
        layout: &Layout,
        cloud_id: &CloudId,
    ) -> Result<Value, ExportError> {
        let mut items: BTreeSet<String> = BTreeSet::new();
        let mut skipped: Vec<Skipped> = Vec::new();
        let mut texts: BTreeSet<String> = BTreeSet::new();
        let pages = self.each_state_page(job, layout, |page| {
            items.extend(page.items);
            skipped.extend(page.skipped);
            texts.extend(page.texts);
        });
        let previous = async {
            match (&connector.last_full_job, job.full_run) {
                (Some(prev), true) => self.previous_items(layout, prev).await,
                _ => Ok(Vec::new()),
            }
        };
        let ((), previous) = futures::try_join!(pages, previous)?;
        let documents =
            crate::export::document::manifest_keys(layout, &items, &texts, self.documents.enabled);
        let removed: Vec<String> = previous
            .into_iter()
            .filter(|id| !items.contains(id))
            .collect();
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
                "documents": documents.documents.len() / 2,
                "texts": documents.texts.len(),
            },
            "items": items,
            "removed": removed,
            "skipped": skipped,
            "documents": documents.documents,
            "texts": documents.texts,
            "layout": {
                "items": format!("{}items/", layout.root()),
                "attachments": layout.attachments_root(),
                "documents": layout.documents_root(),
            },
        }))
    }

    pub(super) async fn previous_items(
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
