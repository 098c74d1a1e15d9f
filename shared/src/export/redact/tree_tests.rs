//! Tests of the JSON tree rules: user objects, mentions, profile fields, keys, strings.

use serde_json::json;

use super::*;
use crate::export::redact::find_account_ids;
use crate::export::redact::fixtures::*;

#[test]
fn jira_user_object_keeps_only_display_name_and_email() {
    let mut v = jira_user(ALICE, "Alice Example", Some("alice@example.com"));
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"displayName": "Alice Example", "emailAddress": "alice@example.com"})
    );
    assert_eq!(r.user_objects, 1);
}

#[test]
fn confluence_user_object_keeps_public_name_when_display_name_is_missing() {
    let mut v = confluence_user(CAROL, None, "Carol Chen", "carol@example.com");
    redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"publicName": "Carol Chen", "email": "carol@example.com"})
    );
    let mut v = confluence_user(BOB, Some("Bob Builder"), "Bob B.", "bob@example.com");
    redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"displayName": "Bob Builder", "email": "bob@example.com"})
    );
}

#[test]
fn user_picker_arrays_are_reduced_element_by_element() {
    let mut v = json!({"customfield_10050": [
        jira_user(ALICE, "Alice Example", None),
        jira_user(CAROL, "Carol Chen", Some("carol@example.com"))
    ]});
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"customfield_10050": [
            {"displayName": "Alice Example"},
            {"displayName": "Carol Chen", "emailAddress": "carol@example.com"}
        ]})
    );
    assert_eq!(r.user_objects, 2);
}

#[test]
fn profile_fields_are_removed_anywhere() {
    let mut v = json!({
        "authorId": BOB, "ownerId": BOB, "lastOwnerId": null, "createdBy": CAROL,
        "version": {"number": 2, "authorId": ALICE},
        "nested": [{"timeZone": "UTC", "locale": "de_DE", "accountType": "app", "userKey": "k",
                    "username": "alice", "atlassianAccountId": ALICE, "avatarUrls": {},
                    "profilePicture": {"path": "/x"}, "keep": 1}],
        "items": [{"tmpFromAccountId": ALICE, "tmpToAccountId": null, "field": "assignee"}],
        "title": "stays"
    });
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({
            "version": {"number": 2},
            "nested": [{"keep": 1}],
            "items": [{"field": "assignee"}],
            "title": "stays"
        })
    );
    assert_eq!(r.fields, 15);
    assert_eq!(r.user_objects, 0);
}

#[test]
fn profile_fields_and_user_objects_are_known_whatever_the_case_and_separators() {
    // The keys are normalised on a fast path for ASCII and a character path otherwise; both
    // drop `_` and `-` (and, for user objects, `.` and a namespace) and ignore case.
    let mut v = json!({
        "account_type": "atlassian", "Time-Zone": "UTC", "AVATAR_URLS": {}, "owner_id": "x",
        "Zoneinfo": "UTC", "keep_me": 1, "Größe": 2,
        "user": {"ns:Account.ID": ALICE, "displayName": "Alice", "locale": "en"}
    });
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"keep_me": 1, "Größe": 2, "user": {"displayName": "Alice"}})
    );
    assert_eq!(r.fields, 5);
    assert_eq!(r.user_objects, 1);
}

#[test]
fn created_by_object_is_reduced_not_removed() {
    let mut v =
        json!({"createdBy": confluence_user(BOB, Some("Bob Builder"), "Bob", "bob@example.com")});
    redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"createdBy": {"displayName": "Bob Builder", "email": "bob@example.com"}})
    );
}

#[test]
fn user_self_links_are_removed_and_other_self_links_kept() {
    let mut v = json!([
        {"self": format!("{SITE}/rest/api/3/user?accountId={ALICE}"), "name": "a"},
        {"self": format!("{SITE}/wiki/rest/api/user/current"), "name": "b"},
        {"self": format!("{SITE}/rest/api/3/issue/10042"), "name": "c"},
        {"self": format!("{SITE}/rest/api/3/attachment/10100"), "name": "d"}
    ]);
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!([
            {"name": "a"},
            {"name": "b"},
            {"self": format!("{SITE}/rest/api/3/issue/10042"), "name": "c"},
            {"self": format!("{SITE}/rest/api/3/attachment/10100"), "name": "d"}
        ])
    );
    assert_eq!(r.fields, 2);
}

#[test]
fn adf_mention_keeps_only_type_and_text() {
    let mut v = adf_mention(BOB, Some("@Bob Builder"));
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"type": "mention", "attrs": {"text": "@Bob Builder"}})
    );
    assert_eq!(r.mentions, 1);
}

#[test]
fn adf_mention_without_text_uses_name_book_or_unknown_user() {
    let mut v = json!([
        adf_mention(ALICE, None),
        adf_mention(DAVE, Some("")),
        adf_mention(BOB, Some(&format!("@{BOB}"))),
        adf_mention(DAVE, Some(&format!("@{DAVE}")))
    ]);
    let r = redact_value(&mut v, &book());
    assert_eq!(
        v,
        json!([
            {"type": "mention", "attrs": {"text": "@Alice Example"}},
            {"type": "mention", "attrs": {"text": "@unknown user"}},
            {"type": "mention", "attrs": {"text": "@Bob Builder"}},
            {"type": "mention", "attrs": {"text": "@unknown user"}}
        ])
    );
    assert_eq!(r.mentions, 4);
    assert_eq!(r.strings, 0);
}

#[test]
fn atlas_doc_format_string_is_redacted_as_adf() {
    let mut v = json!({"body": {"atlas_doc_format": {
        "value": confluence_adf_body(), "representation": "atlas_doc_format"
    }}});
    let r = redact_value(&mut v, &NameBook::default());
    let adf: Value =
        serde_json::from_str(v["body"]["atlas_doc_format"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        text_of_mention(&adf["content"][0]["content"][1]),
        "@Carol Chen"
    );
    assert_eq!(adf["content"][0]["content"][0]["text"], "Ping ");
    assert_eq!(r.mentions, 1);
    assert_no_account_ids(&v);
}

#[test]
fn view_markup_loses_account_id_attributes_and_people_links() {
    let mut v = json!({"body": {"view": {"representation": "view", "value": format!(
        "<p><a class=\"confluence-userlink user-mention\" data-account-id=\"{BOB}\" href=\"{SITE}/wiki/people/{BOB}?ref=confluence\" data-linked-resource-type=\"userinfo\">Bob Builder</a> \
         <a href=\"{SITE}/wiki/spaces/ENG\">space</a> <img src=\"/wiki/aa-avatar/{ALICE}\" alt=\"Alice\"/></p>"
    )}}});
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v["body"]["view"]["value"],
        format!(
            "<p><a class=\"confluence-userlink user-mention\" data-linked-resource-type=\"userinfo\">Bob Builder</a> \
             <a href=\"{SITE}/wiki/spaces/ENG\">space</a> <img alt=\"Alice\"/></p>"
        )
    );
    assert_eq!(r.fields, 3);
}

#[test]
fn jira_wiki_mentions_become_names() {
    let mut v =
        json!({"toString": format!("Ask [~accountid:{BOB}] and [~accountId:{DAVE}] or [~jsmith]")});
    let r = redact_value(&mut v, &book());
    assert_eq!(
        v["toString"],
        "Ask @Bob Builder and @unknown user or [~jsmith]"
    );
    assert_eq!(r.mentions, 2);
}

#[test]
fn account_ids_in_free_text_are_scrubbed() {
    let doc = json!({"from": ALICE, "to": BOB, "note": format!("moved from {ALICE}"), "n": 10042});
    // ALICE is known (seen as a user elsewhere in the item): replaced wherever it is.
    let mut v = doc.clone();
    let r = redact_value(&mut v, &book());
    assert_eq!(
        v,
        json!({"from": "[account]", "to": "[account]", "note": "moved from [account]", "n": 10042})
    );
    assert_eq!(r.strings, 3);
    // Unknown: replaced as the value of a changelog `from`, kept in prose with no context.
    let mut v = doc;
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"from": "[account]", "to": "[account]", "note": format!("moved from {ALICE}"), "n": 10042})
    );
    assert_eq!(r.strings, 2);
}

#[test]
fn object_keys_holding_account_ids_are_scrubbed() {
    let mut v = json!({"watchers": {ALICE: true, BOB: false, "count": 2}});
    let r = redact_value(&mut v, &NameBook::default());
    let watchers = v["watchers"].as_object().unwrap();
    assert_eq!(watchers.len(), 3);
    assert!(watchers.contains_key("[account]"));
    assert!(watchers.contains_key("[account]#2"));
    assert_eq!(watchers["count"], 2);
    assert_eq!(r.strings, 2);
    assert_no_account_ids(&v);
}

#[test]
fn json_with_users_embedded_in_a_string_is_redacted_as_json() {
    let embedded = json!({"owner": jira_user(ALICE, "Alice Example", None)}).to_string();
    let mut v = json!({"properties": {"config": embedded}});
    let r = redact_value(&mut v, &NameBook::default());
    let inner: Value = serde_json::from_str(v["properties"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(inner, json!({"owner": {"displayName": "Alice Example"}}));
    assert_eq!(r.user_objects, 1);
}

// --- fields named in issue 16, JSM customers, identity profiles ---------------------------------

#[test]
fn newer_profile_fields_are_removed() {
    let mut v = json!({
        // Confluence v2 tasks: ids, not user objects.
        "task": {"id": "1", "status": "complete", "createdBy": ALICE, "assignedTo": BOB,
                 "completedBy": CAROL, "body": {"storage": {"value": "ship it"}}},
        // Confluence v2 whiteboards / databases / folders.
        "whiteboard": {"id": "2", "creatorId": OBJECT_ID, "lastModifierId": OBJECT_ID,
                       "ownerId": OBJECT_ID, "authorId": OBJECT_ID, "spaceOwnerId": OBJECT_ID},
        // An identity profile (`/me`) fragment without its account id.
        "profile": {"nickname": "al", "zoneinfo": "Europe/Berlin", "picture": "https://avatar/x",
                    "extended_profile": {"job_title": "Engineer"}, "keep": true},
        "assignedTo": null,
        "createdBy": {"displayName": "Bob Builder"}
    });
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({
            "task": {"id": "1", "status": "complete", "body": {"storage": {"value": "ship it"}}},
            "whiteboard": {"id": "2"},
            "profile": {"keep": true},
            "createdBy": {"displayName": "Bob Builder"}
        })
    );
    assert_eq!(r.fields, 13);
    assert_eq!(r.strings, 0);
}

#[test]
fn identity_profile_with_snake_case_account_id_is_a_user_object() {
    let mut v = json!({"account_id": ALICE, "email": "alice@example.com", "name": "Alice Example",
                       "nickname": "al", "picture": "https://avatar/a", "zoneinfo": "UTC",
                       "locale": "en-US", "account_status": "active"});
    let r = redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"email": "alice@example.com", "name": "Alice Example"})
    );
    assert_eq!(r.user_objects, 1);
}

#[test]
fn jsm_customer_objects_keep_only_name_and_email() {
    let mut v = json!({"reporter": {
        "accountId": CUSTOMER, "name": CUSTOMER, "key": CUSTOMER,
        "emailAddress": "fred@example.com", "displayName": "Fred F. User", "active": true,
        "timeZone": "Australia/Sydney",
        "_links": {"jiraRest": format!("{SITE}/rest/api/2/user?username={CUSTOMER}")}
    }, "note": format!("raised by {CUSTOMER} for {CUSTOMER2}")});
    let mut names = NameBook::default();
    names.learn_from(&v);
    redact_value(&mut v, &names);
    assert_eq!(
        v,
        json!({"reporter": {"emailAddress": "fred@example.com", "displayName": "Fred F. User"},
               "note": "raised by [account] for [account]"})
    );
    // A customer with no usable name keeps nothing but its e-mail.
    let mut v =
        json!({"accountId": CUSTOMER, "name": CUSTOMER, "emailAddress": "fred@example.com"});
    redact_value(&mut v, &NameBook::default());
    assert_eq!(v, json!({"emailAddress": "fred@example.com"}));
}

#[test]
fn values_of_keys_naming_users_lose_24_hex_words() {
    let mut v = json!({
        "customfield_10070": {"approvers": [OBJECT_ID, DAVE], "count": 2},
        "items": [{"field": "assignee", "from": OBJECT_ID, "to": null}],
        "properties": {"lastReviewer": OBJECT_ID, "build": OBJECT_ID, "participants": {DAVE: true}},
        "commit": SHA1
    });
    redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({
            "customfield_10070": {"approvers": ["[account]", "[account]"], "count": 2},
            "items": [{"field": "assignee", "from": "[account]", "to": null}],
            "properties": {"lastReviewer": OBJECT_ID, "build": OBJECT_ID, "participants": {"[account]": true}},
            "commit": SHA1
        })
    );
}

/// `levels` strings each holding the JSON of the next; the innermost holds `inner`.
fn nested_json(levels: usize, inner: Value) -> Value {
    let mut v = inner;
    for _ in 0..levels {
        v = json!({"config": v.to_string()});
    }
    v
}

#[test]
fn json_embedded_deeper_than_three_levels_is_redacted_as_json() {
    let user = json!({"owner": jira_user(ALICE, "Alice Example", None), "build": OBJECT_ID});
    for levels in [1, 4, 6, usize::from(MAX_EMBEDDED_DEPTH)] {
        let mut v = nested_json(levels, user.clone());
        redact_value(&mut v, &NameBook::default());
        let mut inner = v.clone();
        for _ in 0..levels {
            inner = serde_json::from_str(inner["config"].as_str().unwrap()).unwrap();
        }
        assert_eq!(
            inner,
            json!({"owner": {"displayName": "Alice Example"}, "build": OBJECT_ID}),
            "{levels} levels"
        );
    }
}

#[test]
fn json_embedded_too_deep_is_scrubbed_as_text() {
    let user = json!({"owner": jira_user(ALICE, "Alice Example", None), "build": OBJECT_ID,
                      "who": BOB, "customer": CUSTOMER});
    let levels = usize::from(MAX_EMBEDDED_DEPTH) + 3;
    let mut v = nested_json(levels, user);
    let r = redact_value(&mut v, &NameBook::default());
    let text = v.to_string();
    // No id of any shape is left, not even a 24-hex word that was not one.
    assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
    assert!(!text.contains(OBJECT_ID));
    assert_eq!(r.strings, 1);
    // Stable on a second pass.
    let once = v.clone();
    assert_eq!(
        redact_value(&mut v, &NameBook::default()),
        Redactions::default()
    );
    assert_eq!(v, once);
}

#[test]
fn json_looking_strings_that_do_not_parse_are_scrubbed_as_text() {
    let mut v = json!({"x": format!("{{\"accountId\": \"{ALICE}\", broken"),
                       "y": format!("[{OBJECT_ID}, {BOB}]")});
    redact_value(&mut v, &NameBook::default());
    assert_eq!(
        v,
        json!({"x": "{\"accountId\": \"[account]\", broken", "y": format!("[{OBJECT_ID}, [account]]")})
    );
}
