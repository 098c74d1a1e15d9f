//! The leak checker against a corpus holding every form of every account id (and e-mail
//! addresses, and a secret), and the redactor's output of that corpus against the checker.

use serde_json::{Value, json};
use shared::export::redact::{
    NameBook, find_account_ids, redact_jira_issue, safe_key_component, scrub_for_sink,
};

use super::*;

const LEGACY: &str = "5b10ac8d82e05b22cc7d4ef5";
const NEW: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
const NEW_UUID: &str = "f58131cb-b67d-43c7-b30d-6b58d40bd077";
/// As the JSM REST reference's customer examples.
const CUSTOMER: &str = "qm:a713c8ea-1075-4e30-9d96-891a7d181739:5ad6d3581db05e2a66fa80b";
const CUSTOMER2: &str =
    "qm:1dc3818c-9fe1-4abf-a66a-f48e41eb4b49:99b430e4-c46f-483d-b11a-c51f04485115";
/// Personal-space key of `712020:f889c42e-f53e-4500-a7c6-706c3ef10951`.
const SPACE_KEY: &str = "~712020f889c42ef53e4500a7c6706c3ef10951";
const EMAIL: &str = "alice@example.com";
const SECRET: &str = "s3cr3t-refresh-token-value";
const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Every form an account id takes in Atlassian data, one a line, each with the kind the checker
/// must report.
fn corpus() -> Vec<(String, LeakKind)> {
    let new_encoded = |colon: &str| format!("557058{colon}{NEW_UUID}");
    vec![
        (format!("assignee {LEGACY}"), LeakKind::AccountId),
        (format!("accountId={LEGACY}"), LeakKind::AccountId),
        (LEGACY.to_uppercase(), LeakKind::AccountId),
        (format!("owner {NEW}"), LeakKind::AccountId),
        (
            format!("?accountId={}", new_encoded("%3A")),
            LeakKind::AccountId,
        ),
        (
            format!("?accountId%3D{}", new_encoded("%253A")),
            LeakKind::AccountId,
        ),
        (new_encoded("%25253A"), LeakKind::AccountId),
        (
            format!("href=\"/people/{}\"", new_encoded("&#58;")),
            LeakKind::AccountId,
        ),
        (new_encoded("&#x3a;"), LeakKind::AccountId),
        (new_encoded("&colon;"), LeakKind::AccountId),
        (new_encoded("\\u003a"), LeakKind::AccountId),
        (format!("reporter {CUSTOMER}"), LeakKind::AccountId),
        (CUSTOMER2.to_owned(), LeakKind::AccountId),
        (CUSTOMER.replace(':', "%3A"), LeakKind::AccountId),
        (
            format!("/wiki/spaces/{SPACE_KEY}/pages/1"),
            LeakKind::AccountId,
        ),
        (format!("spaceKey=%7E{LEGACY}"), LeakKind::AccountId),
        (format!("[~accountid:{LEGACY}]"), LeakKind::AccountId),
        (
            format!("<ri:user ri:account-id=\"{NEW}\"/>"),
            LeakKind::AccountId,
        ),
        (
            format!("{{\\\"accountId\\\":\\\"{LEGACY}\\\"}}"),
            LeakKind::AccountId,
        ),
        (format!("mail {EMAIL}"), LeakKind::Email),
        (
            "q=reporter%3Dalice%40example.com".to_owned(),
            LeakKind::Email,
        ),
        ("alice&#64;example.com".to_owned(), LeakKind::Email),
        (format!("token {SECRET}"), LeakKind::Known),
        (SECRET.to_uppercase(), LeakKind::Known),
    ]
}

fn checker() -> LeakChecker {
    LeakChecker::new().with_known(&[SECRET]).with_emails()
}

#[test]
fn every_form_in_the_corpus_is_found() {
    let checker = checker();
    for (text, kind) in corpus() {
        let found = checker.check_text(&text);
        assert!(
            found.iter().any(|f| f.kind == kind),
            "{text}: {found:?} has no {kind:?}"
        );
    }
}

#[test]
fn forms_the_redactor_never_meets_are_found_too() {
    // Every character an HTML character reference, and ids split by encoded hyphens.
    let entities: String = LEGACY.bytes().map(|c| format!("&#{c};")).collect();
    let hyphens = NEW.replace('-', "%2D");
    for text in [entities, hyphens] {
        assert!(!checker().check_text(&text).is_empty(), "{text}");
        // The redactor's own scanner does not see these: the checker is not a copy of it.
        assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn known_ids_are_found_as_personal_space_keys_and_in_bytes() {
    let checker = LeakChecker::new().with_known(&["712020:f889c42e-f53e-4500-a7c6-706c3ef10951"]);
    let found = checker.check_bytes(format!("key {SPACE_KEY}\n").as_bytes());
    assert!(found.iter().any(|f| f.kind == LeakKind::Known), "{found:?}");
}

#[test]
fn clean_text_has_no_findings() {
    let text = format!(
        "Fixed in {SHA1} (sha256:{SHA256}), issue ALPHA-1 id 10042 at 2024-05-02T10:15:30.123+0000, \
         local id {NEW_UUID}, 5b10ac8d82e05b22cc7d4ef, icon@2x, ~ENG, user@ nobody"
    );
    assert_eq!(checker().check_text(&text), Vec::new());
}

#[test]
fn allowed_words_are_not_reported() {
    let text = format!("object {LEGACY}");
    assert_eq!(checker().check_text(&text).len(), 1);
    assert_eq!(
        checker()
            .allowing(&[LEGACY.to_uppercase()])
            .check_text(&text),
        Vec::new()
    );
}

#[test]
fn decode_undoes_every_layer() {
    assert_eq!(decode("a%253Ab%26%2523x3a%3B"), "a:b:");
    assert_eq!(
        decode("&#58;&#x3A;&colon;&unknown;\\u003a\\/"),
        ":::&unknown;:/"
    );
}

/// The corpus as Atlassian would put it in an issue: users as user objects (so the redactor's
/// name book knows them), the forms in descriptions, links, wiki text, storage bodies, changelog
/// values, JSON properties.
fn corpus_issue() -> Value {
    let user = |id: &str, name: &str| {
        json!({"accountId": id, "displayName": name,
        "emailAddress": EMAIL, "avatarUrls": {"48x48": format!("https://a/{id}")}})
    };
    let lines: Vec<String> = corpus()
        .into_iter()
        .filter(|(_, kind)| *kind == LeakKind::AccountId)
        .map(|(text, _)| text)
        .collect();
    json!({
        "fields": {
            "reporter": user(LEGACY, "Alice"),
            "assignee": user(NEW, "Bob"),
            "customfield_10010": user(CUSTOMER, "Fred"),
            "customfield_10011": [user(CUSTOMER2, "Greta"),
                                  user("712020:f889c42e-f53e-4500-a7c6-706c3ef10951", "Eric")],
            "description": lines.join("\n"),
            "lines": lines,
            "storage": {"value": lines.iter().map(|l| format!("<p>{l}</p>")).collect::<String>(),
                        "representation": "storage"},
            "property": json!({"nested": json!({"deeper": lines.join(" ")}).to_string()}).to_string(),
            "commit": SHA1
        },
        "changelog": {"histories": [{"items": [{"field": "assignee", "from": LEGACY, "to": NEW}]}]}
    })
}

#[test]
fn redacted_corpus_passes_the_checker() {
    let mut doc = corpus_issue();
    let before = doc.to_string();
    let ids = [LEGACY, NEW, CUSTOMER, CUSTOMER2];
    assert!(!LeakChecker::new().check_text(&before).is_empty());
    redact_jira_issue(&mut doc, &mut NameBook::default());
    // Documents keep e-mail addresses (PRIVACY.md P5): no e-mail check here.
    LeakChecker::new()
        .with_known(&ids)
        .assert_clean("redacted corpus", &doc.to_string());
    assert!(doc.to_string().contains(SHA1));
}

#[test]
fn corpus_scrubbed_for_sinks_passes_the_checker() {
    let checker = LeakChecker::new()
        .with_known(&[LEGACY, NEW, CUSTOMER, CUSTOMER2])
        .with_emails();
    for (text, kind) in corpus() {
        if kind == LeakKind::Known {
            continue;
        }
        checker.assert_clean("scrub_for_sink", &scrub_for_sink(&text));
        checker.assert_clean("safe_key_component", &safe_key_component(&text));
    }
    let all: String = corpus().into_iter().map(|(t, _)| t + "\n").collect();
    let scrubbed = scrub_for_sink(&all);
    assert_eq!(
        LeakChecker::new()
            .with_known(&[SECRET])
            .check_text(&scrubbed)
            .len(),
        1,
        "only the secret (not the scrubber's business) is left"
    );
}
