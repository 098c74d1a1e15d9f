//! Confluence: page through CQL search (v1, cursor in `_links.next`, never assuming the page
//! size asked for) for the ids of the selected pages and blog posts; then, per batch, three bulk
//! CQL listings ([`listing`]): the bodies (storage format) with version, history, space and
//! ancestors (`id in (…)`), the footer and inline comments with their replies
//! (`type = comment AND container in (…)`), and the attachments
//! (`type = attachment AND container in (…)`). About 0.1 requests per page for all of it, plus
//! one per attachment download.
//!
//! Attachments download through
//! `GET /wiki/rest/api/content/{pageId}/child/attachment/{attachmentId}/download` (302 to the
//! media host; the runner's HTTP client drops the bearer token on that cross-origin redirect),
//! never through the `/wiki/download/…` servlet of `_links.download`, which answers 401 to OAuth
//! 2.0 tokens on Cloud (../shared/ATLASSIAN.md, Confluence section).
//!
//! Each exported document is the page's v1 content plus `attachments` (id, title, media type,
//! size) and `comments`: every comment once, oldest first, as v1 content with `location`
//! (`footer` / `inline`), `parentId` (the comment replied to) and, for inline comments,
//! `annotatedText` (the passage of the page they annotate). A list that could not be read is
//! `null` in the document and a skipped record `{pageId}/comments` or `{pageId}/attachments`
//! with the reason. With the connector option `all_comments` off, comments are not exported
//! (`comments` is absent) and not asked for.

mod listing;

use std::collections::HashMap;

use serde_json::{Value, json};

use self::listing::{Listed, Listing, Results, SEARCH_PATH, get_json};
use super::ExportError;
use super::source::{AttachmentRef, Batch, Ctx, Item, Page, Source, split_order_by};
use crate::atlassian::http::{HttpError, Idempotency};
use crate::secret::Secret;
use crate::store::jobs::Skipped;

pub struct Confluence;

/// What each exported page carries.
pub const EXPAND: &str = "body.storage,version,history,space,ancestors";
/// What each exported comment carries: its body, author, thread (`ancestors`: the comments it
/// replies to, root first), page (`container`), and for inline comments the annotated passage
/// (`extensions.inlineProperties.originalSelection`) and whether it was resolved.
pub const COMMENT_EXPAND: &str = "body.storage,version,history,ancestors,container,extensions.inlineProperties,extensions.resolution";
/// What each listed attachment carries.
pub const ATTACHMENT_EXPAND: &str = "version,container";
/// Results per request when bodies are expanded (Confluence caps such pages at 50).
const BODY_LIMIT: usize = 50;
/// Pages whose comments are listed by one chain of requests; a batch's chains run at once (a
/// batch of 100 pages with a few comments each is several requests of 50 comments, which
/// would otherwise follow one another).
const COMMENT_PAGES_AT_ONCE: usize = 25;
/// Results per request otherwise (the cap of CQL search).
const PLAIN_LIMIT: usize = 200;

const BODIES: Listing = Listing {
    endpoint: "confluence.content-bodies",
    what: "body",
    cql: |ids| format!("id in ({})", ids.join(",")),
    expand: EXPAND,
    limit: BODY_LIMIT,
    one_per_member: true,
};

const COMMENTS: Listing = Listing {
    endpoint: "confluence.comments",
    what: "comments",
    cql: |ids| format!("type = comment AND container in ({})", ids.join(",")),
    expand: COMMENT_EXPAND,
    limit: BODY_LIMIT,
    one_per_member: false,
};

const ATTACHMENTS: Listing = Listing {
    endpoint: "confluence.attachments",
    what: "attachments",
    cql: |ids| format!("type = attachment AND container in ({})", ids.join(",")),
    expand: ATTACHMENT_EXPAND,
    limit: PLAIN_LIMIT,
    one_per_member: false,
};

fn map_search_error(e: HttpError) -> ExportError {
    match e.status().map(|s| s.as_u16()) {
        Some(400) => ExportError::InvalidQuery(
            e.atlassian_message()
                .unwrap_or_else(|| "the query is not valid".into()),
        ),
        Some(status @ (404 | 410)) => ExportError::Terminal(format!(
            "Confluence answered {status} for GET /wiki/{SEARCH_PATH} (confluence.search): the endpoint appears to have been removed"
        )),
        _ => e.into(),
    }
}

/// Content ids go into CQL and URL paths: Confluence's are digits (attachments `att` + digits).
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Source for Confluence {
    const BATCH: usize = 100;
    const PAGE_SIZE: usize = PLAIN_LIMIT;

    fn effective_query(&self, query: &str, since_minutes: Option<i64>) -> String {
        let (head, order) = split_order_by(query);
        // CQL also finds attachments and comments; those are listed per batch of pages.
        let mut q = if head.is_empty() {
            "type in (page, blogpost)".to_owned()
        } else {
            format!("({head}) AND type in (page, blogpost)")
        };
        if let Some(m) = since_minutes {
            q.push_str(&format!(" AND lastmodified >= now(\"-{}m\")", m.max(1)));
        }
        if !order.is_empty() {
            q.push(' ');
            q.push_str(order);
        }
        q
    }

    async fn page(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        query: &str,
        cursor: Option<&str>,
    ) -> Result<Page, ExportError> {
        let url = match cursor {
            Some(next) => ctx.urls.confluence(ctx.cloud_id, next),
            None => {
                let mut url = ctx.urls.confluence(ctx.cloud_id, SEARCH_PATH);
                url.query_pairs_mut()
                    .append_pair("cql", query)
                    .append_pair("limit", &Self::PAGE_SIZE.to_string());
                url
            }
        };
        let page: Results = get_json(ctx, token, "confluence.search", url, Idempotency::Safe)
            .await
            .map_err(|e| match (cursor, e.status().map(|s| s.as_u16())) {
                // The query worked for the first page: a refused cursor link is stale.
                (Some(_), Some(400)) => ExportError::CursorExpired,
                _ => map_search_error(e),
            })?;
        let ids = page
            .results
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        Ok(Page {
            ids,
            next: page.links.next,
        })
    }

    async fn fetch(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        ids: &[String],
        all_comments: bool,
    ) -> Result<Batch, ExportError> {
        let mut batch = Batch::default();
        let (usable, odd): (Vec<String>, Vec<String>) =
            ids.iter().cloned().partition(|id| plain_id(id));
        batch.skipped.extend(odd.into_iter().map(|id| Skipped {
            id,
            reason: "not a Confluence content id".into(),
        }));
        // One request per 50 bodies (Confluence's cap when bodies are expanded), all at once.
        let bodies = listing::list_in_parts(ctx, token, &BODIES, &usable, BODY_LIMIT).await?;
        let mut docs: HashMap<String, Value> = bodies
            .results
            .into_iter()
            .filter_map(|doc| Some((doc["id"].as_str()?.to_owned(), doc)))
            .collect();
        let failed: HashMap<String, String> = bodies.failed.into_iter().collect();
        let found: Vec<String> = usable
            .iter()
            .filter(|id| docs.contains_key(*id))
            .cloned()
            .collect();
        for id in usable.iter().filter(|id| !docs.contains_key(*id)) {
            batch.skipped.push(Skipped {
                id: id.clone(),
                reason: failed.get(id).cloned().unwrap_or_else(|| {
                    "not returned by Confluence (no permission to see it, or deleted meanwhile)"
                        .into()
                }),
            });
        }
        let comments = async {
            if all_comments && !found.is_empty() {
                listing::list_in_parts(ctx, token, &COMMENTS, &found, COMMENT_PAGES_AT_ONCE)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let attachments = async {
            if found.is_empty() {
                Ok(Listed::default())
            } else {
                listing::list(ctx, token, &ATTACHMENTS, &found).await
            }
        };
        let (comments, attachments) = futures::join!(comments, attachments);
        let (comments, attachments) = (comments?, attachments?);
        let mut comments_of = comments.map(|c| by_container(c, "comments", &mut batch.skipped));
        let mut attachments_of = by_container(attachments, "attachments", &mut batch.skipped);
        for id in found {
            let Some(mut doc) = docs.remove(&id) else {
                continue;
            };
            let refs = match attachments_of.remove(&id).unwrap_or(Some(Vec::new())) {
                Some(list) => {
                    let refs = attachment_refs(ctx, &id, &list, &mut batch.skipped);
                    doc["attachments"] = Value::Array(list.iter().map(attachment_entry).collect());
                    refs
                }
                None => {
                    doc["attachments"] = Value::Null;
                    Vec::new()
                }
            };
            if let Some(comments_of) = comments_of.as_mut() {
                doc["comments"] = match comments_of.remove(&id).unwrap_or(Some(Vec::new())) {
                    Some(list) => Value::Array(thread(list)),
                    None => Value::Null,
                };
            }
            batch.items.push(Item {
                id,
                doc,
                attachments: refs,
            });
        }
        Ok(batch)
    }

    fn redact(doc: &mut Value, names: &mut super::redact::NameBook) {
        // The comments are part of the document: their authors, mentions and resolution
        // records go through the same pass as the page's.
        super::redact::redact_confluence_content(doc, names);
    }
}

/// Results grouped by the page they belong to (`container.id`); a page whose listing failed
/// maps to `None` and gets a skipped record `{pageId}/{what}`.
fn by_container(
    listed: Listed,
    what: &str,
    skipped: &mut Vec<Skipped>,
) -> HashMap<String, Option<Vec<Value>>> {
    let mut out: HashMap<String, Option<Vec<Value>>> = HashMap::new();
    for (page, reason) in listed.failed {
        skipped.push(Skipped {
            id: format!("{page}/{what}"),
            reason,
        });
        out.insert(page, None);
    }
    for r in listed.results {
        let Some(page) = r["container"]["id"].as_str().map(str::to_owned) else {
            continue;
        };
        // A page whose listing failed keeps no partial list.
        if let Some(list) = out.entry(page).or_insert_with(|| Some(Vec::new())) {
            list.push(r);
        }
    }
    out
}

/// A page's comments oldest first (by id: Confluence numbers content in creation order), each
/// with `location`, `parentId` and, for inline comments, `annotatedText`.
fn thread(mut comments: Vec<Value>) -> Vec<Value> {
    let key = |c: &Value| {
        let id = c["id"].as_str().unwrap_or_default();
        (id.len(), id.to_owned())
    };
    comments.sort_by_cached_key(key);
    for c in &mut comments {
        let location = c["extensions"]["location"].clone();
        let parent = c["ancestors"]
            .as_array()
            .and_then(|a| a.last())
            .map(|p| p["id"].clone())
            .unwrap_or(Value::Null);
        let annotated = c["extensions"]["inlineProperties"]["originalSelection"].clone();
        if let Some(obj) = c.as_object_mut() {
            obj.insert("location".into(), location);
            obj.insert("parentId".into(), parent);
            if !annotated.is_null() {
                obj.insert("annotatedText".into(), annotated);
            }
            obj.remove("container");
        }
    }
    comments
}

fn attachment_entry(a: &Value) -> Value {
    json!({
        "id": a["id"],
        "title": a["title"],
        "mediaType": a["extensions"]["mediaType"],
        "fileSize": a["extensions"]["fileSize"],
        "version": a["version"]["number"],
    })
}

/// Where each attachment downloads: the REST download of the page's attachment, never the
/// servlet of `_links.download`.
fn attachment_refs(
    ctx: &Ctx<'_>,
    page: &str,
    list: &[Value],
    skipped: &mut Vec<Skipped>,
) -> Vec<AttachmentRef> {
    let mut refs = Vec::new();
    for a in list {
        let Some(id) = a["id"].as_str() else {
            continue;
        };
        if !plain_id(id) {
            skipped.push(Skipped {
                id: format!("{page}/attachment/{id}"),
                reason: "not a Confluence attachment id".into(),
            });
            continue;
        }
        refs.push(AttachmentRef {
            id: id.to_owned(),
            filename: a["title"].as_str().unwrap_or("attachment").to_owned(),
            size: a["extensions"]["fileSize"].as_u64(),
            mime_type: a["extensions"]["mediaType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_owned(),
            url: ctx.urls.confluence(
                ctx.cloud_id,
                &format!("rest/api/content/{page}/child/attachment/{id}/download"),
            ),
        });
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_limited_to_pages_and_blogposts() {
        assert_eq!(
            Confluence.effective_query("space = DOCS", None),
            "(space = DOCS) AND type in (page, blogpost)"
        );
    }

    #[test]
    fn incremental_query_keeps_order_by_last() {
        assert_eq!(
            Confluence.effective_query("space = DOCS order by lastmodified desc", Some(30)),
            "(space = DOCS) AND type in (page, blogpost) AND lastmodified >= now(\"-30m\") order by lastmodified desc"
        );
    }

    #[test]
    fn listings_select_by_id_and_container() {
        let ids = vec!["1".to_owned(), "22".to_owned()];
        assert_eq!((BODIES.cql)(&ids), "id in (1,22)");
        assert_eq!(
            (COMMENTS.cql)(&ids),
            "type = comment AND container in (1,22)"
        );
        assert_eq!(
            (ATTACHMENTS.cql)(&ids),
            "type = attachment AND container in (1,22)"
        );
    }

    #[test]
    fn comments_are_ordered_with_location_parent_and_annotated_text() {
        let c = thread(vec![
            json!({"id": "10", "extensions": {"location": "inline", "inlineProperties": {"originalSelection": "the text"}}, "ancestors": [{"id": "9"}], "container": {"id": "1"}}),
            json!({"id": "9", "extensions": {"location": "inline", "inlineProperties": {"originalSelection": "the text"}}, "ancestors": []}),
            json!({"id": "100", "extensions": {"location": "footer"}}),
        ]);
        let ids: Vec<&str> = c.iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, ["9", "10", "100"]);
        assert_eq!(c[1]["parentId"], "9");
        assert_eq!(c[0]["parentId"], Value::Null);
        assert_eq!(c[1]["annotatedText"], "the text");
        assert_eq!(c[2]["location"], "footer");
        assert!(c[2].get("annotatedText").is_none());
        assert!(c[1].get("container").is_none());
    }

    #[test]
    fn a_failed_listing_is_null_for_its_page_and_a_skipped_record() {
        let mut skipped = Vec::new();
        let grouped = by_container(
            Listed {
                results: vec![json!({"id": "c1", "container": {"id": "1"}})],
                failed: vec![("2".into(), "Confluence answered 403".into())],
            },
            "comments",
            &mut skipped,
        );
        assert_eq!(grouped["1"].as_ref().map(Vec::len), Some(1));
        assert_eq!(grouped["2"], None);
        assert_eq!(skipped[0].id, "2/comments");
    }

    #[test]
    fn ids_that_are_not_plain_are_refused() {
        assert!(plain_id("327681") && plain_id("att3000001"));
        assert!(!plain_id("1) OR (type = page") && !plain_id("") && !plain_id("../x"));
    }

    /// Issue 16: generated search, page, comment and attachment listings (and the pages,
    /// through the redactor) never panic.
    #[test]
    fn generated_confluence_answers_never_panic() {
        const KEYS: &[&str] = &[
            "results",
            "_links",
            "next",
            "id",
            "title",
            "container",
            "extensions",
            "location",
            "inlineProperties",
            "originalSelection",
            "ancestors",
            "mediaType",
            "fileSize",
            "version",
            "number",
            "body",
            "storage",
            "value",
            "representation",
            "history",
            "createdBy",
            "accountId",
            "publicName",
            "space",
            "key",
            "type",
            "status",
        ];
        let page = json!({
            "id": "65537", "type": "page", "title": "Home", "space": {"key": "~5b10a2844c20165700ede21g"},
            "history": {"createdBy": {"accountId": "5b10a2844c20165700ede21g", "publicName": "Ann"}},
            "body": {"storage": {"value": "<p><ac:link><ri:user ri:account-id=\"5b10a2844c20165700ede21g\"/></ac:link></p>", "representation": "storage"}}
        });
        let samples = vec![
            json!({"results": [page.clone()], "_links": {"next": "/wiki/rest/api/content/search?cursor=x"}}),
            json!({"results": [{"id": "2", "container": {"id": "65537"}, "extensions": {"location": "inline",
                "inlineProperties": {"originalSelection": "text"}}, "ancestors": [{"id": "1"}]}]}),
            json!({"results": [{"id": "att1", "title": "a.pdf", "container": {"id": "65537"},
                "extensions": {"mediaType": "application/pdf", "fileSize": 12}, "version": {"number": 2}}]}),
            page,
        ];
        crate::props::run(
            "confluence answers",
            crate::props::cases(12_500),
            crate::props::near(samples, KEYS),
            |v, bytes| {
                if let Ok(r) = serde_json::from_slice::<Results>(bytes) {
                    let _ = r.links.next;
                    for a in &r.results {
                        let _ = attachment_entry(a);
                    }
                    let mut skipped = Vec::new();
                    let grouped = by_container(
                        Listed {
                            results: r.results.clone(),
                            failed: vec![("65537".into(), "failed".into())],
                        },
                        "comments",
                        &mut skipped,
                    );
                    for list in grouped.into_values().flatten() {
                        let _ = thread(list);
                    }
                    for mut doc in r.results {
                        Confluence::redact(
                            &mut doc,
                            &mut crate::export::redact::NameBook::default(),
                        );
                    }
                }
                let mut doc = v.clone();
                Confluence::redact(&mut doc, &mut crate::export::redact::NameBook::default());
                Ok(())
            },
        );
    }
}
