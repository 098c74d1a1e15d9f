//! Confluence: page through CQL search (v1, cursor in `_links.next`, never assuming the page
//! size asked for), fetch each page's body (storage format), version, history, space and
//! ancestors, and list its attachments (cursor paging).

use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ExportError;
use super::source::{AttachmentRef, Batch, Ctx, Item, Page, Source, split_order_by};
use crate::atlassian::http::{HttpError, Idempotency};
use crate::secret::{ExposeSecret, Secret};
use crate::store::jobs::Skipped;

pub struct Confluence;

/// What each exported page carries.
pub const EXPAND: &str = "body.storage,version,history,space,ancestors";
/// Pages fetched at once within a batch.
const FETCH_CONCURRENCY: usize = 8;

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(default, rename = "_links")]
    links: Links,
}

#[derive(Deserialize, Default)]
struct Links {
    next: Option<String>,
}

fn map_search_error(e: HttpError) -> ExportError {
    match e.status().map(|s| s.as_u16()) {
        Some(400) => ExportError::InvalidQuery(
            e.atlassian_message()
                .unwrap_or_else(|| "the query is not valid".into()),
        ),
        _ => e.into(),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    token: &Secret,
    endpoint: &'static str,
    url: url::Url,
) -> Result<T, HttpError> {
    let req = ctx
        .http
        .request(Method::GET, url)
        .bearer_auth(token.expose_secret())
        .build()
        .map_err(|_| HttpError::Transport {
            endpoint,
            kind: crate::atlassian::http::TransportKind::Builder,
        })?;
    ctx.http
        .send(endpoint, ctx.cloud_id.as_str(), Idempotency::Safe, req)
        .await?
        .json()
        .await
}

impl Source for Confluence {
    const BATCH: usize = 50;
    const PAGE_SIZE: usize = 200;

    fn effective_query(&self, query: &str, since_minutes: Option<i64>) -> String {
        let (head, order) = split_order_by(query);
        // CQL also finds attachments and comments; those come with their page.
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
                let mut url = ctx.urls.confluence(ctx.cloud_id, "rest/api/content/search");
                url.query_pairs_mut()
                    .append_pair("cql", query)
                    .append_pair("limit", &Self::PAGE_SIZE.to_string());
                url
            }
        };
        let page: Results = get_json(ctx, token, "confluence.search", url)
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
        _all_comments: bool,
    ) -> Result<Batch, ExportError> {
        let fetched: Vec<Result<Result<Item, Skipped>, ExportError>> =
            futures::stream::iter(ids.to_vec())
                .map(|id| async move { self.fetch_one(ctx, token, &id).await })
                .buffered(FETCH_CONCURRENCY)
                .collect()
                .await;
        let mut batch = Batch::default();
        for r in fetched {
            match r? {
                Ok(item) => batch.items.push(item),
                Err(skipped) => batch.skipped.push(skipped),
            }
        }
        Ok(batch)
    }

    fn redact(&self, doc: &mut Value, names: &mut super::redact::NameBook) {
        super::redact::redact_confluence_content(doc, names);
    }
}

impl Confluence {
    async fn fetch_one(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        id: &str,
    ) -> Result<Result<Item, Skipped>, ExportError> {
        let mut url = ctx
            .urls
            .confluence(ctx.cloud_id, &format!("rest/api/content/{id}"));
        url.query_pairs_mut().append_pair("expand", EXPAND);
        let mut doc: Value = match get_json(ctx, token, "confluence.content", url).await {
            Ok(doc) => doc,
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(403 | 404)) => {
                return Ok(Err(Skipped {
                    id: id.to_owned(),
                    reason: format!(
                        "Confluence answered {} (no permission to see it, or deleted meanwhile)",
                        e.status().map_or(0, |s| s.as_u16())
                    ),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let attachments = self.attachments(ctx, token, id).await?;
        doc["attachments"] = Value::Array(
            attachments
                .iter()
                .map(|a| json!({ "id": a.id, "title": a.filename, "mediaType": a.mime_type, "fileSize": a.size }))
                .collect(),
        );
        Ok(Ok(Item {
            id: id.to_owned(),
            doc,
            attachments,
        }))
    }

    /// Every attachment of a page, following `_links.next`.
    async fn attachments(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        id: &str,
    ) -> Result<Vec<AttachmentRef>, ExportError> {
        let mut out = Vec::new();
        let mut url = ctx.urls.confluence(
            ctx.cloud_id,
            &format!("rest/api/content/{id}/child/attachment"),
        );
        url.query_pairs_mut().append_pair("limit", "100");
        loop {
            let page: Results = match get_json(ctx, token, "confluence.attachments", url).await {
                Ok(p) => p,
                Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(403 | 404)) => {
                    return Ok(out);
                }
                Err(e) => return Err(e.into()),
            };
            for a in &page.results {
                let (Some(aid), Some(download)) =
                    (a["id"].as_str(), a["_links"]["download"].as_str())
                else {
                    continue;
                };
                out.push(AttachmentRef {
                    id: aid.to_owned(),
                    filename: a["title"].as_str().unwrap_or("attachment").to_owned(),
                    size: a["extensions"]["fileSize"].as_u64(),
                    mime_type: a["extensions"]["mediaType"]
                        .as_str()
                        .unwrap_or("application/octet-stream")
                        .to_owned(),
                    url: ctx.urls.confluence(ctx.cloud_id, download),
                });
            }
            match page.links.next {
                Some(next) => url = ctx.urls.confluence(ctx.cloud_id, &next),
                None => return Ok(out),
            }
        }
    }
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
}
