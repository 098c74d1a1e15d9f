//! Tests of the NameBook.

use serde_json::json;

use super::*;
use crate::export::redact::find_account_ids;
use crate::export::redact::fixtures::*;

#[test]
fn name_book_learns_users_and_mentions() {
    let mut names = NameBook::default();
    names.learn_from(&jira_issue());
    names.learn_from(&confluence_v1_page());
    assert_eq!(names.name_of(ALICE), Some("Alice Example"));
    assert_eq!(names.name_of(BOB), Some("Bob Builder"));
    assert_eq!(names.name_of(CAROL), Some("Carol Chen"));
    assert_eq!(names.name_of(DAVE), None);
    assert_eq!(names.len(), 3);
    assert!(!names.is_empty());

    let mut from_mention = NameBook::default();
    from_mention.learn_from(&adf_mention(DAVE, Some("@Dave Doe")));
    assert_eq!(from_mention.name_of(DAVE), Some("Dave Doe"));
}

#[test]
fn name_book_prefers_user_objects_over_mention_text() {
    let mut names = NameBook::default();
    names.learn_from(&json!([
        adf_mention(ALICE, Some("@Al")),
        jira_user(ALICE, "Alice Example", None),
        adf_mention(ALICE, Some("@Ally"))
    ]));
    assert_eq!(names.name_of(ALICE), Some("Alice Example"));
}

#[test]
fn name_book_debug_shows_no_account_ids() {
    let debug = format!("{:?}", book());
    assert!(find_account_ids(&debug).is_empty(), "{debug}");
    assert!(!debug.contains("Alice"), "{debug}");
}

#[test]
fn name_book_knows_every_id_it_saw_named_or_not() {
    let mut names = NameBook::default();
    names.learn_from(&json!([
        {"accountId": ALICE, "displayName": ""},
        {"account_id": CUSTOMER, "name": CUSTOMER},
        adf_mention(DAVE, None),
        {"accountId": BOB, "displayName": "Bob Builder", "userKey": "ff8080815a0b3b12015a0b3c7e2a0000"}
    ]));
    for id in [
        ALICE,
        CUSTOMER,
        DAVE,
        BOB,
        "ff8080815a0b3b12015a0b3c7e2a0000",
    ] {
        assert!(names.knows(id), "{id}");
    }
    assert!(names.knows(&ALICE.to_uppercase()));
    assert!(!names.knows(OBJECT_ID));
    assert!(!names.knows(""));
    assert_eq!(
        names.len(),
        2,
        "only Bob (id and user key) has a usable name"
    );
    assert_eq!(
        names.name_of("ff8080815a0b3b12015a0b3c7e2a0000"),
        Some("Bob Builder")
    );
    let debug = format!("{names:?}");
    assert!(find_account_ids(&debug).is_empty(), "{debug}");
}
