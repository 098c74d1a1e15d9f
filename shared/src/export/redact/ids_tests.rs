//! Tests of the account-id scanner: every shape and encoding, and the precise rule.

use super::*;
use crate::export::redact::NameBook;
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

// --- every encoding of every shape ----------------------------------------------------------------

/// `text` after the precise rule, with `names`.
fn precise(text: &str, names: &NameBook) -> String {
    scrub_with(
        text,
        Some(names),
        Legacy::Precise { keyed: false },
        ACCOUNT_PLACEHOLDER,
    )
    .0
}

const BOB_UUID: &str = "f58131cb-b67d-43c7-b30d-6b58d40bd077";

#[test]
fn colon_of_new_ids_is_found_in_every_encoding() {
    for colon in [
        ":", "%3A", "%3a", "%253A", "%25253a", "&#58;", "&#058;", "&#x3a;", "&#X3A;", "&#x003A;",
        "&colon;", "\\u003a", "\\u003A",
    ] {
        let id = format!("557058{colon}{BOB_UUID}");
        let text = format!("see {id}&x=1");
        assert_eq!(find_account_ids(&text), vec![id.clone()], "{text}");
        assert_eq!(
            precise(&text, &NameBook::default()),
            "see [account]&x=1",
            "{text}"
        );
    }
    // Not a colon: no id.
    for text in [
        format!("557058%3B{BOB_UUID}"),
        format!("557058&#59;{BOB_UUID}"),
        format!("557058&#x3a{BOB_UUID}"),
        format!("557058%3{BOB_UUID}"),
    ] {
        assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn jsm_customer_ids_are_found_raw_and_encoded() {
    for id in [
        CUSTOMER.to_owned(),
        CUSTOMER2.to_owned(),
        CUSTOMER.replace(':', "%3A"),
        CUSTOMER.replace(':', "%253A"),
        CUSTOMER.replace(':', "&#58;"),
        CUSTOMER.to_uppercase(),
        // `qm:<uuid>` with no tail.
        "qm:a713c8ea-1075-4e30-9d96-891a7d181739".to_owned(),
    ] {
        let text = format!("reporter {id}, thanks");
        assert_eq!(find_account_ids(&text), vec![id.clone()], "{text}");
        assert_eq!(
            precise(&text, &NameBook::default()),
            "reporter [account], thanks"
        );
    }
    for text in [
        "qm:zzz",
        "qm:a713c8ea-1075-4e30-9d96",
        "xqm:a713c8ea-1075-4e30-9d96-891a7d181739",
    ] {
        assert_eq!(find_account_ids(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn personal_space_keys_made_from_account_ids_are_found() {
    let legacy_key = "5a75b5612d61371e861f4dae";
    let new_key = "712020f889c42ef53e4500a7c6706c3ef10951";
    for (text, want) in [
        (
            format!("/wiki/spaces/~{new_key}/pages/585629698"),
            "/wiki/spaces/~[account]/pages/585629698",
        ),
        (
            format!("spaceKey=~{legacy_key}&limit=50"),
            "spaceKey=~[account]&limit=50",
        ),
        (
            format!("spaces/%7E{new_key}/overview"),
            "spaces/%7E[account]/overview",
        ),
        (format!("spaces/%257E{new_key}"), "spaces/%257E[account]"),
        (format!("key &#126;{legacy_key}."), "key &#126;[account]."),
        (format!("\"key\":\"~{new_key}\""), "\"key\":\"~[account]\""),
    ] {
        assert_eq!(precise(&text, &NameBook::default()), want, "{text}");
        assert_eq!(find_account_ids(&text).len(), 1, "{text}");
    }
    // Keys that are not account ids: global spaces, pre-GDPR user names, other hex lengths.
    for text in [
        "~ENG",
        "~leo",
        "~5a75b5612d61371e861f4da",
        "~f889c42ef53e4500a7c6706c3ef10951",
        &format!("~{SHA1}"),
        "HEAD~2",
    ] {
        assert_eq!(find_account_ids(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn is_account_id_accepts_exactly_one_whole_id() {
    for id in [
        ALICE,
        BOB,
        CAROL,
        CUSTOMER,
        CUSTOMER2,
        " 5b10ac8d82e05b22cc7d4ef5 ",
    ] {
        assert!(is_account_id(id), "{id}");
    }
    for s in [
        "",
        "nobody",
        SHA1,
        "5b10ac8d82e05b22cc7d4ef5 x",
        "x 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
    ] {
        assert!(!is_account_id(s), "{s}");
    }
}

// --- the precise rule ---------------------------------------------------------------------------

#[test]
fn hashes_and_unknown_bare_hex_in_prose_survive() {
    let names = book();
    for text in [
        format!("Fixed in commit {SHA1}."),
        format!("sha256:{SHA256}"),
        format!("Build {OBJECT_ID} passed"),
        format!("object id={OBJECT_ID}"),
        format!("version {OBJECT_ID}, see {OBJECT_ID}"),
        format!("{ALICE}abcdef0123456789"),
        format!("<code>{OBJECT_ID}</code>"),
        format!("moved from {DAVE} to {OBJECT_ID}"),
    ] {
        assert_eq!(precise(&text, &names), text, "{text}");
    }
}

#[test]
fn known_ids_are_replaced_wherever_they_stand() {
    let mut names = book();
    names.insert(DAVE, "");
    for (text, want) in [
        (format!("Build {ALICE} passed"), "Build [account] passed"),
        (
            format!("moved from {DAVE} to {OBJECT_ID}"),
            &*format!("moved from [account] to {OBJECT_ID}"),
        ),
        (
            format!("{} in upper case", ALICE.to_uppercase()),
            "[account] in upper case",
        ),
        (format!("({ALICE})"), "([account])"),
    ] {
        assert_eq!(precise(&text, &names), want, "{text}");
    }
    // A known id glued into a longer hex run is not that id.
    let glued = format!("{ALICE}abcdef0123456789");
    assert_eq!(precise(&glued, &names), glued);
    // A known legacy user key (32 hex) is replaced too.
    names.insert("ff8080815a0b3b12015a0b3c7e2a0000", "Old Timer");
    assert_eq!(
        precise("key ff8080815a0b3b12015a0b3c7e2a0000.", &names),
        "key [account]."
    );
}

#[test]
fn unknown_ids_in_an_account_id_context_are_replaced() {
    let names = NameBook::default();
    let x = OBJECT_ID;
    for text in [
        format!("/rest/api/3/user?accountId={x}&expand=groups"),
        format!("accountId%3D{x}%26"),
        format!("accountId%253D{x}"),
        format!("accountId&#61;{x}"),
        format!("accountId&equals;{x}"),
        format!("{{\"ownerId\":\"{x}\"}}"),
        format!("{{\\\"accountId\\\":\\\"{x}\\\"}}"),
        format!("{{\"assignee\": \"{x}\"}}"),
        format!("creatorId: {x}"),
        format!("lastModifierId={x}"),
        format!("<ri:user ri:account-id=\"{x}\"/>"),
        format!("<a data-account-id=&quot;{x}&quot;>"),
        format!("[~accountid:{x}]"),
        format!("{SITE}/wiki/people/{x}?ref=confluence"),
        format!("{SITE}/wiki/people%2F{x}"),
        format!("/rest/api/3/user/{x}"),
        format!("ari:cloud:identity::user/{x}"),
        format!("/wiki/aa-avatar/{x}"),
        format!(
            "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{x}/8f4c/48"
        ),
        format!("ping @{x} please"),
        format!("spaceKey=~{x}"),
        format!("user_id = '{x}'"),
        format!("watchers: [{x}]"),
    ] {
        let out = precise(&text, &names);
        assert!(!out.contains(x), "{text} -> {out}");
        assert!(out.contains(ACCOUNT_PLACEHOLDER), "{text} -> {out}");
    }
}

#[test]
fn lists_that_start_in_a_context_are_replaced_whole() {
    let (a, b, c) = (OBJECT_ID, DAVE, "0123456789abcdef01234567");
    let names = NameBook::default();
    assert_eq!(
        precise(&format!("accountIds={a},{b}, {c} and {SHA1}"), &names),
        format!("accountIds=[account],[account], [account] and {SHA1}")
    );
    assert_eq!(
        precise(&format!("{{\"accountIds\":[\"{a}\",\"{b}\"]}}"), &names),
        "{\"accountIds\":[\"[account]\",\"[account]\"]}"
    );
    assert_eq!(
        precise(&format!("accountId={a}&x=1 then {b}"), &names),
        format!("accountId=[account]&x=1 then {b}")
    );
}

#[test]
fn keyed_strings_lose_every_24_hex_word() {
    let text = format!("{OBJECT_ID} and {SHA1}");
    assert_eq!(
        scrub_with(
            &text,
            None,
            Legacy::Precise { keyed: true },
            ACCOUNT_PLACEHOLDER
        )
        .0,
        format!("[account] and {SHA1}")
    );
}

#[test]
fn user_words_name_users_and_other_words_do_not() {
    for word in [
        "accountid",
        "dataaccountid",
        "tmpfromaccountid",
        "ownerid",
        "spaceownerid",
        "creatorid",
        "lastmodifierid",
        "assignedto",
        "completedby",
        "assignee",
        "watchers",
        "triggeredbyuser",
        "userkey",
    ] {
        assert!(is_user_word(word, false), "{word}");
    }
    for word in [
        "id", "version", "commit", "hash", "objectid", "from", "to", "by", "nearby",
    ] {
        assert!(!is_user_word(word, false), "{word}");
    }
    for word in ["from", "to", "by"] {
        assert!(is_user_word(word, true), "{word}");
    }
    assert_eq!(normalize_key("ri:account-id"), "accountid");
    assert_eq!(normalize_key("last_Modifier-Id"), "lastmodifierid");
}

#[test]
fn keys_compare_and_normalise_without_allocating_exactly_as_normalize_key() {
    // `key_is` and `normalize_key_into` replaced `normalize_key(k) == …` on the hot path; they
    // must agree with it on every key, non-ASCII (multi-character lower case) included.
    let mut buf = String::from("left over");
    for key in [
        "accountId",
        "account_id",
        "Account-ID",
        "ns:accountId",
        "a:b:account.id",
        "accountIdx",
        "accountI",
        "İaccountid",
        "ACCOUNTİD",
        "",
        ":",
        "assignee",
        "ÅßΣ-_.",
    ] {
        let normal = normalize_key(key);
        normalize_key_into(key, &mut buf);
        assert_eq!(buf, normal, "{key}");
        assert!(key_is(key, &normal), "{key}");
        assert_eq!(key_is(key, "accountid"), normal == "accountid", "{key}");
    }
}

#[test]
fn space_keys_are_found_behind_every_encoded_tilde_among_other_escapes() {
    // The scan jumps from one `~ % & \` byte to the next; ids behind an escape of another
    // character, or after text with no candidate byte at all, are still found. The new-id form
    // (digits glued to 32 hex digits) is found only as a space key: no other rule matches it.
    let id = "712020f889c42ef53e4500a7c6706c3ef10951";
    for text in [
        format!("%41%42 plain text then ~{id}"),
        format!("&amp;&#x7e;{id}"),
        format!("\\n\\u007e{id} and more"),
        format!("%257E{id}"),
        format!("{}~{id}", "x".repeat(300)),
    ] {
        assert_eq!(find_account_ids(&text), [id.to_owned()], "{text}");
    }
    assert!(find_account_ids("%7Eabc & \\ ~ % nothing").is_empty());
}
