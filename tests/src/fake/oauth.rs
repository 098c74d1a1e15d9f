//! OAuth 2.0 (3LO) over HTTP: `GET /authorize` (consent page), `POST /authorize/decision` and
//! `POST /oauth/token`. The gateway side (accessible-resources, the bearer and scope check of
//! `/ex/...` calls) is in `gateway.rs`.
//!
//! Sources: the authorization URL and the code exchange are
//! https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/ (same text on the
//! Confluence page and on https://developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo);
//! the refresh exchange is https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens.
//! `POST /authorize/decision` is the fake's own stand-in for the consent screen's buttons (no
//! client ever calls it directly; `consent.rs`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use url::Url;

use super::consent::{ConsentPage, ConsentSite, error_page};
use super::grants::Issued;
use super::params::Params;
use super::respond;
use super::state::{AppState, lock};

pub(crate) const AUDIENCE: &str = "api.atlassian.com";

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/authorize", get(authorize_page))
        .route("/authorize/decision", post(authorize_decision))
        .route("/oauth/token", post(token))
}

/// A validated authorization request.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizeRequest {
    pub client_id: String,
    /// Exactly as registered and sent (codes are bound to this string).
    pub redirect_uri: String,
    /// The same, parsed, to append the answer to.
    pub redirect_url: Url,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub prompt: Option<String>,
}

/// Validates authorization parameters the way `GET /authorize` does; `Err` is the message of a
/// 400 page (never a redirect: the redirect URI may be the attacker's; RFC 6749 §4.1.2.1 says an
/// invalid client id or redirect URI MUST NOT redirect). The error texts are the fake's own.
///
/// - `redirect_uri` must equal a registered callback URL exactly: "redirect_uri: (required) Set
///   this to the callback URL configured for your app" (oauth-2-3lo-apps, see the module doc).
/// - `response_type=code` and `audience=api.atlassian.com` are in the documented URL.
///   ASSUMPTION (undocumented): a missing or different `audience` is refused here; the docs'
///   generic example at .../implementing-oauth-3lo omits it, so the real server may accept its
///   absence. Safe either way: our client always sends it (`shared/src/atlassian/oauth.rs`,
///   `authorize_url`).
/// - ASSUMPTION (undocumented): scope names are checked only for their character set; the real
///   consent screen's answer to an unknown scope is not documented. Our client only sends
///   scopes from its fixed list.
pub(crate) fn validate(app: &AppState, p: &Params) -> Result<AuthorizeRequest, String> {
    let client_id = p
        .get("client_id")
        .filter(|s| !s.is_empty())
        .ok_or("The client_id parameter is missing.")?;
    let client = app
        .client(client_id)
        .ok_or("Unknown client_id: no app is registered with this id.")?;
    let redirect = p
        .get("redirect_uri")
        .filter(|s| !s.is_empty())
        .ok_or("The redirect_uri parameter is missing.")?;
    if !client.redirect_uris.iter().any(|u| u == redirect) {
        return Err("The redirect_uri is not one of the app's registered callback URLs.".into());
    }
    let redirect_url = Url::parse(redirect)
        .map_err(|_| "The registered redirect_uri is not a valid URL.".to_owned())?;
    match p.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(format!(
                "Unsupported response_type '{other}'; only 'code' is supported."
            ));
        }
        None => return Err("The response_type parameter is missing.".into()),
    }
    match p.get("audience") {
        Some(AUDIENCE) => {}
        Some(other) => {
            return Err(format!(
                "Invalid audience '{other}'; expected '{AUDIENCE}'."
            ));
        }
        None => return Err("The audience parameter is missing.".into()),
    }
    let scopes: Vec<String> = p
        .get("scope")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err("The scope parameter is missing or empty.".into());
    }
    if let Some(bad) = scopes.iter().find(|s| {
        !s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_'))
    }) {
        return Err(format!("Invalid scope '{bad}'."));
    }
    Ok(AuthorizeRequest {
        client_id: client.client_id,
        redirect_uri: redirect.to_owned(),
        redirect_url,
        scopes,
        state: p.get("state").map(str::to_owned),
        prompt: p.get("prompt").map(str::to_owned),
    })
}

/// The user's decision on the consent page: Accept for these sites (cloud ids), or Deny.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    Accept(Vec<String>),
    Deny,
}

/// The sites of an Accept, checked: at least one, each a configured site, no repeats. `Err` is
/// the message of a 400 page.
pub(crate) fn chosen_sites(app: &AppState, ids: &[&str]) -> Result<Vec<String>, String> {
    let mut sites: Vec<String> = Vec::new();
    for id in ids {
        if app.site(id).is_none() {
            return Err(format!("Unknown site '{id}'."));
        }
        if !sites.iter().any(|s| s == id) {
            sites.push((*id).to_owned());
        }
    }
    if sites.is_empty() {
        return Err("Choose at least one site to grant access to.".into());
    }
    Ok(sites)
}

/// The redirect after the user's decision: `?code=…&state=…` or `?error=access_denied&…`,
/// keeping any query the registered redirect URI already has. The success form is documented
/// ("redirect the user back to the app to the specified redirect uri with a query parameter that
/// has a authorization code", .../implementing-oauth-3lo; `state` comes back unchanged, RFC 6749
/// §4.1.2). The refusal form is RFC 6749 §4.1.2.1 (`error=access_denied`); Atlassian documents
/// no refusal redirect, so its `error_description` text is the fake's own. An Accept adds its sites to the
/// app's grant (see `grants.rs`).
pub(crate) fn decide(app: &AppState, req: &AuthorizeRequest, decision: &Decision) -> Url {
    let mut url = req.redirect_url.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Decision::Accept(sites) = decision {
            let code = lock(&app.grants).issue_code(
                &req.client_id,
                &req.redirect_uri,
                req.scopes.clone(),
                sites,
                app.clock.now(),
            );
            q.append_pair("code", &code);
        } else {
            q.append_pair("error", "access_denied");
            q.append_pair(
                "error_description",
                "The user denied the authorization request.",
            );
        }
        if let Some(state) = &req.state {
            q.append_pair("state", state);
        }
    }
    url
}

async fn authorize_page(State(app): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let req = match validate(&app, &params) {
        Ok(req) => req,
        Err(message) => return respond::html(StatusCode::BAD_REQUEST, error_page(&message)),
    };
    let mut hidden = vec![
        ("audience", AUDIENCE.to_owned()),
        ("client_id", req.client_id.clone()),
        ("scope", req.scopes.join(" ")),
        ("redirect_uri", req.redirect_uri.clone()),
        ("response_type", "code".to_owned()),
    ];
    if let Some(state) = &req.state {
        hidden.push(("state", state.clone()));
    }
    if let Some(prompt) = &req.prompt {
        hidden.push(("prompt", prompt.clone()));
    }
    let page = ConsentPage {
        client_id: &req.client_id,
        user_name: &app.users.get(0).display_name,
        sites: app
            .sites
            .iter()
            .map(|s| ConsentSite {
                cloud_id: s.ctx.cloud_id.clone(),
                name: s.ctx.name.clone(),
                url: s.ctx.url.clone(),
            })
            .collect(),
        scopes: &req.scopes,
        hidden,
    };
    respond::html(StatusCode::OK, page.render())
}

async fn authorize_decision(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let params = Params::from_bytes(&body);
    let req = match validate(&app, &params) {
        Ok(req) => req,
        Err(message) => return respond::html(StatusCode::BAD_REQUEST, error_page(&message)),
    };
    let decision = match params.get("decision") {
        Some("accept") => match chosen_sites(&app, &params.all("site")) {
            Ok(sites) => Decision::Accept(sites),
            Err(message) => return respond::html(StatusCode::BAD_REQUEST, error_page(&message)),
        },
        Some("deny") => Decision::Deny,
        _ => {
            return respond::html(
                StatusCode::BAD_REQUEST,
                error_page("Choose Accept or Deny."),
            );
        }
    };
    let url = decide(&app, &req, &decision);
    respond::redirect(StatusCode::FOUND, url.as_str())
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    respond::json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// The token request's parameters, from a JSON body (Atlassian's documented form: `--header
/// 'Content-Type: application/json'` in the curl examples of oauth-2-3lo-apps and
/// refresh-tokens) or a form body (RFC 6749 §4.1.3's `application/x-www-form-urlencoded`, which
/// Auth0-based token endpoints such as auth.atlassian.com also accept; ASSUMPTION for Atlassian,
/// harmless: our client sends JSON). A malformed body's 400 `invalid_request` is RFC 6749 §5.2.
fn token_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_json {
        return Ok(Params::from_bytes(body));
    }
    let invalid = || {
        token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is not a JSON object of strings.",
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let obj = value.as_object().ok_or_else(invalid)?;
    let mut pairs = Vec::new();
    for (k, v) in obj {
        match v {
            Value::String(s) => pairs.push((k.clone(), s.clone())),
            Value::Null => {}
            _ => return Err(invalid()),
        }
    }
    Ok(Params::from_bytes(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .as_bytes(),
    ))
}

async fn token(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match token_params(&headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let grant_type = p.get("grant_type").unwrap_or("");
    // RFC 6749 §5.2 `unsupported_grant_type` (400); Atlassian documents only the two grants.
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    let client = p.get("client_id").and_then(|id| app.client(id));
    let authenticated =
        client.is_some_and(|c| p.get("client_secret") == Some(c.client_secret.as_str()));
    // A wrong client id or secret: `401 {"error":"access_denied","error_description":
    // "Unauthorized"}`, as reported against auth.atlassian.com in
    // aschanz-journaltech/inventfest4-hackula OAUTH_TROUBLESHOOTING.md (a production client's
    // notes). Our client maps any error code but `invalid_grant` to `OAuthError::Refused`,
    // whatever the status.
    let (Some(client_id), true) = (p.get("client_id"), authenticated) else {
        return token_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    };
    let now = app.clock.now();
    let result = if grant_type == "authorization_code" {
        let (Some(code), Some(redirect_uri)) = (p.get("code"), p.get("redirect_uri")) else {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code and redirect_uri are required",
            );
        };
        lock(&app.grants).exchange_code(client_id, code, redirect_uri, now)
    } else {
        let Some(refresh_token) = p.get("refresh_token") else {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "refresh_token is required",
            );
        };
        lock(&app.grants).refresh(client_id, refresh_token, now)
    };
    match result {
        Ok(issued) => respond::ok(token_json(&issued)),
        // 403, not RFC 6749's 400: Atlassian's token endpoint answers a dead refresh token with
        // `403 {"error":"invalid_grant","error_description":"Unknown or invalid refresh
        // token."}` (https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens;
        // Auth0, which serves auth.atlassian.com, documents the same status and body). Code
        // exchange failures share the status and error code: ASSUMPTION (undocumented for
        // codes; RFC 6749 §5.2 would say 400). Safe either way: `shared/src/atlassian/oauth.rs`
        // classifies by the `error` code, not by the status.
        Err(e) => token_error(StatusCode::FORBIDDEN, "invalid_grant", e.0),
    }
}

/// The success body `{access_token, expires_in, scope, refresh_token?, token_type}`: the
/// documented response of the code exchange (oauth-2-3lo-apps, "exchange authorization code for
/// access token") and of the refresh (refresh-tokens); `refresh_token` only when the consent
/// asked for `offline_access` ("To get a refresh token in your initial authorization flow, add
/// offline_access to the scope parameter", refresh-tokens). jira.js `OAuth2TokenResponse`
/// documents `tokenType` "Always bearer".
fn token_json(t: &Issued) -> Value {
    let mut v = json!({
        "access_token": t.access_token,
        "expires_in": t.expires_in,
        "scope": t.scope,
        "token_type": "Bearer",
    });
    if let (Some(rt), Some(obj)) = (&t.refresh_token, v.as_object_mut()) {
        obj.insert("refresh_token".into(), json!(rt));
    }
    v
}
