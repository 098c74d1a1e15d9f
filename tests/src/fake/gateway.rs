//! The API gateway's side of OAuth 2.0 (3LO): `GET /oauth/token/accessible-resources` and the
//! check every `/ex/{product}/{cloudId}/...` call goes through (bearer, site in the grant,
//! endpoint scopes).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::grants::AccessGrant;
use super::respond;
use super::scopes::{Endpoint, Product};
use super::site::Site;
use super::state::{AppState, lock};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/oauth/token/accessible-resources",
        get(accessible_resources),
    )
}

/// The grant behind the request's `Authorization: Bearer …`, if it is good now ("Put the code
/// you received ... into the Authorization header prefixed by Bearer",
/// https://developer.atlassian.com/cloud/oauth/getting-started/making-calls-to-api/). The scheme
/// is matched case-insensitively (RFC 7235 §2.1).
fn bearer_grant(app: &AppState, headers: &HeaderMap) -> Option<AccessGrant> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    lock(&app.grants).check_access(token.trim(), app.clock.now())
}

/// `GET /oauth/token/accessible-resources`: every site in the token's grant, i.e. every site
/// this user ever granted to this app and still grants — cumulative across consents, with
/// nothing saying which site the latest consent chose ("All of those resources have been
/// authorized. The endpoints involved in the 3LO flow do not return any information about
/// which one was selected.", community.developer.atlassian.com/t/76395). Response shape
/// `[{id, url, name, scopes, avatarUrl}]` per
/// https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/#3-1-get-the-cloudid-for-your-site
///
/// One entry per site AND product whose scopes the token holds, each with only that product's
/// scopes: https://developer.atlassian.com/cloud/oauth/getting-started/making-calls-to-api/
/// gives separate example responses for "A Jira site" (Jira scopes only) and "A Confluence
/// site" (Confluence scopes only) with the SAME `id`; no page states the rule in words. A token
/// with Jira scopes only therefore lists Jira entries only. `offline_access` belongs to no
/// product and is never listed. Sites are listed in configuration order.
async fn accessible_resources(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(grant) = bearer_grant(&app, &headers) else {
        return respond::gateway(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let mut entries = Vec::new();
    for site in app
        .sites
        .iter()
        .filter(|s| grant.sites.contains(&s.ctx.cloud_id))
    {
        for product in Product::ALL {
            let scopes: Vec<&String> = grant.scopes.iter().filter(|s| product.owns(s)).collect();
            if scopes.is_empty() {
                continue;
            }
            entries.push(json!({
                "id": site.ctx.cloud_id,
                "url": site.ctx.url,
                "name": site.ctx.name,
                "scopes": scopes,
                "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
            }));
        }
    }
    respond::ok(Value::Array(entries))
}

/// The gateway's check for `/ex/{product}/{cloudId}/...` (URL form: "Requests that use OAuth 2.0
/// (3LO) are made via api.atlassian.com ... https://api.atlassian.com/ex/jira/{cloudid}/{api}",
/// oauth-2-3lo-apps §3.2), in this order:
/// 1. a good bearer, else 401. ASSUMPTION (undocumented body): `{"code":401,"message":
///    "Unauthorized"}`, the gateway's `{code, message}` shape as observed for the scope 401
///    below with the plain reason; our client decides on the status alone
///    (`shared/src/export/runner/auth.rs`), so the body text does not matter;
/// 2. a configured site, else 404. ASSUMPTION (undocumented): what the gateway answers for a
///    cloud id that exists nowhere; our client only calls cloud ids that accessible-resources
///    listed, and only `invalid_grant` ever counts as a revocation;
/// 3. the site in the token's grant, else `401 {"code":401,"message":"Unauthorized"}`.
///    ASSUMPTION (undocumented): no page says what the gateway answers for a site outside the
///    grant (never granted, or removed from the grant while it lives); we answer like a bad
///    bearer. Safe either way: after a 401 our client asks accessible-resources whether the
///    site is still granted (`shared/src/export/runner/auth.rs`, `authed`), and only
///    `invalid_grant` ever counts as a revocation;
/// 4. the endpoint's scopes (`scopes.rs`), else `401 {"code":401,"message":"Unauthorized;
///    scope does not match"}` with `X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`, as
///    observed in kovetskiy/mark#917.
pub(crate) fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    cloud_id: &str,
    endpoint: Endpoint,
) -> Result<Site, Response> {
    let grant = bearer_grant(app, headers)
        .ok_or_else(|| respond::gateway(StatusCode::UNAUTHORIZED, "Unauthorized"))?;
    let site = app
        .site(cloud_id)
        .ok_or_else(|| respond::gateway(StatusCode::NOT_FOUND, "Not Found"))?;
    if !grant.sites.iter().any(|s| s == cloud_id) {
        return Err(respond::gateway(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    if !endpoint.allows(&grant.scopes) {
        let mut response = respond::gateway(
            StatusCode::UNAUTHORIZED,
            "Unauthorized; scope does not match",
        );
        response.headers_mut().insert(
            "x-failure-category",
            HeaderValue::from_static("FAILURE_CLIENT_SCOPE_CHECK"),
        );
        return Err(response);
    }
    Ok(site.clone())
}
