//! The export runner over a scripted, in-memory source (integration_tests::scripted): paging
//! guards, cursor expiry, skipped ids, transient errors, crashes held at a chosen fetch, and a
//! run of a thousand items, with no HTTP to Atlassian and no fake-site latency. Storage is
//! real (moto): scripted.rs says why. Time is the fake site's clock, moved by the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use integration_tests::fake::SeedSpec;
use integration_tests::scripted::{Call, MISSING_REASON, Script, Scripted};
use shared::export::runner::{
    Exporter, ITEM_WRITE, MAX_EMPTY_PAGES, MAX_ERRORS_IN_A_ROW, Outcome, new_job_id,
};
use shared::ids::{JobId, Product};
use shared::store::connectors::Connector;
use shared::store::jobs::JobStatus;

use crate::export_harness::{Export, exporter_with, far};

/// A consented Jira site whose exporter reads `items` scripted items, `page_size` a page, in
/// batches of `batch`.
async fn scripted(
    items: usize,
    page_size: usize,
    batch: usize,
    script: Script,
) -> Export<Scripted> {
    let mut x = Export::for_product(SeedSpec::small(), Product::Jira)
        .await
        .with_sources(Scripted::new(items, page_size).with_script(script))
        .await
        .with_batch_size(batch);
    x.exporter = tuned(x.exporter);
    x
}

/// The scripted exporter writes items without their documents (Markdown, attachment text):
/// a third of the S3 writes, and not what these tests are about (export_documents.rs is).
fn tuned(mut exporter: Exporter<Scripted>) -> Exporter<Scripted> {
    exporter.documents.enabled = false;
    exporter
}

/// The ids the job's manifest lists, in its order, and its skipped entries.
async fn manifest(x: &Export<Scripted>, outcome: &Outcome) -> (Vec<String>, serde_json::Value) {
    let m = x.manifest(outcome).await;
    let items = m["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (items, m["skipped"].clone())
}

/// Object versions of every item under a connector's prefix: item id → versions.
async fn item_versions(x: &Export<Scripted>, connector: &Connector) -> BTreeMap<String, usize> {
    let prefix = format!("{}items/", x.prefix(connector));
    let s3 = &x.w.aws.clients.s3;
    let mut out = BTreeMap::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(&x.w.aws.names.bucket)
            .prefix(&prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        for v in page.versions() {
            let id = v.key().unwrap_or_default()[prefix.len()..].trim_end_matches(".json");
            *out.entry(id.to_owned()).or_default() += 1;
        }
        if page.is_truncated() != Some(true) {
            return out;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

/// Every expected item landed exactly once: one object version each, in the manifest once, and
/// counted once in the job's record, which shows the job completed.
async fn assert_exactly_once(
    x: &Export<Scripted>,
    connector: &Connector,
    job: &JobId,
    outcome: &Outcome,
    expected: &[String],
    what: &str,
) {
    let want: BTreeSet<String> = expected.iter().cloned().collect();
    let versions = item_versions(x, connector).await;
    assert_eq!(
        versions.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "{what}: the items in the bucket"
    );
    let rewritten: Vec<_> = versions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        rewritten.is_empty(),
        "{what}: items written more than once: {rewritten:?}"
    );
    let (listed, _) = manifest(x, outcome).await;
    assert_eq!(
        listed.len(),
        want.len(),
        "{what}: the manifest lists each item once"
    );
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), want, "{what}");
    let record = x.job(job).await;
    assert_eq!(
        record.status,
        JobStatus::Completed,
        "{:?}",
        record.failure_reason
    );
    assert_eq!(record.items_done, want.len() as u64, "items counted once");
}

#[tokio::test]
async fn a_repeated_cursor_fails_the_job_with_a_clear_reason() {
    // Page 3 answers with page 1's next cursor: the search would loop over pages 2 and 3.
    let script = Script {
        repeat_cursor_from: Some(3),
        ..Script::default()
    };
    let x = scripted(50, 10, 5, script).await;
    let c = x.connector("scripted-loop", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Failed, "{outcome:?}");
    let reason = record.failure_reason.unwrap_or_default();
    assert!(
        reason.contains("page cursor it had returned before"),
        "{reason}"
    );
    assert_eq!(
        x.exporter.sources.page_calls(),
        3,
        "no page asked after the loop showed"
    );
    assert_eq!(record.items_done, 20, "the two pages before the loop");
}

#[tokio::test]
async fn endless_empty_pages_fail_the_job_with_a_clear_reason() {
    let script = Script {
        empty_pages_from: Some(2),
        ..Script::default()
    };
    let x = scripted(30, 10, 5, script).await;
    let c = x.connector("scripted-empty", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Failed, "{outcome:?}");
    let reason = record.failure_reason.unwrap_or_default();
    assert!(reason.contains("empty pages in a row"), "{reason}");
    assert_eq!(
        x.exporter.sources.page_calls(),
        1 + MAX_EMPTY_PAGES as usize,
        "stopped at the limit"
    );
    assert_eq!(record.items_done, 10);
}

#[tokio::test]
async fn an_expired_cursor_restarts_the_search_and_every_item_lands_once() {
    // Page calls 4 and 9 meet an expired cursor (the first while page 3 is being written:
    // it is the next page's search, asked ahead); each restarts from the first page.
    let script = Script {
        expired_pages: BTreeSet::from([4, 9]),
        ..Script::default()
    };
    let x = scripted(60, 10, 4, script).await;
    let c = x.connector("scripted-expiry", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let ids = x.exporter.sources.ids().to_vec();
    assert_exactly_once(&x, &c, &job, &outcome, &ids, "expiry").await;
    // 3 pages, an expiry; 3 pages exported before, a 4th, an expiry; 4 exported before, 2.
    assert_eq!(
        x.exporter.sources.page_calls(),
        15,
        "each expiry restarted the search"
    );
}

#[tokio::test]
async fn ids_the_fetch_does_not_return_are_recorded_skipped_with_the_reason() {
    let missing = BTreeSet::from(["S-3".to_owned(), "S-17".to_owned()]);
    let script = Script {
        missing: missing.clone(),
        ..Script::default()
    };
    let x = scripted(25, 10, 5, script).await;
    let c = x.connector("scripted-skips", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let exported: Vec<String> = x
        .exporter
        .sources
        .ids()
        .iter()
        .filter(|id| !missing.contains(*id))
        .cloned()
        .collect();
    assert_exactly_once(&x, &c, &job, &outcome, &exported, "skips").await;
    let record = x.job(&job).await;
    assert_eq!(record.skipped_count, 2);
    let inline: BTreeMap<String, String> = record
        .skipped
        .iter()
        .map(|s| (s.id.clone(), s.reason.clone()))
        .collect();
    let (_, skipped) = manifest(&x, &outcome).await;
    let listed: BTreeMap<String, String> = skipped
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let field = |f: &str| s[f].as_str().unwrap_or_default().to_owned();
            (field("id"), field("reason"))
        })
        .collect();
    for id in &missing {
        assert_eq!(
            inline.get(id).map(String::as_str),
            Some(MISSING_REASON),
            "job: {inline:?}"
        );
        assert_eq!(
            listed.get(id).map(String::as_str),
            Some(MISSING_REASON),
            "manifest: {listed:?}"
        );
    }
    assert_eq!(listed.len(), 2, "{listed:?}");
}

#[tokio::test]
async fn transient_errors_in_a_row_fail_the_job_at_the_limit() {
    // The batch from S-6 fails at every attempt up to the limit.
    let x = scripted(20, 10, 5, Script::default()).await;
    x.exporter
        .sources
        .fail_batch("S-6", MAX_ERRORS_IN_A_ROW as usize);
    let c = x.connector("scripted-flaky", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let record = x.job(&job).await;
    assert_eq!(record.status, JobStatus::Failed, "{outcome:?}");
    let reason = record.failure_reason.unwrap_or_default();
    assert!(
        reason.contains("gave up after repeated failures"),
        "{reason}"
    );
    assert_eq!(
        record.invocations, MAX_ERRORS_IN_A_ROW,
        "one failure per invocation"
    );
}

#[tokio::test]
async fn fewer_transient_errors_in_a_row_than_the_limit_let_the_job_complete() {
    // One short of the limit twice, with a batch landing in between: the count starts over.
    let below = MAX_ERRORS_IN_A_ROW as usize - 1;
    let x = scripted(20, 10, 5, Script::default()).await;
    x.exporter.sources.fail_batch("S-6", below);
    x.exporter.sources.fail_batch("S-16", below);
    let c = x.connector("scripted-flaky", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let ids = x.exporter.sources.ids().to_vec();
    assert_exactly_once(&x, &c, &job, &outcome, &ids, "transient errors").await;
    assert_eq!(x.job(&job).await.invocations, 1 + 2 * below as u32);
}

/// Start a job and hold its first invocation at `call`, then drop it there: a crash.
async fn crash_at(x: &Export<Scripted>, connector: &Connector, job: &JobId, call: Call) {
    x.exporter.sources.hold_at(call);
    let request = x.request(connector, job);
    let invocation = x.exporter.requested(&request, far());
    tokio::select! {
        outcome = invocation => panic!("the invocation ended before {call:?}: {outcome:?}"),
        () = x.exporter.sources.held() => {}
    }
}

/// Lambda's retries of the crashed `ExportRequested`, on the test's clock: one minute later
/// (the dead invocation's lease is live: a retryable failure), then two more minutes later
/// (lapsed: the retry takes the job over), then continuations to the end.
async fn redeliver(x: &Export<Scripted>, connector: &Connector, job: &JobId) -> Outcome {
    let retry = || async {
        x.exporter
            .requested(&x.request(connector, job), far())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    x.advance(Duration::from_secs(60));
    assert_eq!(retry().await, Outcome::Busy);
    assert_eq!(x.job(job).await.status, JobStatus::Running);
    x.advance(Duration::from_secs(120));
    let mut outcome = retry().await;
    loop {
        match outcome {
            Outcome::Continued => {}
            Outcome::Waiting { until } => x.advance_to(until),
            other => return other,
        }
        outcome = x.continued(job, far()).await;
    }
}

#[tokio::test]
async fn a_crash_held_at_a_chosen_fetch_then_redelivery_exports_every_item_once() {
    // 40 items, pages of 10, batches of 3: each page is fetched as 3 + 3 + 3 + 1, in search
    // order, the next page's while a page's last batches are written. Fetch calls 1–4 are
    // page 1 (4: its last batch), 5 is page 2's first, 8 page 2's last, 13 page 4's first, 16
    // the job's last batch.
    let mut x = scripted(0, 10, 3, Script::default()).await;
    for k in [1, 2, 4, 5, 8, 13, 16] {
        x.exporter = tuned(exporter_with(&x.w, Scripted::new(40, 10)).await);
        x.exporter.batch_size = 3;
        let c = x
            .connector(&format!("scripted-crash-{k}"), "project = S")
            .await;
        let job = new_job_id();
        crash_at(&x, &c, &job, Call::Fetch(k)).await;
        let outcome = redeliver(&x, &c, &job).await;
        let ids = x.exporter.sources.ids().to_vec();
        assert_exactly_once(&x, &c, &job, &outcome, &ids, &format!("crash at fetch {k}")).await;
    }
}

#[tokio::test]
async fn the_next_pages_are_fetched_and_written_while_a_pages_last_item_is_not() {
    // 30 items, pages of 10, batches of 5: fetch 6 is page 3's last batch. The first item's
    // write (page 1's) is held, so page 1 cannot land; the fetch side must still go on into
    // pages 2 and 3, their items written beside the held one. (Fetching ahead only one page's
    // first batches, or opening a page only once the one before has landed, stops at fetch 4:
    // then the invocation never gets to fetch 6 and the guard fails the test.)
    let x = scripted(30, 10, 5, Script::default()).await;
    let c = x.connector("scripted-cross", "project = S").await;
    let job = new_job_id();
    let gate = x.exporter.gate.clone().unwrap_or_else(|| panic!("no gate"));
    gate.arm(ITEM_WRITE);
    x.exporter.sources.hold_at(Call::Fetch(6));
    let request = x.request(&c, &job);
    let invocation = x.exporter.requested(&request, far());
    let reached = async {
        tokio::select! {
            outcome = invocation => panic!("the invocation ended with an item held: {outcome:?}"),
            () = x.exporter.sources.held() => {}
        }
    };
    // Only a guard against a hang: the pass never waits on it.
    tokio::time::timeout(Duration::from_secs(120), reached)
        .await
        .unwrap_or_else(|_| panic!("the fetch side waited for page 1's last item to land"));
    let saved = x.job(&job).await;
    assert!(!gate.disarm(), "an item's write was held");
    assert_eq!(
        (saved.checkpoint.page_no, saved.items_done),
        (1, 0),
        "page 1 has not landed"
    );
    // The invocation is dropped there (a crash with later pages' items written but not
    // recorded): the redelivery ends with every item once.
    drop(gate);
    let outcome = redeliver(&x, &c, &job).await;
    let ids = x.exporter.sources.ids().to_vec();
    assert_exactly_once(&x, &c, &job, &outcome, &ids, "crash with page 1 held").await;
}

#[tokio::test]
async fn a_crash_held_at_a_page_search_then_redelivery_exports_every_item_once() {
    // Page call 3 is page 3's search, asked ahead while page 2's batches are written.
    let x = scripted(30, 10, 4, Script::default()).await;
    let c = x.connector("scripted-crash-page", "project = S").await;
    let job = new_job_id();
    crash_at(&x, &c, &job, Call::Page(3)).await;
    let outcome = redeliver(&x, &c, &job).await;
    let ids = x.exporter.sources.ids().to_vec();
    assert_exactly_once(&x, &c, &job, &outcome, &ids, "crash at page 3").await;
}

#[tokio::test]
async fn a_thousand_items_run_through_the_pipeline_with_one_fetch_per_batch() {
    // Production's item concurrency (8); four pages of 250 in batches of 25.
    let mut x = scripted(1000, 250, 25, Script::default())
        .await
        .with_production_batches();
    x.exporter.batch_size = 25;
    let c = x.connector("scripted-many", "project = S").await;
    let (job, outcome) = x.run(&c).await;
    let ids = x.exporter.sources.ids().to_vec();
    assert_exactly_once(&x, &c, &job, &outcome, &ids, "1,000 items").await;
    let source = &x.exporter.sources;
    // The next page's search and first batch, fetched ahead, are used, never asked again.
    assert_eq!(source.page_calls(), 4);
    assert_eq!(source.fetch_calls(), 40);
    // Bounded: the fetch side's batches at once (runner/fetches.rs `FETCHES_AHEAD`), of ten
    // a page.
    assert_eq!(source.max_fetches_at_once(), 4, "fetches at once");
}
