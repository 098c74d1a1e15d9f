//! Tests of the storage-format pass (quick-xml, lenient).

use super::*;
use crate::export::redact::fixtures::*;

#[test]
fn storage_user_link_becomes_display_name() {
    let xhtml = format!("<p>Owner: <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link>!</p>");
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(out, "<p>Owner: @Bob Builder!</p>");
    assert_eq!(n, 1);
}

#[test]
fn storage_user_outside_link_becomes_display_name() {
    let xhtml = format!(
        "<ac:structured-macro ac:name=\"profile\"><ac:parameter ac:name=\"user\"><ri:user ri:account-id=\"{ALICE}\"/></ac:parameter></ac:structured-macro>"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(
        out,
        "<ac:structured-macro ac:name=\"profile\"><ac:parameter ac:name=\"user\">@Alice Example</ac:parameter></ac:structured-macro>"
    );
    assert_eq!(n, 1);
}

#[test]
fn storage_unknown_user_becomes_unknown_user() {
    let xhtml = format!("<p><ac:link><ri:user ri:account-id=\"{DAVE}\"/></ac:link></p>");
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(out, "<p>@unknown user</p>");
    assert_eq!(n, 1);
}

#[test]
fn storage_user_tag_variants_are_all_recognised() {
    let names = book();
    for tag in [
        format!("<ri:user ri:account-id=\"{BOB}\"/>"),
        format!("<ri:user ri:account-id=\"{BOB}\" />"),
        format!("<ri:user ri:account-id='{BOB}'/>"),
        format!("<ri:user ri:account-id=\"{BOB}\"></ri:user>"),
        format!("<ri:user ri:account-id=\"{BOB}\" ></ri:user >"),
        format!("<ri:user ri:local-id=\"{LOCAL_ID}\" ri:account-id=\"{BOB}\" />"),
        format!("<ri:user\n  ri:account-id = \"{BOB}\"\n/>"),
        format!("<RI:USER RI:ACCOUNT-ID=\"{BOB}\"/>"),
        format!("<ri:user ri:account-id={BOB} />"),
        format!(
            "<ri:user ri:userkey=\"ff8080815a0b3b12015a0b3c7e2a0000\" ri:account-id=\"{BOB}\"/>"
        ),
    ] {
        for wrapped in [
            format!("a <ac:link>{tag}</ac:link> b"),
            format!("a <ac:link ac:card-appearance=\"inline\">{tag}</ac:link > b"),
            format!("a {tag} b"),
        ] {
            let (out, n) = redact_storage_body(&wrapped, &names);
            assert_eq!(out, "a @Bob Builder b", "{wrapped}");
            assert_eq!(n, 1, "{wrapped}");
        }
    }
}

#[test]
fn storage_userkey_only_reference_is_replaced() {
    let mut names = NameBook::default();
    names.insert("ff8080815a0b3b12015a0b3c7e2a0000", "Old Timer");
    let (out, n) = redact_storage_body(
        "<ac:link><ri:user ri:userkey=\"ff8080815a0b3b12015a0b3c7e2a0000\"/></ac:link> and <ri:user ri:userkey=\"nobody\"/>",
        &names,
    );
    assert_eq!(out, "@Old Timer and @unknown user");
    assert_eq!(n, 2);
}

#[test]
fn storage_display_name_is_xml_escaped() {
    let mut names = NameBook::default();
    names.insert(ALICE, "R&D <Ops> \"Team\" O'Neil");
    let (out, _) = redact_storage_body(&format!("<ri:user ri:account-id=\"{ALICE}\"/>"), &names);
    assert_eq!(out, "@R&amp;D &lt;Ops&gt; &quot;Team&quot; O&#39;Neil");
}

#[test]
fn storage_user_link_with_link_body_is_replaced_whole() {
    let xhtml = format!(
        "<p><ac:link><ri:user ri:account-id=\"{BOB}\" /><ac:plain-text-link-body><![CDATA[the builder]]></ac:plain-text-link-body></ac:link> and \
         <ac:link><ri:user ri:account-id=\"{ALICE}\" /><ac:link-body><strong>Al</strong></ac:link-body></ac:link></p>"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(out, "<p>@Bob Builder and @Alice Example</p>");
    assert_eq!(n, 2);
}

#[test]
fn storage_without_user_references_is_unchanged() {
    let xhtml = format!(
        "<p><ac:link><ri:page ri:content-title=\"Home\" /><ac:link-body>home</ac:link-body></ac:link> \
         <ri:username-like>x</ri:username-like> <ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[a < b]]></ac:plain-text-body></ac:structured-macro> {SHA256}</p>"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!((out.as_str(), n), (xhtml.as_str(), 0));
}

#[test]
fn storage_other_links_next_to_user_links_are_kept() {
    let xhtml = format!(
        "<ac:link><ri:page ri:content-title=\"Home\"/></ac:link> <ac:link><ri:user ri:account-id=\"{ALICE}\"/></ac:link> <ac:link><ri:page ri:content-title=\"Away\"/></ac:link>"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(
        out,
        "<ac:link><ri:page ri:content-title=\"Home\"/></ac:link> @Alice Example <ac:link><ri:page ri:content-title=\"Away\"/></ac:link>"
    );
    assert_eq!(n, 1);
}

#[test]
fn storage_malformed_markup_keeps_what_it_cannot_parse() {
    let names = book();
    // Unclosed link: only the user element is replaced.
    let (out, n) = redact_storage_body(
        &format!("<ac:link><ri:user ri:account-id=\"{ALICE}\"/> tail"),
        &names,
    );
    assert_eq!((out.as_str(), n), ("<ac:link>@Alice Example tail", 1));
    // Unterminated tag: left for the string safety net.
    let text = format!("x <ri:user ri:account-id=\"{ALICE}");
    let (out, n) = redact_storage_body(&text, &names);
    assert_eq!((out.as_str(), n), (text.as_str(), 0));
}

// --- lenient reading ----------------------------------------------------------------------------

#[test]
fn storage_format_without_namespaces_and_with_html_entities_is_read() {
    let xhtml = format!(
        "<p>Hi&nbsp;<ac:link><ri:user ri:account-id=\"{BOB}\"/></ac:link>&mdash;&#8212; R&amp;D \
         <ac:emoticon ac:name=\"smile\"/><br>next<br/> <ac:structured-macro ac:name=\"toc\"/></p>"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!(
        out,
        "<p>Hi&nbsp;@Bob Builder&mdash;&#8212; R&amp;D \
         <ac:emoticon ac:name=\"smile\"/><br>next<br/> <ac:structured-macro ac:name=\"toc\"/></p>"
    );
    assert_eq!(n, 1);
}

#[test]
fn markup_the_reader_rejects_is_kept_and_reading_goes_on_after_it() {
    let names = book();
    for (xhtml, want) in [
        // A `<` that starts no tag.
        (
            format!("if a < b then <ri:user ri:account-id=\"{ALICE}\"/> x"),
            "if a < b then @Alice Example x".to_owned(),
        ),
        // Unknown `<!` markup.
        (
            format!("<!x> <ri:user ri:account-id=\"{ALICE}\"/>"),
            "<!x> @Alice Example".to_owned(),
        ),
        // An unterminated comment: reading starts again at the next `<`.
        (
            format!("<!-- open <ri:user ri:account-id=\"{ALICE}\"/>"),
            "<!-- open @Alice Example".to_owned(),
        ),
        // An unterminated quote: reading starts again at the next `<`.
        (
            format!("<a title=\"x <ri:user ri:account-id='{ALICE}'/>"),
            "<a title=\"x @Alice Example".to_owned(),
        ),
        // Stray end tags and an unclosed element.
        (
            format!("</p></ac:link><div><ri:user ri:account-id=\"{BOB}\"></ri:user>"),
            "</p></ac:link><div>@Bob Builder".to_owned(),
        ),
    ] {
        let (out, _) = redact_storage_body(&xhtml, &names);
        assert_eq!(out, want, "{xhtml}");
    }
}

#[test]
fn user_references_inside_cdata_and_comments_are_not_tags() {
    let xhtml = format!(
        "<ac:plain-text-body><![CDATA[<ri:user ri:account-id=\"{ALICE}\"/>]]></ac:plain-text-body>\
         <!-- <ri:user ri:account-id=\"{ALICE}\"/> -->"
    );
    let (out, n) = redact_storage_body(&xhtml, &book());
    assert_eq!((out.as_str(), n), (xhtml.as_str(), 0));
}

#[test]
fn user_attributes_are_removed_and_the_tag_written_anew() {
    let mut names = book();
    names.insert(DAVE, "Dave Doe");
    let html = format!(
        "<p><a href=\"{SITE}/jira/people/{OBJECT_ID}\" class=\"user-hover\" rel=\"{DAVE}\" \
         data-user-id='{OBJECT_ID}' title='say \"hi\"'>Dave</a> <img src={SITE}/wiki/aa-avatar/{ALICE} alt=\"\" disabled> \
         <span data-account-id=\"x\" id=\"{OBJECT_ID}\">{OBJECT_ID}</span> <a rel=\"{OBJECT_ID}\">?</a></p>"
    );
    let out = redact_markup(&html, &names, true);
    assert_eq!(
        out.text.as_deref(),
        Some(&*format!(
            "<p><a class=\"user-hover\" title='say \"hi\"'>Dave</a> <img alt=\"\" disabled=\"\"> \
             <span id=\"{OBJECT_ID}\">{OBJECT_ID}</span> <a>?</a></p>"
        ))
    );
    // href, rel, data-user-id; src; data-account-id; rel (a whole 24-hex `rel` is Jira's
    // user-hover card, whoever it is).
    assert_eq!(out.attributes, 6);
    assert_eq!(out.mentions, 0);
    // Written anew, the tags are read back the same: nothing more to remove.
    let again = redact_markup(out.text.as_deref().unwrap_or_default(), &names, true);
    assert!(again.text.is_none());
}

#[test]
fn storage_pass_without_attribute_stripping_keeps_attributes() {
    let html = format!("<a data-account-id=\"{BOB}\">Bob</a>");
    let out = redact_markup(&html, &book(), false);
    assert!(out.text.is_none());
    let out = redact_markup(&html, &book(), true);
    assert_eq!(out.text.as_deref(), Some("<a>Bob</a>"));
}
