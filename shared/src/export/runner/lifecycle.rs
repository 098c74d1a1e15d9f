//! A job's life: created (one per connector), leased, run, paused with a continuation,
//! waiting on Atlassian, swept back when its invocation died, failed.

use super::*;

impl<P: Sources> Exporter<P> {
    pub(super) async fn step(&self, name: &'static str) {
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
        // The connector and the job (a redelivery finds it) are read at once; a job id we make
        // up here is new, so it is not looked for.
        let existing = async {
            match &ev.job_id {
                Some(id) => store.get_job(&ev.tenant, id).await,
                None => Ok(None),
            }
        };
        let (connector, existing) =
            futures::try_join!(store.get_connector(&ev.tenant, &ev.connector_id), existing)?;
        let Some(connector) = connector else {
            // A retry of an invocation killed after an erase: sweep what it wrote.
            self.leftovers(&ev.tenant, Some(&ev.connector_id)).await?;
            return Err(ExportError::Terminal(format!(
                "connector {} not found",
                ev.connector_id
            )));
        };
        if let Some(job) = existing {
            return self.run(job, deadline).await;
        }
        let job_id = ev.job_id.clone().unwrap_or_else(new_job_id);
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
    pub(super) async fn claim(
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
            None => {
                // Gone: finished long ago (its record expired), or erased, maybe while an
                // invocation of it was writing and was then killed before its own clean-up
                // (runner/erased.rs). Lambda retries the event: the retry sweeps.
                if self.leftovers(&ev.tenant, ev.connector_id.as_ref()).await? > 0 {
                    return Ok(Outcome::Erased);
                }
                Ok(Outcome::AlreadyFinished)
            }
        }
    }

    pub(super) async fn run_job(
        &self,
        mut job: Job,
        deadline: Instant,
    ) -> Result<Outcome, ExportError> {
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
        self.step("leased").await;
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
            let drive = Box::pin(self.drive(&mut job, &owner, deadline));
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
    pub(super) async fn heartbeat(&self, job: &Job, owner: &str) -> ExportError {
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
    pub(super) async fn pause(&self, job: &Job, owner: &str) -> Result<(), ExportError> {
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
                connector_id: Some(job.connector_id.clone()),
            }))
            .await
            .map_err(|e| ExportError::Store(StoreError::Aws(e)))?;
        tracing::info!(items = job.items_done, bytes = job.bytes_done, phase = %job.phase, "export paused; continuation requested");
        Ok(())
    }

    /// Atlassian asked us to come back at `until`: for the whole site (recorded where every job
    /// and the token refresh of the site read it) or for one endpoint (this job only). Ask for
    /// a delivery at that time, then mark the job `waiting` and let go of it.
    pub(super) async fn wait(
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
                    connector_id: Some(job.connector_id.clone()),
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
                connector_id: msg.connector_id.clone(),
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
                    connector_id: Some(job.connector_id.clone()),
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
    pub(super) async fn site_hold(
        &self,
        cloud: &CloudId,
    ) -> Result<Option<OffsetDateTime>, ExportError> {
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

    pub(super) async fn fail(
        &self,
        mut job: Job,
        owner: &str,
        reason: String,
    ) -> Result<Outcome, ExportError> {
        let store = &self.keeper.store;
        // Atlassian's error text can quote user data (a JQL naming an account id or an
        // e-mail address): one scrub before every sink — the job record, the event, the log
        // (PRIVACY.md P5, P7).
        let reason = crate::export::redact::scrub_for_sink(&reason);
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
}
