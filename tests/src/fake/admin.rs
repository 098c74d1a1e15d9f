//! The admin API under `/__admin/` (for the binary, `make local` and a browser): faults, hits,
//! recorded requests, clock, revocation, grants (sites, app scopes, token family counts) and a
//! description of the fake. Admin calls bypass faults and are not recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::faults::Fault;
use super::params::Params;
use super::respond;
use super::state::{AppState, lock};
use super::timefmt;

/// `GET /__admin/info`, and the line the binary prints on start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminInfo {
    pub base_url: String,
    pub media_url: String,
    pub sites: Vec<SiteSummary>,
    /// Client ids only (never secrets).
    pub clients: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSummary {
    pub cloud_id: String,
    pub url: String,
    pub name: String,
}

/// `POST /__admin/clock/advance` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAdvance {
    pub seconds: u64,
}

/// `POST /__admin/revoke` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub client_id: String,
}

/// `POST /__admin/grants/remove-site` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveSiteRequest {
    pub client_id: String,
    pub cloud_id: String,
}

/// `POST /__admin/apps/scopes` body: `scopes: null` lifts the restriction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppScopesRequest {
    pub client_id: String,
    pub scopes: Option<Vec<String>>,
}

/// `GET /__admin/grants?client_id=` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub client_id: String,
    /// Cloud ids in the grant, in the order they were first granted.
    pub sites: Vec<String>,
    pub live_token_families: usize,
    /// For all clients (the counter is global).
    pub token_families_killed: usize,
    /// For all clients (the counter is global).
    pub refresh_grants_served: usize,
}

/// `GET /__admin/hits?prefix=` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitCount {
    pub prefix: String,
    pub hits: usize,
}

pub(crate) fn info(app: &AppState) -> AdminInfo {
    AdminInfo {
        base_url: app.base_url.to_string(),
        media_url: app.media_url.to_string(),
        sites: app
            .sites
            .iter()
            .map(|s| SiteSummary {
                cloud_id: s.ctx.cloud_id.clone(),
                url: s.ctx.url.clone(),
                name: s.ctx.name.clone(),
            })
            .collect(),
        clients: app.client_ids(),
    }
}

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/hits", get(hits))
        .route("/requests", get(requests))
        .route("/clock/advance", post(advance_clock))
        .route("/revoke", post(revoke))
        .route("/grants", get(grant_info))
        .route("/grants/remove-site", post(remove_site))
        .route("/apps/scopes", post(app_scopes))
        .route("/info", get(get_info))
        .fallback(|| async { respond::gateway(StatusCode::NOT_FOUND, "Unknown admin endpoint") })
}

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        respond::json(
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("invalid JSON body: {e}") }),
        )
    })
}

async fn add_fault(State(app): State<Arc<AppState>>, bytes: Bytes) -> Response {
    let fault: Fault = match body(&bytes) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(message) = fault.validate() {
        return respond::json(StatusCode::BAD_REQUEST, json!({ "error": message }));
    }
    lock(&app.faults).add(fault);
    respond::json(StatusCode::CREATED, json!({ "ok": true }))
}

async fn clear_faults(State(app): State<Arc<AppState>>) -> Response {
    lock(&app.faults).clear();
    respond::ok(json!({ "ok": true }))
}

async fn hits(State(app): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let prefix = Params::parse(q.as_deref())
        .get("prefix")
        .unwrap_or("/")
        .to_owned();
    let hits = app.recorder.hits(&prefix);
    respond::ok(serde_json::to_value(HitCount { prefix, hits }).unwrap_or_default())
}

async fn requests(State(app): State<Arc<AppState>>) -> Response {
    respond::ok(serde_json::to_value(app.recorder.all()).unwrap_or_default())
}

async fn advance_clock(State(app): State<Arc<AppState>>, bytes: Bytes) -> Response {
    let req: ClockAdvance = match body(&bytes) {
        Ok(r) => r,
        Err(r) => return r,
    };
    app.clock.advance(Duration::from_secs(req.seconds));
    respond::ok(json!({ "now": timefmt::confluence(app.clock.now()) }))
}

async fn revoke(State(app): State<Arc<AppState>>, bytes: Bytes) -> Response {
    let req: RevokeRequest = match body(&bytes) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let families = lock(&app.grants).revoke_client(&req.client_id);
    respond::ok(json!({ "revoked_families": families }))
}

async fn grant_info(State(app): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    let Some(client_id) = params.get("client_id").filter(|c| !c.is_empty()) else {
        return respond::json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the client_id query parameter is required" }),
        );
    };
    let grants = lock(&app.grants);
    let info = GrantInfo {
        client_id: client_id.to_owned(),
        sites: grants.sites(client_id),
        live_token_families: grants.live_families(client_id, app.clock.now()),
        token_families_killed: grants.families_killed_by_reuse(),
        refresh_grants_served: grants.refresh_grants_served(),
    };
    respond::ok(serde_json::to_value(info).unwrap_or_default())
}

async fn remove_site(State(app): State<Arc<AppState>>, bytes: Bytes) -> Response {
    let req: RemoveSiteRequest = match body(&bytes) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let removed = lock(&app.grants).remove_site(&req.client_id, &req.cloud_id);
    respond::ok(json!({ "removed": removed }))
}

async fn app_scopes(State(app): State<Arc<AppState>>, bytes: Bytes) -> Response {
    let req: AppScopesRequest = match body(&bytes) {
        Ok(r) => r,
        Err(r) => return r,
    };
    lock(&app.grants).set_app_scopes(&req.client_id, req.scopes);
    respond::ok(json!({ "ok": true }))
}

async fn get_info(State(app): State<Arc<AppState>>) -> Response {
    respond::ok(serde_json::to_value(info(&app)).unwrap_or_default())
}
