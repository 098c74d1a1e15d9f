//! Self-healing jobs: a retry that meets a dead invocation's live lease is a retryable
//! failure, a job whose every retry failed is resumed by the sweeper (the `jobs-due` index),
//! and a job that keeps dying ends `failed` with the reason and reaches the dead-letter queue.
//! Time is the fake site's clock, moved by the tests.

use std::time::Duration;

use integration_tests::fake::SeedSpec;
use serde_json::json;
use shared::events::ExportContinued;
use shared::export::resume::Resumer;
use shared::export::runner::{MAX_DEATHS_IN_A_ROW, Outcome, new_job_id};
use shared::ids::{JobId, Product};
use shared::store::connectors::Connector;
use shared::store::jobs::JobStatus;

use crate::connect::tenant;
use crate::export_harness::{Export, far};

async fn jira() -> Export {
    Export::for_product(SeedSpec::small(), Product::Jira)
        .await
        .with_batch_size(1)
}

/// Start the job and drop its invocation once it holds the lease and has done `items` items
/// (0: as soon as it holds the lease): a crash.
async fn crash_after(x: &Export, connector: &Connector, job: &JobId, items: u64, first: bool) {
    let before = x.job_record(job).await.map_or(0, |j| j.invocations);
    let invocation = async {
        if first {
            x.exporter
                .requested(&x.request(connector, job), far())
                .await
        } else {
            let ev = ExportContinued {
                tenant: tenant(),
                job_id: job.clone(),
                connector_id: None,
            };
            x.exporter.continued(&ev, far()).await
        }
    };
    let crash = async {
        loop {
            if let Some(j) = x.job_record(job).await
                && j.invocations > before
                && j.items_done >= items
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        outcome = invocation => panic!("the invocation ended before its crash: {outcome:?}"),
        () = crash => {}
    }
}

fn continued(job: &JobId) -> serde_json::Value {
    json!({
        "detail-type": "ExportContinued",
        "detail": { "tenant": tenant(), "job_id": job },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_meeting_a_live_lease_fails_retryably_and_a_later_one_resumes() {
    let x = jira().await;
    let connector = x
        .connector("jira-retry", &format!("project = {}", x.project))
        .await;
    let job = new_job_id();
    // Slow calls, so the invocation is surely mid-way when it dies.
    crash_after(&x, &connector, &job, 2, true).await;
    assert_eq!(x.job(&job).await.status, JobStatus::Running);

    // Lambda's first retry, a minute later: the dead invocation's lease is live.
    x.advance(Duration::from_secs(60));
    let first = export::handle(&x.exporter, continued(&job), far()).await;
    let err = first.expect_err("a live lease must fail the invocation");
    assert!(err.retryable(), "{err}");
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "JobBusy");

    // The second retry, two minutes after that: the lease has lapsed; the job resumes.
    x.advance(Duration::from_secs(120));
    let mut outcome = x.continued(&job, far()).await;
    while outcome == Outcome::Continued {
        outcome = x.continued(&job, far()).await;
    }
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(
        x.job(&job).await.deaths,
        0,
        "progress after the death resets the count"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_every_retry_failed_is_resumed_by_the_sweeper() {
    let x = jira().await;
    let connector = x
        .connector("jira-sweep", &format!("project = {}", x.project))
        .await;
    let job = new_job_id();
    crash_after(&x, &connector, &job, 2, true).await;
    // Both retries failed (the event is in the dead-letter queue). Nothing is due before the
    // lease lapses...
    assert_eq!(
        x.exporter.sweep().await.unwrap_or_else(|e| panic!("{e}")),
        Vec::<JobId>::new()
    );
    // ...and the sweeper's next run after that continues the job.
    x.advance(Duration::from_secs(300));
    let events = x.w.aws.capture_events().await;
    let resumed = x.exporter.sweep().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resumed, vec![job.clone()]);
    let published = events.drain().await;
    assert!(
        published
            .iter()
            .any(|(t, d)| t == "ExportContinued" && d["job_id"] == job.as_str()),
        "{published:?}"
    );
    let mut outcome = x.continued(&job, far()).await;
    while outcome == Outcome::Continued {
        outcome = x.continued(&job, far()).await;
    }
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(
        x.exporter.sweep().await.unwrap_or_else(|e| panic!("{e}")),
        Vec::<JobId>::new(),
        "an ended job leaves the index"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_keeps_dying_fails_with_the_reason_and_reaches_the_dead_letter_queue() {
    let mut x = jira().await;
    let dlq =
        x.w.aws
            .clients
            .sqs
            .create_queue()
            .queue_name(format!("{}-dlq", x.w.aws.names.table))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .queue_url
            .unwrap_or_default();
    x.exporter.resumer = Resumer::new(
        x.w.aws.clients.sqs.clone(),
        Some(x.w.aws.resume_queue_url.clone()),
    )
    .with_dead_letters(Some(dlq.clone()));
    let connector = x
        .connector("jira-dies", &format!("project = {}", x.project))
        .await;
    // Each invocation dies (a timeout, out of memory) right after taking the job, before any
    // checkpoint: held there by the step gate, then dropped.
    let gate = x.exporter.gate.clone().unwrap_or_else(|| panic!("no gate"));
    let job = new_job_id();
    for n in 0..MAX_DEATHS_IN_A_ROW {
        if n > 0 {
            x.advance(Duration::from_secs(180));
        }
        gate.arm("leased");
        let ev = ExportContinued {
            tenant: tenant(),
            job_id: job.clone(),
            connector_id: None,
        };
        let request = x.request(&connector, &job);
        tokio::select! {
            outcome = async {
                if n == 0 {
                    x.exporter.requested(&request, far()).await
                } else {
                    x.exporter.continued(&ev, far()).await
                }
            } => panic!("the invocation ended before its crash: {outcome:?}"),
            () = gate.reached() => {}
        }
    }
    x.advance(Duration::from_secs(180));
    let outcome = x.continued(&job, far()).await;
    let Outcome::Failed { reason } = outcome else {
        panic!("expected a failure, got {outcome:?}")
    };
    assert!(reason.contains("stopped without finishing"), "{reason}");
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.failure_reason.as_deref(), Some(reason.as_str()));
    let messages =
        x.w.aws
            .clients
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .messages
            .unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let body: serde_json::Value =
        serde_json::from_str(messages[0].body().unwrap_or_default()).unwrap_or_default();
    assert_eq!(body["detail"]["job_id"], job.as_str());
}
