//! The fake Atlassian Cloud behaves like ATLASSIAN.md says Atlassian does: OAuth 2.0 (3LO) with
//! rotating refresh tokens, the gateway's checks, Jira and Confluence paging, attachment
//! redirects to a media host, and fault injection. Real HTTP over loopback.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use integration_tests::fake::{
    CONFLUENCE_CLIENT_ID, CONFLUENCE_CLIENT_SECRET, ContentKind, DEFAULT_REDIRECT_URI,
    FakeAtlassian, FakeConfig, Fault, HOSTILE_FILENAMES, JIRA_CLIENT_ID, JIRA_CLIENT_SECRET,
    SeedSpec,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, LINK, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
/// Every scope some endpoint of the fake documents (classic where there is one, granular for
/// Confluence v2), so the tests of data behaviour are not about scopes.
pub(crate) const ALL_SCOPES: &[&str] = &[
    "read:jira-work",
    "read:jira-user",
    "read:confluence-content.all",
    "read:confluence-content.summary",
    "read:confluence-space.summary",
    "readonly:content.attachment:confluence",
    "search:confluence",
    "read:page:confluence",
    "read:attachment:confluence",
    "read:space:confluence",
    "offline_access",
];

/// What Atlassian answers a dead refresh token, whatever killed it.
pub(crate) fn dead_refresh_token() -> Value {
    json!({ "error": "invalid_grant", "error_description": "Unknown or invalid refresh token." })
}

// ---------------------------------------------------------------------------------------------
// Helpers

pub(crate) async fn fake() -> FakeAtlassian {
    fake_with(FakeConfig::default()).await
}

pub(crate) async fn fake_with(config: FakeConfig) -> FakeAtlassian {
    FakeAtlassian::start(config).await.expect("fake starts")
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub(crate) fn cloud(fake: &FakeAtlassian) -> String {
    fake.cloud_ids().remove(0)
}

pub(crate) fn query_param(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: Option<String>,
}

impl Tokens {
    pub(crate) fn from_json(v: &Value) -> Tokens {
        Tokens {
            access: v["access_token"].as_str().expect("access_token").to_owned(),
            refresh: v["refresh_token"].as_str().map(str::to_owned),
        }
    }

    pub(crate) fn refresh(&self) -> &str {
        self.refresh.as_deref().expect("a refresh token")
    }
}

/// A code for the Jira app (consent accepted programmatically).
pub(crate) async fn code_for(fake: &FakeAtlassian, scopes: &[&str]) -> String {
    let authorize = fake.authorize_url(JIRA_CLIENT_ID, DEFAULT_REDIRECT_URI, scopes, "st4te");
    let redirect = fake.consent(&authorize, true).await.expect("consent");
    query_param(&redirect, "code").expect("code in redirect")
}

pub(crate) async fn token_request(fake: &FakeAtlassian, body: Value) -> (StatusCode, Value) {
    let response = http()
        .post(fake.base_url().join("oauth/token").unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub(crate) async fn exchange(fake: &FakeAtlassian, code: &str) -> (StatusCode, Value) {
    token_request(
        fake,
        json!({
            "grant_type": "authorization_code",
            "client_id": JIRA_CLIENT_ID,
            "client_secret": JIRA_CLIENT_SECRET,
            "code": code,
            "redirect_uri": DEFAULT_REDIRECT_URI,
        }),
    )
    .await
}

pub(crate) async fn refresh(fake: &FakeAtlassian, refresh_token: &str) -> (StatusCode, Value) {
    token_request(
        fake,
        json!({
            "grant_type": "refresh_token",
            "client_id": JIRA_CLIENT_ID,
            "client_secret": JIRA_CLIENT_SECRET,
            "refresh_token": refresh_token,
        }),
    )
    .await
}

pub(crate) async fn grant(fake: &FakeAtlassian, scopes: &[&str]) -> Tokens {
    let code = code_for(fake, scopes).await;
    let (status, body) = exchange(fake, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tokens::from_json(&body)
}

pub(crate) async fn get(fake: &FakeAtlassian, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(fake.base_url().join(path).unwrap())
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get_json(fake: &FakeAtlassian, path: &str, token: &str) -> (StatusCode, Value) {
    let response = get(fake, path, token).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn jira_path(fake: &FakeAtlassian, rest: &str) -> String {
    format!("ex/jira/{}/rest/api/3/{rest}", cloud(fake))
}

pub(crate) fn wiki_path(fake: &FakeAtlassian, rest: &str) -> String {
    format!("ex/confluence/{}/wiki{rest}", cloud(fake))
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every issue id a JQL search returns, following `nextPageToken` (GET, ids only).
async fn all_ids(
    fake: &FakeAtlassian,
    token: &str,
    jql: &str,
    page_size: usize,
) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = jira_path(
            fake,
            &format!("search/jql?jql={}&maxResults={page_size}", enc(jql)),
        );
        if let Some(t) = &next {
            path.push_str(&format!("&nextPageToken={}", enc(t)));
        }
        let (status, body) = get_json(fake, &path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        assert!(pages < 1000, "pagination does not terminate");
        for issue in body["issues"].as_array().unwrap() {
            ids.push(issue["id"].as_str().unwrap().to_owned());
        }
        assert!(body.get("total").is_none(), "enhanced search has no total");
        if body["isLast"] == json!(true) {
            assert!(body.get("nextPageToken").is_none());
            return (ids, pages);
        }
        next = Some(
            body["nextPageToken"]
                .as_str()
                .expect("nextPageToken when not last")
                .to_owned(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth: consent

#[tokio::test]
async fn consent_page_accept_and_deny_redirect() {
    let fake = fake().await;
    let authorize = fake.authorize_url(
        JIRA_CLIENT_ID,
        DEFAULT_REDIRECT_URI,
        &["read:jira-work", "offline_access"],
        "s-1",
    );
    let page = http().get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="/authorize/decision">"#));
    assert!(html.contains(r#"id="accept""#) && html.contains(r#"id="deny""#));
    assert!(html.contains(r#"name="state" value="s-1""#));
    // Each site is a checked checkbox named `site` whose value is the cloud id.
    assert!(html.contains(&format!(
        r#"<input type="checkbox" name="site" value="{}" checked>"#,
        cloud(&fake)
    )));

    // Click through like a headless browser: post the hidden fields plus the button's value.
    let fields = |decision: &str| {
        vec![
            ("audience", "api.atlassian.com".to_owned()),
            ("client_id", JIRA_CLIENT_ID.to_owned()),
            ("scope", "read:jira-work offline_access".to_owned()),
            ("redirect_uri", DEFAULT_REDIRECT_URI.to_owned()),
            ("response_type", "code".to_owned()),
            ("state", "s-1".to_owned()),
            ("site", cloud(&fake)),
            ("decision", decision.to_owned()),
        ]
    };
    let decision_url = fake.base_url().join("authorize/decision").unwrap();
    let accepted = http()
        .post(decision_url.clone())
        .form(&fields("accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::FOUND);
    let location = Url::parse(accepted.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(DEFAULT_REDIRECT_URI));
    assert!(query_param(&location, "code").unwrap().len() > 40);
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));

    let denied = http()
        .post(decision_url)
        .form(&fields("deny"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FOUND);
    let location = Url::parse(denied.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test]
async fn consent_keeps_the_query_of_the_registered_redirect_uri() {
    let callback = "http://localhost:9000/callback?tenant=t1";
    let fake = fake_with(FakeConfig::default().with_redirect_uri(callback)).await;
    let authorize = fake.authorize_url(JIRA_CLIENT_ID, callback, &["read:jira-work"], "abc");
    let redirect = fake.consent(&authorize, true).await.unwrap();
    assert_eq!(query_param(&redirect, "tenant").as_deref(), Some("t1"));
    assert!(query_param(&redirect, "code").is_some());
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("abc"));
}

#[tokio::test]
async fn authorize_rejects_unregistered_redirect_uri() {
    let fake = fake().await;
    let evil = "http://evil.example/callback";
    let authorize = fake.authorize_url(JIRA_CLIENT_ID, evil, &["read:jira-work"], "x");
    let response = http().get(authorize.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(response.text().await.unwrap().contains("redirect_uri"));
    assert!(fake.consent(&authorize, true).await.is_err());

    // A registered URI with a different trailing slash is not an exact match either.
    let near = fake.authorize_url(
        JIRA_CLIENT_ID,
        "http://localhost:9000/callback/",
        &["read:jira-work"],
        "x",
    );
    assert!(fake.consent(&near, true).await.is_err());
}

#[tokio::test]
async fn authorize_rejects_unknown_client_wrong_audience_and_response_type() {
    let fake = fake().await;
    let good = fake.authorize_url(
        JIRA_CLIENT_ID,
        DEFAULT_REDIRECT_URI,
        &["read:jira-work"],
        "x",
    );
    for (key, value) in [
        ("client_id", "nobody"),
        ("audience", "example.com"),
        ("response_type", "token"),
    ] {
        let mut bad = good.clone();
        let pairs: Vec<(String, String)> = good
            .query_pairs()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    if k == key {
                        value.to_owned()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect();
        bad.query_pairs_mut().clear().extend_pairs(pairs);
        let response = http().get(bad.clone()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key}={value}");
        assert!(response.headers().get(LOCATION).is_none());
        assert!(fake.consent(&bad, true).await.is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth: tokens

#[tokio::test]
async fn authorization_code_is_single_use() {
    let fake = fake().await;
    let code = code_for(&fake, ALL_SCOPES).await;
    assert!(code.starts_with("fake_code_"));
    let (first, body) = exchange(&fake, &code).await;
    assert_eq!(first, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 40);
    let (second, body) = exchange(&fake, &code).await;
    assert_eq!(second, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn authorization_code_expires_after_ten_minutes() {
    let fake = fake().await;
    let code = code_for(&fake, ALL_SCOPES).await;
    fake.advance_clock(10 * MINUTE + Duration::from_secs(1));
    let (status, body) = exchange(&fake, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn authorization_code_is_bound_to_its_redirect_uri() {
    let fake = fake_with(FakeConfig::default().with_redirect_uri("http://localhost:9001/cb")).await;
    let code = code_for(&fake, ALL_SCOPES).await;
    let (status, body) = token_request(
        &fake,
        json!({
            "grant_type": "authorization_code", "client_id": JIRA_CLIENT_ID, "client_secret": JIRA_CLIENT_SECRET,
            "code": code, "redirect_uri": "http://localhost:9001/cb",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn token_endpoint_rejects_a_wrong_client_secret() {
    let fake = fake().await;
    let code = code_for(&fake, ALL_SCOPES).await;
    let (status, body) = token_request(
        &fake,
        json!({
            "grant_type": "authorization_code", "client_id": JIRA_CLIENT_ID, "client_secret": "wrong",
            "code": code, "redirect_uri": DEFAULT_REDIRECT_URI,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string() && body["error_description"].is_string());
    // A code is bound to its client: the Confluence app cannot redeem the Jira app's code.
    let (status, body) = token_request(
        &fake,
        json!({
            "grant_type": "authorization_code", "client_id": CONFLUENCE_CLIENT_ID,
            "client_secret": CONFLUENCE_CLIENT_SECRET, "code": code, "redirect_uri": DEFAULT_REDIRECT_URI,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn token_endpoint_accepts_a_form_body_and_rejects_unknown_grant_types() {
    let fake = fake().await;
    let code = code_for(&fake, ALL_SCOPES).await;
    let url = fake.base_url().join("oauth/token").unwrap();
    let response = http()
        .post(url.clone())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", JIRA_CLIENT_ID),
            ("client_secret", JIRA_CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", DEFAULT_REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = http()
        .post(url.clone())
        .json(&json!({ "grant_type": "password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http()
        .post(url)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let fake = fake().await;
    let tokens = grant(&fake, &["read:jira-work"]).await;
    assert!(tokens.refresh.is_none());
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_every_time() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    let next = Tokens::from_json(&body);
    assert_ne!(next.refresh(), tokens.refresh());
    assert_ne!(next.access, tokens.access);
    assert_eq!(body["scope"], ALL_SCOPES.join(" "));
    let (status, _) = refresh(&fake, next.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.refresh_grants_served(), 2);
    assert_eq!(fake.token_families_killed(), 0);
}

#[tokio::test]
async fn refresh_token_reused_within_leeway_still_works() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let (status, first) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    fake.advance_clock(9 * MINUTE);
    let (status, second) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    // Both descendants stay usable: racing refreshers never both lose.
    for body in [&first, &second] {
        let t = Tokens::from_json(body);
        let (status, _) = refresh(&fake, t.refresh()).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(fake.token_families_killed(), 0);
}

#[tokio::test]
async fn refresh_token_reused_after_leeway_kills_the_family() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let (_, body) = refresh(&fake, tokens.refresh()).await;
    let newest = Tokens::from_json(&body);
    fake.advance_clock(11 * MINUTE);
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, dead_refresh_token());
    assert_eq!(fake.token_families_killed(), 1);
    // The whole family is dead: the newest refresh token and its access token too.
    let (status, _) = refresh(&fake, newest.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get_json(&fake, "oauth/token/accessible-resources", &newest.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "code": 401, "message": "Unauthorized" }));
}

#[tokio::test]
async fn rotated_pairs_access_token_dies_when_the_leeway_ends() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let (_, body) = refresh(&fake, tokens.refresh()).await;
    let newest = Tokens::from_json(&body);
    let path = jira_path(&fake, "myself");
    assert_eq!(
        get(&fake, &path, &tokens.access).await.status(),
        StatusCode::OK
    );
    fake.advance_clock(11 * MINUTE);
    assert_eq!(
        get(&fake, &path, &tokens.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&fake, &path, &newest.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_token_expires_after_90_days_without_a_refresh() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    fake.advance_clock(90 * DAY + MINUTE);
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, dead_refresh_token());
    assert_eq!(fake.token_families_killed(), 0);
}

#[tokio::test]
async fn token_family_expires_365_days_after_consent_despite_refreshes() {
    let fake = fake().await;
    let mut tokens = grant(&fake, ALL_SCOPES).await;
    for _ in 0..4 {
        fake.advance_clock(85 * DAY);
        let (status, body) = refresh(&fake, tokens.refresh()).await;
        assert_eq!(status, StatusCode::OK);
        tokens = Tokens::from_json(&body);
    }
    fake.advance_clock(30 * DAY);
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, dead_refresh_token());
}

#[tokio::test]
async fn revoked_grant_answers_invalid_grant_and_api_401() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let path = jira_path(&fake, "myself");
    assert_eq!(
        get(&fake, &path, &tokens.access).await.status(),
        StatusCode::OK
    );
    fake.revoke_grants(JIRA_CLIENT_ID);
    assert_eq!(
        get(&fake, &path, &tokens.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, dead_refresh_token());
    assert_eq!(fake.token_families_killed(), 0, "revocation is not reuse");
    // Consenting again gives a working grant.
    let again = grant(&fake, ALL_SCOPES).await;
    assert_eq!(
        get(&fake, &path, &again.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_access_token_answers_401() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let path = jira_path(&fake, "search/jql?jql=project%3DALPHA");
    assert_eq!(
        get(&fake, &path, &tokens.access).await.status(),
        StatusCode::OK
    );
    fake.advance_clock(Duration::from_secs(3601));
    let (status, body) = get_json(&fake, &path, &tokens.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "code": 401, "message": "Unauthorized" }));
}

#[tokio::test]
async fn api_calls_without_a_bearer_answer_401() {
    let fake = fake().await;
    let url = fake.base_url().join(&jira_path(&fake, "myself")).unwrap();
    assert_eq!(
        http().get(url.clone()).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let response = http()
        .get(url)
        .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = get(
        &fake,
        &jira_path(&fake, "myself"),
        "fake_at_not-a-real-token",
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_product_scope_answers_401() {
    let fake = fake().await;
    let confluence_only = grant(&fake, &["read:confluence-content.all", "offline_access"]).await;
    let (status, body) = get_json(
        &fake,
        &jira_path(&fake, "search/jql?jql=project%3DALPHA"),
        &confluence_only.access,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Unauthorized; scope does not match");
    let jira_only = grant(&fake, &["read:jira-work"]).await;
    let path = wiki_path(&fake, "/rest/api/content/search?cql=type%3Dpage");
    assert_eq!(
        get(&fake, &path, &jira_only.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn accessible_resources_list_every_site_of_the_grant_once_per_product() {
    let fake = fake_with(FakeConfig::default().with_sites(2, SeedSpec::empty())).await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let (status, body) = get_json(&fake, "oauth/token/accessible-resources", &tokens.access).await;
    assert_eq!(status, StatusCode::OK);
    let entries = body.as_array().unwrap();
    assert_eq!(entries.len(), 4, "{body}");
    let ids: Vec<&str> = entries.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let c = fake.cloud_ids();
    assert_eq!(ids, [&c[0], &c[0], &c[1], &c[1]]);
    for (i, s) in entries.iter().enumerate() {
        assert!(s["url"].as_str().unwrap().starts_with("https://"));
        assert!(s["name"].is_string() && s["avatarUrl"].is_string());
        let scopes: Vec<&str> = s["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let product = if i % 2 == 0 { "jira" } else { "confluence" };
        assert!(!scopes.is_empty());
        assert!(scopes.iter().all(|s| s.contains(product)), "{scopes:?}");
    }
    // A token with Jira scopes only lists Jira entries only.
    let jira = grant(&fake, &["read:jira-work", "offline_access"]).await;
    let (_, body) = get_json(&fake, "oauth/token/accessible-resources", &jira.access).await;
    assert_eq!(
        body,
        json!([
            {"id": c[0], "url": "https://fake-site-1.atlassian.net", "name": "fake-site-1",
             "scopes": ["read:jira-work"], "avatarUrl": entries[0]["avatarUrl"]},
            {"id": c[1], "url": "https://fake-site-2.atlassian.net", "name": "fake-site-2",
             "scopes": ["read:jira-work"], "avatarUrl": entries[0]["avatarUrl"]},
        ])
    );
}

#[tokio::test]
async fn unknown_cloud_id_answers_404() {
    let fake = fake().await;
    let tokens = grant(&fake, ALL_SCOPES).await;
    let response = get(
        &fake,
        "ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself",
        &tokens.access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// Jira

#[tokio::test]
async fn jql_pagination_terminates_and_covers_every_match_once() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let jql = "project in (ALPHA, BETA) ORDER BY updated DESC";
    let (ids, pages) = all_ids(&fake, &token, jql, 7).await;
    let expected: Vec<String> = fake
        .jira(&cloud(&fake))
        .unwrap()
        .search(jql)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, expected, "same issues, same order");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no duplicates"
    );
    assert_eq!(ids.len(), 55);
    assert_eq!(pages, 55usize.div_ceil(7));
}

#[tokio::test]
async fn jql_post_search_returns_the_requested_fields() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let response = http()
        .post(fake.base_url().join(&jira_path(&fake, "search/jql")).unwrap())
        .bearer_auth(&token)
        .json(&json!({ "jql": "project = BETA", "maxResults": 10, "fields": ["summary", "reporter", "updated"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let issues = body["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 10);
    let first = &issues[0];
    assert!(first["key"].as_str().unwrap().starts_with("BETA-"));
    let fields = first["fields"].as_object().unwrap();
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        vec!["reporter", "summary", "updated"]
    );
    let reporter = &fields["reporter"];
    assert!(
        reporter["self"]
            .as_str()
            .unwrap()
            .contains("/rest/api/3/user?accountId=")
    );
    assert!(reporter["avatarUrls"]["48x48"].is_string());
    assert!(reporter["accountType"].is_string() && reporter["timeZone"].is_string());
    let updated = fields["updated"].as_str().unwrap();
    assert!(
        updated.ends_with("+0000") && updated.len() == "2024-05-01T10:20:30.000+0000".len(),
        "{updated}"
    );
}

#[tokio::test]
async fn unbounded_jql_is_rejected() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    for jql in ["", "ORDER BY key DESC"] {
        let (status, body) = get_json(
            &fake,
            &jira_path(&fake, &format!("search/jql?jql={}", enc(jql))),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({
                "errorMessages": ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],
                "errors": {}
            })
        );
    }
}

#[tokio::test]
async fn invalid_jql_answers_400_naming_the_problem() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    for (jql, needle) in [
        ("nosuchfield = 1", "nosuchfield"),
        ("project = NOPE", "NOPE"),
        ("project = ", "Expecting"),
        ("updated >= \"yesterday-ish\"", "yesterday-ish"),
        ("project = ALPHA ORDER BY priority", "priority"),
        ("key in (ALPHA-1, ALPHA-99999)", "ALPHA-99999"),
    ] {
        let (status, body) = get_json(
            &fake,
            &jira_path(&fake, &format!("search/jql?jql={}", enc(jql))),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{jql}");
        let message = body["errorMessages"][0].as_str().unwrap();
        assert!(message.contains(needle), "{jql}: {message}");
    }
}

#[tokio::test]
async fn jql_updated_since_selects_exactly_the_newer_issues() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let jira = fake.jira(&cloud(&fake)).unwrap();
    let mut updated: Vec<_> = jira.issues().into_iter().map(|i| i.updated).collect();
    updated.sort();
    let pivot = updated[updated.len() / 2];
    let since = pivot
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap();
    let jql = format!("project = ALPHA AND updated >= \"{since}\"");
    let (ids, _) = all_ids(&fake, &token, &jql, 100).await;
    let minute = pivot
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap();
    let expected: HashSet<String> = jira
        .issues()
        .into_iter()
        .filter(|i| i.project_key == "ALPHA" && i.updated >= minute)
        .map(|i| i.id)
        .collect();
    assert!(!expected.is_empty() && expected.len() < 30);
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test]
async fn jql_max_results_caps_at_100_with_fields_and_5000_for_ids() {
    let mut seed = SeedSpec::empty();
    seed.jira_projects = vec![("BIG".into(), 150)];
    let fake = fake_with(FakeConfig::default().with_seed_spec(seed)).await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let (_, ids_only) = get_json(
        &fake,
        &jira_path(&fake, "search/jql?jql=project%3DBIG&maxResults=9999"),
        &token,
    )
    .await;
    assert_eq!(ids_only["issues"].as_array().unwrap().len(), 150);
    assert_eq!(
        ids_only["issues"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["id"]
    );
    let (_, with_fields) = get_json(
        &fake,
        &jira_path(
            &fake,
            "search/jql?jql=project%3DBIG&maxResults=9999&fields=summary",
        ),
        &token,
    )
    .await;
    assert_eq!(with_fields["issues"].as_array().unwrap().len(), 100);
    assert_eq!(with_fields["isLast"], false);
    let (_, default) = get_json(
        &fake,
        &jira_path(&fake, "search/jql?jql=project%3DBIG"),
        &token,
    )
    .await;
    assert_eq!(default["issues"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn next_page_token_of_another_query_is_rejected() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let (_, first) = get_json(
        &fake,
        &jira_path(&fake, "search/jql?jql=project%3DALPHA&maxResults=5"),
        &token,
    )
    .await;
    let next = first["nextPageToken"].as_str().unwrap();
    let path = jira_path(
        &fake,
        &format!("search/jql?jql=project%3DBETA&nextPageToken={}", enc(next)),
    );
    assert_eq!(
        get(&fake, &path, &token).await.status(),
        StatusCode::BAD_REQUEST
    );
    let path = jira_path(
        &fake,
        "search/jql?jql=project%3DALPHA&nextPageToken=garbage%21",
    );
    assert_eq!(
        get(&fake, &path, &token).await.status(),
        StatusCode::BAD_REQUEST
    );
}

async fn bulkfetch(fake: &FakeAtlassian, token: &str, body: Value) -> (StatusCode, Value) {
    let response = http()
        .post(
            fake.base_url()
                .join(&jira_path(fake, "issue/bulkfetch"))
                .unwrap(),
        )
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn bulkfetch_returns_visible_issues_and_leaves_out_forbidden_and_missing_ones() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let jira = fake.jira(&cloud(&fake)).unwrap();
    let forbidden = jira.forbidden_issue_keys();
    assert!(!forbidden.is_empty());
    let mut visible: Vec<(u64, String)> = jira
        .issues()
        .into_iter()
        .filter(|i| !i.forbidden)
        .take(5)
        .map(|i| (i.id.parse().unwrap(), i.key))
        .collect();
    // Asked in descending id order; "Issues will be returned in ascending `id` order" (Jira v3
    // reference, bulkfetch).
    visible.sort();
    let mut asked: Vec<String> = visible.iter().rev().map(|(_, k)| k.clone()).collect();
    let visible: Vec<String> = visible.into_iter().map(|(_, k)| k).collect();
    asked.push(forbidden[0].clone());
    asked.push("ALPHA-99999".into());
    let (status, body) = bulkfetch(
        &fake,
        &token,
        json!({ "issueIdsOrKeys": asked, "fields": ["summary", "comment", "attachment"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, visible);
    assert_eq!(body["issueErrors"], json!([]));
    // A forbidden issue read alone is a 404, as Jira answers for issues the user may not browse.
    let (status, _) = get_json(
        &fake,
        &jira_path(&fake, &format!("issue/{}", forbidden[0])),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bulkfetch_over_100_ids_is_rejected() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let ids: Vec<String> = (0..101).map(|i| format!("ALPHA-{}", i % 30 + 1)).collect();
    let (status, body) = bulkfetch(&fake, &token, json!({ "issueIdsOrKeys": ids })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errorMessages"][0].as_str().unwrap().contains("100"));
    let (status, _) = bulkfetch(&fake, &token, json!({ "fields": ["summary"] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bulkfetch_flaky_issue_reports_an_issue_error_once() {
    let mut seed = SeedSpec::small();
    seed.flaky_bulkfetch_issues = 1;
    let fake = fake_with(FakeConfig::default().with_seed_spec(seed)).await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let flaky = fake
        .jira(&cloud(&fake))
        .unwrap()
        .issues()
        .into_iter()
        .find(|i| i.flaky)
        .unwrap();
    let (_, first) = bulkfetch(&fake, &token, json!({ "issueIdsOrKeys": [flaky.id] })).await;
    assert_eq!(first["issues"], json!([]));
    assert_eq!(first["issueErrors"][0]["id"], flaky.id.as_str());
    assert!(first["issueErrors"][0]["errorMessage"].is_string());
    let (_, second) = bulkfetch(&fake, &token, json!({ "issueIdsOrKeys": [flaky.id] })).await;
    assert_eq!(second["issues"][0]["id"], flaky.id.as_str());
}

#[tokio::test]
async fn search_embeds_twenty_comments_and_the_comment_endpoint_pages_the_rest() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let jira = fake.jira(&cloud(&fake)).unwrap();
    let heavy = jira
        .issues()
        .into_iter()
        .find(|i| i.comment_count > 20 && !i.forbidden)
        .unwrap();
    let (_, body) = bulkfetch(
        &fake,
        &token,
        json!({ "issueIdsOrKeys": [heavy.key], "fields": ["comment"] }),
    )
    .await;
    let embedded = &body["issues"][0]["fields"]["comment"];
    assert_eq!(embedded["comments"].as_array().unwrap().len(), 20);
    assert_eq!(embedded["total"], heavy.comment_count);

    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let path = jira_path(
            &fake,
            &format!("issue/{}/comment?startAt={start}&maxResults=7", heavy.id),
        );
        let (status, page) = get_json(&fake, &path, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], heavy.comment_count);
        let comments = page["comments"].as_array().unwrap();
        if comments.is_empty() {
            break;
        }
        for c in comments {
            assert!(
                c["author"]["accountId"].is_string() && c["updateAuthor"]["accountId"].is_string()
            );
            assert_eq!(c["body"]["type"], "doc");
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        start += comments.len();
    }
    assert_eq!(seen.len(), heavy.comment_count);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());

    // `orderBy` accepts `created` with one optional `+`/`-`, any case, any spaces
    // (brekkylab/backlot#163, measured on Jira Cloud); anything else is a 400 (Jira v3 reference).
    let first_of = |order: &'static str| {
        let fake = &fake;
        let token = &token;
        let id = heavy.id.clone();
        async move {
            let path = jira_path(
                fake,
                &format!("issue/{id}/comment?maxResults=1&orderBy={order}"),
            );
            let (status, page) = get_json(fake, &path, token).await;
            (status, page["comments"][0]["id"].clone())
        }
    };
    let (status, newest) = first_of("-created").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(newest, json!(seen.last().unwrap()));
    let (status, oldest) = first_of("%20CREATED").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(oldest, json!(seen[0]));
    assert_eq!(first_of("updated").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn account_ids_in_both_formats_appear_in_users_and_mentions() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let (_, body) = get_json(
        &fake,
        &jira_path(
            &fake,
            "search/jql?jql=project%3DALPHA&fields=*all&maxResults=100",
        ),
        &token,
    )
    .await;
    let text = body.to_string();
    assert!(text.contains(r#""type":"mention""#));
    let ids = fake.account_ids();
    let legacy: Vec<&String> = ids
        .iter()
        .filter(|id| id.len() == 24 && !id.contains(':'))
        .collect();
    let modern: Vec<&String> = ids.iter().filter(|id| id.contains(':')).collect();
    assert!(
        legacy.iter().any(|id| text.contains(id.as_str())),
        "a 24-hex id appears"
    );
    assert!(
        modern.iter().any(|id| text.contains(id.as_str())),
        "an NNNNNN:uuid id appears"
    );
    assert!(fake.users().iter().any(|u| !u.display_name.is_ascii()));
    assert!(fake.users().iter().any(|u| u.email.is_none()));
}

#[tokio::test]
async fn attachment_redirect_serves_bytes_matching_sha256() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let attachments = fake.jira(&cloud(&fake)).unwrap().attachments();
    assert!(attachments.iter().any(|a| a.size == 0));
    assert!(attachments.iter().any(|a| a.size == 3 * 1024 * 1024));
    for a in attachments.iter().filter(|a| !a.forbidden) {
        let response = get(
            &fake,
            &jira_path(&fake, &format!("attachment/content/{}", a.id)),
            &token,
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", a.filename);
        let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
        assert_eq!(location.origin(), fake.media_url().origin());
        let media = http().get(location).send().await.unwrap();
        assert_eq!(media.status(), StatusCode::OK);
        assert_eq!(media.content_length(), Some(a.size));
        let bytes = media.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, a.size);
        assert_eq!(sha256_hex(&bytes), a.sha256_hex(), "{}", a.filename);
    }
}

#[tokio::test]
async fn attachment_content_without_redirect_streams_the_bytes() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let a = fake
        .jira(&cloud(&fake))
        .unwrap()
        .attachments()
        .into_iter()
        .find(|a| a.size > 1000 && !a.forbidden)
        .unwrap();
    let response = get(
        &fake,
        &jira_path(
            &fake,
            &format!("attachment/content/{}?redirect=false", a.id),
        ),
        &token,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(a.size));
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        a.content().as_slice()
    );
}

#[tokio::test]
async fn media_host_rejects_forwarded_authorization() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let a = fake
        .jira(&cloud(&fake))
        .unwrap()
        .attachments()
        .into_iter()
        .find(|a| !a.forbidden)
        .unwrap();
    let response = get(
        &fake,
        &jira_path(&fake, &format!("attachment/content/{}", a.id)),
        &token,
    )
    .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let forwarded = http()
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::BAD_REQUEST);
    // reqwest itself strips the header when following a redirect to another origin.
    let following = reqwest::Client::new();
    let url = fake
        .base_url()
        .join(&jira_path(&fake, &format!("attachment/content/{}", a.id)))
        .unwrap();
    let followed = following.get(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(followed.status(), StatusCode::OK);
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.path.starts_with("/file/"))
            .any(|r| !r.had_authorization)
    );
}

#[tokio::test]
async fn media_links_expire() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let a = fake
        .jira(&cloud(&fake))
        .unwrap()
        .attachments()
        .into_iter()
        .find(|a| !a.forbidden)
        .unwrap();
    let response = get(
        &fake,
        &jira_path(&fake, &format!("attachment/content/{}", a.id)),
        &token,
    )
    .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    fake.advance_clock(6 * MINUTE);
    assert_eq!(
        http().get(&location).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn forbidden_attachment_answers_403() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let a = fake
        .jira(&cloud(&fake))
        .unwrap()
        .attachments()
        .into_iter()
        .find(|a| a.forbidden)
        .unwrap();
    let (status, body) = get_json(
        &fake,
        &jira_path(&fake, &format!("attachment/content/{}", a.id)),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["errorMessages"][0].is_string());
}

#[tokio::test]
async fn hostile_attachment_filenames_come_back_verbatim() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let jira = fake.jira(&cloud(&fake)).unwrap();
    let keys: Vec<String> = jira
        .attachments()
        .into_iter()
        .map(|a| a.container)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let (_, body) = bulkfetch(
        &fake,
        &token,
        json!({ "issueIdsOrKeys": keys, "fields": ["attachment"] }),
    )
    .await;
    let names: HashSet<String> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["fields"]["attachment"].as_array().unwrap().iter())
        .map(|a| a["filename"].as_str().unwrap().to_owned())
        .collect();
    for hostile in HOSTILE_FILENAMES {
        assert!(names.contains(*hostile), "{hostile:?} missing");
    }
    assert!(names.iter().any(|n| n.chars().count() > 300));
}

#[tokio::test]
async fn touched_issue_matches_an_updated_since_query_with_a_new_comment() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let cloud_id = cloud(&fake);
    let before = fake.jira(&cloud_id).unwrap().issue("ALPHA-3").unwrap();
    fake.advance_clock(2 * MINUTE);
    let since = fake
        .now()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap();
    fake.advance_clock(2 * MINUTE);
    let touched = fake.touch_issue(&cloud_id, "ALPHA-3").unwrap();
    assert_eq!(touched.comment_count, before.comment_count + 1);
    let (ids, _) = all_ids(
        &fake,
        &token,
        &format!("project = ALPHA AND updated >= \"{since}\""),
        50,
    )
    .await;
    assert_eq!(ids, vec![before.id.clone()]);

    fake.delete_issue(&cloud_id, "ALPHA-3").unwrap();
    let (ids, _) = all_ids(&fake, &token, "project = ALPHA", 100).await;
    assert!(!ids.contains(&before.id));
    let created = fake.create_issue(&cloud_id, "ALPHA").unwrap();
    assert_eq!(created.key, "ALPHA-31");
    let (ids, _) = all_ids(
        &fake,
        &token,
        &format!("project = ALPHA AND updated >= \"{since}\""),
        50,
    )
    .await;
    assert_eq!(ids, vec![created.id]);
}

// ---------------------------------------------------------------------------------------------
// Confluence

/// Follows `_links.next` through the gateway (`{base}/ex/confluence/{cloud}/wiki` + next).
async fn all_search_results(
    fake: &FakeAtlassian,
    token: &str,
    first: &str,
) -> (Vec<Value>, Vec<Value>) {
    let mut results = Vec::new();
    let mut pages = Vec::new();
    let mut path = wiki_path(fake, first);
    loop {
        let (status, body) = get_json(fake, &path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["_links"]["context"], "/wiki");
        results.extend(body["results"].as_array().unwrap().iter().cloned());
        assert!(pages.len() < 1000, "paging does not terminate");
        let next = body["_links"]["next"].as_str().map(str::to_owned);
        pages.push(body);
        match next {
            Some(next) => path = wiki_path(fake, &next),
            None => return (results, pages),
        }
    }
}

#[tokio::test]
async fn cql_cursor_paging_terminates_and_caps_limit_with_body_expand() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let cql = "space = DOCS AND type = page ORDER BY lastmodified DESC";
    let first = format!(
        "/rest/api/content/search?cql={}&limit=500&expand=body.storage,version",
        enc(cql)
    );
    let (_, body) = get_json(&fake, &wiki_path(&fake, &first), &token).await;
    assert_eq!(body["limit"], 50, "body expansion caps the page size at 50");
    let first = format!("/rest/api/content/search?cql={}&limit=500", enc(cql));
    let (_, body) = get_json(&fake, &wiki_path(&fake, &first), &token).await;
    assert_eq!(body["limit"], 200, "other expansions cap it at 200");

    let first = format!(
        "/rest/api/content/search?cql={}&limit=4&expand=body.storage",
        enc(cql)
    );
    let (results, pages) = all_search_results(&fake, &token, &first).await;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let hits: Vec<String> = data
        .search(cql)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let forbidden = data.forbidden_page_ids();
    let visible: Vec<&String> = hits.iter().filter(|id| !forbidden.contains(id)).collect();
    assert!(
        visible.len() < hits.len(),
        "the space holds a forbidden page"
    );
    let ids: Vec<String> = results
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<Vec<_>>(),
        visible,
        "a body expansion leaves out what the user may not read"
    );
    assert_eq!(pages.len(), hits.len().div_ceil(4));
    assert!(pages.last().unwrap()["_links"].get("next").is_none());
    assert!(
        results
            .iter()
            .all(|r| r["body"]["storage"]["representation"] == "storage")
    );
    assert!(
        results.iter().all(|r| r.get("version").is_none()),
        "only expanded properties appear"
    );
    assert!(
        pages[0]["_links"]["base"]
            .as_str()
            .unwrap()
            .ends_with("atlassian.net/wiki")
    );
}

#[tokio::test]
async fn generic_search_wraps_content_and_pages_by_cursor() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let cql = "space in (DOCS, ENG) AND type = blogpost";
    let (results, _) = all_search_results(
        &fake,
        &token,
        &format!("/rest/api/search?cql={}&limit=2", enc(cql)),
    )
    .await;
    let expected = fake.confluence(&cloud(&fake)).unwrap().search(cql).unwrap();
    assert!(!expected.is_empty());
    assert_eq!(results.len(), expected.len());
    for (r, e) in results.iter().zip(&expected) {
        assert_eq!(r["content"]["id"], e.id.as_str());
        assert_eq!(r["content"]["type"], "blogpost");
        assert_eq!(r["title"], e.title.as_str());
        assert!(r["lastModified"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn invalid_cql_answers_400_with_a_message() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    for cql in [
        "space = ",
        "bogus = 1",
        "type = widget",
        "lastmodified >= \"not a date\"",
        "order by title",
    ] {
        let path = wiki_path(&fake, &format!("/rest/api/content/search?cql={}", enc(cql)));
        let (status, body) = get_json(&fake, &path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cql}");
        assert_eq!(body["statusCode"], 400);
        assert!(body["message"].as_str().unwrap().contains("cql"), "{body}");
    }
}

#[tokio::test]
async fn cql_lastmodified_selects_the_same_pages_as_the_helper() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let mut modified: Vec<_> = data.pages().into_iter().map(|p| p.last_modified).collect();
    modified.sort();
    let since = modified[modified.len() / 2]
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap();
    let cql = format!("type = page AND lastmodified >= \"{since}\"");
    let (results, _) = all_search_results(
        &fake,
        &token,
        &format!("/rest/api/content/search?cql={}&limit=10", enc(&cql)),
    )
    .await;
    let expected: Vec<String> = data
        .search(&cql)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let ids: Vec<String> = results
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.is_empty() && ids.len() < data.pages().len());
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn page_ancestors_nest_several_levels_deep() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let deepest = data
        .pages()
        .into_iter()
        .filter(|p| !p.forbidden)
        .max_by_key(|p| p.ancestor_ids.len())
        .unwrap();
    assert!(deepest.ancestor_ids.len() >= 3);
    let path = wiki_path(
        &fake,
        &format!(
            "/rest/api/content/{}?expand=ancestors,space,history",
            deepest.id
        ),
    );
    let (status, body) = get_json(&fake, &path, &token).await;
    assert_eq!(status, StatusCode::OK);
    let ancestors: Vec<&str> = body["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ancestors, deepest.ancestor_ids);
    assert_eq!(body["space"]["key"], deepest.space_key.as_str());
    assert!(body["history"]["createdBy"]["accountId"].is_string());
    assert_eq!(deepest.parent_id.as_deref(), ancestors.last().copied());
}

#[tokio::test]
async fn page_v2_returns_the_storage_body_with_user_mentions() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let page = fake
        .confluence(&cloud(&fake))
        .unwrap()
        .pages()
        .into_iter()
        .find(|p| p.kind == ContentKind::Page && !p.forbidden && p.parent_id.is_some())
        .unwrap();
    let (status, body) = get_json(
        &fake,
        &wiki_path(
            &fake,
            &format!("/api/v2/pages/{}?body-format=storage", page.id),
        ),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], page.id.as_str());
    assert_eq!(body["parentId"], page.parent_id.as_deref().unwrap());
    assert_eq!(body["version"]["number"], page.version);
    assert!(
        body["authorId"].is_string() && body["ownerId"].is_string() && body["spaceId"].is_string()
    );
    let storage = body["body"]["storage"]["value"].as_str().unwrap();
    assert_eq!(body["body"]["storage"]["representation"], "storage");
    assert!(storage.contains("<ac:link><ri:user ri:account-id=\""));
    assert!(storage.contains("<ac:structured-macro"));
    let (_, bare) = get_json(
        &fake,
        &wiki_path(&fake, &format!("/api/v2/pages/{}", page.id)),
        &token,
    )
    .await;
    assert_eq!(bare["body"], json!({}));
}

#[tokio::test]
async fn forbidden_page_answers_as_each_endpoint_documents() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let id = data.forbidden_page_ids().remove(0);
    // v2 and the v1 attachment listing document 404 for "does not have permission"; v1
    // `content/{id}` documents 403 for "can not view the content".
    for (path, status) in [
        (format!("/api/v2/pages/{id}"), StatusCode::NOT_FOUND),
        (
            format!("/api/v2/pages/{id}/attachments"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/rest/api/content/{id}/child/attachment"),
            StatusCode::NOT_FOUND,
        ),
        (format!("/rest/api/content/{id}"), StatusCode::FORBIDDEN),
    ] {
        assert_eq!(
            get(&fake, &wiki_path(&fake, &path), &token).await.status(),
            status,
            "{path}"
        );
    }
    assert_eq!(
        get(&fake, &wiki_path(&fake, "/api/v2/pages/999999999"), &token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(
            &fake,
            &wiki_path(&fake, "/api/v2/pages/not-a-number"),
            &token
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn v2_attachments_page_by_cursor_with_a_link_header() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let page = data
        .pages()
        .into_iter()
        .filter(|p| !p.forbidden)
        .max_by_key(|p| p.attachment_ids.len())
        .unwrap();
    assert!(page.attachment_ids.len() >= 2);
    let mut path = wiki_path(
        &fake,
        &format!("/api/v2/pages/{}/attachments?limit=1", page.id),
    );
    let mut ids = Vec::new();
    loop {
        let response = get(&fake, &path, &token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let link = response
            .headers()
            .get(LINK)
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        for a in body["results"].as_array().unwrap() {
            assert!(
                a["downloadLink"]
                    .as_str()
                    .unwrap()
                    .starts_with("/download/attachments/")
            );
            assert!(a["version"]["authorId"].is_string());
            ids.push(a["id"].as_str().unwrap().to_owned());
        }
        match body["_links"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/wiki/api/v2/"));
                assert_eq!(link.unwrap(), format!("<{next}>; rel=\"next\""));
                path = format!("ex/confluence/{}{next}", cloud(&fake));
            }
            None => {
                assert!(link.is_none());
                break;
            }
        }
    }
    assert_eq!(ids, page.attachment_ids);
}

#[tokio::test]
async fn confluence_download_servlet_answers_401_and_the_rest_download_redirects_to_the_media_host()
{
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let mut checked = 0;
    for page in data
        .pages()
        .into_iter()
        .filter(|p| !p.forbidden && !p.attachment_ids.is_empty())
    {
        let path = wiki_path(
            &fake,
            &format!("/rest/api/content/{}/child/attachment?limit=100", page.id),
        );
        let (status, body) = get_json(&fake, &path, &token).await;
        assert_eq!(status, StatusCode::OK);
        for a in body["results"].as_array().unwrap() {
            let info = data.attachment(a["id"].as_str().unwrap()).unwrap();
            assert_eq!(a["title"], info.filename.as_str());
            let servlet = a["_links"]["download"].as_str().unwrap();
            let refused = get(&fake, &wiki_path(&fake, servlet), &token).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{servlet}");
            let download = format!(
                "/rest/api/content/{}/child/attachment/{}/download",
                page.id, info.id
            );
            let response = get(&fake, &wiki_path(&fake, &download), &token).await;
            if info.forbidden {
                // The v1 docs list 404 for an attachment the user may not view.
                assert_eq!(response.status(), StatusCode::NOT_FOUND);
                continue;
            }
            assert_eq!(response.status(), StatusCode::FOUND, "{:?}", info.filename);
            let media = http()
                .get(response.headers()[LOCATION].to_str().unwrap())
                .send()
                .await
                .unwrap();
            let bytes = media.bytes().await.unwrap();
            assert_eq!(sha256_hex(&bytes), info.sha256_hex(), "{:?}", info.filename);
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
    assert!(
        fake.download_servlet_hits() >= checked,
        "the servlet calls are counted"
    );
}

#[tokio::test]
async fn touched_page_gets_a_new_version_and_matches_lastmodified() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let cloud_id = cloud(&fake);
    let page = fake
        .confluence(&cloud_id)
        .unwrap()
        .pages_in_space("ENG")
        .remove(1);
    fake.advance_clock(MINUTE);
    let since = fake
        .now()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap();
    fake.advance_clock(MINUTE);
    let touched = fake.touch_page(&cloud_id, &page.id).unwrap();
    assert_eq!(touched.version, page.version + 1);
    let cql = format!("space = ENG AND lastmodified >= \"{since}\"");
    let (results, _) = all_search_results(
        &fake,
        &token,
        &format!("/rest/api/content/search?cql={}", enc(&cql)),
    )
    .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], page.id.as_str());
}

// ---------------------------------------------------------------------------------------------
// Faults and admin

#[tokio::test]
async fn fault_429_fires_n_times_with_retry_after() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    fake.inject(Fault::status("/ex/jira/", 429).retry_after(7).times(2));
    let path = jira_path(&fake, "myself");
    for _ in 0..2 {
        let response = get(&fake, &path, &token).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "7");
    }
    assert_eq!(get(&fake, &path, &token).await.status(), StatusCode::OK);
    assert_eq!(fake.hits("/ex/jira/"), 3);
    let statuses: Vec<Option<u16>> = fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/ex/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![Some(429), Some(429), Some(200)]);
}

#[tokio::test]
async fn fault_drop_closes_the_connection() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    fake.inject(Fault::drop("/ex/").times(1));
    let url = fake.base_url().join(&jira_path(&fake, "myself")).unwrap();
    let error = http()
        .get(url.clone())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_status(), "{error}");
    assert_eq!(fake.hits("/ex/"), 1);
    assert_eq!(fake.requests().last().unwrap().status, None);
    assert_eq!(
        http()
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn fault_latency_delays_the_answer() {
    let fake = fake().await;
    fake.inject(Fault::latency("/oauth/", 300));
    let started = Instant::now();
    let (status, _) = refresh(&fake, "fake_rt_unknown").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn probabilistic_faults_repeat_for_the_same_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let fake = fake_with(FakeConfig {
            seed,
            ..FakeConfig::default()
        })
        .await;
        fake.inject(Fault::status("/nothing", 503).probability(0.5));
        let url = fake.base_url().join("nothing").unwrap();
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(
                http()
                    .get(url.clone())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert!(a.contains(&503) && a.contains(&404), "{a:?}");
}

#[tokio::test]
async fn admin_api_manages_faults_clock_revocation_and_reports_hits() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let admin = |p: &str| fake.base_url().join(&format!("__admin/{p}")).unwrap();
    let (status, info) = {
        let r = http().get(admin("info")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["base_url"], fake.base_url().as_str());
    assert_eq!(info["media_url"], fake.media_url().as_str());
    assert_eq!(
        info["clients"],
        json!([JIRA_CLIENT_ID, CONFLUENCE_CLIENT_ID])
    );
    assert!(!info.to_string().contains(JIRA_CLIENT_SECRET));

    let fault =
        json!({ "path_prefix": "/ex/", "kind": { "type": "status", "status": 503 }, "times": 1 });
    assert_eq!(
        http()
            .post(admin("faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        http()
            .post(admin("faults"))
            .body("nope")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let path = jira_path(&fake, "myself");
    assert_eq!(
        get(&fake, &path, &token).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let hits: Value = http()
        .get(admin("hits?prefix=/ex/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hits, json!({ "prefix": "/ex/", "hits": 1 }));

    let forever = json!({ "path_prefix": "/ex/", "kind": { "type": "drop" } });
    http()
        .post(admin("faults"))
        .json(&forever)
        .send()
        .await
        .unwrap();
    assert_eq!(
        http()
            .delete(admin("faults"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(get(&fake, &path, &token).await.status(), StatusCode::OK);

    http()
        .post(admin("clock/advance"))
        .json(&json!({ "seconds": 3601 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&fake, &path, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let fresh = grant(&fake, ALL_SCOPES).await;
    http()
        .post(admin("revoke"))
        .json(&json!({ "client_id": JIRA_CLIENT_ID }))
        .send()
        .await
        .unwrap();
    let (status, _) = refresh(&fake, fresh.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.starts_with("/__admin")),
        "admin calls are not recorded"
    );
}

#[tokio::test]
async fn malformed_requests_get_4xx_never_5xx() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    for path in [
        jira_path(&fake, "search/jql?jql=project%3DALPHA&maxResults=abc"),
        jira_path(&fake, "search/jql?jql=project%3DALPHA&maxResults=-1"),
        jira_path(&fake, "search/jql?jql=%22unterminated"),
        jira_path(&fake, "issue/ALPHA-1/comment?startAt=x"),
        jira_path(&fake, "attachment/content/not-a-number"),
        jira_path(&fake, "issue/%FF%FE"),
        jira_path(&fake, "no/such/endpoint"),
        wiki_path(&fake, "/rest/api/content/search?cql=type%3Dpage&limit=lots"),
        wiki_path(&fake, "/rest/api/content/search?cql=type%3Dpage&cursor=%00"),
        wiki_path(&fake, "/api/v2/pages/1/attachments?cursor=bogus"),
        wiki_path(&fake, "/api/v2/pages/1?body-format=nonsense"),
        wiki_path(&fake, "/download/attachments/1/%C3%28"),
        "authorize".to_owned(),
        "authorize?client_id=&redirect_uri=".to_owned(),
    ] {
        let status = get(&fake, &path, &token).await.status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let url = fake
        .base_url()
        .join(&jira_path(&fake, "search/jql"))
        .unwrap();
    for body in [
        "",
        "[]",
        "{\"jql\": 5}",
        "{\"jql\":\"project=ALPHA\",\"fields\":{}}",
    ] {
        let status = http()
            .post(url.clone())
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{body}: {status}");
    }
    let url = fake.base_url().join("authorize/decision").unwrap();
    assert!(
        http()
            .post(url)
            .body("garbage=%%%")
            .send()
            .await
            .unwrap()
            .status()
            .is_client_error()
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.status.is_none_or(|s| s < 500))
    );
}

#[tokio::test]
async fn shutdown_stops_both_listeners() {
    let fake = fake().await;
    let (base, media) = (fake.base_url(), fake.media_url());
    fake.shutdown().await;
    assert!(http().get(base).send().await.is_err());
    assert!(http().get(media).send().await.is_err());
}

#[tokio::test]
async fn large_seed_starts_quickly_and_streams_big_attachments() {
    let started = Instant::now();
    let fake = fake_with(FakeConfig::default().with_seed_spec(SeedSpec::large())).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let jira = fake.jira(&cloud(&fake)).unwrap();
    assert_eq!(jira.issues().len(), 2000);
    assert_eq!(jira.attachments().len(), 300);
    assert_eq!(fake.confluence(&cloud(&fake)).unwrap().pages().len(), 1200);
    let token = grant(&fake, ALL_SCOPES).await.access;
    let (ids, pages) = all_ids(&fake, &token, "project = ALPHA", 5000).await;
    assert_eq!((ids.len(), pages), (1500, 1));
    // A 20 MiB attachment streams with Content-Length, chunk by chunk.
    let a = jira
        .attachments()
        .into_iter()
        .find(|a| a.size == 20 * 1024 * 1024)
        .unwrap();
    let mut response = get(
        &fake,
        &jira_path(
            &fake,
            &format!("attachment/content/{}?redirect=false", a.id),
        ),
        &token,
    )
    .await;
    assert_eq!(response.content_length(), Some(a.size));
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        total += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(total, a.size);
    assert_eq!(hex::encode(hasher.finalize()), a.sha256_hex());
}

#[tokio::test]
async fn binary_prints_one_json_line_and_exits_on_sigterm() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-atlassian"))
        .args([
            "--seed",
            "7",
            "--sites",
            "2",
            "--jira-projects",
            "ALPHA:3",
            "--confluence-spaces",
            "DOCS:4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn fake-atlassian");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(info["sites"].as_array().unwrap().len(), 2);
    assert_eq!(
        info["clients"],
        json!([JIRA_CLIENT_ID, CONFLUENCE_CLIENT_ID])
    );
    assert!(!line.contains("secret"));
    let base = Url::parse(info["base_url"].as_str().unwrap()).unwrap();
    let served: Value = http()
        .get(base.join("__admin/info").unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, info);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
