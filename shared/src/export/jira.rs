//! Jira: page sequentially through `search/jql` for ids only (large pages), fetch details
//! with `issue/bulkfetch` (100 at a time), complete the comments beyond the 20 search returns.

use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ExportError;
use super::source::{AttachmentRef, Batch, Ctx, Item, Page, Source, split_order_by};
use crate::atlassian::http::{HttpError, Idempotency};
use crate::secret::{ExposeSecret, Secret};
use crate::store::jobs::Skipped;

pub struct Jira;

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    issues: Vec<IdOnly>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(default, rename = "isLast")]
    is_last: Option<bool>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct BulkFetch {
    #[serde(default)]
    issues: Vec<Value>,
    /// Issues Jira could not load this time: retriable (developer.atlassian.com, Jira REST v3
    /// `POST /rest/api/3/issue/bulkfetch`, `issueErrors`; ATLASSIAN.md).
    #[serde(default, rename = "issueErrors")]
    issue_errors: Vec<IssueError>,
}

#[derive(Deserialize)]
struct IssueError {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "errorMessage")]
    error_message: Option<String>,
}

/// Bulk fetches of the ids Jira reported in `issueErrors` (the first one included).
const BULKFETCH_ATTEMPTS: usize = 3;
/// Issues of a batch whose further comment pages are asked for at once.
const COMMENT_ISSUES_AT_ONCE: usize = 8;

#[derive(Deserialize)]
struct CommentPage {
    #[serde(default)]
    comments: Vec<Value>,
    #[serde(default)]
    total: Option<u64>,
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

impl Source for Jira {
    const BATCH: usize = 100;
    const PAGE_SIZE: usize = 500;

    fn effective_query(&self, query: &str, since_minutes: Option<i64>) -> String {
        match since_minutes {
            None => query.trim().to_owned(),
            Some(m) => {
                // Relative times are evaluated by Jira in its own clock, avoiding the
                // user-profile time zone that absolute JQL dates are read in.
                let (head, order) = split_order_by(query);
                let head = if head.is_empty() {
                    String::new()
                } else {
                    format!("({head}) AND ")
                };
                format!("{head}updated >= \"-{}m\" {order}", m.max(1))
                    .trim()
                    .to_owned()
            }
        }
    }

    async fn page(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        query: &str,
        cursor: Option<&str>,
    ) -> Result<Page, ExportError> {
        let mut body = json!({ "jql": query, "maxResults": Self::PAGE_SIZE, "fields": ["id"] });
        if let Some(c) = cursor {
            body["nextPageToken"] = Value::String(c.to_owned());
        }
        let req = ctx
            .http
            .request(Method::POST, ctx.urls.jira(ctx.cloud_id, "search/jql"))
            .bearer_auth(token.expose_secret())
            .json(&body)
            .build()
            .map_err(|_| ExportError::Terminal("search request could not be built".into()))?;
        let page: SearchPage = ctx
            .http
            .send("jira.search", ctx.cloud_id.as_str(), Idempotency::Safe, req)
            .await
            .map_err(|e| match (cursor, e.status().map(|s| s.as_u16())) {
                // A query that worked for the first page is still valid: the token is not
                // (it expires after 7 days; developer.atlassian.com, Jira REST v3 issue search).
                (Some(_), Some(400)) => ExportError::CursorExpired,
                _ => map_search_error(e),
            })?
            .json()
            .await?;
        let next = if page.is_last == Some(true) {
            None
        } else {
            page.next_page_token
        };
        Ok(Page {
            ids: page.issues.into_iter().map(|i| i.id).collect(),
            next,
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
        let mut returned: Vec<Value> = Vec::new();
        let mut errors: Vec<IssueError> = Vec::new();
        let mut ask: Vec<String> = ids.to_vec();
        for _ in 0..BULKFETCH_ATTEMPTS {
            let out = self.bulkfetch(ctx, token, &ask).await?;
            returned.extend(out.issues);
            errors = out.issue_errors;
            // Ask again only for what Jira said it could not load this time; issues simply
            // absent are not visible to the user (or gone) and will not appear on asking.
            ask = errors
                .iter()
                .filter_map(|e| e.id.clone())
                .filter(|id| ids.contains(id))
                .filter(|id| {
                    !returned
                        .iter()
                        .any(|i| i["id"].as_str() == Some(id.as_str()))
                })
                .collect();
            if ask.is_empty() {
                break;
            }
        }
        for id in ids {
            if returned
                .iter()
                .any(|i| i["id"].as_str() == Some(id.as_str()))
            {
                continue;
            }
            let reason = match errors.iter().find(|e| e.id.as_deref() == Some(id.as_str())) {
                Some(e) => format!(
                    "Jira could not load it after {BULKFETCH_ATTEMPTS} attempts: {}",
                    e.error_message.as_deref().unwrap_or("no reason given")
                ),
                None => {
                    "not returned by Jira (no permission to see it, or deleted meanwhile)".into()
                }
            };
            batch.skipped.push(Skipped {
                id: id.clone(),
                reason,
            });
        }
        if all_comments {
            // The issues' further comment pages at once (the site's request slots bound them),
            // in order: one after another they made the fetch side's chain one request longer
            // per issue with more than 20 comments (30 of 1,500 in the bench: 1.5 s at 50 ms).
            let mut completed = Vec::with_capacity(returned.len());
            let mut pending =
                futures::stream::iter(returned.into_iter().map(|mut doc| async move {
                    if let Some(id) = doc["id"].as_str().map(str::to_owned) {
                        self.complete_comments(ctx, token, &id, &mut doc).await?;
                    }
                    Ok::<_, ExportError>(doc)
                }))
                .buffered(COMMENT_ISSUES_AT_ONCE);
            while let Some(doc) = pending.next().await {
                completed.push(doc?);
            }
            returned = completed;
        }
        for doc in returned {
            let Some(id) = doc["id"].as_str().map(str::to_owned) else {
                continue;
            };
            let attachments = doc["fields"]["attachment"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|a| {
                            let aid = a["id"].as_str()?.to_owned();
                            Some(AttachmentRef {
                                url: ctx
                                    .urls
                                    .jira(ctx.cloud_id, &format!("attachment/content/{aid}")),
                                id: aid,
                                filename: a["filename"].as_str().unwrap_or("attachment").to_owned(),
                                size: a["size"].as_u64(),
                                mime_type: a["mimeType"]
                                    .as_str()
                                    .unwrap_or("application/octet-stream")
                                    .to_owned(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            batch.items.push(Item {
                id,
                doc,
                attachments,
            });
        }
        Ok(batch)
    }

    fn redact(doc: &mut Value, names: &mut super::redact::NameBook) {
        super::redact::redact_jira_issue(doc, names);
    }
}

impl Jira {
    async fn bulkfetch(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        ids: &[String],
    ) -> Result<BulkFetch, ExportError> {
        if ids.is_empty() {
            return Ok(BulkFetch {
                issues: Vec::new(),
                issue_errors: Vec::new(),
            });
        }
        let body = json!({ "issueIdsOrKeys": ids, "fields": ["*all"] });
        let req = ctx
            .http
            .request(Method::POST, ctx.urls.jira(ctx.cloud_id, "issue/bulkfetch"))
            .bearer_auth(token.expose_secret())
            .json(&body)
            .build()
            .map_err(|_| ExportError::Terminal("bulk fetch request could not be built".into()))?;
        let out: BulkFetch = ctx
            .http
            .send(
                "jira.bulkfetch",
                ctx.cloud_id.as_str(),
                Idempotency::Safe,
                req,
            )
            .await?
            .json()
            .await?;
        Ok(out)
    }

    /// Replace the ≤20 comments search returns by all of them.
    async fn complete_comments(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        id: &str,
        doc: &mut Value,
    ) -> Result<(), ExportError> {
        let comment = &doc["fields"]["comment"];
        let have = comment["comments"].as_array().map_or(0, Vec::len) as u64;
        let total = comment["total"].as_u64().unwrap_or(have);
        if total <= have {
            return Ok(());
        }
        let mut all = Vec::new();
        loop {
            let mut url = ctx.urls.jira(ctx.cloud_id, &format!("issue/{id}/comment"));
            url.query_pairs_mut()
                .append_pair("startAt", &all.len().to_string())
                .append_pair("maxResults", "100");
            let req = ctx
                .http
                .request(Method::GET, url)
                .bearer_auth(token.expose_secret())
                .build()
                .map_err(|_| ExportError::Terminal("comment request could not be built".into()))?;
            let page: CommentPage = ctx
                .http
                .send(
                    "jira.comments",
                    ctx.cloud_id.as_str(),
                    Idempotency::Safe,
                    req,
                )
                .await?
                .json()
                .await?;
            let got = page.comments.len();
            all.extend(page.comments);
            let total = page.total.unwrap_or(0) as usize;
            if got == 0 || all.len() >= total {
                break;
            }
        }
        let total = all.len();
        doc["fields"]["comment"] =
            json!({ "comments": all, "total": total, "maxResults": total, "startAt": 0 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_query_keeps_order_by_last() {
        let q = Jira.effective_query("project = ALPHA ORDER BY updated DESC", Some(90));
        assert_eq!(
            q,
            "(project = ALPHA) AND updated >= \"-90m\" ORDER BY updated DESC"
        );
    }

    #[test]
    fn order_by_inside_quotes_is_not_a_clause() {
        let q = Jira.effective_query("summary ~ \"order by me\"", Some(5));
        assert_eq!(q, "(summary ~ \"order by me\") AND updated >= \"-5m\"");
    }

    #[test]
    fn full_runs_use_the_query_as_is() {
        assert_eq!(Jira.effective_query(" project = A ", None), "project = A");
    }

    /// Issue 16: generated search, bulkfetch and comment pages (and the issues in them, through
    /// the redactor) never panic.
    #[test]
    fn generated_jira_answers_never_panic() {
        const KEYS: &[&str] = &[
            "issues",
            "nextPageToken",
            "isLast",
            "id",
            "key",
            "fields",
            "issueErrors",
            "errorMessage",
            "comments",
            "total",
            "attachment",
            "filename",
            "size",
            "mimeType",
            "author",
            "accountId",
            "displayName",
            "emailAddress",
            "body",
            "content",
            "text",
            "type",
            "attrs",
            "changelog",
            "histories",
            "items",
            "from",
            "to",
            "fromString",
            "toString",
            "renderedFields",
            "description",
            "comment",
            "reporter",
            "assignee",
        ];
        let issue = json!({
            "id": "10001", "key": "PROJ-1",
            "fields": {
                "summary": "Fix it",
                "reporter": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Ann"},
                "description": {"type": "doc", "version": 1, "content": [{"type": "paragraph",
                    "content": [{"type": "mention", "attrs": {"id": "5b10a2844c20165700ede21g", "text": "@Ann"}}]}]},
                "attachment": [{"id": "10100", "filename": "a.png", "size": 12, "mimeType": "image/png"}],
                "comment": {"comments": [{"id": "1", "author": {"accountId": "x"}, "body": {"type": "doc", "content": []}}], "total": 1}
            },
            "changelog": {"histories": [{"author": {"accountId": "x"}, "items": [{"field": "assignee", "from": "x", "fromString": "Ann", "to": null}]}]}
        });
        let samples = vec![
            json!({"issues": [{"id": "10001"}, {"id": "10002"}], "nextPageToken": "t", "isLast": false}),
            json!({"issues": [issue.clone()], "issueErrors": [{"id": "10003", "errorMessage": "try again"}]}),
            json!({"comments": [{"id": "1", "author": {"accountId": "x"}, "body": {"type": "doc"}}], "total": 1}),
            issue,
        ];
        crate::props::run(
            "jira answers",
            crate::props::cases(12_500),
            crate::props::near(samples, KEYS),
            |v, bytes| {
                let _ = serde_json::from_slice::<SearchPage>(bytes);
                let _ = serde_json::from_slice::<CommentPage>(bytes);
                if let Ok(b) = serde_json::from_slice::<BulkFetch>(bytes) {
                    for mut doc in b.issues {
                        Jira::redact(&mut doc, &mut crate::export::redact::NameBook::default());
                    }
                }
                let mut doc = v.clone();
                Jira::redact(&mut doc, &mut crate::export::redact::NameBook::default());
                Ok(())
            },
        );
    }
}
