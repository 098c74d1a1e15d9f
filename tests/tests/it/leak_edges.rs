//! Issue 16 (PRIVACY.md P5, P7): personal data that reaches us outside the documents — an
//! attachment named after an account id, Atlassian's JQL error quoting an account id and an
//! e-mail address — leaves no trace in S3 keys, object metadata, the table, the events or the
//! logs, as seen by the independent checker (tests/src/leak.rs), not the redactor's scanner.

use integration_tests::fake::SeedSpec;
use integration_tests::leak::LeakChecker;
use shared::export::runner::Outcome;
use shared::ids::Product;

use crate::connect::{dump, tenant};
use crate::export_harness::Export;
use crate::support::LogCapture;

/// A current account id and a legacy (24-hex) one, and an e-mail address.
const ACCOUNT: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
const LEGACY: &str = "5b10ac8d82e05b22cc7d4ef5";
const EMAIL: &str = "jane.doe@example.com";

#[tokio::test(flavor = "multi_thread")]
async fn an_account_id_in_a_file_name_or_a_jql_error_reaches_no_sink() {
    let ex = Export::for_product(SeedSpec::small(), Product::Jira).await;
    let events = ex.w.aws.capture_events().await;
    let jira =
        ex.w.site
            .jira(&ex.cloud)
            .unwrap_or_else(|| panic!("no jira"));
    let mut ours = jira
        .attachments()
        .into_iter()
        .filter(|a| !a.forbidden && a.container.starts_with(&format!("{}-", ex.project)));
    for name in [format!("avatar-{ACCOUNT}.png"), format!("{LEGACY}.png")] {
        let att = ours.next().unwrap_or_else(|| panic!("too few attachments"));
        jira.rename_attachment(&att.id, &name)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let bad_jql = format!("project = \"{ACCOUNT} {EMAIL}\"");
    // Not vacuous: the fake's error quotes both, as Jira's "The value '…' does not exist".
    let quoted = jira.search(&bad_jql).err().unwrap_or_default();
    assert!(
        quoted.contains(ACCOUNT) && quoted.contains(EMAIL),
        "{quoted}"
    );

    let good = ex
        .connector("jira-main", &format!("project = {}", ex.project))
        .await;
    let (_, outcome) = ex.run(&good).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let bad = ex.connector("jira-bad", &bad_jql).await;
    let (job, outcome) = ex.run(&bad).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert!(ex.job(&job).await.failure_reason.is_some());

    let checker = LeakChecker::new()
        .with_known(&[ACCOUNT, LEGACY, EMAIL])
        .with_emails();
    let s3 = &ex.w.aws.clients.s3;
    let keys = ex
        .exporter
        .blobs
        .list_keys(&format!("{}/", tenant()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        keys.iter().any(|k| k.contains("/attachments/")),
        "nothing exported"
    );
    for key in &keys {
        checker.assert_clean("an S3 key", key);
        let head = s3
            .head_object()
            .bucket(&ex.w.aws.names.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let metadata = format!("{:?}", head.metadata());
        checker.assert_clean(&format!("the metadata of {key}"), &metadata);
    }
    // The customer's own query is kept as they wrote it (the connector's `query`, the job's
    // `snapshot` of it): their configuration, not something Atlassian told us. Everything else
    // — the failure reason above all — must be clean.
    let mut items = ex.w.aws.scan_table().await;
    for item in &mut items {
        item.remove("query");
        item.remove("snapshot");
    }
    let table = String::from_utf8_lossy(&dump(&items)).into_owned();
    checker.assert_clean("the table", &table);
    let published = events.drain().await;
    assert!(
        published.iter().any(|(kind, _)| kind == "ExportFailed"),
        "{published:?}"
    );
    let events_text = serde_json::to_string(&published).unwrap_or_default();
    checker.assert_clean("the events", &events_text);
    checker.assert_clean("the logs", &LogCapture::global().text());
}
