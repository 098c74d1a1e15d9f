//! Tests of the sink scrubbers: document free text, failure reasons / events / logs / metadata,
//! and S3 key components.

use super::*;
use crate::export::redact::find_account_ids;
use crate::export::redact::fixtures::*;

#[test]
fn scrub_text_keeps_unknown_bare_hex_and_replaces_known_and_context_ids() {
    let names = book();
    let text = format!(
        "Fixed in {SHA1} (object {OBJECT_ID}), reported by {ALICE}, see accountId={DAVE} and {BOB}"
    );
    assert_eq!(
        scrub_text(&text, &names),
        format!(
            "Fixed in {SHA1} (object {OBJECT_ID}), reported by [account], see accountId=[account] and [account]"
        )
    );
}

#[test]
fn scrub_for_sink_removes_every_id_shape_and_every_email() {
    // A JQL error as Atlassian words it, quoting what the user typed.
    let jql = format!(
        "The value '{ALICE}' does not exist for the field 'assignee'. The value 'alice@example.com' \
         does not exist for the field 'reporter'. {BOB} {CUSTOMER} ~{ALICE} 557058%253A{}",
        &BOB[7..]
    );
    let out = scrub_for_sink(&jql);
    assert_eq!(
        out,
        "The value '[account]' does not exist for the field 'assignee'. The value '[email]' \
         does not exist for the field 'reporter'. [account] [account] ~[account] [account]"
    );
    assert!(find_account_ids(&out).is_empty());
    // Unlike document text, a bare 24-hex word goes too.
    assert_eq!(
        scrub_for_sink(&format!("object {OBJECT_ID}")),
        "object [account]"
    );
}

#[test]
fn scrub_for_sink_masks_encoded_emails_and_keeps_what_is_not_one() {
    for (text, want) in [
        (
            "mail bob.builder+x@corp.example.co.uk now",
            "mail [email] now",
        ),
        (
            "q=reporter%3Dalice%40example.com&x",
            "q=reporter%3D[email]&x",
        ),
        ("q=alice%2540example.com", "q=[email]"),
        ("alice&#64;example.com", "[email]"),
        ("a@b", "a@b"),
        (
            "@mention and user@ and @example.com",
            "@mention and user@ and @example.com",
        ),
        ("x@host.c0m", "x@host.c0m"),
    ] {
        assert_eq!(scrub_for_sink(text), want, "{text}");
    }
}

#[test]
fn safe_key_component_keeps_names_readable() {
    assert_eq!(
        safe_key_component(&format!("avatar-{ALICE}.png")),
        "avatar-account.png"
    );
    assert_eq!(
        safe_key_component(&format!("{BOB} export.csv")),
        "account export.csv"
    );
    assert_eq!(
        safe_key_component("cv of alice@example.com.pdf"),
        "cv of email.pdf"
    );
    assert_eq!(
        safe_key_component(&format!("build-{SHA1}.log")),
        format!("build-{SHA1}.log")
    );
    assert_eq!(
        safe_key_component("Quarterly report.pdf"),
        "Quarterly report.pdf"
    );
    assert_eq!(safe_key_component("icon@2x.png"), "icon@2x.png");
    for name in [
        format!("{CUSTOMER}.txt"),
        format!("~{ALICE}"),
        "557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077.png".to_owned(),
    ] {
        let out = safe_key_component(&name);
        assert!(find_account_ids(&out).is_empty(), "{name} -> {out}");
        assert!(!out.contains('['), "{out}");
    }
}

#[test]
fn sink_scrubbers_are_idempotent() {
    let text = format!("{ALICE} alice@example.com {BOB} {CUSTOMER2} ~{OBJECT_ID}");
    let once = scrub_for_sink(&text);
    assert_eq!(scrub_for_sink(&once), once);
    let once = safe_key_component(&text);
    assert_eq!(safe_key_component(&once), once);
}

#[test]
fn e_mail_addresses_in_file_names_go_and_retina_suffixes_stay() {
    for (name, want) in [
        ("cv of alice@example.com.pdf", "cv of email.pdf"),
        ("alice@example.com", "email"),
        ("logo@2x.png", "logo@2x.png"),
        ("mail to bob@corp.example.co.uk.txt", "mail to email.txt"),
    ] {
        assert_eq!(safe_key_component(name), want, "{name}");
    }
}
