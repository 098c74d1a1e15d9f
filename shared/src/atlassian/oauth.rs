//! OAuth 2.0 (3LO) with Atlassian: the authorize URL, the code and refresh grants, and the
//! accessible-resources call that tells which sites a grant covers.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use super::AtlassianUrls;
use super::http::{AtlassianHttp, HttpError, Idempotency};
use crate::config::AppSettings;
use crate::ids::Product;
use crate::secret::{ExposeSecret, Secret};
use crate::vault::TokenPair;

/// One app's credentials: settings from config, client secret from Secrets Manager.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub settings: AppSettings,
    pub client_secret: Secret,
}

/// The concurrency key for the auth host (it is not a site).
pub const AUTH_SITE: &str = "auth";

/// Tokens and their metadata from a successful grant.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub tokens: TokenPair,
    pub expires_in: u64,
    pub scope: String,
    pub token_type: String,
}

/// One site a grant covers (`GET /oauth/token/accessible-resources`). Only what PRIVACY.md P3
/// lets us keep is read: the avatar URL is ignored, the name kept for pages only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessibleResource {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The grant is dead: code used or expired, refresh token rotated out, revoked, or expired.
    #[error("{grant} grant refused: invalid_grant")]
    InvalidGrant { grant: &'static str },
    /// Atlassian refused our client (wrong id or secret, redirect URI not registered...).
    #[error("{grant} grant refused: {error}")]
    Refused { grant: &'static str, error: String },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("token response is missing {0}")]
    Incomplete(&'static str),
}

impl OAuthError {
    fn from_http(grant: &'static str, e: HttpError) -> OAuthError {
        match (&e, e.oauth_error()) {
            (HttpError::Status { .. }, Some(code)) if code == "invalid_grant" => {
                OAuthError::InvalidGrant { grant }
            }
            (HttpError::Status { .. }, Some(code)) => OAuthError::Refused {
                grant,
                error: safe_code(&code),
            },
            _ => OAuthError::Http(e),
        }
    }
}

/// An OAuth error code is a short token like `invalid_client`; anything else is not echoed.
fn safe_code(code: &str) -> String {
    if code.len() <= 40 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        code.to_owned()
    } else {
        "unrecognised error".to_owned()
    }
}

/// The consent URL the browser is sent to.
pub fn authorize_url(
    urls: &AtlassianUrls,
    app: &AppSettings,
    redirect_uri: &Url,
    state: &Secret,
) -> Url {
    let mut url = urls.authorize();
    url.query_pairs_mut()
        .append_pair("audience", "api.atlassian.com")
        .append_pair("client_id", &app.client_id)
        .append_pair("scope", &app.scopes)
        .append_pair("redirect_uri", redirect_uri.as_str())
        .append_pair("state", state.expose_secret())
        .append_pair("response_type", "code")
        .append_pair("prompt", "consent");
    url
}

#[derive(Serialize)]
struct CodeGrant<'a> {
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
}

#[derive(Serialize)]
struct RefreshGrant<'a> {
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
    refresh_token: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<Secret>,
    refresh_token: Option<Secret>,
    expires_in: Option<u64>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    token_type: String,
}

impl TokenResponse {
    fn into_grant(self) -> Result<TokenGrant, OAuthError> {
        Ok(TokenGrant {
            tokens: TokenPair {
                access_token: self
                    .access_token
                    .ok_or(OAuthError::Incomplete("access_token"))?,
                refresh_token: self.refresh_token,
            },
            expires_in: self
                .expires_in
                .ok_or(OAuthError::Incomplete("expires_in"))?,
            scope: self.scope,
            token_type: if self.token_type.is_empty() {
                "Bearer".into()
            } else {
                self.token_type
            },
        })
    }
}

/// Exchange an authorization code. Sent once: a code is single use, so it is never retried
/// after the server may have seen it.
pub async fn exchange_code(
    http: &AtlassianHttp,
    urls: &AtlassianUrls,
    app: &AppCredentials,
    code: &Secret,
    redirect_uri: &Url,
) -> Result<TokenGrant, OAuthError> {
    let body = CodeGrant {
        grant_type: "authorization_code",
        client_id: &app.settings.client_id,
        client_secret: app.client_secret.expose_secret(),
        code: code.expose_secret(),
        redirect_uri: redirect_uri.as_str(),
    };
    token_grant(
        http,
        urls,
        &body,
        "oauth.token.code",
        "authorization_code",
        Idempotency::Once,
    )
    .await
}

/// Trade a refresh token for a new pair. Atlassian rotates refresh tokens: the returned one
/// replaces the one sent, which stays usable only for a short leeway. Safe to retry within
/// that leeway, so transient failures are retried.
pub async fn refresh(
    http: &AtlassianHttp,
    urls: &AtlassianUrls,
    app: &AppCredentials,
    refresh_token: &Secret,
) -> Result<TokenGrant, OAuthError> {
    let body = RefreshGrant {
        grant_type: "refresh_token",
        client_id: &app.settings.client_id,
        client_secret: app.client_secret.expose_secret(),
        refresh_token: refresh_token.expose_secret(),
    };
    token_grant(
        http,
        urls,
        &body,
        "oauth.token.refresh",
        "refresh_token",
        Idempotency::Safe,
    )
    .await
}

/// POST a grant to the token endpoint and read the token response.
async fn token_grant(
    http: &AtlassianHttp,
    urls: &AtlassianUrls,
    body: &impl Serialize,
    endpoint: &'static str,
    grant: &'static str,
    idempotency: Idempotency,
) -> Result<TokenGrant, OAuthError> {
    let req = http
        .request(Method::POST, urls.token())
        .json(body)
        .build()
        .map_err(|_| OAuthError::Incomplete("request"))?;
    let resp = http
        .send(endpoint, AUTH_SITE, idempotency, req)
        .await
        .map_err(|e| OAuthError::from_http(grant, e))?;
    resp.json::<TokenResponse>().await?.into_grant()
}

/// The sites an access token may reach.
pub async fn accessible_resources(
    http: &AtlassianHttp,
    urls: &AtlassianUrls,
    access_token: &Secret,
) -> Result<Vec<AccessibleResource>, OAuthError> {
    let req = http
        .request(Method::GET, urls.accessible_resources())
        .bearer_auth(access_token.expose_secret())
        .build()
        .map_err(|_| OAuthError::Incomplete("request"))?;
    let resp = http
        .send(
            "oauth.accessible_resources",
            AUTH_SITE,
            Idempotency::Safe,
            req,
        )
        .await?;
    Ok(resp.json().await?)
}

/// Whether an accessible-resources entry is for `product`. Atlassian lists a site once per
/// product, each entry with that product's scopes (`../shared/ATLASSIAN.md`): Jira scopes name
/// `jira` (`read:jira-work`, `read:issue:jira`, ...), Confluence scopes name `confluence`
/// (`read:confluence-content.all`, `read:page:confluence`, ...). An entry without scopes is
/// kept (assumed to serve the product): we would rather ask the user than drop a site.
pub fn serves_product(resource: &AccessibleResource, product: Product) -> bool {
    if resource.scopes.is_empty() {
        return true;
    }
    let needle = match product {
        Product::Jira => "jira",
        Product::Confluence => "confluence",
    };
    resource
        .scopes
        .iter()
        .any(|s| s.split([':', '-', '.']).any(|part| part == needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AtlassianSettings;
    use crate::ids::Product;
    use crate::secret::secret;

    #[test]
    fn authorize_url_has_every_parameter_atlassian_requires() {
        let urls = AtlassianUrls::new(&AtlassianSettings {
            auth_url: Url::parse("https://auth.atlassian.com").unwrap_or_else(|e| panic!("{e}")),
            api_url: Url::parse("https://api.atlassian.com").unwrap_or_else(|e| panic!("{e}")),
            max_concurrency_per_site: 1,
        });
        let app = AppSettings {
            product: Product::Jira,
            client_id: "cid".into(),
            client_secret_name: "n".into(),
            scopes: "read:jira-work offline_access".into(),
        };
        let redirect =
            Url::parse("https://cb.example.com/callback").unwrap_or_else(|e| panic!("{e}"));
        let url = authorize_url(&urls, &app, &redirect, &secret("st&ate"));
        assert_eq!(url.host_str(), Some("auth.atlassian.com"));
        assert_eq!(url.path(), "/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["audience"], "api.atlassian.com");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["scope"], "read:jira-work offline_access");
        assert_eq!(q["redirect_uri"], "https://cb.example.com/callback");
        assert_eq!(q["state"], "st&ate");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["prompt"], "consent");
    }

    #[test]
    fn resources_are_matched_to_their_product_by_scope() {
        let r = |scopes: &[&str]| AccessibleResource {
            id: "c".into(),
            url: "https://x.atlassian.net".into(),
            name: "x".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert!(serves_product(&r(&["read:jira-work"]), Product::Jira));
        assert!(serves_product(&r(&["read:issue:jira"]), Product::Jira));
        assert!(!serves_product(
            &r(&["read:jira-work"]),
            Product::Confluence
        ));
        assert!(serves_product(
            &r(&["read:confluence-content.all"]),
            Product::Confluence
        ));
        assert!(serves_product(
            &r(&["read:page:confluence"]),
            Product::Confluence
        ));
        assert!(!serves_product(&r(&["search:confluence"]), Product::Jira));
        assert!(serves_product(&r(&[]), Product::Jira));
    }

    #[test]
    fn odd_error_codes_are_not_echoed() {
        assert_eq!(safe_code("invalid_client"), "invalid_client");
        assert_eq!(safe_code("<script>"), "unrecognised error");
    }

    /// Issue 16: generated token-endpoint and accessible-resources answers never panic; a
    /// grant comes only with an access token and a lifetime.
    #[test]
    fn generated_token_and_resource_answers_never_panic() {
        const KEYS: &[&str] = &[
            "access_token",
            "refresh_token",
            "expires_in",
            "scope",
            "token_type",
            "id",
            "url",
            "name",
            "scopes",
            "avatarUrl",
            "error",
            "error_description",
        ];
        let token = serde_json::json!({
            "access_token": "at", "refresh_token": "rt", "expires_in": 3600,
            "scope": "read:jira-work offline_access", "token_type": "Bearer"
        });
        let resources = serde_json::json!([{
            "id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "url": "https://acme.atlassian.net",
            "name": "acme", "scopes": ["read:jira-work"], "avatarUrl": "https://x/a.png"
        }]);
        crate::props::run(
            "oauth answers",
            crate::props::cases(10_000),
            crate::props::near(vec![token, resources], KEYS),
            |_, bytes| {
                if let Ok(t) = serde_json::from_slice::<TokenResponse>(bytes) {
                    let had = t.access_token.is_some() && t.expires_in.is_some();
                    proptest::prop_assert_eq!(t.into_grant().is_ok(), had);
                }
                if let Ok(list) = serde_json::from_slice::<Vec<AccessibleResource>>(bytes) {
                    for r in &list {
                        let _ = serves_product(r, Product::Jira);
                        let _ = serves_product(r, Product::Confluence);
                    }
                }
                Ok(())
            },
        );
    }
}
