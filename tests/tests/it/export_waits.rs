//! Waiting is a state: when Atlassian answers a quota 429 (`Retry-After: 1800`), the job
//! records the site's "not before" time, shows `waiting`, stops, and is resumed after it by a
//! delayed delivery; no request reaches the site before that time, no invocation spans the
//! wait, and every issue lands exactly once. The clock is the fake site's, moved by the test.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::fake::SeedSpec;
use shared::events::ExportContinued;
use shared::export::runner::{Outcome, new_job_id};
use shared::ids::{CloudId, Product};
use shared::store::connectors::{Connector, ConnectorOptions};
use shared::store::jobs::JobStatus;

use crate::connect::tenant;
use crate::export_harness::{Export, exporter_for, far};

/// 1,500 issues in ALPHA (plus a few elsewhere), no attachments: one Atlassian call at a time,
/// so "no call before the time" is exact.
fn quota_seed() -> SeedSpec {
    SeedSpec {
        jira_projects: vec![("ALPHA".into(), 1500), ("BETA".into(), 10)],
        jira_comment_heavy_issues: 3,
        ..SeedSpec::empty()
    }
}

async fn without_attachments(x: &Export, id: &str) -> Connector {
    let mut c = x.connector(id, &format!("project = {}", x.project)).await;
    c.options = ConnectorOptions {
        attachments: false,
        all_comments: true,
    };
    x.w.store()
        .put_connector(&c)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn jira_prefix(x: &Export) -> String {
    format!("/ex/jira/{}/", x.cloud)
}

/// Jira's bulk fetch: a quota on it runs out at a batch, not at whichever request of the
/// several in flight comes next.
fn bulkfetch_prefix(x: &Export) -> String {
    format!("{}rest/api/3/issue/bulkfetch", jira_prefix(x))
}

/// Messages waiting in the resume queue with a delivery delay (SQS holds them until then).
async fn delayed_resumes(x: &Export) -> u64 {
    let out = x
        .w
        .aws
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&x.w.aws.resume_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    out.attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_429_mid_export_waits_without_calling_then_completes_exactly_once() {
    let x = Export::for_product(quota_seed(), Product::Jira)
        .await
        .with_production_batches();
    let connector = without_attachments(&x, "jira-quota").await;
    // Searches and four batches succeed, then the tenant's hourly quota is spent, at the fifth
    // bulk fetch: a point that does not depend on how many requests are in flight (the
    // exporter fetches four batches at once, the next page's search beside them, and asks for
    // the fifth only once the first is handed to the writes).
    x.w.site.exhaust_quota_after(&bulkfetch_prefix(&x), 4, 1800);

    let job = new_job_id();
    // The 429 came between `before` and `after`, however long the invocation took on a loaded
    // machine: the wait ends about Retry-After (1,800 s) after it.
    let before = x.w.site.now();
    let outcome = x
        .exporter
        .requested(&x.request(&connector, &job), far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Outcome::Waiting { until } = outcome else {
        panic!("expected a wait, got {outcome:?}")
    };
    let after = x.w.site.now();
    assert!(
        until >= before + time::Duration::seconds(1790)
            && until <= after + time::Duration::seconds(1900),
        "resumes at the Retry-After: {until}, the 429 came between {before} and {after}"
    );
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Waiting);
    assert_eq!(record.resume_at, Some(until));
    assert!(
        record.items_done > 0 && record.items_done < 1500,
        "mid-way: {}",
        record.items_done
    );
    assert_eq!(
        record.checkpoint.errors_in_a_row, 0,
        "a wait is not a failure"
    );
    let cloud = CloudId::parse(x.cloud.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        x.w.store()
            .site_not_before(&cloud)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(until),
        "the site's not-before time is recorded for every job and the refresh of the site"
    );
    assert_eq!(
        delayed_resumes(&x).await,
        1,
        "a delayed delivery is on its way"
    );

    // A delivery before the time (a duplicate, the sweeper) calls nothing and changes nothing.
    let calls = x.w.site.hits(&jira_prefix(&x));
    x.advance(Duration::from_secs(1200));
    assert_eq!(x.continued(&job, far()).await, Outcome::Waiting { until });
    assert_eq!(
        x.w.site.hits(&jira_prefix(&x)),
        calls,
        "no call before the time"
    );
    assert_eq!(x.job(&job).await.status, JobStatus::Waiting);

    // At the time, the due delivery resumes it; it runs to the end.
    x.advance_to(until);
    let mut outcome = x.continued(&job, far()).await;
    while outcome == Outcome::Continued {
        outcome = x.continued(&job, far()).await;
    }
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(
        x.w.site.early_calls(),
        0,
        "a request reached the site before not-before"
    );
    assert_eq!(x.w.site.quota_429s(), 1);

    let site = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    let selected: BTreeSet<String> = site
        .search(&connector.query)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(selected.len(), 1500);
    let manifest = x.manifest(&outcome).await;
    let listed: Vec<String> = manifest["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed.len(), 1500, "every issue listed exactly once");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), selected);
    assert_eq!(x.items(&connector).await.len(), 1500);
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.items_done, 1500, "no batch counted twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_connectors_on_one_site_share_its_wait() {
    let x = Export::for_product(quota_seed(), Product::Jira)
        .await
        .with_production_batches();
    // B runs in another "Lambda container": its own exporter, HTTP client and memory, so what
    // it knows of the wait comes from the table.
    let other = exporter_for(&x.w).await;
    let a = without_attachments(&x, "jira-share-a").await;
    let b = without_attachments(&x, "jira-share-b").await;
    let (job_a, job_b) = (new_job_id(), new_job_id());
    // Both jobs start (an invocation each that pauses at once): two live jobs of one site.
    let now = tokio::time::Instant::now();
    let first_a = x.exporter.requested(&x.request(&a, &job_a), now).await;
    let first_b = other.requested(&x.request(&b, &job_b), now).await;
    assert_eq!(
        first_a.unwrap_or_else(|e| panic!("{e}")),
        Outcome::Continued
    );
    assert_eq!(
        first_b.unwrap_or_else(|e| panic!("{e}")),
        Outcome::Continued
    );

    // The quota runs out at the fifth bulk fetch of A's continuation (as in
    // `stopped_mid_page`): one request refused, whatever else is in flight.
    x.w.site.exhaust_quota_after(&bulkfetch_prefix(&x), 4, 1800);
    let Outcome::Waiting { until } = x.continued(&job_a, far()).await else {
        panic!("A hits the quota and waits")
    };
    let calls = x.w.site.hits(&jira_prefix(&x));
    let continued_b = ExportContinued {
        tenant: tenant(),
        job_id: job_b.clone(),
        connector_id: None,
    };
    let out_b = other
        .continued(&continued_b, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out_b,
        Outcome::Waiting { until },
        "B waits for the same time"
    );
    assert_eq!(
        x.w.site.hits(&jira_prefix(&x)),
        calls,
        "B never called the site"
    );
    assert_eq!(x.job(&job_b).await.status, JobStatus::Waiting);
    assert_eq!(x.w.site.quota_429s(), 1);

    x.advance_to(until);
    for (exporter, job) in [(&x.exporter, &job_a), (&other, &job_b)] {
        let ev = ExportContinued {
            tenant: tenant(),
            job_id: job.clone(),
            connector_id: None,
        };
        let mut outcome = exporter
            .continued(&ev, far())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        while outcome == Outcome::Continued {
            outcome = exporter
                .continued(&ev, far())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    }
    assert_eq!(x.w.site.early_calls(), 0);
    assert_eq!(x.items(&a).await.len(), 1500);
    assert_eq!(x.items(&b).await.len(), 1500);
}

/// Start a job of `connector` that is stopped mid-way through its first search page by a quota
/// wait (a point that does not depend on timing). Returns the job and the resume time.
async fn stopped_mid_page(
    x: &Export,
    connector: &Connector,
) -> (shared::ids::JobId, time::OffsetDateTime) {
    // The quota runs out at the page's fifth bulk fetch: the exporter fetches four batches at
    // once (runner/fetches.rs `FETCHES_AHEAD`) and asks for the fifth only once the first is
    // handed to the writes, so the first four batches land and the page stops at 400 of 500.
    x.w.site.exhaust_quota_after(&bulkfetch_prefix(x), 4, 1800);
    let job = new_job_id();
    let outcome = x
        .exporter
        .requested(&x.request(connector, &job), far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Outcome::Waiting { until } = outcome else {
        panic!("expected a wait, got {outcome:?}")
    };
    let record = x.job(&job).await;
    assert!(
        record.items_done > 0 && record.items_done < 500,
        "{}",
        record.items_done
    );
    assert!(record.checkpoint.next_page.is_some(), "more pages to come");
    (job, until)
}

async fn finish(x: &Export, job: &shared::ids::JobId) -> Outcome {
    let mut outcome = x.continued(job, far()).await;
    while outcome == Outcome::Continued {
        outcome = x.continued(job, far()).await;
    }
    outcome
}

/// The ids a completed job's manifest lists (asserting none is listed twice).
async fn listed(x: &Export, outcome: &Outcome) -> BTreeSet<String> {
    let manifest = x.manifest(outcome).await;
    let ids: Vec<String> = manifest["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "an item listed twice");
    set
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_next_page_token_restarts_the_search_without_duplicates() {
    let x = Export::for_product(quota_seed(), Product::Jira)
        .await
        .with_production_batches();
    let connector = without_attachments(&x, "jira-expired").await;
    let (job, _) = stopped_mid_page(&x, &connector).await;
    let searches =
        x.w.site
            .hits(&format!("{}rest/api/3/search/jql", jira_prefix(&x)));
    // Eight days later the job's `nextPageToken` has expired (Jira keeps them 7 days).
    x.advance(Duration::from_secs(8 * 86_400));

    let outcome = finish(&x, &job).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let site = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    let selected: BTreeSet<String> = site
        .search(&connector.query)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed(&x, &outcome).await, selected);
    assert_eq!(x.job(&job).await.items_done, 1500, "no item exported twice");
    let after =
        x.w.site
            .hits(&format!("{}rest/api/3/search/jql", jira_prefix(&x)));
    // Refused page 2, then pages 1 (all done, skipped), 2 and 3 again.
    assert_eq!(after - searches, 4, "the search restarted once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_changed_during_a_run_applies_to_the_next_run_only() {
    let x = Export::for_product(quota_seed(), Product::Jira)
        .await
        .with_production_batches();
    let connector = without_attachments(&x, "jira-requery").await;
    let (job, until) = stopped_mid_page(&x, &connector).await;
    // The connector changes while its job waits (the store directly: the API would say 409).
    let mut changed = connector.clone();
    changed.query = "project = BETA".into();
    x.w.store()
        .put_connector(&changed)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    x.advance_to(until);

    let outcome = finish(&x, &job).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let site = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    let alpha: BTreeSet<String> = site
        .search(&connector.query)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        listed(&x, &outcome).await,
        alpha,
        "only the query the job started with"
    );
    let stored =
        x.w.store()
            .get_connector(&connector.tenant, &connector.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no connector"));
    assert_eq!(
        stored.watermark, None,
        "the next run (new query) is a full one"
    );
    assert_eq!(stored.active_job, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_messages_are_sent_on_until_due_then_continue_the_job() {
    let x = Export::for_product(SeedSpec::small(), Product::Jira).await;
    let events = x.w.aws.capture_events().await;
    let job = new_job_id();
    let now = x.w.site.now();
    let message = |at: time::OffsetDateTime, id: &str| {
        let body = serde_json::to_string(&shared::export::resume::ResumeAt {
            tenant: tenant(),
            job_id: job.clone(),
            connector_id: None,
            at,
        })
        .unwrap_or_default();
        serde_json::json!({ "messageId": id, "body": body, "eventSource": "aws:sqs" })
    };
    // Half an hour away: more than SQS delays at once, so the message is sent on (a chain).
    let early =
        serde_json::json!({ "Records": [message(now + time::Duration::seconds(1800), "m1")] });
    let answer = export::handle(&x.exporter, early, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
    assert_eq!(delayed_resumes(&x).await, 1, "sent on with the delay left");
    assert!(
        events
            .drain()
            .await
            .iter()
            .all(|(t, _)| t != "ExportContinued"),
        "nothing continued before the time"
    );

    let due = serde_json::json!({ "Records": [message(now - time::Duration::seconds(1), "m2")] });
    export::handle(&x.exporter, due, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let continued: Vec<_> = events
        .drain()
        .await
        .into_iter()
        .filter(|(t, d)| t == "ExportContinued" && d["job_id"] == job.as_str())
        .collect();
    assert_eq!(continued.len(), 1);
}
