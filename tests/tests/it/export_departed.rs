//! Issue 18: an attachment that leaves its item (deleted in Jira, or renamed: its key holds the
//! file name) leaves the bucket at the item's next export — its object under
//! `attachments/{itemId}/` and its text under `documents/{itemId}/attachments/` — and a run
//! after that changes nothing more (shared/src/export/runner/departed.rs).

use std::collections::BTreeSet;

use integration_tests::fake::SeedSpec;
use shared::export::runner::Outcome;
use shared::ids::Product;

use crate::export_harness::Export;

/// Every attachment object and attachment text under the connector's prefix.
async fn attachment_keys(x: &Export, prefix: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for under in ["attachments/", "documents/"] {
        let listed = x
            .exporter
            .blobs
            .list_keys(&format!("{prefix}{under}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        keys.extend(
            listed
                .into_iter()
                .filter(|k| under == "attachments/" || k.ends_with(".txt")),
        );
    }
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_or_renamed_attachment_leaves_the_bucket_with_its_text() {
    let x = Export::for_product(SeedSpec::small().with_crafted_attachments(), Product::Jira).await;
    let connector = x
        .connector("jira-departed", &format!("project = {}", x.project))
        .await;
    let (_, outcome) = x.run(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let prefix = x.prefix(&connector);
    let before = attachment_keys(&x, &prefix).await;

    let jira = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    // The crafted Markdown notes: an attachment with a stored text.
    let notes = jira
        .attachments()
        .into_iter()
        .find(|a| a.filename == "crafted-notes.md" && a.container.starts_with(&x.project))
        .unwrap_or_else(|| panic!("no crafted notes in {}", x.project));
    let issue = jira
        .issue(&notes.container)
        .unwrap_or_else(|| panic!("no issue {}", notes.container));
    let notes_text = format!(
        "{prefix}documents/{}/attachments/{}.txt",
        issue.id, notes.id
    );
    let notes_object = format!("{prefix}attachments/{}/{}-", issue.id, notes.id);
    assert!(before.contains(&notes_text), "{before:#?}");
    assert!(before.iter().any(|k| k.starts_with(&notes_object)));
    // Another exported attachment, of another issue, renamed.
    let renamed = jira
        .attachments()
        .into_iter()
        .find(|a| {
            !a.forbidden && a.container != notes.container && a.container.starts_with(&x.project)
        })
        .unwrap_or_else(|| panic!("no second attachment"));
    let renamed_issue = jira
        .issue(&renamed.container)
        .unwrap_or_else(|| panic!("no issue {}", renamed.container));
    let old_object = format!("{prefix}attachments/{}/{}-", renamed_issue.id, renamed.id);
    let old_keys: BTreeSet<String> = before
        .iter()
        .filter(|k| k.starts_with(&old_object))
        .cloned()
        .collect();
    assert_eq!(old_keys.len(), 1, "{before:#?}");

    jira.delete_attachment(&notes.id)
        .unwrap_or_else(|e| panic!("{e}"));
    // Its extension kept: only the key changes, not what is extracted.
    let new_name = format!("renamed-{}", renamed.filename);
    jira.rename_attachment(&renamed.id, &new_name)
        .unwrap_or_else(|e| panic!("{e}"));
    // Edits, so the incremental run fetches both issues again.
    for key in [&issue.key, &renamed_issue.key] {
        jira.touch_issue(key).unwrap_or_else(|e| panic!("{e}"));
    }
    x.advance(std::time::Duration::from_secs(60));
    let (_, outcome) = x.run(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let after = attachment_keys(&x, &prefix).await;

    let new_object = format!("{old_object}{new_name}");
    let mut expected: BTreeSet<String> = before
        .iter()
        .filter(|k| **k != notes_text && !k.starts_with(&notes_object))
        .filter(|k| !old_keys.contains(*k))
        .cloned()
        .collect();
    expected.insert(new_object);
    assert_eq!(
        after, expected,
        "the deleted attachment and its text, and the renamed one's old key, are gone; nothing else changed"
    );
    let metadata = x
        .object(&format!("{prefix}documents/{}.json", issue.id))
        .await
        .unwrap_or_else(|| panic!("no metadata record"));
    let metadata = String::from_utf8_lossy(&metadata);
    assert!(!metadata.contains(&notes_text), "{metadata}");

    // Once more, a full run: the same bucket (idempotent).
    let outcome = x.requested_full(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(attachment_keys(&x, &prefix).await, after);
}
