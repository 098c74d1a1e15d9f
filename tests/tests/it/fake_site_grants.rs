//! The fake Atlassian Cloud's grant model over real HTTP: one grant per app with a cumulative
//! set of sites chosen on the consent page, one new token family per consent, sites leaving a
//! grant, per-endpoint scopes, the app's scopes in the developer console, and the counters
//! tests read (see `shared/ATLASSIAN.md`, OAuth section).

use integration_tests::fake::{
    DEFAULT_REDIRECT_URI, FakeAtlassian, FakeConfig, JIRA_CLIENT_ID, SeedSpec,
};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use url::Url;

use crate::fake_site::{
    ALL_SCOPES, Tokens, exchange, fake_with, get, get_json, http, query_param, refresh, wiki_path,
};

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
const JIRA: &[&str] = &["read:jira-work", "read:jira-user", "offline_access"];
const RESOURCES: &str = "oauth/token/accessible-resources";

async fn two_sites() -> (FakeAtlassian, String, String) {
    let fake = fake_with(FakeConfig::default().with_sites(2, SeedSpec::small())).await;
    let ids = fake.cloud_ids();
    (fake, ids[0].clone(), ids[1].clone())
}

/// Consent (Jira app) for `sites` only, and exchange the code.
async fn grant_for(fake: &FakeAtlassian, scopes: &[&str], sites: &[&str]) -> Tokens {
    let authorize = fake.authorize_url(JIRA_CLIENT_ID, DEFAULT_REDIRECT_URI, scopes, "st");
    let redirect = fake
        .consent_sites(&authorize, sites)
        .await
        .unwrap_or_else(|e| panic!("consent: {e}"));
    let code = query_param(&redirect, "code").expect("code");
    let (status, body) = exchange(fake, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tokens::from_json(&body)
}

fn myself(cloud_id: &str) -> String {
    format!("ex/jira/{cloud_id}/rest/api/3/myself")
}

async fn listed_sites(fake: &FakeAtlassian, token: &str) -> Vec<String> {
    let (status, body) = get_json(fake, RESOURCES, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn unauthorized() -> Value {
    json!({ "code": 401, "message": "Unauthorized" })
}

fn scope_mismatch() -> Value {
    json!({ "code": 401, "message": "Unauthorized; scope does not match" })
}

async fn admin(fake: &FakeAtlassian, path: &str, body: Value) -> Value {
    let response = http()
        .post(fake.base_url().join(&format!("__admin/{path}")).unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn grant_info(fake: &FakeAtlassian) -> Value {
    let url = fake
        .base_url()
        .join(&format!("__admin/grants?client_id={JIRA_CLIENT_ID}"))
        .unwrap();
    http().get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn consents_add_their_sites_to_one_grant_shared_by_every_family() {
    let (fake, a, b) = two_sites().await;
    let first = grant_for(&fake, JIRA, &[&a]).await;
    assert_eq!(listed_sites(&fake, &first.access).await, [a.as_str()]);
    let (status, body) = get_json(&fake, &myself(&b), &first.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "B is not granted yet");
    assert_eq!(body, unauthorized());

    let second = grant_for(&fake, JIRA, &[&b]).await;
    // Cumulative: the first family now reaches B too, the second reaches A.
    for token in [&first.access, &second.access] {
        assert_eq!(listed_sites(&fake, token).await, [a.clone(), b.clone()]);
        for site in [&a, &b] {
            assert_eq!(
                get(&fake, &myself(site), token).await.status(),
                StatusCode::OK
            );
        }
    }
    // A new consent is a new family; the first one lives on (and still refreshes).
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 2);
    let (status, _) = refresh(&fake, first.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 2);
    assert_eq!(fake.token_families_killed(), 0);
    assert_eq!(fake.grant_sites(JIRA_CLIENT_ID), [a.clone(), b.clone()]);
    let info = grant_info(&fake).await;
    assert_eq!(info["sites"], json!([a, b]));
    assert_eq!(info["live_token_families"], 2);
}

#[tokio::test]
async fn the_consent_form_grants_exactly_the_checked_sites() {
    let (fake, a, b) = two_sites().await;
    let authorize = fake.authorize_url(JIRA_CLIENT_ID, DEFAULT_REDIRECT_URI, JIRA, "s-2");
    let html = http()
        .get(authorize.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in [&a, &b] {
        assert!(html.contains(&format!(
            r#"<input type="checkbox" name="site" value="{id}" checked>"#
        )));
    }
    // The page's hidden fields are the authorize parameters.
    let hidden: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let post = |extra: Vec<(&'static str, String)>| {
        let mut form = hidden.clone();
        form.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let url = fake.base_url().join("authorize/decision").unwrap();
        async move { http().post(url).form(&form).send().await.unwrap() }
    };

    // Nothing checked, or a site that does not exist: an error page, no redirect.
    for extra in [
        vec![("decision", "accept".to_owned())],
        vec![
            ("site", "no-such-site".to_owned()),
            ("decision", "accept".to_owned()),
        ],
    ] {
        let response = post(extra).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.text().await.unwrap().contains("role=\"alert\""));
    }
    assert!(fake.grant_sites(JIRA_CLIENT_ID).is_empty());

    // Only B checked: the grant holds B only.
    let response = post(vec![("site", b.clone()), ("decision", "accept".to_owned())]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let (_, body) = exchange(&fake, &query_param(&location, "code").unwrap()).await;
    let tokens = Tokens::from_json(&body);
    assert_eq!(listed_sites(&fake, &tokens.access).await, [b.as_str()]);
    assert_eq!(
        get(&fake, &myself(&a), &tokens.access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Deny needs no site.
    let response = post(vec![("decision", "deny".to_owned())]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    // The Rust API refuses the same mistakes.
    assert!(fake.consent_sites(&authorize, &[]).await.is_err());
    assert!(fake.consent_sites(&authorize, &["nope"]).await.is_err());
}

#[tokio::test]
async fn a_site_removed_from_the_grant_answers_401_while_the_grant_lives() {
    let (fake, a, b) = two_sites().await;
    let tokens = grant_for(&fake, JIRA, &[&a, &b]).await;
    let removed = admin(
        &fake,
        "grants/remove-site",
        json!({ "client_id": JIRA_CLIENT_ID, "cloud_id": a }),
    )
    .await;
    assert_eq!(removed, json!({ "removed": true }));
    let (status, body) = get_json(&fake, &myself(&a), &tokens.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, unauthorized());
    assert_eq!(
        get(&fake, &myself(&b), &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(listed_sites(&fake, &tokens.access).await, [b.as_str()]);
    // The grant lives: refresh works, and the new token cannot reach A either.
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    let next = Tokens::from_json(&body);
    assert_eq!(
        get(&fake, &myself(&a), &next.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 1);
    assert!(
        !fake.remove_site_from_grant(JIRA_CLIENT_ID, &a),
        "already gone"
    );
    assert!(fake.remove_site_from_grant(JIRA_CLIENT_ID, &b));
    assert_eq!(
        listed_sites(&fake, &next.access).await,
        Vec::<String>::new()
    );
}

/// Status and body of a GET, plus the failure-category header.
async fn call(
    fake: &FakeAtlassian,
    path: &str,
    token: &str,
) -> (StatusCode, Value, Option<String>) {
    let response = get(fake, path, token).await;
    let status = response.status();
    let category = response
        .headers()
        .get("x-failure-category")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        category,
    )
}

async fn assert_scope_mismatch(fake: &FakeAtlassian, path: &str, token: &str) {
    let (status, body, category) = call(fake, path, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    assert_eq!(body, scope_mismatch(), "{path}");
    assert_eq!(category.as_deref(), Some("FAILURE_CLIENT_SCOPE_CHECK"));
}

#[tokio::test]
async fn jira_endpoints_need_their_documented_scopes() {
    let (fake, a, _) = two_sites().await;
    let search = format!("ex/jira/{a}/rest/api/3/search/jql?jql=project%3DALPHA");
    let work = grant_for(&fake, &["read:jira-work"], &[&a]).await.access;
    let user = grant_for(&fake, &["read:jira-user"], &[&a]).await.access;
    assert_eq!(get(&fake, &search, &work).await.status(), StatusCode::OK);
    assert_scope_mismatch(&fake, &myself(&a), &work).await;
    assert_scope_mismatch(&fake, &search, &user).await;
    assert_eq!(
        get(&fake, &myself(&a), &user).await.status(),
        StatusCode::OK
    );
    // The documented granular alternative works, an incomplete one does not.
    let granular = [
        "read:issue-details:jira",
        "read:audit-log:jira",
        "read:avatar:jira",
        "read:field-configuration:jira",
        "read:issue-meta:jira",
    ];
    let full = grant_for(&fake, &granular, &[&a]).await.access;
    assert_eq!(get(&fake, &search, &full).await.status(), StatusCode::OK);
    let partial = grant_for(&fake, &granular[1..], &[&a]).await.access;
    assert_scope_mismatch(&fake, &search, &partial).await;
}

#[tokio::test]
async fn confluence_endpoints_need_their_documented_scopes() {
    let fake = fake_with(FakeConfig::default()).await;
    let cloud = fake.cloud_ids().remove(0);
    let data = fake.confluence(&cloud).unwrap();
    let (page, att) = data
        .pages()
        .into_iter()
        .filter(|p| !p.forbidden)
        .find_map(|p| {
            let att = p
                .attachment_ids
                .iter()
                .find(|id| data.attachment(id).is_some_and(|a| !a.forbidden))?
                .clone();
            Some((p.id, att))
        })
        .expect("a readable page with a readable attachment");
    let search = wiki_path(&fake, "/rest/api/content/search?cql=type%3Dpage");
    let content = wiki_path(&fake, &format!("/rest/api/content/{page}"));
    let children = wiki_path(&fake, &format!("/rest/api/content/{page}/child/attachment"));
    let download = wiki_path(
        &fake,
        &format!("/rest/api/content/{page}/child/attachment/{att}/download"),
    );
    let page_v2 = wiki_path(&fake, &format!("/api/v2/pages/{page}"));

    // `.all` + search: what the product asked for before issue 13. Search only.
    let all = grant_for(
        &fake,
        &["read:confluence-content.all", "search:confluence"],
        &[&cloud],
    )
    .await
    .access;
    assert_eq!(get(&fake, &search, &all).await.status(), StatusCode::OK);
    for path in [&content, &children, &download, &page_v2] {
        assert_scope_mismatch(&fake, path, &all).await;
    }
    // The documented classic scopes.
    let classic = grant_for(
        &fake,
        &[
            "search:confluence",
            "read:confluence-content.summary",
            "readonly:content.attachment:confluence",
        ],
        &[&cloud],
    )
    .await
    .access;
    assert_eq!(
        get(&fake, &content, &classic).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&fake, &children, &classic).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&fake, &download, &classic).await.status(),
        StatusCode::FOUND
    );
    assert_scope_mismatch(&fake, &page_v2, &classic).await;
    // Granular alternatives, and v2's granular-only scopes.
    let granular = grant_for(
        &fake,
        &[
            "read:content-details:confluence",
            "read:attachment:confluence",
            "read:page:confluence",
        ],
        &[&cloud],
    )
    .await
    .access;
    for path in [&search, &content, &children, &page_v2] {
        assert_eq!(
            get(&fake, path, &granular).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        get(&fake, &download, &granular).await.status(),
        StatusCode::FOUND
    );
    // ALL_SCOPES (used by the data tests) covers every endpoint.
    let every = grant_for(&fake, ALL_SCOPES, &[&cloud]).await.access;
    for path in [&search, &content, &children, &page_v2] {
        assert_eq!(
            get(&fake, path, &every).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn app_scopes_removed_then_restored_without_a_new_consent() {
    let (fake, a, _) = two_sites().await;
    let tokens = grant_for(&fake, JIRA, &[&a]).await;
    let search = format!("ex/jira/{a}/rest/api/3/search/jql?jql=project%3DALPHA");
    assert_eq!(
        get(&fake, &search, &tokens.access).await.status(),
        StatusCode::OK
    );

    fake.set_app_scopes(JIRA_CLIENT_ID, Some(vec!["read:jira-user".into()]));
    assert_scope_mismatch(&fake, &search, &tokens.access).await;
    // Not a revocation: the site stays listed (with the scopes left) and refresh works.
    let (_, body) = get_json(&fake, RESOURCES, &tokens.access).await;
    assert_eq!(body[0]["id"], json!(a));
    assert_eq!(body[0]["scopes"], json!(["read:jira-user"]));
    let (status, body) = refresh(&fake, tokens.refresh()).await;
    assert_eq!(status, StatusCode::OK);
    let next = Tokens::from_json(&body);
    assert_scope_mismatch(&fake, &search, &next.access).await;

    // Fixed in the developer console (through the admin API): the same family works again.
    let ok = admin(
        &fake,
        "apps/scopes",
        json!({ "client_id": JIRA_CLIENT_ID, "scopes": null }),
    )
    .await;
    assert_eq!(ok, json!({ "ok": true }));
    assert_eq!(
        get(&fake, &search, &next.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 1);
    // And restricting through the admin API works like the Rust call.
    admin(
        &fake,
        "apps/scopes",
        json!({ "client_id": JIRA_CLIENT_ID, "scopes": ["read:jira-user"] }),
    )
    .await;
    assert_scope_mismatch(&fake, &search, &next.access).await;
}

#[tokio::test]
async fn live_token_families_follow_rotation_reuse_and_revocation() {
    let (fake, a, b) = two_sites().await;
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 0);
    let first = grant_for(&fake, JIRA, &[&a, &b]).await;
    let (_, body) = refresh(&fake, first.refresh()).await;
    let rotated = Tokens::from_json(&body);
    assert_eq!(
        fake.live_token_families(JIRA_CLIENT_ID),
        1,
        "rotation is one family"
    );
    // The replaced access token works for 10 minutes, then dies; the new one lives on.
    fake.advance_clock(9 * MINUTE);
    assert_eq!(
        get(&fake, &myself(&a), &first.access).await.status(),
        StatusCode::OK
    );
    fake.advance_clock(2 * MINUTE);
    assert_eq!(
        get(&fake, &myself(&a), &first.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&fake, &myself(&a), &rotated.access).await.status(),
        StatusCode::OK
    );
    // Reuse after the leeway kills the family.
    let (status, _) = refresh(&fake, first.refresh()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 0);
    assert_eq!(fake.token_families_killed(), 1);
    // A new consent starts a live family in the same grant; revocation ends it all.
    grant_for(&fake, JIRA, &[&a]).await;
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 1);
    assert_eq!(fake.grant_sites(JIRA_CLIENT_ID), [a.clone(), b.clone()]);
    fake.revoke_grants(JIRA_CLIENT_ID);
    assert_eq!(fake.live_token_families(JIRA_CLIENT_ID), 0);
    assert!(fake.grant_sites(JIRA_CLIENT_ID).is_empty());
    let info = grant_info(&fake).await;
    assert_eq!(info["live_token_families"], 0);
    assert_eq!(info["token_families_killed"], 1);
    assert_eq!(info["refresh_grants_served"], 1);
}

#[tokio::test]
async fn minted_grants_cover_all_sites_or_the_chosen_ones() {
    let (fake, a, b) = two_sites().await;
    let all = fake.mint_grant(JIRA_CLIENT_ID, JIRA).unwrap();
    assert_eq!(
        listed_sites(&fake, &all.access_token).await,
        [a.clone(), b.clone()]
    );
    fake.revoke_grants(JIRA_CLIENT_ID);
    let only_b = fake
        .mint_grant_for_sites(JIRA_CLIENT_ID, JIRA, &[&b])
        .unwrap();
    assert_eq!(
        listed_sites(&fake, &only_b.access_token).await,
        [b.as_str()]
    );
    assert!(
        fake.mint_grant_for_sites(JIRA_CLIENT_ID, JIRA, &[])
            .is_err()
    );
    assert!(
        fake.mint_grant_for_sites(JIRA_CLIENT_ID, JIRA, &["x"])
            .is_err()
    );
}
