//! Tests of the account-id scanner: every shape and encoding, and the precise rule.

use super::*;
use crate::export::redact::fixtures::*;

#[test]
fn find_account_ids_finds_legacy_hex_ids() {
    assert_eq!(find_account_ids(ALICE), vec![ALICE]);
    assert_eq!(
        find_account_ids(&format!("by {ALICE} and {DAVE}.")),
        vec![ALICE, DAVE]
    );
}

#[test]
fn find_account_ids_finds_digits_colon_uuid_ids() {
    assert_eq!(find_account_ids(BOB), vec![BOB]);
    assert_eq!(
        find_account_ids(&format!("{BOB},{CAROL}")),
        vec![BOB, CAROL]
    );
    assert_eq!(
        find_account_ids("70121:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
        vec!["70121:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"]
    );
}

#[test]
fn find_account_ids_finds_ids_bounded_by_punctuation() {
    for text in [
        format!("accountId={ALICE}"),
        format!("\"@{ALICE}\""),
        format!("/wiki/people/{ALICE}?ref=confluence"),
        format!("user_{ALICE}_avatar"),
        format!("({ALICE})"),
        format!("x-{ALICE}-y"),
    ] {
        assert_eq!(find_account_ids(&text), vec![ALICE], "{text}");
    }
    assert_eq!(
        find_account_ids(&format!("{SITE}/wiki/people/{BOB}?ref=confluence")),
        vec![BOB]
    );
}

#[test]
fn find_account_ids_ignores_hex_runs_that_are_not_whole_24_char_words() {
    for text in [
        "5b10ac8d82e05b22cc7d4ef".to_owned(),   // 23
        "5b10ac8d82e05b22cc7d4ef5a".to_owned(), // 25
        format!("x{ALICE}"),
        format!("{ALICE}g"),
        format!("{ALICE}0"),
        SHA1.to_owned(),
        SHA256.to_owned(),
        format!("sha256:{SHA256}"),
        "5b10ac8d82e05b22cc7d4eg5".to_owned(), // not hex
    ] {
        assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn find_account_ids_ignores_uuids_numbers_keys_and_timestamps() {
    let text = format!(
        "{LOCAL_ID} 10042 ALPHA-1 2024-05-02T10:15:30.123+0000 12:{LOCAL_ID}x \
         557058:f58131cb-b67d-43c7-b30d-6b58d40bd07 557058-{LOCAL_ID} :{LOCAL_ID} \
         {SITE}/rest/api/3/issue/10042"
    );
    // `12:<uuid>` has the account id shape and is found; everything else is not.
    assert_eq!(find_account_ids(&text), vec![format!("12:{LOCAL_ID}")]);
    let text = format!(
        "{LOCAL_ID} 10042 ALPHA-1 2024-05-02T10:15:30.123+0000 \
         557058:f58131cb-b67d-43c7-b30d-6b58d40bd07 557058-{LOCAL_ID} :{LOCAL_ID}"
    );
    assert_eq!(find_account_ids(&text), Vec::<String>::new());
}

#[test]
fn find_account_ids_accepts_upper_and_mixed_case() {
    let upper = ALICE.to_uppercase();
    let mixed = "5B10ac8D82e05b22CC7d4ef5";
    let bob_upper = BOB.to_uppercase();
    assert_eq!(
        find_account_ids(&format!("{upper} {mixed} {bob_upper}")),
        vec![upper.clone(), mixed.to_owned(), bob_upper.clone()]
    );
}

#[test]
fn find_account_ids_finds_percent_encoded_ids() {
    assert_eq!(
        find_account_ids("accountId=557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077&x=1"),
        vec!["557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077"]
    );
    assert_eq!(
        find_account_ids(&format!("q=accountId%3D{ALICE}%26")),
        vec![ALICE]
    );
}

#[test]
fn find_account_ids_treats_non_ascii_as_a_boundary() {
    assert_eq!(find_account_ids(&format!("é{ALICE}ü")), vec![ALICE]);
    assert_eq!(find_account_ids(&format!("😀{BOB}😀")), vec![BOB]);
    assert_eq!(find_account_ids("ééé😀"), Vec::<String>::new());
}

#[test]
fn find_account_ids_splits_ids_glued_to_each_other() {
    // The uuid form needs no boundary after it, and ends a legacy id's word.
    assert_eq!(
        find_account_ids(&format!("{CAROL}{DAVE}")),
        vec![CAROL, DAVE]
    );
    assert_eq!(
        find_account_ids(&format!("x{BOB}{BOB}")),
        vec![BOB.to_owned(), BOB.to_owned()]
    );
}

#[test]
fn scrub_account_ids_replaces_each_id_with_placeholder() {
    let (out, n) = scrub_account_ids(&format!("from {ALICE} to {BOB}; {SHA1}"));
    assert_eq!(out, format!("from [account] to [account]; {SHA1}"));
    assert_eq!(n, 2);
    let (again, n) = scrub_account_ids(&out);
    assert_eq!((again, n), (out, 0));
}
