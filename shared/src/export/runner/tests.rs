//! Unit tests of the runner's pure parts: paging guards, the item's attachment notes, the
//! step gate, time rounding and the state pages a manifest is built from. (The runner over
//! DynamoDB, S3 and the fake site is tested in tests/tests/it/export_*.rs; over DynamoDB, S3
//! and a scripted in-memory source, through [`Exporter`]'s `P`, in
//! tests/tests/it/runner_scripted.rs.)

use super::item::mark_exported;
use super::page::guard_paging;
use super::*;
use crate::export::source::Page;
use crate::store::jobs::Checkpoint;

fn page(ids: &[&str], next: Option<&str>) -> Page {
    Page {
        ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        next: next.map(str::to_owned),
    }
}

#[test]
fn a_cursor_returned_twice_fails_the_job_with_a_clear_reason() {
    let mut cp = Checkpoint::default();
    assert!(guard_paging(&mut cp, &page(&["1"], Some("a"))).is_ok());
    assert!(guard_paging(&mut cp, &page(&["2"], Some("b"))).is_ok());
    let err = guard_paging(&mut cp, &page(&["3"], Some("a"))).err();
    let reason = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(reason.contains("cursor it had returned before"), "{reason}");
}

#[test]
fn a_cursor_seen_long_ago_is_forgotten() {
    let mut cp = Checkpoint::default();
    for n in 0..40 {
        let cursor = format!("c{n}");
        assert!(guard_paging(&mut cp, &page(&["x"], Some(&cursor))).is_ok());
    }
    assert!(cp.recent_cursors.len() <= 16, "bounded memory");
    assert!(guard_paging(&mut cp, &page(&["x"], Some("c0"))).is_ok());
}

#[test]
fn empty_pages_that_promise_more_fail_the_job_after_a_limit() {
    let mut cp = Checkpoint::default();
    for n in 1..MAX_EMPTY_PAGES {
        let cursor = format!("e{n}");
        assert!(
            guard_paging(&mut cp, &page(&[], Some(&cursor))).is_ok(),
            "{n}"
        );
    }
    let err = guard_paging(&mut cp, &page(&[], Some("last"))).err();
    assert!(matches!(err, Some(ExportError::Terminal(_))), "{err:?}");
}

#[test]
fn a_page_with_ids_resets_the_empty_count_and_the_last_page_is_fine() {
    let mut cp = Checkpoint::default();
    assert!(guard_paging(&mut cp, &page(&[], Some("a"))).is_ok());
    assert!(guard_paging(&mut cp, &page(&["1"], Some("b"))).is_ok());
    assert_eq!(cp.empty_pages, 0);
    assert!(
        guard_paging(&mut cp, &page(&[], None)).is_ok(),
        "an empty last page"
    );
}

#[test]
fn exported_attachments_are_noted_in_jira_and_confluence_items() {
    let mut jira = json!({ "fields": { "attachment": [{ "id": "10" }, { "id": "11" }] } });
    mark_exported(&mut jira, "11", "t/k/a", "ab12");
    assert_eq!(jira["fields"]["attachment"][1]["exportedKey"], "t/k/a");
    assert_eq!(jira["fields"]["attachment"][1]["sha256"], "ab12");
    assert!(jira["fields"]["attachment"][0].get("exportedKey").is_none());
    let mut page = json!({ "attachments": [{ "id": "att1" }] });
    mark_exported(&mut page, "att1", "t/k/b", "cd34");
    assert_eq!(page["attachments"][0]["exportedKey"], "t/k/b");
}

#[test]
fn times_round_up_to_whole_seconds_only_when_needed() {
    let t = time::macros::datetime!(2026-03-02 10:00:00 UTC);
    assert_eq!(ceil_second(t), t);
    assert_eq!(
        ceil_second(t + time::Duration::milliseconds(1)),
        t + time::Duration::SECOND
    );
}

#[test]
fn state_pages_read_items_and_skips() {
    let page: StatePage = serde_json::from_str(
        r#"{"items":["1","2"],"skipped":[{"id":"3","reason":"not returned by Jira"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.items, vec!["1", "2"]);
    assert_eq!(page.skipped.len(), 1);
    assert!(
        serde_json::from_str::<StatePage>("{}").is_err(),
        "no items is unreadable"
    );
}

#[tokio::test]
async fn the_step_gate_holds_only_the_armed_step() {
    let gate = Arc::new(StepGate::default());
    // Not armed: passes.
    gate.pass("manifest-written").await;
    gate.arm("manifest-written");
    gate.pass("finishing-saved").await;
    let held = {
        let gate = gate.clone();
        tokio::spawn(async move { gate.pass("manifest-written").await })
    };
    gate.reached().await;
    assert!(!held.is_finished(), "held at the armed step");
    held.abort();
    // Disarmed once used.
    gate.pass("manifest-written").await;
}

#[test]
fn job_ids_are_valid_and_distinct() {
    let (a, b) = (new_job_id(), new_job_id());
    assert_ne!(a, b);
    assert!(a.as_str().starts_with("job-"));
}
