//! `bench child-adapter`: lets airbyte-source-jira 4.0.0 read the fake Jira site.
//!
//! Airbyte 4.0.0 pages the `issues` stream through the old `GET /rest/api/3/search` (`startAt`,
//! `maxResults`, `total`) at `https://{domain}/rest/api/3/` with basic auth (its manifest.yaml:
//! `requester.url_base`, `BasicHttpAuthenticator`, `issues_stream`). Atlassian removed that
//! endpoint in 2025 for the enhanced `GET /rest/api/3/search/jql` (`nextPageToken`, `isLast`, no
//! total; /work/shared/ATLASSIAN.md), which is what the fake serves. This adapter, a separate
//! process on loopback, translates:
//!
//! - `GET /rest/api/3/search?jql&startAt&maxResults&fields&expand` → `GET
//!   /ex/jira/{cloudId}/rest/api/3/search/jql` with the same `jql` (ANDed with `--scope`, see
//!   below), `fields`, `expand` and `maxResults`, and the `nextPageToken` the previous page of the
//!   same query returned for this `startAt`; the answer gets `startAt`, `maxResults` (the issues
//!   returned), `total` (what is known so far: at least one more page while `isLast` is false)
//!   and `isLast`. Airbyte stops on `isLast` (its paginator's `stop_condition`).
//! - basic auth (the configured email and API token) → the OAuth bearer token the bench got by
//!   consenting at the fake, as our export uses.
//! - any other `GET /rest/api/3/…` → the same path under `/ex/jira/{cloudId}/`, unchanged.
//!
//! `--scope JQL` restricts every search to what our export selects (`project = ALPHA`): Airbyte
//! scopes by project through `projects` in its config, which first reads `GET project/search`,
//! an endpoint the fake does not serve. The latency the bench injects applies to the fake's
//! `/ex/` requests, so Airbyte sees the same 50 ms per request as our export.
//!
//! Its own cost is measured: CPU time of this process (the bench reads /proc) and the wall time
//! spent in the adapter per request, outside the upstream call (`GET /__adapter/stats`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};

/// What the adapter needs, from its command line.
pub struct AdapterConfig {
    /// The fake's base URL, e.g. `http://127.0.0.1:4000/`.
    pub upstream: String,
    pub cloud_id: String,
    /// The bearer token sent upstream.
    pub token: String,
    /// The basic-auth `email:api_token` Airbyte must send.
    pub basic: String,
    /// JQL ANDed into every search (empty: none).
    pub scope: String,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    /// Wall time in the adapter outside upstream calls.
    own: Duration,
    /// `(jql, startAt)` → the `nextPageToken` that continues there.
    tokens: HashMap<(String, u64), String>,
}

struct Adapter {
    config: AdapterConfig,
    http: reqwest::Client,
    stats: Mutex<Stats>,
}

impl Adapter {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&self.config.basic)
        );
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected)
    }

    fn api(&self, path: &str) -> String {
        format!(
            "{}/ex/jira/{}/rest/api/3/{path}",
            self.config.upstream.trim_end_matches('/'),
            self.config.cloud_id
        )
    }

    /// One upstream GET; returns status, body and the time it took.
    async fn upstream(
        &self,
        url: &str,
        query: &[(String, String)],
    ) -> (StatusCode, Vec<u8>, Duration) {
        let started = Instant::now();
        let result = self
            .http
            .get(url)
            .query(query)
            .bearer_auth(&self.config.token)
            .send()
            .await;
        let out = match result {
            Ok(r) => {
                let status =
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                match r.bytes().await {
                    Ok(b) => (status, b.to_vec()),
                    Err(_) => (StatusCode::BAD_GATEWAY, Vec::new()),
                }
            }
            Err(_) => (StatusCode::BAD_GATEWAY, Vec::new()),
        };
        (out.0, out.1, started.elapsed())
    }
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `jql` ANDed with `scope`, keeping its `ORDER BY` last.
fn scoped(jql: &str, scope: &str) -> String {
    if scope.trim().is_empty() {
        return jql.to_owned();
    }
    let lower = jql.to_ascii_lowercase();
    let (filter, order) = match lower.find("order by") {
        Some(i) => (jql[..i].trim(), jql[i..].trim()),
        None => (jql.trim(), ""),
    };
    let combined = if filter.is_empty() {
        format!("({scope})")
    } else {
        format!("({filter}) AND ({scope})")
    };
    format!("{combined} {order}").trim().to_owned()
}

async fn search(
    State(a): State<Arc<Adapter>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let started = Instant::now();
    if !a.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "basic auth required").into_response();
    }
    let params = pairs(q.as_deref());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let jql = get("jql").unwrap_or_default();
    let start_at: u64 = get("startAt").and_then(|s| s.parse().ok()).unwrap_or(0);
    let scoped_jql = scoped(&jql, &a.config.scope);
    let mut upstream: Vec<(String, String)> = vec![("jql".into(), scoped_jql)];
    for k in ["fields", "expand", "maxResults", "properties"] {
        for (n, v) in params.iter().filter(|(n, _)| n == k) {
            upstream.push((n.clone(), v.clone()));
        }
    }
    if start_at > 0 {
        let token = a.stats().tokens.get(&(jql.clone(), start_at)).cloned();
        match token {
            Some(t) => upstream.push(("nextPageToken".into(), t)),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    "the adapter pages sequentially: startAt must continue a page it served",
                )
                    .into_response();
            }
        }
    }
    let (status, body, spent) = a.upstream(&a.api("search/jql"), &upstream).await;
    let response = if status.is_success()
        && let Ok(Value::Object(mut page)) = serde_json::from_slice::<Value>(&body)
    {
        let count = page
            .get("issues")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as u64;
        let is_last = page.get("isLast").and_then(Value::as_bool).unwrap_or(true);
        if let Some(Value::String(next)) = page.remove("nextPageToken") {
            a.stats().tokens.insert((jql, start_at + count), next);
        }
        page.insert("startAt".into(), json!(start_at));
        page.insert("maxResults".into(), json!(count));
        let more = if is_last { 0 } else { count.max(1) };
        page.insert("total".into(), json!(start_at + count + more));
        page.insert("isLast".into(), json!(is_last));
        let mut r = axum::Json(Value::Object(page)).into_response();
        *r.status_mut() = status;
        r
    } else {
        (status, body).into_response()
    };
    let mut s = a.stats();
    s.requests += 1;
    s.own += started.elapsed().saturating_sub(spent);
    response
}

async fn forward(State(a): State<Arc<Adapter>>, headers: HeaderMap, uri: Uri) -> Response {
    let started = Instant::now();
    if !a.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "basic auth required").into_response();
    }
    let Some(rest) = uri.path().strip_prefix("/rest/api/3/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (status, body, spent) = a.upstream(&a.api(rest), &pairs(uri.query())).await;
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let mut s = a.stats();
    s.requests += 1;
    s.own += started.elapsed().saturating_sub(spent);
    r
}

async fn stats(State(a): State<Arc<Adapter>>) -> Response {
    let s = a.stats();
    axum::Json(json!({ "requests": s.requests, "own_secs": s.own.as_secs_f64() })).into_response()
}

/// Serve until stdin closes; the first stdout line is `{"endpoint": "http://127.0.0.1:PORT"}`.
pub async fn serve(config: AdapterConfig) {
    let http = reqwest::Client::builder()
        .build()
        .unwrap_or_else(|e| panic!("bench adapter: http client: {e}"));
    let adapter = Arc::new(Adapter {
        config,
        http,
        stats: Mutex::new(Stats::default()),
    });
    let router = Router::new()
        .route("/rest/api/3/search", get(search))
        .route("/__adapter/stats", get(stats))
        .fallback(forward)
        .with_state(adapter);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("bench adapter: bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bench adapter: address: {e}"));
    println!("{}", json!({ "endpoint": format!("http://{addr}") }));
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(crate::world::wait_for_stdin_to_close).await;
    };
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(stdin_closed)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_anded_before_the_order() {
        assert_eq!(
            scoped("updated >= 1 ORDER BY updated asc", "project = ALPHA"),
            "(updated >= 1) AND (project = ALPHA) ORDER BY updated asc"
        );
        assert_eq!(scoped("updated >= 1", ""), "updated >= 1");
        assert_eq!(
            scoped("order by key", "project = A"),
            "(project = A) order by key"
        );
    }
}
