//! The one Atlassian HTTP client against the fake site: retries, Retry-After, bounded waits,
//! non-retried client errors, redirects that do not forward the bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::fake::{FakeAtlassian, FakeConfig, Fault, Origin};
use reqwest::Method;
use shared::atlassian::http::{HttpError, Idempotency, RetryPolicy};
use shared::atlassian::oauth;
use shared::ids::CloudId;
use shared::secret::ExposeSecret;

use crate::support::{fast_policy, http, jira_tokens, urls};

const RESOURCES: &str = "/oauth/token/accessible-resources";

async fn site() -> FakeAtlassian {
    crate::support::LogCapture::global();
    FakeAtlassian::start(FakeConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_that_delay() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    site.inject(Fault::status(RESOURCES, 429).retry_after(1).times(2));

    let started = Instant::now();
    let sites = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token).await;

    assert!(sites.is_ok_and(|s| !s.is_empty()));
    assert_eq!(site.hits(RESOURCES), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited only {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_5xx_is_retried_with_growing_backoff() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    site.inject(Fault::status(RESOURCES, 503).times(3));

    let started = Instant::now();
    let sites = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token).await;

    assert!(sites.is_ok());
    assert_eq!(site.hits(RESOURCES), 4);
    // Backoff steps of at least 25, 50 and 100 ms (half of 50, 100, 200).
    assert!(
        started.elapsed() >= Duration::from_millis(175),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    site.inject(Fault::drop(RESOURCES).times(1));

    let sites = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token).await;

    assert!(sites.is_ok(), "{sites:?}");
    assert_eq!(site.hits(RESOURCES), 2);
}

#[tokio::test]
async fn a_400_is_not_retried_and_keeps_atlassians_message() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    let cloud = CloudId::parse(site.cloud_ids()[0].clone()).unwrap_or_else(|e| panic!("{e}"));
    let mut url = urls(&site).jira(&cloud, "search/jql");
    url.query_pairs_mut().append_pair("jql", "ORDER BY key");
    let req = http
        .request(Method::GET, url)
        .bearer_auth(grant.tokens.access_token.expose_secret())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));

    let err = http
        .send("jira.search", cloud.as_str(), Idempotency::Safe, req)
        .await
        .err();

    assert_eq!(site.hits("/ex/jira/"), 1);
    assert_eq!(
        err.as_ref().and_then(HttpError::status).map(|s| s.as_u16()),
        Some(400)
    );
    let message = err.and_then(|e| e.atlassian_message()).unwrap_or_default();
    assert!(message.contains("Unbounded"), "{message}");
}

#[tokio::test]
async fn total_wait_is_bounded_when_the_site_keeps_failing() {
    let site = site().await;
    let http = http(RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_total_wait: Duration::from_secs(1),
    });
    let grant = jira_tokens(&site, &http).await;
    site.inject(Fault::status(RESOURCES, 502));

    let started = Instant::now();
    let err = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token)
        .await
        .err();

    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "kept retrying for {elapsed:?}"
    );
    assert!(
        site.hits(RESOURCES) >= 3,
        "only {} attempts",
        site.hits(RESOURCES)
    );
    assert!(
        matches!(
            err,
            Some(oauth::OAuthError::Http(HttpError::Exhausted { .. }))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_gives_up_at_once_and_reports_it() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    site.inject(Fault::status(RESOURCES, 429).retry_after(120));

    let started = Instant::now();
    let err = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token)
        .await
        .err();

    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(site.hits(RESOURCES), 1);
    match err {
        Some(oauth::OAuthError::Http(HttpError::Exhausted { retry_after, .. })) => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_exchange_is_sent_once_even_on_a_5xx() {
    let site = site().await;
    let http = http(fast_policy());
    site.inject(Fault::status("/oauth/token", 502).times(1));
    let app = crate::support::jira_app();
    let err = oauth::exchange_code(
        &http,
        &urls(&site),
        &app,
        &shared::secret::secret("fake_code_whatever"),
        &crate::support::default_redirect(),
    )
    .await
    .err();
    assert_eq!(site.hits("/oauth/token"), 1);
    assert!(err.is_some());
}

#[tokio::test]
async fn a_burst_429_lowers_the_concurrency_of_that_endpoint_only() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    // The fake's injected 429s say `RateLimit-Reason: jira-burst-based`.
    site.inject(Fault::status(RESOURCES, 429).retry_after(0).times(3));
    let resources = "oauth.accessible_resources";
    let before = http.endpoint_limit(oauth::AUTH_SITE, resources);
    let other = http.endpoint_limit(oauth::AUTH_SITE, "oauth.token.refresh");

    let ok = oauth::accessible_resources(&http, &urls(&site), &grant.tokens.access_token).await;

    assert!(ok.is_ok());
    assert_eq!(http.endpoint_limit(oauth::AUTH_SITE, resources), before - 3);
    assert_eq!(
        http.endpoint_limit(oauth::AUTH_SITE, "oauth.token.refresh"),
        other,
        "another endpoint of the site keeps its concurrency"
    );
    assert_eq!(
        http.site_held_until(oauth::AUTH_SITE),
        None,
        "a burst is not a site wait"
    );
}

#[tokio::test]
async fn attachment_redirects_are_followed_without_the_bearer_token() {
    let site = site().await;
    let http = http(fast_policy());
    let grant = jira_tokens(&site, &http).await;
    let cloud_id = site.cloud_ids()[0].clone();
    let jira = site
        .jira(&cloud_id)
        .unwrap_or_else(|| panic!("no jira data"));
    let attachment = jira
        .attachments()
        .into_iter()
        .filter(|a| !a.forbidden && a.size > 0)
        .max_by_key(|a| a.size)
        .unwrap_or_else(|| panic!("no attachment"));
    let cloud = CloudId::parse(cloud_id).unwrap_or_else(|e| panic!("{e}"));
    let url = urls(&site).jira(&cloud, &format!("attachment/content/{}", attachment.id));
    let req = http
        .request(Method::GET, url)
        .bearer_auth(grant.tokens.access_token.expose_secret())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));

    let resp = http
        .send("jira.attachment", cloud.as_str(), Idempotency::Safe, req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut stream = std::pin::pin!(resp.bytes_stream());
    let mut total = 0u64;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.unwrap_or_else(|e| panic!("{e}"));
        total += chunk.len() as u64;
        sha2::Digest::update(&mut hasher, &chunk);
    }

    assert_eq!(total, attachment.size);
    assert_eq!(
        hex::encode(sha2::Digest::finalize(hasher)),
        attachment.sha256_hex()
    );
    let media: Vec<_> = site
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Media)
        .collect();
    assert!(
        !media.is_empty(),
        "the download did not go through the media host"
    );
    assert!(
        media.iter().all(|r| !r.had_authorization),
        "the bearer token reached the media host"
    );
}

/// A download the site redirects to the media host gives the site's slot back once the
/// redirect is followed: with one slot per site, calls to the site go on while the media body
/// is still unread (holding it would stall every search behind the attachment streams).
#[tokio::test]
async fn a_redirected_download_frees_the_sites_slot_while_its_body_streams() {
    let site = site().await;
    let one = OneSlot::new(&site, 3).await;
    // Three downloads whose bodies are not read yet: each would hold the only slot.
    let mut unread = Vec::new();
    for id in &one.attachments {
        let next = one.http.send(
            "jira.attachment",
            one.cloud.as_str(),
            Idempotency::Safe,
            one.download(&site, id),
        );
        // A generous guard that only a regression reaches: the call waits for a slot forever.
        let resp = tokio::time::timeout(Duration::from_secs(120), next)
            .await
            .unwrap_or_else(|_| panic!("the site's slot was still held by an unread media body"))
            .unwrap_or_else(|e| panic!("{e}"));
        unread.push(resp);
    }
    assert!(
        site.requests()
            .iter()
            .filter(|r| r.origin == Origin::Media)
            .count()
            >= 3,
        "the downloads went through the media host"
    );
    drop(unread);
}

/// The site's slot goes at the redirect, not when the media host answers: with one slot per
/// site, a download whose media host has not answered yet (held) does not stop the next call
/// to the site. Holding the slot across the hop made every search and bulk fetch wait behind
/// the media host's answers.
#[tokio::test]
async fn a_download_gives_the_sites_slot_back_before_the_media_host_answers() {
    let site = site().await;
    let one = OneSlot::new(&site, 2).await;
    let (http, cloud, ids) = (&one.http, &one.cloud, &one.attachments);
    let download = |id: &str| one.download(&site, id);
    // The media host's first answer waits until released (tests/src/fake/hold.rs).
    let media = site.hold("/file/");
    let first = {
        let (http, req, cloud) = (http.clone(), download(&ids[0]), cloud.as_str().to_owned());
        tokio::spawn(async move {
            http.send("jira.attachment", &cloud, Idempotency::Safe, req)
                .await
                .map(|resp| resp.status())
        })
    };
    media.reached().await;
    // A guard that only a regression reaches: held across the hop, the slot would come back
    // when the client's 60 s read timeout gave up on the held answer, so the guard is well
    // below that (and far above the milliseconds the call takes).
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        http.send(
            "jira.attachment",
            cloud.as_str(),
            Idempotency::Safe,
            download(&ids[1]),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("the site's slot was held while the media host had not answered"))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(second.status().is_success());
    media.release();
    let first = first
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        first.is_success(),
        "the held download finished once released"
    );
}

/// A client with one request slot per site, a Jira access token, and `n` downloadable
/// attachments of the site: for the tests of when a download gives the site's slot back.
struct OneSlot {
    http: Arc<shared::atlassian::http::AtlassianHttp>,
    token: String,
    cloud: CloudId,
    attachments: Vec<String>,
}

impl OneSlot {
    async fn new(site: &FakeAtlassian, n: usize) -> OneSlot {
        let http = shared::atlassian::http::AtlassianHttp::new(
            fast_policy(),
            1,
            shared::atlassian::outbound::Outbound::loopback(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let grant = jira_tokens(site, &http).await;
        let cloud_id = site.cloud_ids()[0].clone();
        let jira = site
            .jira(&cloud_id)
            .unwrap_or_else(|| panic!("no jira data"));
        let attachments: Vec<String> = jira
            .attachments()
            .into_iter()
            .filter(|a| !a.forbidden && a.size > 0)
            .take(n)
            .map(|a| a.id)
            .collect();
        assert_eq!(attachments.len(), n, "the seed has attachments");
        OneSlot {
            http: Arc::new(http),
            token: grant.tokens.access_token.expose_secret().to_owned(),
            cloud: CloudId::parse(cloud_id).unwrap_or_else(|e| panic!("{e}")),
            attachments,
        }
    }

    /// A download of attachment `id` from the site, with the token.
    fn download(&self, site: &FakeAtlassian, id: &str) -> reqwest::Request {
        let url = urls(site).jira(&self.cloud, &format!("attachment/content/{id}"));
        self.http
            .request(Method::GET, url)
            .bearer_auth(&self.token)
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
