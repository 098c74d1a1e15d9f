//! Issue 3: connect a site. Authorization URL → consent at the fake site → callback →
//! encrypted connections in the emulator's table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use connectors_api::Api;
use integration_tests::emulator::TestAws;
use integration_tests::fake::{self, FakeAtlassian, FakeConfig, SeedSpec};
use lambda_http::http::{Method, Request, StatusCode, header};
use lambda_http::{Body, Response};
use rand::{Rng, SeedableRng};
use shared::config::Config;
use shared::connect::ConnectService;
use shared::ids::{ConnectionId, Product, TenantId};
use shared::secret::{ExposeSecret, secret};
use shared::store::connections::CONNECTION_ATTRIBUTES;
use shared::store::grants::GRANT_ATTRIBUTES;
use shared::store::{PendingAuthorization, Store};
use shared::vault::{Vault, VaultError};
use url::Url;

use crate::support::LogCapture;

const RETURN_URL: &str = "https://platform.example.com/connect/done";

/// The emulator, a fake site, and the two functions wired to them as in production.
pub(crate) struct World {
    pub(crate) aws: TestAws,
    pub(crate) site: FakeAtlassian,
    pub(crate) api: Api,
    pub(crate) callback: ConnectService,
    pub(crate) config: Config,
}

impl World {
    pub(crate) async fn new(sites: usize) -> World {
        World::with_fake(FakeConfig::default().with_sites(sites, SeedSpec::small())).await
    }

    pub(crate) async fn with_fake(fake_config: FakeConfig) -> World {
        World::with_redirect(fake_config, fake::DEFAULT_REDIRECT_URI).await
    }

    /// As [`World::with_fake`], with `redirect_url` as the functions' callback URL (the fake's
    /// apps must have it registered: [`FakeConfig::with_redirect_uri`]).
    pub(crate) async fn with_redirect(fake_config: FakeConfig, redirect_url: &str) -> World {
        LogCapture::global();
        crate::support::remember_secret(fake::JIRA_CLIENT_SECRET);
        crate::support::remember_secret(fake::CONFLUENCE_CLIENT_SECRET);
        let site = FakeAtlassian::start(fake_config)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let aws = TestAws::new().await;
        let jira_secret = aws.put_secret("jira", fake::JIRA_CLIENT_SECRET).await;
        let confluence_secret = aws
            .put_secret("confluence", fake::CONFLUENCE_CLIENT_SECRET)
            .await;
        let mut vars = aws.env_vars();
        vars.extend([
            ("ATLASSIAN_AUTH_URL".to_owned(), site.base_url().to_string()),
            ("ATLASSIAN_API_URL".to_owned(), site.base_url().to_string()),
            ("JIRA_CLIENT_ID".to_owned(), fake::JIRA_CLIENT_ID.to_owned()),
            ("JIRA_CLIENT_SECRET_NAME".to_owned(), jira_secret),
            (
                "CONFLUENCE_CLIENT_ID".to_owned(),
                fake::CONFLUENCE_CLIENT_ID.to_owned(),
            ),
            (
                "CONFLUENCE_CLIENT_SECRET_NAME".to_owned(),
                confluence_secret,
            ),
            ("OAUTH_REDIRECT_URL".to_owned(), redirect_url.to_owned()),
            (
                "ALLOWED_RETURN_URLS".to_owned(),
                "https://platform.example.com/connect".to_owned(),
            ),
        ]);
        let config = Config::from_vars(vars).unwrap_or_else(|e| panic!("{e}"));
        let api = Api {
            connect: shared::connect::Authorizer::from_config(config.clone(), &aws.clients),
            events: shared::events::EventBus::new(
                aws.clients.eventbridge.clone(),
                aws.names.event_bus.clone(),
            ),
            eraser: shared::erase::Eraser {
                store: Store::new(aws.clients.dynamodb.clone(), aws.names.table.clone()),
                blobs: shared::blob::BlobStore::new(
                    aws.clients.s3.clone(),
                    aws.names.bucket.clone(),
                    aws.kms_key_id.clone(),
                ),
                // Delays capped at 0: the tests move the site's clock instead of waiting, and
                // the export function sends a message on until it is due (erase/later.rs).
                queue: shared::export::resume::Resumer::new(
                    aws.clients.sqs.clone(),
                    Some(aws.resume_queue_url.clone()),
                )
                .with_delay_cap(0),
                clock: shared::clock::Clock::from_fn(site.clock_fn()),
            },
        };
        let callback = ConnectService::from_config(config.clone(), &aws.clients)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        World {
            aws,
            site,
            api,
            callback,
            config,
        }
    }

    pub(crate) fn store(&self) -> Store {
        Store::new(
            self.aws.clients.dynamodb.clone(),
            self.aws.names.table.clone(),
        )
    }

    pub(crate) fn vault(&self) -> Vault {
        Vault::new(self.aws.clients.kms.clone(), self.aws.kms_key_id.clone())
    }

    pub(crate) async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://api.example.com{path}"))
            .body(
                body.map(|b| Body::Text(b.to_owned()))
                    .unwrap_or(Body::Empty),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = connectors_api::handle(&self.api, req).await;
        let status = resp.status();
        let json = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        };
        (status, json)
    }

    /// `POST /authorizations`, returning the consent URL.
    pub(crate) async fn authorize(&self, product: &str, return_url: Option<&str>) -> Url {
        self.authorize_for("acme", product, return_url).await
    }

    pub(crate) async fn authorize_for(
        &self,
        tenant: &str,
        product: &str,
        return_url: Option<&str>,
    ) -> Url {
        self.authorize_site(tenant, product, return_url, None).await
    }

    /// `POST /authorizations` naming the one site to connect (`site`: URL, host or cloud id).
    pub(crate) async fn authorize_site(
        &self,
        tenant: &str,
        product: &str,
        return_url: Option<&str>,
        site: Option<&str>,
    ) -> Url {
        let mut body = serde_json::json!({ "tenant": tenant, "product": product });
        if let Some(r) = return_url {
            body["return_url"] = r.into();
        }
        if let Some(site) = site {
            body["site"] = site.into();
        }
        let (status, json) = self
            .api(Method::POST, "/authorizations", Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        let url = Url::parse(json["authorize_url"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        crate::support::remember_secret(&param(&url, "state"));
        url
    }

    /// The browser arriving at the callback with `url`'s query.
    pub(crate) async fn callback(&self, url: &Url) -> Response<Body> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .body(Body::Empty)
            .unwrap_or_else(|e| panic!("{e}"));
        oauth_callback::handle(&self.callback, req).await
    }

    /// The browser posting the chooser page's form with `sites` checked.
    pub(crate) async fn choose(&self, chooser: &Response<Body>, sites: &[&str]) -> Response<Body> {
        let page = html(chooser);
        let selection =
            form_value(&page, "selection").unwrap_or_else(|| panic!("not a chooser page: {page}"));
        crate::support::remember_secret(&selection);
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("selection", &selection);
        for s in sites {
            form.append_pair("site", s);
        }
        let req = Request::builder()
            .method(Method::POST)
            .uri(fake::DEFAULT_REDIRECT_URI)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::Text(form.finish()))
            .unwrap_or_else(|e| panic!("{e}"));
        oauth_callback::handle(&self.callback, req).await
    }

    /// Arrive at the callback with `back`, and on the chooser pick every offered site.
    /// Returns the connection ids the browser was sent back with.
    pub(crate) async fn choose_all(&self, back: &Url) -> Vec<String> {
        let chooser = self.callback(back).await;
        assert_eq!(chooser.status(), StatusCode::OK, "{}", html(&chooser));
        let offered = offered_sites(&html(&chooser));
        let refs: Vec<&str> = offered.iter().map(String::as_str).collect();
        let resp = self.choose(&chooser, &refs).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{}", html(&resp));
        location(&resp)
            .query_pairs()
            .filter(|(k, _)| k == "connection")
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    pub(crate) async fn consent(&self, authorize_url: &Url, accept: bool) -> Url {
        let back = self
            .site
            .consent(authorize_url, accept)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let code = param(&back, "code");
        if !code.is_empty() {
            crate::support::remember_secret(&code);
        }
        back
    }
}

impl World {
    /// The token pair of a connection's grant, opened with the grant's context.
    pub(crate) async fn tokens_of(
        &self,
        conn: &shared::store::Connection,
    ) -> shared::vault::TokenPair {
        let grant = crate::refresh::grant_of(self, conn).await;
        let envelope = grant
            .envelope
            .clone()
            .unwrap_or_else(|| panic!("no envelope"));
        self.vault()
            .open(&grant.envelope_context(), &envelope)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

pub(crate) fn param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The value of the named hidden input of a page's form.
fn form_value(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

/// The cloud ids a chooser page offers, in order.
pub(crate) fn offered_sites(page: &str) -> Vec<String> {
    let marker = "name=\"site\"";
    page.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &page[i..];
            let start = rest.find("value=\"")? + "value=\"".len();
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].to_owned())
        })
        .collect()
}

pub(crate) fn location(resp: &Response<Body>) -> Url {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Url::parse(loc).unwrap_or_else(|e| panic!("Location {loc:?}: {e}"))
}

pub(crate) fn html(resp: &Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        _ => String::new(),
    }
}

/// The table holds exactly one sealed token envelope, on a grant item, with only the
/// attributes PRIVACY.md P1 allows; connection items hold no token at all; and no token or
/// authorization code is in plain text anywhere. Returns the table's dump.
pub(crate) async fn assert_one_sealed_connection(w: &World) -> Vec<u8> {
    let items = w.aws.scan_table().await;
    let sealed: Vec<_> = items
        .iter()
        .filter(|i| i.contains_key("token_ciphertext"))
        .collect();
    assert_eq!(sealed.len(), 1, "exactly one token family is stored");
    let sk = |i: &HashMap<String, AttributeValue>| {
        i.get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        sk(sealed[0]).starts_with("GRANT#"),
        "tokens live on the grant"
    );
    for item in &items {
        let allowed: &[&str] = if sk(item).starts_with("GRANT#") {
            GRANT_ATTRIBUTES
        } else if sk(item).starts_with("CONN#") {
            CONNECTION_ATTRIBUTES
        } else {
            continue;
        };
        for name in item.keys() {
            assert!(
                allowed.contains(&name.as_str()),
                "unexpected attribute {name} on {}",
                sk(item)
            );
        }
    }
    let bytes = dump(&items);
    for prefix in [
        fake::ACCESS_TOKEN_PREFIX,
        fake::REFRESH_TOKEN_PREFIX,
        fake::CODE_PREFIX,
    ] {
        assert!(
            !contains(&bytes, prefix),
            "the table holds a plain token or code ({prefix}…)"
        );
    }
    bytes
}

pub(crate) fn dump(items: &[HashMap<String, AttributeValue>]) -> Vec<u8> {
    fn walk(v: &AttributeValue, out: &mut Vec<u8>) {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
            AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
            AttributeValue::M(m) => m.values().for_each(|v| walk(v, out)),
            AttributeValue::L(l) => l.iter().for_each(|v| walk(v, out)),
            AttributeValue::Ss(l) | AttributeValue::Ns(l) => {
                l.iter().for_each(|s| out.extend_from_slice(s.as_bytes()))
            }
            _ => {}
        }
        out.push(b'\n');
    }
    let mut out = Vec::new();
    for item in items {
        let mut keys: Vec<&String> = item.keys().collect();
        keys.sort();
        for (k, v) in keys.into_iter().filter_map(|k| item.get(k).map(|v| (k, v))) {
            out.extend_from_slice(k.as_bytes());
            walk(v, &mut out);
        }
    }
    out
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub(crate) fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_stores_an_encrypted_connection_and_redirects_back() {
    let w = World::new(1).await;
    let authorize = w.authorize("jira", Some(RETURN_URL)).await;
    assert_eq!(authorize.origin(), w.site.base_url().origin());
    assert!(param(&authorize, "scope").contains("offline_access"));

    let back = w.consent(&authorize, true).await;
    let resp = w.callback(&back).await;

    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.as_str().starts_with(RETURN_URL), "{to}");
    assert_eq!(param(&to, "status"), "connected");
    let id = ConnectionId::parse(param(&to, "connection")).unwrap_or_else(|e| panic!("{e}"));

    // The table holds ciphertext only, and only the attributes PRIVACY.md P1 allows.
    let bytes = assert_one_sealed_connection(&w).await;

    // The vault gives back the fake site's tokens, and they work there.
    let conn = w
        .store()
        .get_connection(&tenant(), &id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let conn = conn.unwrap_or_else(|| panic!("connection {id} not stored"));
    assert_eq!(conn.product, Product::Jira);
    assert_eq!(conn.cloud_id.as_str(), w.site.cloud_ids()[0]);
    let tokens = w.tokens_of(&conn).await;
    assert!(
        tokens
            .access_token
            .expose_secret()
            .starts_with(fake::ACCESS_TOKEN_PREFIX)
    );
    assert!(
        tokens
            .refresh_token
            .as_ref()
            .is_some_and(|r| r.expose_secret().starts_with(fake::REFRESH_TOKEN_PREFIX))
    );
    for token in [
        tokens.access_token.expose_secret(),
        tokens
            .refresh_token
            .as_ref()
            .map(|r| r.expose_secret())
            .unwrap_or("x"),
    ] {
        assert!(!contains(&bytes, token));
    }
    let sites = shared::atlassian::oauth::accessible_resources(
        &w.callback.http,
        &w.callback.urls,
        &tokens.access_token,
    )
    .await;
    assert!(sites.is_ok_and(|s| s.len() == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_return_url_the_user_sees_a_success_page() {
    let w = World::new(1).await;
    let back = w
        .consent(&w.authorize("confluence", None).await, true)
        .await;
    let resp = w.callback(&back).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = html(&resp);
    assert!(
        page.contains("Confluence connected") && page.contains("fake-site-1.atlassian.net"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_two_granted_sites_and_none_named_the_user_chooses_and_only_the_choice_is_connected() {
    let w = World::new(2).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, true)
        .await;
    let chooser = w.callback(&back).await;
    assert_eq!(chooser.status(), StatusCode::OK);
    let page = html(&chooser);
    let mut offered = offered_sites(&page);
    offered.sort();
    let mut granted = w.site.cloud_ids();
    granted.sort();
    assert_eq!(offered, granted, "the chooser lists every granted site");
    for url in ["fake-site-1.atlassian.net", "fake-site-2.atlassian.net"] {
        assert!(page.contains(url), "{page}");
    }
    assert!(
        w.store()
            .list_connections(&tenant())
            .await
            .is_ok_and(|c| c.is_empty()),
        "nothing is connected before the choice"
    );

    let picked = w.site.cloud_ids()[1].clone();
    let resp = w.choose(&chooser, &[picked.as_str()]).await;

    assert_eq!(resp.status(), StatusCode::FOUND, "{}", html(&resp));
    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].cloud_id.as_str(), picked);
    assert_eq!(param(&location(&resp), "connection"), conns[0].id.as_str());
    assert_one_sealed_connection(&w).await;

    // The choice works once: replaying the form is a clear 4xx and changes nothing.
    let before = dump(&w.aws.scan_table().await);
    let again = w.choose(&chooser, &[w.site.cloud_ids()[0].as_str()]).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(html(&again).contains("works once"), "{}", html(&again));
    assert_eq!(dump(&w.aws.scan_table().await), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn choosing_both_sites_connects_both_to_one_grant() {
    let w = World::new(2).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, true)
        .await;
    let ids = w.choose_all(&back).await;
    assert_eq!(ids.len(), 2);
    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 2);
    assert_eq!(
        conns[0].grant_id, conns[1].grant_id,
        "one grant for both sites"
    );
    assert_one_sealed_connection(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chooser_form_naming_a_site_that_was_not_offered_connects_nothing() {
    let w = World::new(2).await;
    let back = w.consent(&w.authorize("jira", None).await, true).await;
    let chooser = w.callback(&back).await;
    let resp = w.choose(&chooser, &["some-other-cloud-id"]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        w.store()
            .list_connections(&tenant())
            .await
            .is_ok_and(|c| c.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_named_by_the_platform_is_the_only_one_connected() {
    let w = World::new(2).await;
    let wanted = w.site.info().sites[1].clone();
    for (n, site) in [wanted.url.clone(), wanted.cloud_id.clone()]
        .iter()
        .enumerate()
    {
        let authorize = w
            .authorize_site("acme", "jira", Some(RETURN_URL), Some(site))
            .await;
        let resp = w.callback(&w.consent(&authorize, true).await).await;
        assert_eq!(
            resp.status(),
            StatusCode::FOUND,
            "case {n}: {}",
            html(&resp)
        );
        let conns = w
            .store()
            .list_connections(&tenant())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(conns.len(), 1, "case {n}");
        assert_eq!(conns[0].cloud_id.as_str(), wanted.cloud_id, "case {n}");
    }
    // Consenting again for the same site kept its connection id and left one grant.
    assert_one_sealed_connection(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_site_that_was_not_granted_ends_on_a_clear_page_and_keeps_no_tokens() {
    let w = World::new(1).await;
    let authorize = w
        .authorize_site(
            "acme",
            "jira",
            Some(RETURN_URL),
            Some("https://not-granted.atlassian.net"),
        )
        .await;
    let resp = w.callback(&w.consent(&authorize, true).await).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(html(&resp).contains("not granted"), "{}", html(&resp));
    assert!(
        w.aws
            .scan_table()
            .await
            .iter()
            .all(|i| !i.contains_key("token_ciphertext") && !i.contains_key("connection_id")),
        "no connection and no tokens were kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_who_granted_a_site_for_one_tenant_does_not_bring_it_into_another() {
    let w = World::new(2).await;
    let sites = w.site.info().sites;
    let (a, b) = (&sites[0], &sites[1]);
    // Tenant 1 connects site A.
    let first = w
        .authorize_site("tenant-one", "jira", Some(RETURN_URL), Some(&a.cloud_id))
        .await;
    let resp = w.callback(&w.consent(&first, true).await).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "{}", html(&resp));
    let t1 = TenantId::parse("tenant-one").unwrap_or_else(|e| panic!("{e}"));
    let t1_before = w
        .store()
        .list_connections(&t1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The same Atlassian user consents for tenant 2. accessible-resources now lists both
    // sites (it is cumulative); the user picks B on the chooser.
    let second = w
        .authorize_for("tenant-two", "jira", Some(RETURN_URL))
        .await;
    let chooser = w.callback(&w.consent(&second, true).await).await;
    assert!(offered_sites(&html(&chooser)).contains(&a.cloud_id));
    let resp = w.choose(&chooser, &[b.cloud_id.as_str()]).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "{}", html(&resp));

    let t2 = TenantId::parse("tenant-two").unwrap_or_else(|e| panic!("{e}"));
    let t2_conns = w
        .store()
        .list_connections(&t2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t2_conns.len(), 1);
    assert_eq!(t2_conns[0].cloud_id.as_str(), b.cloud_id);
    assert_eq!(
        w.store()
            .list_connections(&t1)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        t1_before,
        "tenant 1 is untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_shows_a_clear_page_and_stores_nothing() {
    let w = World::new(1).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, false)
        .await;
    assert_eq!(param(&back, "error"), "access_denied");

    let resp = w.callback(&back).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let page = html(&resp);
    assert!(
        page.contains("not authorized") && page.contains("status=denied"),
        "{page}"
    );
    assert!(
        w.aws.scan_table().await.is_empty(),
        "a denied consent left items behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_callback_is_refused_and_changes_nothing() {
    let w = World::new(1).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, true)
        .await;
    assert_eq!(w.callback(&back).await.status(), StatusCode::FOUND);
    let before = w.aws.scan_table().await;

    let again = w.callback(&back).await;

    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(html(&again).contains("already used"));
    assert_eq!(dump(&w.aws.scan_table().await), dump(&before));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_state_is_refused() {
    let w = World::new(1).await;
    let state = secret("an-expired-state-value-0123456789abcdefghij");
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    w.store()
        .put_state(
            &state,
            &PendingAuthorization {
                tenant: tenant(),
                product: Product::Jira,
                return_url: None,
                site: None,
                expires_at: past,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = Url::parse(&format!(
        "{}?code=fake_code_x&state={}",
        fake::DEFAULT_REDIRECT_URI,
        state.expose_secret()
    ))
    .unwrap_or_else(|e| panic!("{e}"));

    let resp = w.callback(&url).await;

    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(html(&resp).contains("expired"));
    assert_eq!(
        w.site.hits("/oauth/token"),
        0,
        "an expired state must not reach Atlassian"
    );
    assert!(
        w.aws.scan_table().await.is_empty(),
        "the expired state should be gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_envelope_copied_onto_another_grant_cannot_be_opened() {
    let w = World::new(1).await;
    for tenant in ["acme", "globex"] {
        let back = w
            .consent(&w.authorize_for(tenant, "jira", None).await, true)
            .await;
        assert_eq!(w.callback(&back).await.status(), StatusCode::OK);
    }
    let grant = |t: &str| {
        let w = &w;
        let t = TenantId::parse(t).unwrap_or_else(|e| panic!("{e}"));
        async move {
            let conn = w
                .store()
                .list_connections(&t)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no connection"));
            crate::refresh::grant_of(w, &conn).await
        }
    };
    let (a, b) = (grant("acme").await, grant("globex").await);
    let a_envelope = a.envelope.clone().unwrap_or_else(|| panic!("no envelope"));

    // Copy A's envelope attributes onto B's grant, as an attacker with table access might.
    w.aws
        .clients
        .dynamodb
        .update_item()
        .table_name(&w.aws.names.table)
        .key("pk", AttributeValue::S(format!("TENANT#{}", b.tenant)))
        .key("sk", AttributeValue::S(format!("GRANT#{}", b.id)))
        .update_expression("SET token_ciphertext = :c, token_key = :k")
        .expression_attribute_values(
            ":c",
            AttributeValue::B(a_envelope.ciphertext.clone().into()),
        )
        .expression_attribute_values(
            ":k",
            AttributeValue::B(a_envelope.encrypted_key.clone().into()),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let tampered = grant("globex").await;

    let opened = w
        .vault()
        .open(
            &tampered.envelope_context(),
            tampered.envelope.as_ref().unwrap_or(&a_envelope),
        )
        .await;

    assert!(matches!(opened, Err(VaultError::Mismatch)), "{opened:?}");
    assert!(
        w.vault()
            .open(&a.envelope_context(), &a_envelope)
            .await
            .is_ok(),
        "A's own envelope still opens"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_code_state_or_secret_reaches_the_logs() {
    let logs = LogCapture::global();
    let w = World::new(1).await;

    let authorize = w.authorize("jira", Some(RETURN_URL)).await;
    let back = w.consent(&authorize, true).await;
    let first = w.callback(&back).await.status();
    assert_eq!(first, StatusCode::FOUND, "{}", logs.text());
    assert_eq!(w.callback(&back).await.status(), StatusCode::BAD_REQUEST);
    let denied = w.consent(&w.authorize("jira", None).await, false).await;
    assert_eq!(w.callback(&denied).await.status(), StatusCode::OK);

    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tokens = w.tokens_of(&conns[0]).await;
    let refresh = tokens
        .refresh_token
        .clone()
        .unwrap_or_else(|| secret("none"));
    logs.assert_free_of(&[
        tokens.access_token.expose_secret(),
        refresh.expose_secret(),
        &param(&back, "code"),
        &param(&authorize, "state"),
        &param(&denied, "state"),
        fake::JIRA_CLIENT_SECRET,
        fake::CONFLUENCE_CLIENT_SECRET,
        fake::ACCESS_TOKEN_PREFIX,
        fake::REFRESH_TOKEN_PREFIX,
        fake::CODE_PREFIX,
    ]);
    assert!(
        logs.text().contains("\"outcome\":\"connected\""),
        "the callback's request log line is missing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn random_query_strings_and_headers_never_panic_or_5xx() {
    let w = World::new(1).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let keys = [
        "code",
        "state",
        "error",
        "error_description",
        "x",
        "",
        "code%00",
        "st%61te",
    ];
    let methods = [
        Method::GET,
        Method::GET,
        Method::GET,
        Method::POST,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
    ];
    for case in 0..2000 {
        let mut query = String::new();
        for _ in 0..rng.random_range(0..6) {
            let key = keys[rng.random_range(0..keys.len())];
            let len = if rng.random_bool(0.02) {
                rng.random_range(2000..10_000)
            } else {
                rng.random_range(0..40)
            };
            let value: String = (0..len)
                .map(|_| match rng.random_range(0..10) {
                    0 => format!("%{:02X}", rng.random::<u8>()),
                    1 => ["&", "=", "+", "%", "?", "#"][rng.random_range(0..6)].to_owned(),
                    _ => char::from(rng.random_range(b'0'..=b'z')).to_string(),
                })
                .collect();
            query.push_str(&format!("{key}={value}&"));
        }
        let mut req =
            Request::builder().method(methods[rng.random_range(0..methods.len())].clone());
        for _ in 0..rng.random_range(0..4) {
            let name = format!("x-fuzz-{}", rng.random::<u16>());
            let value: String = (0..rng.random_range(0..64))
                .map(|_| char::from(rng.random_range(b' '..=b'~')))
                .collect();
            req = req.header(name, value);
        }
        let uri = format!("https://cb.example.com/callback?{query}");
        let Ok(req) = req.uri(uri.as_str()).body(Body::Empty) else {
            continue;
        };
        let resp = oauth_callback::handle(&w.callback, req).await;
        assert!(
            !resp.status().is_server_error(),
            "case {case}: {} for {uri:.200}",
            resp.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_requests_are_validated_with_clear_messages() {
    let w = World::new(1).await;
    let cases = [
        (
            r#"{"tenant":"acme","product":"jira","return_url":"https://evil.example.com/x"}"#,
            "return_url",
        ),
        (r#"{"tenant":"acme","product":"bitbucket"}"#, "not allowed"),
        (r#"{"tenant":"../acme","product":"jira"}"#, "tenant"),
        (r#"{"product":"jira"}"#, "missing field `tenant`"),
        (
            r#"{"tenant":"acme","product":"jira","api_token":"hunter2"}"#,
            "unknown field `api_token`",
        ),
        ("not json", "not valid JSON"),
    ];
    for (body, expected) in cases {
        let (status, json) = w.api(Method::POST, "/authorizations", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = json["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body} -> {message}");
        assert!(!message.contains("hunter2"));
    }
    assert_eq!(
        w.api(Method::GET, "/authorizations", None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        w.api(Method::GET, "/nope", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        w.aws.scan_table().await.is_empty(),
        "refused requests stored something"
    );
    let _ = &w.config;
}
