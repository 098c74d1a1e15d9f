//! The platform back end's API (IAM-authenticated function URL). JSON in and out; every
//! expected failure is a 4xx with a message naming the field; no secret ever in a response.

mod json;
#[cfg(test)]
mod props_tests;
mod routes;

use std::time::Instant;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use shared::connect::{Authorizer, StartError};
use shared::erase::Eraser;
use shared::events::EventBus;
use shared::ids::{Product, TenantId};
use shared::store::Store;
use tracing::Instrument;
use url::Url;

pub use json::{ApiError, MAX_BODY_BYTES};

/// What the API serves; built once per cold start.
pub struct Api {
    /// Starting authorizations only: no client secret, no token (issue 16).
    pub connect: Authorizer,
    pub events: EventBus,
    pub eraser: Eraser,
}

impl Api {
    fn store(&self) -> &Store {
        &self.connect.store
    }
}

/// `POST /authorizations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAuthorization {
    tenant: TenantId,
    product: Product,
    #[serde(default)]
    return_url: Option<String>,
    /// The one site to connect after consent: its URL (`https://acme.atlassian.net`), host
    /// name or cloud id. Without it the user chooses when several sites are granted.
    #[serde(default)]
    site: Option<String>,
}

/// A `site` as given: at most 255 printable characters, an https URL, a host name or an id.
fn check_site(site: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(site) = site.map(|s| s.trim().to_owned()) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request("site: must be the site's URL, host name or cloud id");
    if site.is_empty()
        || site.len() > 255
        || site.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad());
    }
    if site.contains("://") {
        let url = Url::parse(&site).map_err(|_| bad())?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(bad());
        }
    } else if !site
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(bad());
    }
    Ok(Some(site))
}

fn correlation_id(req: &Request) -> String {
    shared::telemetry::correlation_id(req.lambda_context_ref().map(|c| c.request_id.as_str()))
}

/// Handle one API request. Always returns a response.
pub async fn handle(api: &Api, req: Request) -> Response<Body> {
    let started = Instant::now();
    let correlation_id = correlation_id(&req);
    let span = tracing::info_span!("request", function = "connectors-api", correlation_id = %correlation_id);
    async {
        let (route, result) = dispatch(api, &req).await;
        let response = match result {
            Ok(resp) => resp,
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::error!(route, error = %e.message, "request failed");
                }
                e.into_response(&correlation_id)
            }
        };
        tracing::info!(
            route,
            method = %req.method(),
            http_status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request handled"
        );
        response
    }
    .instrument(span)
    .await
}

type Handled = Result<Response<Body>, ApiError>;

async fn dispatch(api: &Api, req: &Request) -> (&'static str, Handled) {
    let path = req.uri().path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = req.method();
    match segments.as_slice() {
        ["authorizations"] if m == Method::POST => {
            ("POST /authorizations", create_authorization(api, req).await)
        }
        ["authorizations"] => ("/authorizations", Err(ApiError::method_not_allowed("POST"))),
        ["connections"] if m == Method::GET => {
            ("GET /connections", routes::list_connections(api, req).await)
        }
        ["connections"] => ("/connections", Err(ApiError::method_not_allowed("GET"))),
        ["connections", id] if m == Method::GET => (
            "GET /connections/{id}",
            routes::get_connection(api, req, id).await,
        ),
        ["connections", id] if m == Method::DELETE => (
            "DELETE /connections/{id}",
            routes::erase_connection(api, req, id).await,
        ),
        ["connections", _] => (
            "/connections/{id}",
            Err(ApiError::method_not_allowed("GET, DELETE")),
        ),
        ["tenants", tenant] if m == Method::DELETE => (
            "DELETE /tenants/{tenant}",
            routes::erase_tenant(api, tenant).await,
        ),
        ["tenants", _] => (
            "/tenants/{tenant}",
            Err(ApiError::method_not_allowed("DELETE")),
        ),
        ["tenants", tenant, "erasure"] if m == Method::GET => (
            "GET /tenants/{tenant}/erasure",
            routes::tenant_erasure(api, tenant).await,
        ),
        ["tenants", _, "erasure"] => (
            "/tenants/{tenant}/erasure",
            Err(ApiError::method_not_allowed("GET")),
        ),
        ["connectors", id] if m == Method::PUT => (
            "PUT /connectors/{id}",
            routes::put_connector(api, req, id).await,
        ),
        ["connectors", id] if m == Method::GET => (
            "GET /connectors/{id}",
            routes::get_connector(api, req, id).await,
        ),
        ["connectors", id] if m == Method::DELETE => (
            "DELETE /connectors/{id}",
            routes::delete_connector(api, req, id).await,
        ),
        ["connectors", _] => (
            "/connectors/{id}",
            Err(ApiError::method_not_allowed("GET, PUT, DELETE")),
        ),
        ["connectors", id, "exports"] if m == Method::POST => (
            "POST /connectors/{id}/exports",
            routes::start_export(api, req, id).await,
        ),
        ["connectors", _, "exports"] => (
            "/connectors/{id}/exports",
            Err(ApiError::method_not_allowed("POST")),
        ),
        ["jobs", id] if m == Method::GET => ("GET /jobs/{id}", routes::get_job(api, req, id).await),
        ["jobs", _] => ("/jobs/{id}", Err(ApiError::method_not_allowed("GET"))),
        _ => ("unknown", Err(ApiError::not_found("no such route"))),
    }
}

async fn create_authorization(api: &Api, req: &Request) -> Handled {
    let input: NewAuthorization = json::body(req)?;
    let return_url = input
        .return_url
        .as_deref()
        .map(Url::parse)
        .transpose()
        .map_err(|_| ApiError::bad_request("return_url: is not an absolute URL"))?;
    let site = check_site(input.site)?;
    let started = api
        .connect
        .start(
            input.tenant,
            input.product,
            return_url,
            site,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| match e {
            StartError::ReturnUrlNotAllowed => {
                ApiError::bad_request("return_url: is not one of the allowed return URLs")
            }
            StartError::ProductNotConfigured(p) => ApiError::bad_request(format!(
                "product: the {p} app is not configured in this deployment"
            )),
            StartError::Config(e) => ApiError::internal(e.to_string()),
            StartError::Store(e) => ApiError::unavailable(e.to_string()),
        })?;
    let expires_at = started
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    json::respond(
        StatusCode::CREATED,
        &serde_json::json!({ "authorize_url": started.authorize_url.as_str(), "expires_at": expires_at }),
    )
}
