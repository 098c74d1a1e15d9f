//! The media host: a separate listener (another origin) serving attachment bytes behind
//! short-lived opaque links that the products' download endpoints redirect to (Jira: "303:
//! Returned if the request is successful. See the `Location` header for the download URL",
//! developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-attachments/#api-rest-api-3-attachment-content-id-get;
//! Confluence v1's attachment download "redirects to the download URL", api-group-content---attachments).
//! Like a real foreign host, it must never see the API bearer token: a request carrying
//! `Authorization` gets 400. ASSUMPTION (undocumented): what the real media host does with a
//! forwarded bearer is not documented; the 400 is a tripwire that makes a leak fail loudly
//! (our client must not send it: reqwest drops `Authorization` on a cross-origin redirect,
//! `shared/src/atlassian/http.rs`). The 404 for an unknown link, the 403 for an expired one,
//! the body of each, and the `Content-Disposition`/`Cache-Control` headers are likewise the
//! fake's own choices (our client keys on the status and reads the bytes).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use time::OffsetDateTime;

use super::attachment::ContentBody;
use super::grants::random_token;
use super::respond;
use super::state::{AppState, lock};

/// Prefix of media link ids (they act as capabilities, so they are scannable too).
pub const MEDIA_LINK_PREFIX: &str = "fake_media_";

/// What a download needs: whose bytes, how many, and how to label them.
#[derive(Clone, Debug)]
pub(crate) struct Download {
    pub content_id: String,
    pub size: u64,
    pub filename: String,
    pub mime: String,
}

#[derive(Debug, Default)]
pub(crate) struct MediaLinks {
    links: HashMap<String, (Download, OffsetDateTime)>,
}

impl AppState {
    /// A fresh media-host URL for `download`, valid for the configured link lifetime.
    pub(crate) fn media_link(&self, download: Download) -> String {
        let now = self.clock.now();
        let id = random_token(MEDIA_LINK_PREFIX);
        let mut links = lock(&self.media);
        links.links.retain(|_, (_, expires)| *expires > now);
        links
            .links
            .insert(id.clone(), (download, now + self.media_link_ttl));
        format!("{}file/{id}", self.media_url)
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/file/{link}", get(file))
        .fallback(|| async { respond::gateway(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
}

async fn file(
    State(app): State<Arc<AppState>>,
    Path(link): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return respond::json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "code": 400,
                "message": "The media host does not accept an Authorization header; do not forward credentials to it.",
            }),
        );
    }
    let now = app.clock.now();
    let found = lock(&app.media).links.get(&link).cloned();
    match found {
        None => respond::gateway(StatusCode::NOT_FOUND, "Not Found"),
        Some((_, expires)) if expires <= now => {
            respond::gateway(StatusCode::FORBIDDEN, "The link has expired")
        }
        Some((download, _)) => stream(&download),
    }
}

/// The attachment's bytes, streamed with `Content-Length`, type and a safe `Content-Disposition`.
pub(crate) fn stream(d: &Download) -> Response {
    // Crafted files (issue 18) carry their own bytes; every other attachment the seeded stream.
    let body = match super::crafted::Crafted::by_filename(&d.filename) {
        Some(c) => Body::from(bytes::Bytes::from_static(c.bytes())),
        None => Body::new(ContentBody::new(&d.content_id, d.size)),
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&d.mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        super::params::encode_segment(&d.filename)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    r
}
