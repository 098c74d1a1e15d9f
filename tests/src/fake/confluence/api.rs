//! Confluence endpoints under `/ex/confluence/{cloudId}/wiki/`: v1 CQL search (content and
//! generic), v1 content and child attachments, v2 pages, blog posts, spaces and attachments,
//! and attachment downloads (redirected to the media host).
//!
//! "The v1 docs" / "the v2 docs" below: developer.atlassian.com/cloud/confluence/rest/v1/ and
//! .../rest/v2/, checked against their OpenAPI documents as vendored by xvrh/atlassian_apis
//! (`tool/apis/confluence.json`, `confluence_v2.json`). Error texts are the fake's own; our
//! client never parses them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::render::{self, Expand};
use super::{ConfluenceState, ContentKind, HEAVY_RESPONSE_BYTES, comments, cql};
use crate::fake::gateway::authenticate;
use crate::fake::media::Download;
use crate::fake::params::{Params, encode_query};
use crate::fake::respond::{
    self, confluence_v1_error as v1_error, confluence_v2_error as v2_error, try_response,
};
use crate::fake::rng::fnv1a;
use crate::fake::scopes::Endpoint;
use crate::fake::site::Site;
use crate::fake::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rest/api/content/search", get(content_search))
        .route("/rest/api/search", get(search))
        .route("/rest/api/content/{id}", get(content))
        .route(
            "/rest/api/content/{id}/child/attachment",
            get(child_attachments),
        )
        .route(
            "/rest/api/content/{id}/child/attachment/{att}/download",
            get(child_attachment_download),
        )
        .route("/api/v2/pages/{id}", get(page_v2))
        .route("/api/v2/blogposts/{id}", get(blogpost_v2))
        .route("/api/v2/pages/{id}/attachments", get(attachments_v2))
        .route("/api/v2/spaces", get(spaces_v2))
        .route("/download/attachments/{page}/{filename}", get(download))
        .fallback(|| async {
            v1_error(
                StatusCode::NOT_FOUND,
                "No resource found for this path in the fake Confluence.",
            )
        })
}

fn encode_cursor(offset: usize, bound_to: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1:{offset}:{:016x}", fnv1a(bound_to.as_bytes())))
}

fn decode_cursor(cursor: &str, bound_to: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (Some("c1"), Some(offset), Some(fp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (fp == format!("{:016x}", fnv1a(bound_to.as_bytes())))
        .then(|| offset.parse().ok())
        .flatten()
}

/// A bounded page size: `default` when absent, at least 1, at most `cap`. The v1 docs give only
/// defaults ("Note, this may be restricted by fixed system limits"), so v1 caps are
/// ASSUMPTIONS; v2's are documented per endpoint.
fn limit(p: &Params, default: u64, cap: u64, v2: bool) -> Result<usize, Response> {
    let n = p.number("limit").map_err(|m| {
        if v2 {
            v2_error(StatusCode::BAD_REQUEST, &m)
        } else {
            v1_error(StatusCode::BAD_REQUEST, &m)
        }
    })?;
    Ok(usize::try_from(n.unwrap_or(default).clamp(1, cap)).unwrap_or(1))
}

async fn content_search(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceContentSearch
    ));
    run_search(&site, &Params::parse(q.as_deref()), false)
}

async fn search(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceSearch
    ));
    run_search(&site, &Params::parse(q.as_deref()), true)
}

/// Both CQL endpoints: cursor paging via `_links.next` (relative to `/wiki`), `limit` capped at
/// 50 when a body is expanded and 200 otherwise. The v1 docs: `limit` default 25; `cursor` is
/// "returned as part of the `next` or `prev` URL from the previous search call"; "400: Returned
/// if the CQL is invalid or missing"; the response's `results`, `start`, `limit`, `size`,
/// `_links` (and `totalSize`, `cqlQuery`, `searchDuration` on `/wiki/rest/api/search`).
/// ASSUMPTIONS: the two caps (see `limit`; our client never assumes the page size and follows
/// `_links.next`), and the 400 for a cursor of another query.
fn run_search(site: &Site, p: &Params, wrapped: bool) -> Response {
    let Some(cql) = p.get("cql").filter(|c| !c.trim().is_empty()) else {
        return v1_error(
            StatusCode::BAD_REQUEST,
            "The cql query parameter is required.",
        );
    };
    let expand_raw = p.list("expand");
    let expand = Expand::parse(&expand_raw, wrapped);
    let cap = if expand.any_body() { 50 } else { 200 };
    let limit = try_response!(limit(p, 25, cap, false));
    let offset = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => match decode_cursor(cursor, cql) {
            Some(o) => o,
            None => {
                return v1_error(
                    StatusCode::BAD_REQUEST,
                    "The cursor is invalid or does not belong to this query.",
                );
            }
        },
    };
    let data = &site.confluence;
    let state = data.read();
    let hits = match cql::search(&state, cql, data.ctx().clock.now()) {
        Ok(h) => h,
        Err(message) => return v1_error(StatusCode::BAD_REQUEST, &message),
    };
    if let Some((_, status)) = state
        .refused_listings
        .iter()
        .find(|(kind, _)| hits.iter().any(|h| content_kind(&state, *h) == *kind))
    {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN);
        return v1_error(status, "The listing was refused (a test's fault).");
    }
    let end = offset.saturating_add(limit).min(hits.len());
    let window = hits.get(offset.min(end)..end).unwrap_or(&[]);
    if expand.any_body() {
        let heavy: usize = window
            .iter()
            .filter_map(|item| match item {
                cql::Item::Page(i) if state.pages[*i].heavy > 0 => {
                    Some(render::storage(&state, data.ctx(), *i).len())
                }
                _ => None,
            })
            .sum();
        if heavy > HEAVY_RESPONSE_BYTES {
            return respond::gateway(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout");
        }
    }
    let results: Vec<Value> = window
        .iter()
        // ASSUMPTION: expanding a body loads each hit through the content service, which checks
        // the restriction the permissive index missed; hits the user may not read are left out
        // of the page, which then holds fewer than `limit` results (Atlassian: "never assume
        // the page size"; see ../shared/ATLASSIAN.md).
        .filter(|item| !(expand.any_body() && hidden(&state, **item)))
        .map(|item| {
            if wrapped {
                render::search_result(&state, data.ctx(), *item, &expand)
            } else {
                match item {
                    cql::Item::Page(i) => render::page_v1(&state, data.ctx(), *i, &expand),
                    cql::Item::Attachment(a) => {
                        render::attachment_v1(&state, data.ctx(), *a, &expand)
                    }
                    cql::Item::Comment(c) => comments::comment_v1(&state, data.ctx(), *c, &expand),
                }
            }
        })
        .collect();
    let path = if wrapped {
        "/rest/api/search"
    } else {
        "/rest/api/content/search"
    };
    let base = data.ctx().wiki_base();
    let expand_param = expand_raw.join(",");
    let limit_s = limit.to_string();
    let mut links = json!({
        "base": base,
        "context": "/wiki",
        "self": format!("{base}{path}?{}", encode_query([("cql", cql)])),
    });
    if end < hits.len() {
        let cursor = encode_cursor(end, cql);
        let end_s = end.to_string();
        let mut pairs = vec![("next", "true"), ("cursor", cursor.as_str())];
        if !expand_param.is_empty() {
            pairs.push(("expand", expand_param.as_str()));
        }
        pairs.extend([
            ("limit", limit_s.as_str()),
            ("start", end_s.as_str()),
            ("cql", cql),
        ]);
        if let Some(obj) = links.as_object_mut() {
            obj.insert(
                "next".into(),
                json!(format!("{path}?{}", encode_query(pairs))),
            );
        }
    }
    let mut body = json!({ "results": results, "start": offset, "limit": limit, "size": end.saturating_sub(offset), "_links": links });
    if wrapped && let Some(obj) = body.as_object_mut() {
        obj.insert("totalSize".into(), json!(hits.len()));
        obj.insert("cqlQuery".into(), json!(cql));
        obj.insert("searchDuration".into(), json!(7));
    }
    respond::ok(body)
}

fn content_kind(state: &ConfluenceState, item: cql::Item) -> ContentKind {
    match item {
        cql::Item::Page(i) => state.pages[i].kind,
        cql::Item::Attachment(_) => ContentKind::Attachment,
        cql::Item::Comment(_) => ContentKind::Comment,
    }
}

/// Whether the user may not read the hit (its page, or the attachment itself, is restricted).
fn hidden(state: &ConfluenceState, item: cql::Item) -> bool {
    state.pages[item.page(state)].forbidden
        || matches!(item, cql::Item::Attachment(a) if state.attachments[a].forbidden)
}

/// A page the user may read: 404 when missing, `denied` when forbidden (`v2` picks the error
/// shape). The docs differ per endpoint: v1 `GET content/{id}` lists "403: Returned if the
/// calling user can not view the content" (the fake's choice there), while v2 `pages/{id}`,
/// v2 `pages/{id}/attachments`, v1 `content/{id}/child/attachment` and its `/download` list
/// only "404: Returned if the calling user does not have permission to view ..." (404 there).
fn readable_page(
    state: &ConfluenceState,
    id: &str,
    v2: bool,
    denied: StatusCode,
) -> Result<usize, Response> {
    let err = |status, msg: &str| {
        if v2 {
            v2_error(status, msg)
        } else {
            v1_error(status, msg)
        }
    };
    if v2 && id.parse::<u64>().is_err() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!(
                "Provided value {{{id}}} for 'id' is not the correct type. Expected type is ContentId"
            ),
        ));
    }
    let idx = state.find(id).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            &format!("No content found with id: {id}"),
        )
    })?;
    if state.pages[idx].forbidden {
        return Err(err(
            denied,
            &format!("You do not have permission to view content with id: {id}"),
        ));
    }
    Ok(idx)
}

async fn content(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceContent
    ));
    let p = Params::parse(q.as_deref());
    let expand = Expand::parse(&p.list("expand"), false);
    let data = &site.confluence;
    let state = data.read();
    if id.starts_with("att") {
        let Some(a) = state.find_attachment(&id) else {
            return v1_error(
                StatusCode::NOT_FOUND,
                &format!("No content found with id: {id}"),
            );
        };
        if state.attachments[a].forbidden || state.pages[state.attachments[a].page].forbidden {
            return v1_error(
                StatusCode::FORBIDDEN,
                &format!("You do not have permission to view content with id: {id}"),
            );
        }
        return respond::ok(render::attachment_v1(&state, data.ctx(), a, &expand));
    }
    let idx = try_response!(readable_page(&state, &id, false, StatusCode::FORBIDDEN));
    respond::ok(render::page_v1(&state, data.ctx(), idx, &expand))
}

async fn child_attachments(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceChildAttachments
    ));
    let p = Params::parse(q.as_deref());
    // v1 docs: `limit` "Default: 25", `start` "Default: 0".
    let limit = try_response!(limit(&p, 25, 200, false));
    let start = try_response!(
        p.number("start")
            .map_err(|m| v1_error(StatusCode::BAD_REQUEST, &m))
    );
    let start = usize::try_from(start.unwrap_or(0)).unwrap_or(usize::MAX);
    let expand_raw = p.list("expand");
    let expand = Expand::parse(&expand_raw, false);
    let data = &site.confluence;
    let state = data.read();
    let idx = try_response!(readable_page(&state, &id, false, StatusCode::NOT_FOUND));
    let all = &state.pages[idx].attachments;
    let end = start.saturating_add(limit).min(all.len());
    let results: Vec<Value> = all
        .get(start.min(end)..end)
        .unwrap_or(&[])
        .iter()
        .map(|a| render::attachment_v1(&state, data.ctx(), *a, &expand))
        .collect();
    let base = data.ctx().wiki_base();
    let mut links = json!({ "base": base, "context": "/wiki", "self": format!("{base}/rest/api/content/{id}/child/attachment") });
    if end < all.len() {
        let (limit_s, end_s, expand_s) = (limit.to_string(), end.to_string(), expand_raw.join(","));
        let mut pairs = vec![("limit", limit_s.as_str()), ("start", end_s.as_str())];
        if !expand_s.is_empty() {
            pairs.push(("expand", expand_s.as_str()));
        }
        if let Some(obj) = links.as_object_mut() {
            obj.insert(
                "next".into(),
                json!(format!(
                    "/rest/api/content/{id}/child/attachment?{}",
                    encode_query(pairs)
                )),
            );
        }
    }
    respond::ok(
        json!({ "results": results, "start": start, "limit": limit, "size": end.saturating_sub(start), "_links": links }),
    )
}

fn v2_content(
    app: &AppState,
    headers: &HeaderMap,
    cloud_id: &str,
    id: &str,
    q: Option<&str>,
    kind: ContentKind,
) -> Response {
    let endpoint = if kind == ContentKind::Page {
        Endpoint::ConfluencePageV2
    } else {
        Endpoint::ConfluenceBlogPostV2
    };
    let site = try_response!(authenticate(app, headers, cloud_id, endpoint));
    let p = Params::parse(q);
    let body_format = p.get("body-format");
    if let Some(f) = body_format
        // The v2 docs' `PrimaryBodyRepresentationSingle` enum.
        && !matches!(
            f,
            "storage" | "atlas_doc_format" | "view" | "export_view" | "anonymous_export_view"
        )
    {
        return v2_error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid value '{f}' for parameter 'body-format'."),
        );
    }
    let data = &site.confluence;
    let state = data.read();
    let idx = try_response!(readable_page(&state, id, true, StatusCode::NOT_FOUND));
    if state.pages[idx].kind != kind {
        return v2_error(
            StatusCode::NOT_FOUND,
            &format!("No {} found with id: {id}", kind.as_str()),
        );
    }
    respond::ok(render::page_v2(&state, data.ctx(), idx, body_format))
}

async fn page_v2(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    v2_content(
        &app,
        &headers,
        &cloud_id,
        &id,
        q.as_deref(),
        ContentKind::Page,
    )
}

async fn blogpost_v2(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    v2_content(
        &app,
        &headers,
        &cloud_id,
        &id,
        q.as_deref(),
        ContentKind::BlogPost,
    )
}

/// v2 attachment list: cursor paging with `_links.next` (relative to the site, starting with
/// `/wiki`) and a `Link: <…>; rel="next"` header ("Use the relative URL in the `Link` header
/// to retrieve the `next` set of results", the v2 docs); `limit` default 50, maximum 250 (the v2
/// docs, `GET /pages/{id}/attachments`).
async fn attachments_v2(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluencePageAttachmentsV2
    ));
    let p = Params::parse(q.as_deref());
    let limit = try_response!(limit(&p, 50, 250, true));
    let bound = format!("attachments:{id}");
    let offset = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match decode_cursor(c, &bound) {
            Some(o) => o,
            None => return v2_error(StatusCode::BAD_REQUEST, "Invalid cursor."),
        },
    };
    let data = &site.confluence;
    let state = data.read();
    let idx = try_response!(readable_page(&state, &id, true, StatusCode::NOT_FOUND));
    let all = &state.pages[idx].attachments;
    let end = offset.saturating_add(limit).min(all.len());
    let results: Vec<Value> = all
        .get(offset.min(end)..end)
        .unwrap_or(&[])
        .iter()
        .map(|a| render::attachment_v2(&state, data.ctx(), *a))
        .collect();
    let mut links = json!({ "base": data.ctx().wiki_base() });
    let mut next_link = None;
    if end < all.len() {
        let cursor = encode_cursor(end, &bound);
        let limit_s = limit.to_string();
        let next = format!(
            "/wiki/api/v2/pages/{id}/attachments?{}",
            encode_query([("cursor", cursor.as_str()), ("limit", limit_s.as_str())])
        );
        if let Some(obj) = links.as_object_mut() {
            obj.insert("next".into(), json!(next));
        }
        next_link = Some(next);
    }
    let mut response = respond::ok(json!({ "results": results, "_links": links }));
    if let Some(next) = next_link
        && let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

async fn spaces_v2(
    State(app): State<Arc<AppState>>,
    Path(cloud_id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceSpacesV2
    ));
    let p = Params::parse(q.as_deref());
    let keys: Vec<String> = p
        .list("keys")
        .into_iter()
        .map(|k| k.to_ascii_uppercase())
        .collect();
    let state = site.confluence.read();
    let results: Vec<Value> = state
        .spaces
        .iter()
        .enumerate()
        .filter(|(_, s)| keys.is_empty() || keys.contains(&s.key))
        .map(|(i, s)| {
            let home = state
                .pages
                .iter()
                .find(|p| p.space == i && p.parent.is_none() && p.kind == ContentKind::Page);
            json!({
                "id": s.id.to_string(),
                "key": s.key,
                "name": s.name,
                "type": "global",
                "status": "current",
                "homepageId": home.map(|p| p.id.to_string()),
                "_links": { "webui": format!("/spaces/{}", s.key) },
            })
        })
        .collect();
    respond::ok(json!({ "results": results, "_links": { "base": site.ctx.wiki_base() } }))
}

/// Redirect (302) to the media host for an attachment the user may read ("302: Returned if
/// download URL is found"; "404: Returned if ... The calling user does not have permission to
/// view the attachment", the v1 docs, `GET content/{id}/child/attachment/{attachmentId}/download`).
fn redirect_to_media(app: &AppState, state: &ConfluenceState, att: usize) -> Response {
    let a = &state.attachments[att];
    if a.forbidden || state.pages[a.page].forbidden {
        return v1_error(
            StatusCode::NOT_FOUND,
            "You do not have permission to download this attachment.",
        );
    }
    let link = app.media_link(Download {
        content_id: a.public_id(),
        size: a.size,
        filename: a.title.clone(),
        mime: a.mime.to_owned(),
    });
    respond::redirect(StatusCode::FOUND, &link)
}

/// The `/wiki/download/attachments/{page}/{filename}` servlet (v1 `_links.download`, v2
/// `downloadLink`) answers 401 to OAuth 2.0 bearer tokens, whatever the scopes: deprecated on
/// Cloud (change notice CHANGE-2735, community thread 94448) and reported to answer 401
/// (atlassian-python-api #1640, sooperset/mcp-atlassian #1368). Clients must use
/// `rest/api/content/{pageId}/child/attachment/{attachmentId}/download` instead. Tests count
/// the calls with `FakeAtlassian::download_servlet_hits`.
async fn download(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, _page, _filename)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let _site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceDownloadServlet
    ));
    respond::gateway(StatusCode::UNAUTHORIZED, "Unauthorized")
}

async fn child_attachment_download(
    State(app): State<Arc<AppState>>,
    Path((cloud_id, page, att)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let site = try_response!(authenticate(
        &app,
        &headers,
        &cloud_id,
        Endpoint::ConfluenceAttachmentDownload
    ));
    let state = site.confluence.read();
    let idx = try_response!(readable_page(&state, &page, false, StatusCode::NOT_FOUND));
    match state
        .find_attachment(&att)
        .filter(|a| state.attachments[*a].page == idx)
    {
        Some(a) => redirect_to_media(&app, &state, a),
        None => v1_error(
            StatusCode::NOT_FOUND,
            &format!("No content found with id: {att}"),
        ),
    }
}
