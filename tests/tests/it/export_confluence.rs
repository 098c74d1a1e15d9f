//! Issue 6: Confluence export. CQL → pages with bodies, versions, ancestors and attachments in
//! S3, redacted, resumable — on the same machinery as Jira's.

use std::time::Duration;

use integration_tests::fake::{self, ContentKind, SeedSpec};
use sha2::{Digest, Sha256};
use shared::events::ExportContinued;
use shared::export::redact::find_account_ids;
use shared::export::runner::{Outcome, new_job_id};
use shared::ids::Product;
use tokio::time::Instant;

use crate::connect::tenant;
use crate::export_jira::Export;

const MIB: u64 = 1024 * 1024;

async fn confluence(seed: SeedSpec) -> Export {
    Export::for_product(seed, Product::Confluence).await
}

#[tokio::test(flavor = "multi_thread")]
async fn export_delivers_exactly_the_selected_pages_with_attachments_and_ancestors() {
    let x = confluence(SeedSpec::small().with_confluence_attachment_of(12 * MIB)).await;
    let query = format!("space = {}", x.project);
    let connector = x.connector("wiki-main", &query).await;

    let (_, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let wiki =
        x.w.site
            .confluence(&x.cloud)
            .unwrap_or_else(|| panic!("no confluence"));
    let selected: Vec<_> = wiki
        .pages_in_space(&x.project)
        .into_iter()
        .filter(|p| matches!(p.kind, ContentKind::Page | ContentKind::BlogPost))
        .collect();
    assert!(
        wiki.pages().len() > selected.len(),
        "the fake must hold pages outside the query"
    );
    let content = x.content(&connector).await;
    let prefix = format!("{}/confluence/{}/{}/", tenant(), x.cloud, connector.id);
    let mut nested = 0;
    for page in &selected {
        let key = format!("items/{}.json", page.id);
        if page.forbidden {
            assert!(
                !content.contains_key(&key),
                "forbidden page {} exported",
                page.id
            );
            continue;
        }
        let body = x
            .exporter
            .blobs
            .get_bytes(&format!("{prefix}{key}"))
            .await
            .ok()
            .flatten();
        let doc: serde_json::Value =
            serde_json::from_slice(&body.unwrap_or_else(|| panic!("page {} missing", page.id)))
                .unwrap_or_default();
        let ancestors: Vec<String> = doc["ancestors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(ancestors, page.ancestor_ids, "ancestors of {}", page.id);
        nested += usize::from(ancestors.len() > 1);
        assert!(
            doc["body"]["storage"]["value"]
                .as_str()
                .is_some_and(|b| !b.is_empty()),
            "body of {}",
            page.id
        );
        for att_id in &page.attachment_ids {
            let att = wiki
                .attachment(att_id)
                .unwrap_or_else(|| panic!("no attachment {att_id}"));
            let listed = doc["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["id"] == att.id.as_str());
            let exported = listed
                .and_then(|a| a["exportedKey"].as_str())
                .map(str::to_owned);
            if att.forbidden {
                assert!(exported.is_none(), "forbidden attachment {att_id} exported");
                continue;
            }
            let exported = exported.unwrap_or_else(|| {
                panic!(
                    "attachment {att_id} of page {} not exported: {}",
                    page.id, doc["attachments"]
                )
            });
            let bytes = x
                .exporter
                .blobs
                .get_bytes(&exported)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                att.sha256_hex(),
                "content of {att_id}"
            );
        }
    }
    assert!(nested > 0, "the seed must have a nested page tree");
    let items = content.keys().filter(|k| k.starts_with("items/")).count();
    assert_eq!(
        items,
        selected.iter().filter(|p| !p.forbidden).count(),
        "nothing outside the query"
    );
    assert_eq!(x.orphaned_uploads().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn mentions_become_display_names_and_no_account_id_remains() {
    let x = confluence(SeedSpec::small()).await;
    let connector = x
        .connector("wiki-scan", &format!("space = {}", x.project))
        .await;
    let (_, outcome) = x.run(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");

    let mut corpus = String::new();
    for key in x
        .exporter
        .blobs
        .list_keys(&format!("{}/", tenant()))
        .await
        .unwrap_or_default()
    {
        if key.ends_with(".json") {
            let body = x
                .exporter
                .blobs
                .get_bytes(&key)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            corpus.push_str(&String::from_utf8_lossy(&body));
        }
    }
    corpus.push_str(&String::from_utf8_lossy(&crate::connect::dump(
        &x.w.aws.scan_table().await,
    )));
    for id in x.w.site.account_ids() {
        assert!(!corpus.contains(id.as_str()), "account id {id} leaked");
    }
    assert_eq!(find_account_ids(&corpus), Vec::<String>::new());
    assert!(
        !corpus.contains("ri:account-id"),
        "a storage-format user mention survived"
    );
    let names: Vec<String> =
        x.w.site
            .users()
            .into_iter()
            .map(|u| u.display_name)
            .collect();
    assert!(
        names.iter().any(|n| corpus.contains(&format!("@{n}"))),
        "mentions must read @Display Name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn continuations_under_injected_faults_give_the_same_content() {
    let x = confluence(SeedSpec::small()).await;
    let query = format!("space = {}", x.project);
    let clean = x.connector("wiki-clean", &query).await;
    let (_, done) = x.run(&clean).await;
    assert!(matches!(done, Outcome::Completed { .. }));

    x.w.site.inject(
        fake::Fault::status("/ex/confluence/", 429)
            .retry_after(0)
            .probability(0.1),
    );
    x.w.site
        .inject(fake::Fault::status("/ex/confluence/", 502).probability(0.1));
    let rough = x.connector("wiki-rough", &query).await;
    let job = new_job_id();
    let mut outcome = x
        .exporter
        .requested(
            &x.request(&rough, &job),
            Instant::now() + Duration::from_millis(300),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut invocations = 1;
    while outcome == Outcome::Continued {
        outcome = x
            .exporter
            .continued(
                &ExportContinued {
                    tenant: tenant(),
                    job_id: job.clone(),
                },
                Instant::now() + Duration::from_millis(300),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        invocations += 1;
        assert!(invocations < 500, "the export never finished");
    }
    x.w.site.clear_faults();

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(invocations >= 3, "only {invocations} invocations");
    assert_eq!(x.content(&rough).await, x.content(&clean).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_cql_fails_the_job_with_atlassians_message() {
    let x = confluence(SeedSpec::small()).await;
    let connector = x.connector("wiki-bad", "space = = nonsense").await;
    let (_, outcome) = x.run(&connector).await;
    let Outcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("rejected the query"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_run_exports_only_changed_pages() {
    let x = confluence(SeedSpec::small()).await;
    let connector = x
        .connector("wiki-incr", &format!("space = {}", x.project))
        .await;
    x.run(&connector).await;
    let wiki =
        x.w.site
            .confluence(&x.cloud)
            .unwrap_or_else(|| panic!("no confluence"));
    let page = wiki
        .pages_in_space(&x.project)
        .into_iter()
        .find(|p| p.kind == ContentKind::Page && !p.forbidden)
        .unwrap_or_else(|| panic!("no page"));
    x.w.site
        .touch_page(&x.cloud, &page.id)
        .unwrap_or_else(|e| panic!("{e}"));

    let (job, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let record =
        x.w.store()
            .get_job(&tenant(), &job)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no job"));
    assert!(!record.full_run);
    assert_eq!(record.items_done, 1);
}
