//! Jira REST v3 endpoints under `/ex/jira/{cloudId}/rest/api/3/`: enhanced JQL search (GET and
//! POST), bulk fetch, single issue, comments, changelog, attachment metadata and content.
//!
//! "The docs" below: the Jira platform REST v3 reference
//! (developer.atlassian.com/cloud/jira/platform/rest/v3/), checked against its OpenAPI document
//! `swagger-v3.v3.json` version `1001.0.0-SNAPSHOT-57a0ca5b…` (vendored by
//! jarekbird/jira-api-mcp-wrapper). Error texts are the fake's own unless a source is named;
//! our client never parses them (it logs no Atlassian error text, COMMON rules).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::expand::Expand;
use super::render::{self, Fields};
use super::{JiraData, JiraState, jql};
use crate::fake::gateway::authenticate;
use crate::fake::media::{self, Download};
use crate::fake::params::{Params, split_list};
use crate::fake::respond::{self, jira_error, try_response};
use crate::fake::rng::fnv1a;
use crate::fake::scopes::Endpoint;
use crate::fake::site::Site;
use crate::fake::state::AppState;

/// "You can request up to 100 issues"; "400: Returned if no issue IDs/keys were present, or
/// more than 100 issue IDs/keys were requested" (the docs, `POST /rest/api/3/issue/bulkfetch`).
const BULK_LIMIT: usize = 100;
/// Jira Cloud's 404 text for an issue that is missing or not browsable ("404: Returned if the
/// issue is not found or the user does not have permission to view it", the docs, `GET
/// /rest/api/3/issue/{issueIdOrKey}`; the text is Jira's canonical wording as quoted in many
/// public Jira clients' tests, not in the docs).
const NOT_VISIBLE: &str = "Issue does not exist or you do not have permission to see it.";

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/search/jql", get(search_get).post(search_post))
        .route("/issue/bulkfetch", post(bulkfetch))
        .route("/issue/{id}", get(issue))
        .route("/issue/{id}/comment", get(comments))
        .route("/issue/{id}/changelog", get(changelog))
        .route("/attachment/{id}", get(attachment_meta))
        .route("/attachment/content/{id}", get(attachment_content))
        .route("/myself", get(myself))
        .fallback(|| async {
            jira_error(
                StatusCode::NOT_FOUND,
                "No resource found for this path in the fake Jira.",
            )
        })
}

fn site(
    app: &AppState,
    headers: &HeaderMap,
    cloud_id: &str,
    endpoint: Endpoint,
) -> Result<Site, Response> {
    authenticate(app, headers, cloud_id, endpoint)
}

/// One search request, whichever method it came by.
struct SearchRequest {
    jql: String,
    next_page_token: Option<String>,
    max_results: Option<u64>,
    fields: Vec<String>,
    expand: Vec<String>,
}

async fn search_get(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraSearchGet));
    let p = Params::parse(query.as_deref());
    let max_results = try_response!(
        p.number("maxResults")
            .map_err(|m| jira_error(StatusCode::BAD_REQUEST, &m))
    );
    let req = SearchRequest {
        jql: p.get("jql").unwrap_or("").to_owned(),
        next_page_token: p
            .get("nextPageToken")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        max_results,
        fields: p.list("fields"),
        expand: p.list("expand"),
    };
    search(&site.jira, req)
}

async fn search_post(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraSearchPost));
    let body = try_response!(json_object(&body));
    let max_results = match body.get("maxResults") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    "maxResults must be a non-negative integer.",
                );
            }
        },
    };
    let jql = match body.get("jql") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return jira_error(StatusCode::BAD_REQUEST, "jql must be a string."),
    };
    let next_page_token = match body.get("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return jira_error(StatusCode::BAD_REQUEST, "nextPageToken must be a string."),
    };
    let fields = try_response!(string_list(body.get("fields"), "fields"));
    let expand = try_response!(string_list(body.get("expand"), "expand"));
    search(
        &site.jira,
        SearchRequest {
            jql,
            next_page_token,
            max_results,
            fields,
            expand,
        },
    )
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(jira_error(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.",
        )),
    }
}

/// A list given as a JSON array of strings or a comma-separated string.
fn string_list(v: Option<&Value>, name: &str) -> Result<Vec<String>, Response> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split_list([s.as_str()])),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => out.extend(split_list([s])),
                    None => {
                        return Err(jira_error(
                            StatusCode::BAD_REQUEST,
                            &format!("{name} must be a list of strings."),
                        ));
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(jira_error(
            StatusCode::BAD_REQUEST,
            &format!("{name} must be a list of strings."),
        )),
    }
}

/// The `expand` values, or the 400 naming one the fake does not implement (`expand.rs`).
fn expand_of(values: &[String]) -> Result<Expand, Response> {
    Expand::parse(values).map_err(|m| jira_error(StatusCode::BAD_REQUEST, &m))
}

/// How long a `nextPageToken` stays valid: "The token expires after 7 days"
/// (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search,
/// `nextPageToken` of `GET /rest/api/3/search/jql`; ATLASSIAN.md).
pub(crate) const PAGE_TOKEN_TTL_SECS: i64 = 7 * 86_400;

/// `nextPageToken`: the offset of the next page, bound to the query it belongs to and to the
/// time (fake clock) it was issued at, so it expires.
fn encode_token(offset: usize, jql: &str, issued: time::OffsetDateTime) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "v2:{offset}:{:016x}:{}",
        fnv1a(jql.as_bytes()),
        issued.unix_timestamp()
    ))
}

fn decode_token(token: &str, jql: &str, now: time::OffsetDateTime) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token.trim()).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (Some("v2"), Some(offset), Some(fingerprint), Some(issued), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let issued: i64 = issued.parse().ok()?;
    let fresh = now.unix_timestamp().saturating_sub(issued) <= PAGE_TOKEN_TTL_SECS;
    (fresh && fingerprint == format!("{:016x}", fnv1a(jql.as_bytes())))
        .then(|| offset.parse().ok())
        .flatten()
}

/// `GET|POST /rest/api/3/search/jql` per the docs: `jql` "requires a bounded query" (an empty or
/// ORDER-BY-only query answers 400 with the text production clients quote: "Unbounded JQL
/// queries are not allowed here. Please add a search restriction to your query."); `maxResults`
/// defaults to 50, and "The greatest number of items returned per page is achieved when
/// requesting `id` or `key` only. It returns max 5000 issues"; the response is `{issues,
/// isLast, nextPageToken?}` where "The `nextPageToken` field is **not included** in the
/// response for the last page" and the token "will expire in 7 days". ASSUMPTIONS: the cap of
/// 100 when fields are asked for (the docs only say the API "may return fewer items per page
/// where a large number of fields are requested"; our client never assumes a page size), and
/// the 400 for a bad or expired token (status and text undocumented; our client only sends
/// tokens it was given, within minutes).
fn search(jira: &JiraData, req: SearchRequest) -> Response {
    if req.jql.trim().is_empty() {
        return jira_error(StatusCode::BAD_REQUEST, jql::UNBOUNDED);
    }
    let expand = try_response!(expand_of(&req.expand));
    let state = jira.read();
    let hits = match jql::search(&state, &req.jql, jira.ctx().clock.now()) {
        Ok(hits) => hits,
        Err(e) => return jira_error(StatusCode::BAD_REQUEST, &e.message()),
    };
    let fields = Fields::parse(&req.fields, Fields::IdsOnly);
    let cap = if fields.ids_only() { 5000 } else { 100 };
    let page_size = usize::try_from(req.max_results.unwrap_or(50))
        .unwrap_or(cap)
        .clamp(1, cap);
    let offset = match &req.next_page_token {
        None => 0,
        Some(token) => match decode_token(token, &req.jql, jira.ctx().clock.now()) {
            Some(offset) => offset,
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    "The provided next page token is invalid or expired.",
                );
            }
        },
    };
    let end = offset.saturating_add(page_size).min(hits.len());
    let issues: Vec<Value> = hits
        .get(offset..end)
        .unwrap_or(&[])
        .iter()
        .map(|i| render::issue(&state, jira.ctx(), *i, &fields, expand))
        .collect();
    let is_last = end >= hits.len();
    let mut body = json!({ "issues": issues, "isLast": is_last });
    if !is_last && let Some(obj) = body.as_object_mut() {
        obj.insert(
            "nextPageToken".into(),
            json!(encode_token(end, &req.jql, jira.ctx().clock.now())),
        );
    }
    respond::ok(body)
}

async fn bulkfetch(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraBulkFetch));
    let body = try_response!(json_object(&body));
    let ids: Vec<String> = match body.get("issueIdsOrKeys") {
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => ids.push(s.clone()),
                    Value::Number(n) => ids.push(n.to_string()),
                    _ => {
                        return jira_error(
                            StatusCode::BAD_REQUEST,
                            "issueIdsOrKeys must contain issue ids or keys.",
                        );
                    }
                }
            }
            ids
        }
        _ => return jira_error(StatusCode::BAD_REQUEST, "issueIdsOrKeys must be provided."),
    };
    if ids.is_empty() {
        return jira_error(StatusCode::BAD_REQUEST, "issueIdsOrKeys must not be empty.");
    }
    if ids.len() > BULK_LIMIT {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "The number of issue IDs or keys requested ({}) exceeds the maximum of {BULK_LIMIT}.",
                ids.len()
            ),
        );
    }
    let fields = try_response!(string_list(body.get("fields"), "fields"));
    let expand = try_response!(string_list(body.get("expand"), "expand"));
    let fields = Fields::parse(
        &fields,
        Fields::Some(render::ALL_FIELDS.iter().copied().collect()),
    );
    let expand = try_response!(expand_of(&expand));

    let jira = &site.jira;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    {
        let mut state = jira.write();
        let mut seen = HashSet::new();
        for id in &ids {
            let Some(idx) = state.find(id) else { continue };
            if state.issues[idx].forbidden || !seen.insert(idx) {
                continue;
            }
            if state.issues[idx].flaky && state.flaky_served.insert(idx) {
                errors.push(json!({
                    "id": state.issues[idx].id.to_string(),
                    "errorMessage": "Issue could not be retrieved in time; please retry.",
                }));
                continue;
            }
            found.push(idx);
        }
    }
    // "Issues will be returned in ascending `id` order" (the docs, bulkfetch).
    let state = jira.read();
    found.sort_by_key(|i| state.issues[*i].id);
    let issues: Vec<Value> = found
        .iter()
        .map(|i| render::issue(&state, jira.ctx(), *i, &fields, expand))
        .collect();
    // `issueErrors` lists only retriable failures: "Issues which aren't found or that the user
    // doesn't have permission to view won't be returned in this list" (the docs,
    // `BulkIssueResults.issueErrors`). The top-level `expand` is the docs' example response. A
    // repeated id or key is served once (ASSUMPTION, undocumented; our client never repeats one).
    respond::ok(json!({ "expand": "schema,names", "issues": issues, "issueErrors": errors }))
}

/// A visible issue for the single-issue endpoints (404 for missing and forbidden alike).
fn visible(state: &JiraState, id: &str) -> Result<usize, Response> {
    match state.find(id) {
        Some(idx) if !state.issues[idx].forbidden => Ok(idx),
        _ => Err(jira_error(StatusCode::NOT_FOUND, NOT_VISIBLE)),
    }
}

async fn issue(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraIssue));
    let p = Params::parse(query.as_deref());
    let state = site.jira.read();
    let idx = try_response!(visible(&state, &id));
    let fields = Fields::parse(
        &p.list("fields"),
        Fields::Some(render::ALL_FIELDS.iter().copied().collect()),
    );
    let expand = try_response!(expand_of(&p.list("expand")));
    respond::ok(render::issue(&state, site.jira.ctx(), idx, &fields, expand))
}

/// `startAt` and a capped `maxResults` from the query (offset paging, the docs' "Pagination").
/// ASSUMPTION (undocumented): the caps; the docs give defaults only. Our client pages with
/// `startAt` until `total`/`isLast`, whatever a page holds.
fn paging(p: &Params, default: u64, cap: u64) -> Result<(usize, usize), Response> {
    let start = p
        .number("startAt")
        .map_err(|m| jira_error(StatusCode::BAD_REQUEST, &m))?
        .unwrap_or(0);
    let max = p
        .number("maxResults")
        .map_err(|m| jira_error(StatusCode::BAD_REQUEST, &m))?
        .unwrap_or(default);
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let max = usize::try_from(max.clamp(1, cap)).unwrap_or(1);
    Ok((start, max))
}

async fn comments(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraComments));
    let p = Params::parse(query.as_deref());
    // `maxResults` "Default: 100" in the current docs (older versions of the same document said
    // 5000), and Cloud "always returns a maximum of 100 comments" (pycontribs/jira#1938, tested
    // against Cloud); `orderBy` "Accepts *created*" and "400: Returned if `orderBy` is set to a
    // value other than *created*" (the docs, `GET /rest/api/3/issue/{issueIdOrKey}/comment`),
    // with one optional `+`/`-`, case-insensitively and ignoring whitespace, as measured on
    // Jira Cloud in brekkylab/backlot#163 (grammar in backlot#165).
    let (start, max) = try_response!(paging(&p, 100, 100));
    let order: Option<String> = p.get("orderBy").map(|o| {
        o.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
    });
    let descending = match order.as_deref() {
        None | Some("") | Some("created") | Some("+created") => false,
        Some("-created") => true,
        Some(_) => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                "orderBy may only be created, +created or -created.",
            );
        }
    };
    let state = site.jira.read();
    let idx = try_response!(visible(&state, &id));
    let issue = &state.issues[idx];
    let mut order: Vec<usize> = (0..issue.comments.len()).collect();
    if descending {
        order.reverse();
    }
    let page: Vec<Value> = order
        .iter()
        .skip(start)
        .take(max)
        .map(|c| render::comment(site.jira.ctx(), issue, &issue.comments[*c]))
        .collect();
    respond::ok(
        json!({ "startAt": start, "maxResults": max, "total": issue.comments.len(), "comments": page }),
    )
}

async fn changelog(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraChangelog));
    let p = Params::parse(query.as_deref());
    // `maxResults` "Default: 100"; the body is the docs' `PageBeanChangelog` (`self`, `nextPage`,
    // `maxResults`, `startAt`, `total`, `isLast`, `values`).
    let (start, max) = try_response!(paging(&p, 100, 100));
    let state = site.jira.read();
    let idx = try_response!(visible(&state, &id));
    let issue = &state.issues[idx];
    let total = issue.changelog;
    let end = start.saturating_add(max).min(total);
    let values: Vec<Value> = (start.min(end)..end)
        .map(|k| render::history(site.jira.ctx(), issue, k))
        .collect();
    let api = site.ctx.jira_api();
    let is_last = end >= total;
    let mut body = json!({
        "self": format!("{api}/rest/api/3/issue/{id}/changelog?maxResults={max}&startAt={start}"),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last && let Some(obj) = body.as_object_mut() {
        obj.insert(
            "nextPage".into(),
            json!(format!(
                "{api}/rest/api/3/issue/{id}/changelog?maxResults={max}&startAt={end}"
            )),
        );
    }
    respond::ok(body)
}

/// The attachment, if its issue exists; 403 when the user may not see it ("403: The user does
/// not have the necessary permission"; "404: Returned if the attachment is not found", the docs,
/// `GET /rest/api/3/attachment/content/{id}` and `/attachment/{id}`). The texts are the fake's.
fn find_attachment(state: &JiraState, id: &str) -> Result<usize, Response> {
    let not_found = || {
        jira_error(
            StatusCode::NOT_FOUND,
            &format!("The attachment with id '{id}' does not exist."),
        )
    };
    let numeric: u64 = id.parse().map_err(|_| not_found())?;
    let idx = state
        .attachments
        .iter()
        .position(|a| a.id == numeric)
        .ok_or_else(not_found)?;
    let a = &state.attachments[idx];
    let issue = &state.issues[a.issue];
    if issue.deleted || a.deleted {
        return Err(not_found());
    }
    if a.forbidden || issue.forbidden {
        return Err(jira_error(
            StatusCode::FORBIDDEN,
            &format!("You do not have permission to view attachment with id: {id}"),
        ));
    }
    Ok(idx)
}

async fn attachment_meta(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let site = try_response!(site(
        &app,
        &headers,
        &cloud_id,
        Endpoint::JiraAttachmentMeta
    ));
    let state = site.jira.read();
    let idx = try_response!(find_attachment(&state, &id));
    respond::ok(render::attachment(site.jira.ctx(), &state.attachments[idx]))
}

async fn attachment_content(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let site = try_response!(site(
        &app,
        &headers,
        &cloud_id,
        Endpoint::JiraAttachmentContent
    ));
    let download = {
        let state = site.jira.read();
        let idx = try_response!(find_attachment(&state, &id));
        let a = &state.attachments[idx];
        Download {
            content_id: a.id.to_string(),
            size: a.size,
            filename: a.filename.clone(),
            mime: a.mime.to_owned(),
        }
    };
    // "redirect ... Clients that do not automatically follow redirects can set this to `false`"
    // (200 with the bytes); otherwise "303 ... See the `Location` header for the download URL"
    // (the docs). `Range`/206 is not modelled: our client never sends `Range`.
    let p = Params::parse(query.as_deref());
    if p.get("redirect")
        .is_some_and(|r| r.eq_ignore_ascii_case("false"))
    {
        return media::stream(&download);
    }
    respond::redirect(StatusCode::SEE_OTHER, &app.media_link(download))
}

async fn myself(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let site = try_response!(site(&app, &headers, &cloud_id, Endpoint::JiraMyself));
    respond::ok(site.ctx.users.jira_json(0, &site.ctx.jira_api()))
}
