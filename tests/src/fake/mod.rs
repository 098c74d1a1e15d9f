//! A fake Atlassian Cloud for tests and local runs: OAuth 2.0 (3LO) with rotating refresh tokens,
//! the API gateway with Jira and Confluence over deterministic seeded data, a separate media host
//! for attachment bytes, fault injection and an admin API. See `shared/ATLASSIAN.md` for the
//! behaviour it reproduces; each module documents where it had to choose.
//!
//! Main listener ([`FakeAtlassian::base_url`]):
//! - `GET /authorize` (consent page), `POST /authorize/decision`, `POST /oauth/token`,
//!   `GET /oauth/token/accessible-resources`;
//! - `/ex/jira/{cloudId}/rest/api/3/`: `search/jql` (GET, POST), `issue/bulkfetch`,
//!   `issue/{idOrKey}`, `issue/{idOrKey}/comment`, `issue/{idOrKey}/changelog`,
//!   `attachment/{id}`, `attachment/content/{id}` (303 to the media host, or the bytes with
//!   `?redirect=false`), `myself`;
//! - `/ex/confluence/{cloudId}/wiki/`: `rest/api/content/search`, `rest/api/search`,
//!   `rest/api/content/{id}`, `rest/api/content/{id}/child/attachment` (and `…/{attId}/download`),
//!   `api/v2/pages/{id}`, `api/v2/blogposts/{id}`, `api/v2/pages/{id}/attachments`,
//!   `api/v2/spaces`, `download/attachments/{pageId}/{filename}` (the servlet: always 401);
//! - `/__admin/`: `faults` (POST, DELETE), `hits?prefix=`, `requests`, `clock/advance`,
//!   `revoke`, `grants?client_id=`, `grants/remove-site`, `apps/scopes`, `info`.
//!
//! Media listener ([`FakeAtlassian::media_url`]): `GET /file/{link}`; refuses any request that
//! carries `Authorization` (400).
//!
//! Choices where Atlassian leaves room: times are UTC; JQL without `ORDER BY` sorts by key, CQL
//! by id; forbidden items stay visible in search results but not in reads (see the `jira` and
//! `confluence` modules); a rotated refresh token reused within the leeway yields a new pair
//! and leaves the other descendants valid; the rotated pair's access token dies when the leeway
//! ends (Atlassian's 2024 announcement); a wrong client secret is 401 `access_denied`. The
//! fake has one signed-in user, so each app has at most one grant: a cumulative set of sites
//! shared by every token family of the app (`grants.rs`); every API route checks its scopes in
//! one table (`scopes.rs`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use integration_tests::fake::{FakeAtlassian, FakeConfig, Fault};
//! let fake = FakeAtlassian::start(FakeConfig::default()).await?;
//! fake.inject(Fault::status("/ex/jira/", 429).retry_after(1).times(2));
//! // ... point the code under test at fake.base_url() ...
//! fake.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers return early with ready-made error responses (`Result<_, Response>`); their size is
// irrelevant next to the I/O they answer.
#![allow(clippy::result_large_err)]

mod adf;
mod admin;
mod attachment;
pub mod cli;
mod clock;
mod config;
mod confluence;
mod consent;
pub mod crafted;
mod error;
mod faults;
mod gateway;
mod grant_control;
mod grants;
mod hold;
mod jira;
mod media;
mod oauth;
mod params;
mod query_lang;
mod quota;
mod recorder;
mod respond;
mod rng;
mod scopes;
mod seed;
mod server;
mod site;
mod state;
mod throttle;
mod timefmt;
mod users;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

pub use admin::{
    AdminInfo, AppScopesRequest, ClockAdvance, GrantInfo, HitCount, RemoveSiteRequest,
    RevokeRequest, SiteSummary,
};
pub use attachment::{AttachmentInfo, CHUNK_SIZE, content_sha256_hex};
pub use config::{
    CONFLUENCE_CLIENT_ID, CONFLUENCE_CLIENT_SECRET, ClientApp, DEFAULT_REDIRECT_URI, FakeConfig,
    JIRA_CLIENT_ID, JIRA_CLIENT_SECRET, SiteSpec,
};
pub use confluence::{
    CommentInfo, ConfluenceData, ContentInfo, ContentKind, HEAVY_BODY_BYTES, HEAVY_RESPONSE_BYTES,
    PageInfo, SpaceInfo,
};
pub use error::FakeError;
pub use faults::{Fault, FaultKind};
pub use grants::{ACCESS_TOKEN_PREFIX, CODE_PREFIX, REFRESH_TOKEN_PREFIX};
pub use hold::Hold;
pub use jira::{IssueInfo, JiraData, ProjectInfo};
pub use media::MEDIA_LINK_PREFIX;
pub use recorder::{Origin, RecordedRequest};
pub use seed::{HOSTILE_FILENAMES, SeedSpec};
pub use users::UserInfo;

/// A token pair from [`FakeAtlassian::mint_grant`].
#[derive(Debug, Clone)]
pub struct MintedGrant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: String,
}

use clock::FakeClock;
use faults::FaultRules;
use grants::{Grants, Policy};
use site::{Site, SiteContext};
use state::{AppState, lock};
use users::Users;

/// A running fake Atlassian Cloud: two loopback listeners (auth + API, and the media host).
/// Dropping it stops the listeners; [`FakeAtlassian::shutdown`] also waits for them.
#[derive(Debug)]
pub struct FakeAtlassian {
    app: Arc<AppState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeAtlassian {
    /// Generates the seeded sites, binds both listeners and starts serving.
    pub async fn start(config: FakeConfig) -> io::Result<FakeAtlassian> {
        let main = TcpListener::bind((config.bind, config.port)).await?;
        let media = TcpListener::bind((config.bind, config.media_port)).await?;
        let base_url = listener_url(main.local_addr()?)?;
        let media_url = listener_url(media.local_addr()?)?;

        let start = config.start_time.unwrap_or_else(|| {
            let now = OffsetDateTime::now_utc();
            now.replace_second(0)
                .and_then(|t| t.replace_nanosecond(0))
                .unwrap_or(now)
        });
        let clock = FakeClock::new(start);
        let users = Arc::new(Users::generate(config.seed));
        let gateway = base_url.as_str().trim_end_matches('/').to_owned();
        let sites = config
            .sites
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let ctx = SiteContext {
                    cloud_id: spec.cloud_id.clone(),
                    name: spec.name.clone(),
                    url: spec.url.trim_end_matches('/').to_owned(),
                    gateway: gateway.clone(),
                    users: users.clone(),
                    clock: clock.clone(),
                };
                Site::generate(ctx, &spec.seed, rng::mix(config.seed ^ (i as u64 + 1)))
            })
            .collect();
        let app = Arc::new(AppState {
            clock,
            base_url,
            media_url,
            clients: RwLock::new(config.clients.clone()),
            grants: Mutex::new(Grants::new(Policy {
                access_token_ttl: config.access_token_ttl,
                rotation_leeway: config.rotation_leeway,
                code_ttl: config.code_ttl,
                refresh_inactivity: config.refresh_inactivity,
                refresh_absolute: config.refresh_absolute,
                revoke_companion_access_token: config.revoke_companion_access_token,
            })),
            sites,
            users,
            faults: Mutex::new(FaultRules::new(config.seed)),
            quotas: Mutex::new(quota::Quotas::default()),
            recorder: recorder::Recorder::default(),
            media: Mutex::new(media::MediaLinks::default()),
            media_link_ttl: config.media_link_ttl,
            holds: Mutex::new(Vec::new()),
        });

        let main_router = Router::new()
            .merge(oauth::router())
            .merge(gateway::router())
            .nest("/ex/jira/{cloud_id}/rest/api/3", jira::router())
            .nest("/ex/confluence/{cloud_id}/wiki", confluence::router())
            // `/__admin` is the fake's own control surface for tests, not an Atlassian API.
            .nest("/__admin", admin::router())
            // ASSUMPTION (undocumented): an unknown path answers the gateway's 404 shape.
            .fallback(|| async { respond::gateway(StatusCode::NOT_FOUND, "Not Found") })
            .with_state(app.clone());
        let media_router = media::router(app.clone());

        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                main,
                main_router,
                app.clone(),
                Origin::Main,
                stopped.clone(),
            )),
            tokio::spawn(server::serve(
                media,
                media_router,
                app.clone(),
                Origin::Media,
                stopped,
            )),
        ];
        Ok(FakeAtlassian { app, stop, tasks })
    }

    /// `http://127.0.0.1:PORT/`: auth (`/authorize`, `/oauth/token`) and API (`/oauth/token/
    /// accessible-resources`, `/ex/jira/…`, `/ex/confluence/…`) alike.
    pub fn base_url(&self) -> Url {
        self.app.base_url.clone()
    }

    /// The media host (another port, so another origin).
    pub fn media_url(&self) -> Url {
        self.app.media_url.clone()
    }

    /// Adds a fault rule (after the existing ones).
    pub fn inject(&self, fault: Fault) {
        lock(&self.app.faults).add(fault);
    }

    /// Hold the first request whose path starts with `prefix` (on either origin) until the
    /// returned handle is released (tests/src/fake/hold.rs).
    pub fn hold(&self, prefix: &str) -> Arc<Hold> {
        let hold = Hold::new(prefix);
        lock(&self.app.holds).push(hold.clone());
        hold
    }

    pub fn clear_faults(&self) {
        lock(&self.app.faults).clear();
        lock(&self.app.quotas).clear();
    }

    /// The tenant's hourly quota under `prefix` (e.g. `/ex/jira/{cloudId}/`) is spent after
    /// `after` more calls: then 429 `jira-quota-tenant-based` with `Retry-After:
    /// retry_after_secs` until the reset (tests/src/fake/quota.rs).
    pub fn exhaust_quota_after(&self, prefix: &str, after: u64, retry_after_secs: u64) {
        lock(&self.app.quotas).add(prefix, after, retry_after_secs);
    }

    /// Calls made to a site while its quota was spent, after a 429 had said when to come
    /// back: each one a call our code should never have made.
    pub fn early_calls(&self) -> u64 {
        lock(&self.app.quotas).early_calls
    }

    /// 429s answered because a quota was spent.
    pub fn quota_429s(&self) -> u64 {
        lock(&self.app.quotas).answered_429
    }

    /// A clock that reads this fake's time (for the code under test, so both agree on when a
    /// wait is over).
    pub fn clock_fn(&self) -> impl Fn() -> OffsetDateTime + Send + Sync + 'static {
        let clock = self.app.clock.clone();
        move || clock.now()
    }

    /// Requests received (faulted ones included, admin ones not) whose path starts with `prefix`.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.app.recorder.hits(path_prefix)
    }

    /// Requests to Confluence's `/wiki/download/…` servlet (which answers 401, see the fake
    /// Confluence's `api` module): a client that follows v1 `_links.download` or v2
    /// `downloadLink` shows up here.
    pub fn download_servlet_hits(&self) -> usize {
        self.app
            .recorder
            .all()
            .iter()
            .filter(|r| r.path.starts_with("/ex/confluence/") && r.path.contains("/wiki/download/"))
            .count()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.app.recorder.all()
    }

    /// Moves the fake clock forward (token and code expiry, leeway, 90/365-day limits).
    pub fn advance_clock(&self, by: Duration) {
        self.app.clock.advance(by);
    }

    /// The fake clock's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }

    /// Registers one more callback URL for `client_id` (false if there is no such client).
    pub fn add_redirect_uri(&self, client_id: &str, redirect_uri: &str) -> bool {
        self.app.add_redirect_uri(client_id, redirect_uri)
    }

    /// The registered apps (with secrets, for tests that configure the code under test).
    pub fn clients(&self) -> Vec<ClientApp> {
        self.app
            .clients
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Base URLs, sites and client ids (what `GET /__admin/info` answers).
    pub fn info(&self) -> AdminInfo {
        admin::info(&self.app)
    }

    /// Cloud ids of the configured sites, in order.
    pub fn cloud_ids(&self) -> Vec<String> {
        self.app
            .sites
            .iter()
            .map(|s| s.ctx.cloud_id.clone())
            .collect()
    }

    /// Read access to a site's seeded Jira.
    pub fn jira(&self, cloud_id: &str) -> Option<JiraData> {
        self.app.site(cloud_id).map(|s| s.jira.clone())
    }

    /// Read access to a site's seeded Confluence.
    pub fn confluence(&self, cloud_id: &str) -> Option<ConfluenceData> {
        self.app.site(cloud_id).map(|s| s.confluence.clone())
    }

    /// Every seeded account (the same on every site).
    pub fn users(&self) -> Vec<UserInfo> {
        self.app.users.all().to_vec()
    }

    /// Every seeded account id, both formats (for scanners asserting none leaked).
    pub fn account_ids(&self) -> Vec<String> {
        self.app
            .users
            .all()
            .iter()
            .map(|u| u.account_id.clone())
            .collect()
    }

    fn site(&self, cloud_id: &str) -> Result<&Site, FakeError> {
        self.app
            .site(cloud_id)
            .ok_or_else(|| FakeError::UnknownSite(cloud_id.to_owned()))
    }

    /// Bumps an issue's `updated` to now and adds a comment.
    pub fn touch_issue(&self, cloud_id: &str, id_or_key: &str) -> Result<IssueInfo, FakeError> {
        self.site(cloud_id)?.jira.touch_issue(id_or_key)
    }

    /// Creates an issue in a project, created and updated now.
    pub fn create_issue(&self, cloud_id: &str, project_key: &str) -> Result<IssueInfo, FakeError> {
        self.site(cloud_id)?.jira.create_issue(project_key)
    }

    /// Deletes an issue (gone from search and reads).
    pub fn delete_issue(&self, cloud_id: &str, id_or_key: &str) -> Result<(), FakeError> {
        self.site(cloud_id)?.jira.delete_issue(id_or_key)
    }

    /// A new version of a page, modified now.
    pub fn touch_page(&self, cloud_id: &str, page_id: &str) -> Result<PageInfo, FakeError> {
        self.site(cloud_id)?.confluence.touch_page(page_id)
    }

    /// Creates a page in a space (under `parent_id`, or at the root), created now.
    pub fn create_page(
        &self,
        cloud_id: &str,
        space_key: &str,
        parent_id: Option<&str>,
    ) -> Result<PageInfo, FakeError> {
        self.site(cloud_id)?
            .confluence
            .create_page(space_key, parent_id)
    }

    /// Deletes a page (gone from search and reads).
    pub fn delete_page(&self, cloud_id: &str, page_id: &str) -> Result<(), FakeError> {
        self.site(cloud_id)?.confluence.delete_page(page_id)
    }

    /// Stops accepting, lets open connections finish (up to 5 s) and waits for the listeners.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for FakeAtlassian {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `http://ADDR/`, advertising loopback when bound to the unspecified address.
fn listener_url(mut addr: SocketAddr) -> io::Result<Url> {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Url::parse(&format!("http://{addr}/")).map_err(io::Error::other)
}
