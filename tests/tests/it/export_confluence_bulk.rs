//! Issue 15: Confluence on Atlassian's current API. A space of pages and blog posts lands with
//! every comment (footer, inline, replies) and attachment exactly once, in about a tenth of a
//! request per page plus one request per attachment download, never through the download
//! servlet; heavy pages halve the limit; a refused listing is a skipped record; a missing
//! download scope fails the job and keeps the connection.

use std::collections::BTreeMap;

use integration_tests::fake::{self, ContentKind, SeedSpec};
use serde_json::Value;
use shared::export::runner::Outcome;
use shared::ids::Product;
use shared::store::ConnectionStatus;

use crate::connect::tenant;
use crate::export_harness::Export;
use crate::refresh::grant_of;

/// The target: requests per page for bodies, metadata, comments and attachment lists.
const REQUESTS_PER_PAGE: f64 = 0.1;

/// One space of `pages` pages and blog posts (every tenth a post), `attachments` attachments,
/// comments on one page in three, nothing forbidden.
fn space(pages: usize, attachments: usize) -> SeedSpec {
    let mut seed = SeedSpec::empty();
    seed.confluence_spaces = vec![("ENG".into(), pages)];
    seed.confluence_attachments = attachments;
    seed.confluence_comment_every = 3;
    seed
}

async fn confluence(seed: SeedSpec) -> Export {
    Export::for_product(seed, Product::Confluence)
        .await
        .with_production_batches()
}

/// Requests to the Confluence API since `mark`: (attachment downloads, everything else).
/// The tenant's only connection.
async fn only_connection(x: &Export) -> shared::store::Connection {
    x.w.store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
}

fn requests_since(x: &Export, mark: usize) -> (usize, usize) {
    let all = x.w.site.requests();
    let api: Vec<_> = all
        .iter()
        .skip(mark)
        .filter(|r| r.path.starts_with("/ex/confluence/"))
        .collect();
    let downloads = api
        .iter()
        .filter(|r| r.path.contains("/child/attachment/") && r.path.ends_with("/download"))
        .count();
    (downloads, api.len() - downloads)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_of_400_lands_with_every_comment_and_attachment_once_in_a_tenth_of_a_request_per_page()
 {
    let x = confluence(space(400, 60)).await;
    let wiki =
        x.w.site
            .confluence(&x.cloud)
            .unwrap_or_else(|| panic!("no confluence"));
    let pages = wiki.pages();
    let comments = wiki.comments();
    let attachments = wiki.attachments();
    assert_eq!(pages.len(), 400);
    assert_eq!(attachments.len(), 60);
    assert!(pages.iter().any(|p| p.kind == ContentKind::BlogPost));
    assert_eq!(
        pages.iter().filter(|p| !p.comment_ids.is_empty()).count(),
        400usize.div_ceil(3),
        "comments on one page in three"
    );
    let connector = x.connector("wiki-bulk", "space = ENG").await;
    let mark = x.w.site.requests().len();

    let (_, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let (downloads, listing) = requests_since(&x, mark);
    let per_page = listing as f64 / pages.len() as f64;
    println!(
        "confluence export: {} pages, {} comments, {} attachments: {listing} listing requests ({per_page:.3} per page), {downloads} downloads",
        pages.len(),
        comments.len(),
        attachments.len()
    );
    assert!(
        per_page <= REQUESTS_PER_PAGE,
        "{per_page:.3} requests per page (target {REQUESTS_PER_PAGE})"
    );
    assert_eq!(downloads, attachments.len(), "one request per attachment");
    assert_eq!(x.w.site.download_servlet_hits(), 0, "never the servlet");

    let items = x.items(&connector).await;
    assert_eq!(
        items.keys().cloned().collect::<Vec<_>>(),
        pages.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        "every page and blog post once"
    );
    let names: BTreeMap<String, String> =
        x.w.site
            .users()
            .into_iter()
            .map(|u| (u.account_id, u.display_name))
            .collect();
    let mut seen_comments: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_attachments: BTreeMap<String, String> = BTreeMap::new();
    for page in &pages {
        let doc = &items[&page.id].doc;
        for c in doc["comments"]
            .as_array()
            .unwrap_or_else(|| panic!("page {} has no comment list: {}", page.id, doc["comments"]))
        {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            *seen_comments.entry(id).or_default() += 1;
        }
        for a in doc["attachments"].as_array().into_iter().flatten() {
            let id = a["id"].as_str().unwrap_or_default().to_owned();
            let key = a["exportedKey"]
                .as_str()
                .unwrap_or_else(|| panic!("attachment {id} of {} not exported", page.id))
                .to_owned();
            assert!(
                seen_attachments.insert(id.clone(), key).is_none(),
                "attachment {id} twice"
            );
        }
    }
    for c in &comments {
        assert_eq!(seen_comments.get(&c.id), Some(&1), "comment {} once", c.id);
        let doc = &items[&c.page_id].doc;
        let exported = doc["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["id"] == c.id.as_str())
            .unwrap_or_else(|| panic!("comment {} not with its page", c.id));
        assert_eq!(exported["location"], c.location);
        assert_eq!(exported["parentId"].as_str(), c.parent_id.as_deref());
        assert_eq!(
            exported["annotatedText"].as_str(),
            c.annotated_text.as_deref(),
            "the passage inline comment {} annotates",
            c.id
        );
        let body = crate::export_confluence::xml_text(
            exported["body"]["storage"]["value"]
                .as_str()
                .unwrap_or_default(),
        );
        assert!(
            body.contains(&format!("@{}", names[&c.mentioned_account_id])),
            "the mention in comment {} reads as a display name: {body}",
            c.id
        );
    }
    assert_eq!(seen_comments.len(), comments.len(), "no other comment");
    assert!(comments.iter().any(|c| c.location == "inline"));
    assert!(
        comments
            .iter()
            .any(|c| c.parent_id.is_some() && c.location == "footer")
    );
    assert_eq!(seen_attachments.len(), attachments.len());
    for att in &attachments {
        let key = &seen_attachments[&att.id];
        assert_eq!(
            x.stored_digest(key).await,
            (att.size, att.sha256_hex()),
            "content of attachment {}",
            att.id
        );
    }
    let corpus = x.stored_and_logged_text().await;
    x.assert_no_account_id_in(&corpus);
    assert!(!corpus.contains("ri:account-id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_download_scope_the_job_fails_naming_it_and_the_connection_keeps_its_tokens() {
    let x = confluence(space(30, 6)).await;
    let granted =
        x.w.config
            .confluence
            .as_ref()
            .map(|a| a.scopes.clone())
            .unwrap_or_default();
    assert!(granted.contains("readonly:content.attachment:confluence"));
    let without: Vec<String> = granted
        .split_whitespace()
        .filter(|s| *s != "readonly:content.attachment:confluence")
        .map(str::to_owned)
        .collect();
    x.w.site
        .set_app_scopes(fake::CONFLUENCE_CLIENT_ID, Some(without));
    let connector = x.connector("wiki-noscope", "space = ENG").await;

    let (_, outcome) = x.run(&connector).await;

    let Outcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    // The runner names the refused endpoint; the grant's consent still lists the scope (the
    // app lost it in the console afterwards), so the reason points to the console.
    assert!(
        reason.contains("attachment.download")
            && reason.contains("scope does not match")
            && reason.contains("developer console")
            && !reason.contains("lacks"),
        "{reason}"
    );
    let conn = only_connection(&x).await;
    assert_eq!(conn.status, ConnectionStatus::Active);
    assert!(
        grant_of(&x.w, &conn).await.envelope.is_some(),
        "tokens kept"
    );
    assert_eq!(x.w.site.download_servlet_hits(), 0);

    x.w.site.set_app_scopes(fake::CONFLUENCE_CLIENT_ID, None);
    let (_, outcome) = x.run(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
}

/// A consent given without the download scope (the deployment did not ask for it): the
/// failure names the scope the grant lacks, from the grant's own `scope`.
#[tokio::test(flavor = "multi_thread")]
async fn a_grant_consented_without_the_download_scope_fails_naming_the_scope() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let x = confluence(space(10, 3)).await;
    const DOWNLOAD: &str = "readonly:content.attachment:confluence";
    let without: Vec<String> =
        x.w.config
            .confluence
            .as_ref()
            .map(|a| a.scopes.clone())
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| *s != DOWNLOAD)
            .map(str::to_owned)
            .collect();
    x.w.site
        .set_app_scopes(fake::CONFLUENCE_CLIENT_ID, Some(without.clone()));
    let conn = only_connection(&x).await;
    let grant = grant_of(&x.w, &conn).await;
    x.w.aws
        .clients
        .dynamodb
        .update_item()
        .table_name(&x.w.aws.names.table)
        .key("pk", AttributeValue::S(format!("TENANT#{}", conn.tenant)))
        .key("sk", AttributeValue::S(format!("GRANT#{}", grant.id)))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "scope")
        .expression_attribute_values(":s", AttributeValue::S(without.join(" ")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let connector = x.connector("wiki-consent-noscope", "space = ENG").await;

    let (_, outcome) = x.run(&connector).await;

    let Outcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains("attachment.download") && reason.contains(&format!("lacks {DOWNLOAD}")),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heavy_pages_halve_the_limit_and_what_still_fails_or_is_refused_is_a_skipped_record() {
    let mut seed = space(120, 12);
    seed.confluence_heavy_every = 4;
    let x = confluence(seed).await;
    let wiki =
        x.w.site
            .confluence(&x.cloud)
            .unwrap_or_else(|| panic!("no confluence"));
    wiki.refuse_listing(ContentKind::Comment, Some(403));
    let connector = x.connector("wiki-heavy", "space = ENG").await;
    let mark = x.w.site.requests().len();

    let (_, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let timeouts =
        x.w.site
            .requests()
            .iter()
            .skip(mark)
            .filter(|r| r.status == Some(504))
            .count();
    assert!(timeouts > 0, "the heavy pages answered 504 together");
    let items = x.items(&connector).await;
    let pages = wiki.pages();
    let manifest = x.manifest(&outcome).await;
    let skipped: BTreeMap<String, String> = manifest["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let too_heavy: Vec<&String> = pages
        .iter()
        .map(|p| &p.id)
        .filter(|id| !items.contains_key(*id))
        .collect();
    assert!(!too_heavy.is_empty(), "some page is too heavy even alone");
    for id in &too_heavy {
        let reason = skipped
            .get(*id)
            .unwrap_or_else(|| panic!("page {id} missing without a skipped record"));
        assert!(reason.contains("504"), "{reason}");
    }
    assert!(
        items.len() > pages.len() - 10,
        "every other page, heavy ones included"
    );
    for page in pages.iter().filter(|p| items.contains_key(&p.id)) {
        let doc = &items[&page.id].doc;
        assert!(
            doc["body"]["storage"]["value"]
                .as_str()
                .is_some_and(|b| !b.is_empty()),
            "body of {}",
            page.id
        );
        assert_eq!(
            doc["comments"],
            Value::Null,
            "comments of {} unknown",
            page.id
        );
    }
    for page in pages.iter().filter(|p| items.contains_key(&p.id)) {
        let reason = skipped
            .get(&format!("{}/comments", page.id))
            .unwrap_or_else(|| panic!("no skipped record for the comments of {}", page.id));
        assert!(reason.contains("403"), "{reason}");
    }
    assert_eq!(manifest["counts"]["items"], items.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_all_comments_off_no_comment_is_asked_for() {
    let x = confluence(space(40, 3)).await;
    let mut connector = x.connector("wiki-nocomments", "space = ENG").await;
    connector.options.all_comments = false;
    let connector =
        x.w.store()
            .put_connector(&connector)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let mark = x.w.site.requests().len();

    let (_, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let asked =
        x.w.site
            .requests()
            .iter()
            .skip(mark)
            .filter(|r| {
                r.query.as_deref().is_some_and(|q| {
                    q.contains("type+%3D+comment") || q.contains("type%20%3D%20comment")
                })
            })
            .count();
    assert_eq!(asked, 0);
    let items = x.items(&connector).await;
    assert_eq!(items.len(), 40);
    assert!(items.values().all(|i| i.doc.get("comments").is_none()));
}
