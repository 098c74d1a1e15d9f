//! Whole real-shaped documents, and random garbage.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, json};

use super::fixtures::*;
use super::*;

#[test]
fn jira_issue_has_no_account_ids_after_redaction() {
    let before = serde_json::to_string(&jira_issue()).unwrap();
    assert!(find_account_ids(&before).len() > 20);
    let (doc, _) = redacted_jira_issue();
    assert_no_account_ids(&doc);
    let text = serde_json::to_string(&doc).unwrap();
    for needle in [
        "avatarUrls",
        "timeZone",
        "accountType",
        "locale",
        "accountId",
        "tmpFromAccountId",
        "/user?",
    ] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn jira_issue_keeps_display_names_and_emails() {
    let (doc, _) = redacted_jira_issue();
    let f = &doc["fields"];
    assert_eq!(
        f["reporter"],
        json!({"displayName": "Alice Example", "emailAddress": "alice@example.com"})
    );
    assert_eq!(f["assignee"], json!({"displayName": "Bob Builder"}));
    assert_eq!(f["creator"], f["reporter"]);
    assert_eq!(
        f["attachment"][0]["author"],
        json!({"displayName": "Bob Builder"})
    );
    assert_eq!(
        f["customfield_10050"][1],
        json!({"displayName": "Carol Chen", "emailAddress": "carol@example.com"})
    );
    assert_eq!(f["comment"]["comments"][0]["author"], f["reporter"]);
    assert_eq!(f["comment"]["comments"][0]["updateAuthor"], f["assignee"]);
    assert_eq!(
        doc["changelog"]["histories"][0]["author"],
        json!({"displayName": "Carol Chen", "emailAddress": "carol@example.com"})
    );
}

#[test]
fn jira_issue_mentions_become_names() {
    let (doc, _) = redacted_jira_issue();
    let cell = &doc["fields"]["description"]["content"][1]["content"][0]["content"][1];
    assert_eq!(
        text_of_mention(&cell["content"][0]["content"][1]),
        "@Bob Builder"
    );
    for comment in [
        &doc["fields"]["comment"]["comments"][0],
        &doc["comments"][0],
    ] {
        let para = &comment["body"]["content"][0]["content"];
        assert_eq!(text_of_mention(&para[1]), "@Alice Example");
        assert_eq!(text_of_mention(&para[3]), "@unknown user");
    }
    let item = &doc["changelog"]["histories"][0]["items"][1];
    assert_eq!(item["fromString"], "Ask @Alice Example");
    assert_eq!(item["toString"], "Ask @Bob Builder please");
    let rendered = doc["renderedFields"]["description"].as_str().unwrap();
    assert_eq!(
        rendered,
        "<p>Owner: <a class=\"user-hover\">Bob Builder</a></p>"
    );
}

#[test]
fn jira_issue_unrelated_content_is_unchanged() {
    let original = jira_issue();
    let (doc, _) = redacted_jira_issue();
    for pointer in [
        "/expand",
        "/id",
        "/key",
        "/self",
        "/fields/summary",
        "/fields/created",
        "/fields/updated",
        "/fields/status",
        "/fields/customfield_10060",
        "/fields/customfield_10061",
        "/fields/attachment/0/self",
        "/fields/attachment/0/content",
        "/fields/attachment/0/filename",
        "/fields/attachment/0/size",
        "/fields/description/content/0",
        "/fields/description/content/1/attrs",
        "/fields/comment/self",
        "/fields/comment/total",
        "/fields/comment/comments/0/self",
        "/fields/comment/comments/0/created",
        "/changelog/histories/0/items/0/field",
        "/changelog/histories/0/items/0/fromString",
    ] {
        assert_eq!(doc.pointer(pointer), original.pointer(pointer), "{pointer}");
        assert!(doc.pointer(pointer).is_some(), "{pointer}");
    }
    // Project avatars go too: `avatarUrls` is dropped wherever it is.
    assert_eq!(
        doc["fields"]["project"],
        json!({"self": format!("{SITE}/rest/api/3/project/10000"), "id": "10000", "key": "ALPHA", "name": "Alpha"})
    );
}

#[test]
fn jira_issue_redactions_are_counted() {
    let (_, r) = redacted_jira_issue();
    assert_eq!(
        r,
        Redactions {
            // reporter, assignee, creator, 2 pickers, attachment author,
            // 2 x (comment author + updateAuthor), changelog author
            user_objects: 11,
            // description, 2 x 2 in comments, 2 wiki mentions in the changelog
            mentions: 7,
            // project avatarUrls, tmpFrom/tmpTo, href + rel + data-account-id in renderedFields
            fields: 6,
            // changelog from/to
            strings: 2,
        }
    );
}

#[test]
fn confluence_v1_page_has_no_account_ids_and_keeps_names() {
    let (doc, _) = redacted_confluence(confluence_v1_page());
    assert_no_account_ids(&doc);
    assert_eq!(
        doc["history"]["createdBy"],
        json!({"displayName": "Bob Builder", "email": "bob@example.com"})
    );
    assert_eq!(
        doc["history"]["lastUpdated"]["by"],
        json!({"displayName": "Alice Example", "email": "alice@example.com"})
    );
    assert_eq!(doc["version"]["by"], doc["history"]["lastUpdated"]["by"]);
    assert_eq!(
        doc["history"]["contributors"]["publishers"],
        json!({"users": [{"publicName": "Carol Chen", "email": "carol@example.com"}]})
    );
    let text = serde_json::to_string(&doc).unwrap();
    for needle in [
        "profilePicture",
        "accountType",
        "timeZone",
        "isExternalCollaborator",
        "aa-avatar",
        "/people/",
        "data-account-id",
    ] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn confluence_v1_storage_mentions_become_names() {
    let (doc, _) = redacted_confluence(confluence_v1_page());
    assert_eq!(
        doc["body"]["storage"]["value"],
        format!(
            "<p>Owner: @Bob Builder, reviewer @Alice Example, cc @unknown user. Home: \
             <ac:link><ri:page ri:content-title=\"Home\" /></ac:link>. Checksum <code>{SHA256}</code>.</p>"
        )
    );
    assert_eq!(doc["body"]["storage"]["representation"], "storage");
}

#[test]
fn confluence_v1_unrelated_content_is_unchanged() {
    let original = confluence_v1_page();
    let (doc, _) = redacted_confluence(confluence_v1_page());
    for pointer in [
        "/id",
        "/type",
        "/status",
        "/title",
        "/space",
        "/ancestors",
        "/_links",
        "/history/createdDate",
        "/history/lastUpdated/when",
        "/history/lastUpdated/friendlyWhen",
        "/version/message",
        "/version/number",
        "/version/confRev",
        "/body/storage/_expandable",
        "/body/storage/embeddedContent",
        "/body/atlas_doc_format/representation",
        "/body/view/representation",
    ] {
        assert_eq!(doc.pointer(pointer), original.pointer(pointer), "{pointer}");
        assert!(doc.pointer(pointer).is_some(), "{pointer}");
    }
}

#[test]
fn confluence_v2_page_drops_author_and_owner_ids() {
    let (doc, r) = redacted_confluence(confluence_v2_page());
    assert_no_account_ids(&doc);
    let mut expected = confluence_v2_page();
    let obj = expected.as_object_mut().unwrap();
    for key in ["authorId", "ownerId", "lastOwnerId"] {
        obj.remove(key);
    }
    expected["version"]
        .as_object_mut()
        .unwrap()
        .remove("authorId");
    expected["body"]["storage"]["value"] = json!("<p>Hi @unknown user</p>");
    assert_eq!(doc, expected);
    assert_eq!(
        r,
        Redactions {
            user_objects: 0,
            mentions: 1,
            fields: 4,
            strings: 0
        }
    );
}

#[test]
fn confluence_v2_mentions_use_names_learned_earlier_in_the_job() {
    let mut names = NameBook::default();
    let mut v1 = confluence_v1_page();
    redact_confluence_content(&mut v1, &mut names);
    let mut v2 = confluence_v2_page();
    redact_confluence_content(&mut v2, &mut names);
    assert_eq!(v2["body"]["storage"]["value"], "<p>Hi @Bob Builder</p>");
}

#[test]
fn confluence_v2_attachment_keeps_file_id_and_drops_creator() {
    let (doc, _) = redacted_confluence(confluence_v2_attachment());
    assert_no_account_ids(&doc);
    assert_eq!(doc["fileId"], LOCAL_ID);
    assert_eq!(
        doc["downloadLink"],
        confluence_v2_attachment()["downloadLink"]
    );
    assert!(doc.get("createdBy").is_none());
    assert_eq!(
        doc["version"],
        json!({"createdAt": "2024-04-02T09:00:00.000Z", "number": 1})
    );
}

#[test]
fn redaction_is_idempotent() {
    for doc in [
        jira_issue(),
        confluence_v1_page(),
        confluence_v2_page(),
        confluence_v2_attachment(),
    ] {
        let mut names = NameBook::default();
        let mut doc = doc;
        let first = redact_jira_issue(&mut doc, &mut names);
        assert!(first.total() > 0);
        let once = doc.clone();
        let second = redact_confluence_content(&mut doc, &mut names);
        assert_eq!(second, Redactions::default());
        assert_eq!(doc, once);
    }
}

#[test]
fn redactions_serialize_as_plain_counts() {
    let r = Redactions {
        user_objects: 1,
        mentions: 2,
        fields: 3,
        strings: 4,
    };
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        json!({"user_objects": 1, "mentions": 2, "fields": 3, "strings": 4})
    );
}

const FRAGMENTS: &[&str] = &[
    ALICE,
    BOB,
    CAROL,
    DAVE,
    SHA1,
    SHA256,
    LOCAL_ID,
    "557058",
    ":",
    "%3A",
    "%3D",
    "%",
    "-",
    "f58131cb",
    "<",
    ">",
    "/>",
    "/",
    "=",
    "\"",
    "'",
    " ",
    "\n",
    "<ri:user",
    " ri:account-id=",
    " ri:userkey=",
    "</ri:user>",
    "<ac:link>",
    "<ac:link",
    "</ac:link>",
    "</ac:link",
    "<ac:link-body>",
    "</ac:link-body>",
    "<a href=\"",
    "/wiki/people/",
    " data-account-id=",
    "<![CDATA[",
    "]]>",
    "[~accountid:",
    "]",
    "@",
    "accountId=",
    "{\"type\":\"mention\",\"attrs\":{\"id\":\"",
    "\"}}",
    "{\"accountId\":\"",
    "é",
    "😀",
    "\u{0}",
    "\u{8}",
    "a",
    "0",
    "F",
    "ALPHA-1",
    "10042",
];

/// Whole pieces of markup with ids, so that well-formed references are common too.
fn composed_fragments() -> Vec<String> {
    vec![
        format!("<ri:user ri:account-id=\"{ALICE}\"/>"),
        format!("<ri:user ri:account-id='{BOB}'></ri:user>"),
        format!("<ac:link><ri:user ri:account-id=\"{DAVE}\" />"),
        format!("<ri:user ri:userkey=\"{CAROL}\" ri:local-id=\"{LOCAL_ID}\">"),
        format!("<a href=\"/wiki/people/{BOB}\" data-account-id=\"{BOB}\">"),
        format!("[~accountid:{ALICE}]"),
        format!("{{\"type\":\"mention\",\"attrs\":{{\"id\":\"{BOB}\",\"text\":\"@B\"}}}}"),
    ]
}

fn random_string(rng: &mut StdRng) -> String {
    let composed = composed_fragments();
    let mut s = String::new();
    for _ in 0..rng.random_range(0..12) {
        match rng.random_range(0..10) {
            0 | 1 => s.push(rng.random::<char>()),
            2 => s.push_str(&composed[rng.random_range(0..composed.len())]),
            _ => s.push_str(FRAGMENTS[rng.random_range(0..FRAGMENTS.len())]),
        }
    }
    s
}

const KEYS: &[&str] = &[
    "accountId",
    "displayName",
    "publicName",
    "emailAddress",
    "email",
    "type",
    "attrs",
    "text",
    "id",
    "self",
    "createdBy",
    "authorId",
    "body",
    "storage",
    "value",
    "representation",
    "atlas_doc_format",
    "content",
    "mention",
    ALICE,
    BOB,
    "x",
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.random_range(0..5)
    } else {
        rng.random_range(0..8)
    };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random_range(-1_000_000i64..1_000_000)),
        3 => json!(rng.random_range(-1000.0f64..1000.0)),
        4 => Value::String(random_string(rng)),
        5 => {
            // A mention node or a user object, possibly broken.
            let mut m = Map::new();
            m.insert(
                "type".into(),
                json!(if rng.random_bool(0.7) {
                    "mention"
                } else {
                    "doc"
                }),
            );
            m.insert("attrs".into(), random_value(rng, depth - 1));
            if rng.random_bool(0.3) {
                m.insert("accountId".into(), random_value(rng, depth - 1));
            }
            Value::Object(m)
        }
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..5) {
                let key = if rng.random_bool(0.8) {
                    KEYS[rng.random_range(0..KEYS.len())].to_owned()
                } else {
                    random_string(rng)
                };
                let value = if rng.random_bool(0.1) {
                    // JSON embedded in a string, as atlas_doc_format does.
                    Value::String(random_value(rng, depth - 1).to_string())
                } else {
                    random_value(rng, depth - 1)
                };
                m.insert(key, value);
            }
            Value::Object(m)
        }
    }
}

/// Every string and key of `v` is free of account ids: of every unambiguous shape, of every id
/// `names` knows, and of 24-hex words in an account-id context (the precise rule; a bare unknown
/// 24-hex word in prose may stay).
fn assert_clean_tree(v: &Value, names: &NameBook) {
    let dirty =
        |s: &str| !ids::id_spans(s, Some(names), ids::Legacy::Precise { keyed: false }).is_empty();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => assert!(!dirty(s), "{s:?}"),
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => {
                for (k, child) in m {
                    assert!(!dirty(k), "{k:?}");
                    assert!(!k.eq("accountId"));
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn random_json_never_panics_and_ends_clean_and_stable() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0005);
    for _ in 0..2_000 {
        let mut doc = random_value(&mut rng, 5);
        let mut names = NameBook::default();
        redact_jira_issue(&mut doc, &mut names);
        assert_clean_tree(&doc, &names);
        let once = doc.clone();
        let second = redact_confluence_content(&mut doc, &mut names);
        assert_eq!(second, Redactions::default(), "{once}");
        assert_eq!(doc, once);
    }
}

#[test]
fn random_strings_never_panic_and_end_clean_and_stable() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0006);
    let names = book();
    for _ in 0..2_000 {
        let s = random_string(&mut rng);
        for id in find_account_ids(&s) {
            assert!(s.contains(&id));
        }
        let (scrubbed, n) = scrub_account_ids(&s);
        assert_eq!(n as usize, find_account_ids(&s).len());
        assert!(
            find_account_ids(&scrubbed).is_empty(),
            "{s:?} -> {scrubbed:?}"
        );
        let (storage, _) = redact_storage_body(&s, &names);
        let (storage_again, n) = redact_storage_body(&storage, &names);
        assert_eq!((storage_again.as_str(), n), (storage.as_str(), 0), "{s:?}");

        let mut v = Value::String(s.clone());
        redact_value(&mut v, &names);
        assert_clean_tree(&v, &names);
        let once = v.clone();
        assert_eq!(redact_value(&mut v, &names), Redactions::default(), "{s:?}");
        assert_eq!(v, once);
    }
}

#[test]
fn pathological_markup_takes_linear_time() {
    // No wall-clock deadline (a loaded machine can be 10x slower): the time for inputs of
    // 20,000 repetitions is compared with the time for 5,000, each the best of three runs.
    // Linear work gives a ratio near 4, quadratic near 16.
    let names = book();
    let user = format!("<ri:user ri:account-id=\"{ALICE}\"/>");
    let inputs = |n: usize| {
        [
            format!("{}{user}", "<ac:link-body>".repeat(n)),
            format!("{}{user}", "<ac:link ".repeat(n)),
            format!("<ac:link>{}", user.repeat(n / 4)),
            format!("{user}{}", "<ri:user ".repeat(n)),
            "<ac:link><ri:user/>".repeat(n),
            "[~accountid:".repeat(n),
            format!("<a data-account-id=\"{BOB}\">{}", "<a x=".repeat(n)),
            format!("{} {ALICE}", "<a b=\"c\" ".repeat(n)),
        ]
    };
    let best_of_three = |n: usize| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                for input in inputs(n) {
                    let mut v = Value::String(input);
                    redact_value(&mut v, &names);
                    assert_clean_tree(&v, &names);
                }
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let small = best_of_three(5_000).as_secs_f64().max(1e-6);
    let large = best_of_three(20_000).as_secs_f64();
    assert!(
        large / small < 10.0,
        "4x the input took {:.1}x the time: super-linear",
        large / small
    );
}
