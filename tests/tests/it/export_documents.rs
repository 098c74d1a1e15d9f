//! Issue 18 end to end: every exported Jira issue and Confluence page gets a Markdown document
//! and a metadata record that validates against the repository's JSON Schema, with no account
//! id in either (the independent checker); attachment text is extracted, and a zip bomb and a
//! truncated PDF are skipped with reasons while the export completes; the manifest lists the
//! document keys, also for items a later run found unchanged.

use std::collections::BTreeSet;

use integration_tests::fake::SeedSpec;
use integration_tests::fake::crafted::{Crafted, NOTES_TEXT, ZIP_BOMB_UNPACKED};
use integration_tests::leak::LeakChecker;
use serde_json::Value;
use shared::export::runner::Outcome;
use shared::ids::Product;
use shared::store::connectors::Connector;

use crate::export_harness::{Export, MIB};

/// The repository's schema of the metadata records (documents/schema/).
const SCHEMA: &str = include_str!("../../../documents/schema/document-metadata.v1.json");

/// An export over the small seed plus the crafted attachments (a Markdown file, a zip bomb, a
/// truncated PDF; tests/src/fake/crafted.rs). The unpacked-bytes limit is lowered from its
/// production 256 MiB to 4 MiB so that the 16 MiB bomb trips it without the test inflating
/// hundreds of MiB in a debug build; every other limit is the production one.
async fn export(product: Product) -> Export {
    let mut x = Export::for_product(SeedSpec::small().with_crafted_attachments(), product).await;
    x.exporter.documents.limits.max_unpacked_bytes = 4 * MIB;
    assert!(ZIP_BOMB_UNPACKED as u64 > x.exporter.documents.limits.max_unpacked_bytes);
    x
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jira_export_writes_one_valid_document_per_issue_and_skips_hostile_attachments() {
    let x = export(Product::Jira).await;
    let connector = x
        .connector("jira-docs", &format!("project = {}", x.project))
        .await;
    let (_, outcome) = x.run(&connector).await;
    check_documents(&x, &connector, &outcome, "/browse/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confluence_export_writes_one_valid_document_per_page_and_skips_hostile_attachments() {
    let x = export(Product::Confluence).await;
    // Every space: the crafted attachments land on pages of either.
    let connector = x.connector("conf-docs", "").await;
    let (_, outcome) = x.run(&connector).await;
    check_documents(&x, &connector, &outcome, "/wiki/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_finds_every_item_unchanged_still_lists_their_documents() {
    let x = export(Product::Jira).await;
    let connector = x
        .connector("jira-again", &format!("project = {}", x.project))
        .await;
    let (_, first) = x.run(&connector).await;
    let first = x.manifest(&first).await;
    let some_document = strings(&first["documents"])
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no document: {first}"));
    let written_at = x.last_modified(&some_document).await;
    // S3 times have a resolution of one second: a rewrite would show.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = x.requested_full(&connector).await;
    let second = x.manifest(&second).await;
    assert_eq!(second["items"], first["items"]);
    assert_eq!(
        x.last_modified(&some_document).await,
        written_at,
        "an unchanged document is not written again"
    );
    assert!(
        !strings(&first["texts"]).is_empty(),
        "the crafted notes have text: {first}"
    );
    for list in ["documents", "texts"] {
        assert_eq!(
            strings(&second[list]),
            strings(&first[list]),
            "{list} of the unchanged items"
        );
    }
}

async fn check_documents(x: &Export, connector: &Connector, outcome: &Outcome, url_part: &str) {
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let manifest = x.manifest(outcome).await;
    let prefix = x.prefix(connector);
    let items = strings(&manifest["items"]);
    assert!(items.len() > 10, "{manifest}");

    // One document and one metadata record per item, and nothing else under documents/ but
    // attachment texts.
    let expected: BTreeSet<String> = items
        .iter()
        .flat_map(|id| {
            [
                format!("{prefix}documents/{id}.md"),
                format!("{prefix}documents/{id}.json"),
            ]
        })
        .collect();
    assert_eq!(strings(&manifest["documents"]), expected);
    let stored: BTreeSet<String> = x
        .exporter
        .blobs
        .list_keys(&format!("{prefix}documents/"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .collect();
    let texts = strings(&manifest["texts"]);
    assert_eq!(
        stored,
        expected.union(&texts).cloned().collect(),
        "documents/ holds exactly the documents and the texts the manifest lists"
    );

    let schema: Value = serde_json::from_str(SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema: {e}"));
    let account_ids = x.w.site.account_ids();
    assert!(!account_ids.is_empty(), "the leak check would be vacuous");
    let checker = LeakChecker::new().with_known(&account_ids);
    let names: Vec<String> =
        x.w.site
            .users()
            .into_iter()
            .map(|u| u.display_name)
            .collect();
    let mut with_comments = 0;
    let mut attachments_seen = Vec::new();
    for id in &items {
        let md = x
            .object(&format!("{prefix}documents/{id}.md"))
            .await
            .unwrap_or_else(|| panic!("no document for {id}"));
        let md = String::from_utf8(md).unwrap_or_else(|e| panic!("{id}: {e}"));
        let json = x
            .object(&format!("{prefix}documents/{id}.json"))
            .await
            .unwrap_or_else(|| panic!("no metadata for {id}"));
        let meta: Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{id}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&meta)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{id}: {errors:?}\n{meta:#}");
        checker.assert_clean(&format!("document {id}"), &md);
        checker.assert_clean(&format!("metadata {id}"), &String::from_utf8_lossy(&json));
        assert_eq!(meta["id"], id.as_str());
        assert!(
            meta["url"].as_str().is_some_and(|u| u.contains(url_part)),
            "{meta}"
        );
        assert!(md.starts_with("# "), "{id}: {md}");
        if meta["commentCount"].as_u64().unwrap_or(0) > 0 {
            with_comments += 1;
            assert!(md.contains("## Comments"), "{id}: {md}");
            assert!(
                names.iter().any(|n| md.contains(&format!("### {n}"))),
                "comments are headed by their authors' names: {md}"
            );
        }
        for a in meta["attachments"].as_array().into_iter().flatten() {
            attachments_seen.push(a.clone());
            let key = a["key"].as_str().unwrap_or_default();
            assert!(
                key.starts_with(&format!("{prefix}attachments/{id}/")),
                "{a}"
            );
        }
    }
    assert!(with_comments > 0, "the seed has commented items");

    // The crafted attachments: text from the notes, skipped reasons for the bomb and the PDF.
    let by_name = |c: Crafted| {
        attachments_seen
            .iter()
            .find(|a| a["name"] == c.filename())
            .cloned()
            .unwrap_or_else(|| panic!("{} not in any metadata", c.filename()))
    };
    let notes = by_name(Crafted::Notes);
    let text_key = notes["textKey"]
        .as_str()
        .unwrap_or_else(|| panic!("no text for the notes: {notes}"));
    assert!(texts.contains(text_key), "the manifest lists {text_key}");
    let text = x.object(text_key).await.unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&text).contains(NOTES_TEXT),
        "extracted text"
    );
    let skipped: Vec<(String, String)> = manifest["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (crafted, reason) in [
        (Crafted::ZipBomb, "skipped: compressed content expands past"),
        (Crafted::TruncatedPdf, "skipped: malformed PDF"),
    ] {
        let meta = by_name(crafted);
        assert_eq!(meta["textKey"], Value::Null, "{meta}");
        assert!(
            meta["textSkipped"]
                .as_str()
                .is_some_and(|r| r.starts_with(reason)),
            "{meta}"
        );
        let att = meta["id"].as_str().unwrap_or_default();
        assert!(
            skipped
                .iter()
                .any(|(id, r)| id.ends_with(&format!("/attachment/{att}/text"))
                    && r.starts_with(reason)),
            "the manifest records why {} has no text: {skipped:?}",
            crafted.filename()
        );
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}
