//! The one HTTP client for Atlassian: timeouts, retries with backoff and jitter on 429/5xx and
//! connection failures (honouring `Retry-After`), a bounded total wait, and a per-site
//! concurrency limit that shrinks when the site throttles us and grows back as calls succeed.
//!
//! Atlassian's "wait" answers are read, not only slept through: a 429 says with
//! `RateLimit-Reason` which limit it hit (developer.atlassian.com/cloud/jira/platform/
//! rate-limiting, ".../build-an-app-that-respects-rate-limits"): a burst limit of one endpoint
//! slows that endpoint only (its own adaptive limit); a tenant quota (or a 503 with
//! `Retry-After`) stops every call to the site until the time given, which this client then
//! answers itself with [`HttpError::SiteWaiting`] instead of reissuing the request ("if you
//! reissue the request before the retry period expires, the request will fail and return the
//! same or longer Retry-After"). A wait longer than the call's budget ends it with
//! [`HttpError::Exhausted`] carrying the [`Throttle`], so the export job can record it and stop.
//!
//! Errors never carry URLs, query strings or bodies in their `Display`/`Debug` (a URL holds the
//! JQL/CQL or a signed media link; a body holds customer content). Atlassian's own error
//! message is kept apart, for the job record, through [`HttpError::atlassian_message`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Request, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use time::OffsetDateTime;

use super::outbound::{self, Outbound, Refused};
use crate::clock::Clock;

/// How hard to try before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt.
    pub base_delay: Duration,
    /// Largest backoff step we choose ourselves (a server's `Retry-After` may be longer).
    pub max_delay: Duration,
    /// Most time spent sleeping between attempts for one call. A `Retry-After` that does not fit
    /// in what is left ends the call with [`HttpError::Exhausted`], carrying the delay, so the
    /// caller can checkpoint and come back later instead of sleeping through its deadline.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_total_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (attempt counts from 1): "equal jitter", a
    /// random point in the upper half of the exponential step, so retries spread out but always
    /// wait at least half the step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Whether a request may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads (GET, and POSTs that only read, like JQL search and bulk fetch): retried on 429,
    /// 5xx, timeouts and broken connections.
    Safe,
    /// Must not run twice (an authorization-code exchange): retried only when the server
    /// certainly did not act on it (429, or a connection that never opened).
    Once,
}

/// Which limit a "wait" answer concerns (`RateLimit-Reason`, see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The tenant's hourly points quota (`jira-quota-tenant-based`, `…-quota-global-based`),
    /// or a 503 with `Retry-After`: no call to the site before the time given.
    Site,
    /// A per-second burst limit (`jira-burst-based`) of one endpoint and method.
    Endpoint,
}

/// What a 429 (or a 503 with `Retry-After`) said about coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub scope: ThrottleScope,
    /// `Retry-After`, if given.
    pub retry_after: Option<Duration>,
    /// `X-RateLimit-Reset` (ISO 8601, minute precision), if given.
    pub reset: Option<OffsetDateTime>,
}

impl Throttle {
    /// The earliest time a call may be made again, reading the answer at `now`: the later of
    /// `now + Retry-After` and the reset time (with neither, one minute).
    pub fn not_before(&self, now: OffsetDateTime) -> OffsetDateTime {
        let after = self
            .retry_after
            .map(|d| now + d.min(MAX_RETRY_AFTER))
            .or(self.reset)
            .unwrap_or(now + Duration::from_secs(60));
        match self.reset {
            Some(reset) if reset > after => reset,
            _ => after,
        }
    }

    /// Read from a 429 or 503 answer's headers; `None` for any other status, and for a 503
    /// without `Retry-After` (an ordinary transient failure).
    pub fn of(status: StatusCode, headers: &HeaderMap) -> Option<Throttle> {
        let retry_after = retry_after(headers);
        let reset = headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_reset);
        let reason = headers
            .get("ratelimit-reason")
            .or_else(|| headers.get("x-ratelimit-reason"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let scope = match status.as_u16() {
            429 if reason.contains("burst") => ThrottleScope::Endpoint,
            // A quota, or a 429 that does not say: the safe reading is "the whole site".
            429 => ThrottleScope::Site,
            503 if retry_after.is_some() => ThrottleScope::Site,
            _ => return None,
        };
        Some(Throttle {
            scope,
            retry_after,
            reset,
        })
    }
}

/// `X-RateLimit-Reset`: RFC 3339, or Atlassian's documented `yyyy-MM-ddTHH:mmZ`.
fn parse_reset(raw: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        let with_seconds = format!("{}:00Z", raw.strip_suffix('Z')?);
        OffsetDateTime::parse(&with_seconds, &Rfc3339).ok()
    })
}

/// Atlassian's error text, kept out of `Debug` and logs; shown only where the customer should
/// see it (an export job's failure reason).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ErrorBody(String);

impl fmt::Debug for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorBody(<{} bytes>)", self.0.len())
    }
}

impl ErrorBody {
    /// The human-readable message(s) from the shapes Atlassian uses:
    /// Jira `{errorMessages:[..], errors:{..}}`, Confluence `{message}`, OAuth
    /// `{error, error_description}`.
    pub fn message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.0).ok()?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(list) = v.get("errorMessages").and_then(|m| m.as_array()) {
            parts.extend(list.iter().filter_map(|m| m.as_str().map(str::to_owned)));
        }
        if let Some(map) = v.get("errors").and_then(|m| m.as_object()) {
            parts.extend(
                map.iter()
                    .filter_map(|(k, m)| m.as_str().map(|m| format!("{k}: {m}"))),
            );
        }
        for key in ["message", "error_description"] {
            if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
                parts.push(m.to_owned());
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The OAuth `error` code (`invalid_grant`, ...), if the body is an OAuth error.
    pub fn oauth_error(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.0).ok()?;
        v.get("error").and_then(|e| e.as_str()).map(str::to_owned)
    }
}

/// Longest error body we keep.
const MAX_ERROR_BODY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Atlassian answered with a status we do not retry (4xx other than 429).
    #[error("{endpoint}: Atlassian answered {status}")]
    Status {
        endpoint: &'static str,
        status: StatusCode,
        body: ErrorBody,
        /// The answer came from another origin than the one asked (a redirect was followed,
        /// e.g. to Atlassian's media host): a 401 there says nothing about our token.
        redirected: bool,
    },
    /// Retries used up (attempts or total wait). `retry_after` is the server's last requested
    /// delay, if it gave one.
    #[error("{endpoint}: gave up after {attempts} attempts ({last})")]
    Exhausted {
        endpoint: &'static str,
        attempts: u32,
        last: Failure,
        retry_after: Option<Duration>,
        /// The last answer was a "wait" (429, or 503 with `Retry-After`).
        throttle: Option<Throttle>,
    },
    /// Not sent: the site asked us not to call before `until` (a quota 429 this client saw).
    #[error("{endpoint}: the site asked for a pause; not called")]
    SiteWaiting {
        endpoint: &'static str,
        until: OffsetDateTime,
    },
    /// The request could not be made or its answer not read, and may not be retried.
    #[error("{endpoint}: {kind}")]
    Transport {
        endpoint: &'static str,
        kind: TransportKind,
    },
    /// The answer was bigger than we read (a JSON body over [`MAX_JSON_BODY`]).
    #[error("{endpoint}: the response is larger than {limit} bytes; not read")]
    TooLarge {
        endpoint: &'static str,
        limit: usize,
    },
    /// The answer was not the JSON we expected. Only the position, never the content.
    #[error("{endpoint}: unexpected response body ({detail})")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },
}

impl HttpError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Exhausted {
                last: Failure::Status(s),
                ..
            } => Some(*s),
            _ => None,
        }
    }

    pub fn atlassian_message(&self) -> Option<String> {
        match self {
            HttpError::Status { body, .. } => body.message(),
            _ => None,
        }
    }

    pub fn oauth_error(&self) -> Option<String> {
        match self {
            HttpError::Status { body, .. } => body.oauth_error(),
            _ => None,
        }
    }

    /// Whether trying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Exhausted { .. }
                | HttpError::Transport { .. }
                | HttpError::SiteWaiting { .. }
        )
    }

    /// When Atlassian asked us to come back, if it did: the time, and whether the whole site
    /// or only the endpoint is concerned. `now` is when the answer was read.
    pub fn wait(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, ThrottleScope)> {
        match self {
            HttpError::SiteWaiting { until, .. } => Some((*until, ThrottleScope::Site)),
            HttpError::Exhausted {
                throttle: Some(t), ..
            } => Some((t.not_before(now), t.scope)),
            _ => None,
        }
    }
}

/// The last failure before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(StatusCode),
    Transport(TransportKind),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "last answer {s}"),
            Failure::Transport(k) => write!(f, "last failure: {k}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportKind {
    #[error("connection failed")]
    Connect,
    #[error("timed out")]
    Timeout,
    #[error("connection broke")]
    Broken,
    #[error("redirect refused")]
    Redirect,
    #[error("request could not be built")]
    Builder,
    #[error("response body could not be read")]
    Body,
}

impl TransportKind {
    fn of(e: &reqwest::Error) -> TransportKind {
        if e.is_builder() {
            TransportKind::Builder
        } else if e.is_redirect() {
            TransportKind::Redirect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else if e.is_body() || e.is_decode() {
            TransportKind::Body
        } else {
            TransportKind::Broken
        }
    }
}

/// A site's adaptive concurrency limit: one step down on every 429 (never below one request
/// at a time), one step up after a run of successes, never above the configured maximum.
struct SiteLimiter {
    permits: Arc<Semaphore>,
    limit: AtomicUsize,
    max: usize,
    successes: AtomicU32,
}

/// Successes in a row that earn one more concurrent request after throttling.
const SUCCESSES_PER_STEP_UP: u32 = 20;

impl SiteLimiter {
    fn new(max: usize) -> SiteLimiter {
        SiteLimiter {
            permits: Arc::new(Semaphore::new(max)),
            limit: AtomicUsize::new(max),
            max,
            successes: AtomicU32::new(0),
        }
    }

    fn throttled(&self) {
        self.successes.store(0, Ordering::Relaxed);
        let lowered = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                (l > 1).then(|| l - 1)
            })
            .is_ok();
        if lowered {
            // Take one permit out of circulation as soon as one is free.
            let permits = self.permits.clone();
            tokio::spawn(async move {
                if let Ok(p) = permits.acquire_owned().await {
                    p.forget();
                }
            });
        }
    }

    fn succeeded(&self) {
        if self.limit.load(Ordering::Acquire) >= self.max {
            return;
        }
        if self.successes.fetch_add(1, Ordering::AcqRel) + 1 >= SUCCESSES_PER_STEP_UP {
            self.successes.store(0, Ordering::Relaxed);
            let raised = self
                .limit
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                    (l < self.max).then(|| l + 1)
                })
                .is_ok();
            if raised {
                self.permits.add_permits(1);
            }
        }
    }
}

/// The one Atlassian HTTP client. Build it once per cold start and share it.
pub struct AtlassianHttp {
    client: reqwest::Client,
    policy: RetryPolicy,
    max_per_site: usize,
    /// Per site: at most `max_per_site` requests at once.
    sites: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Per site and endpoint: the adaptive limit a burst 429 lowers.
    endpoints: Mutex<HashMap<(String, &'static str), Arc<SiteLimiter>>>,
    /// Per site: no call before this time (a quota 429 seen by this client).
    not_before: Mutex<HashMap<String, OffsetDateTime>>,
    clock: Clock,
    /// Where redirects may lead (outbound.rs).
    outbound: Outbound,
}

/// JSON bodies at least this large are parsed on the blocking pool.
const PARSE_ON_BLOCKING_POOL: usize = 64 * 1024;
/// Largest JSON answer read (a Jira bulkfetch of 100 issues with rendered fields, or a batch
/// of Confluence pages, is a few MiB): a bigger one is refused, not buffered.
pub const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// Longest `Retry-After` taken as it is; a longer one counts as this (a day: the site's wait
/// is recorded and jobs come back then), so no time arithmetic on it can overflow.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl AtlassianHttp {
    /// `outbound`: [`Outbound::for_settings`] with the configured Atlassian URLs.
    pub fn new(
        policy: RetryPolicy,
        max_per_site: usize,
        outbound: Outbound,
    ) -> Result<AtlassianHttp, HttpError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("atlassian-connectors/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(60))
            // Redirects are followed by `send` (outbound.rs), never with our headers.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .map_err(|_| HttpError::Transport {
                endpoint: "client",
                kind: TransportKind::Builder,
            })?;
        Ok(AtlassianHttp {
            client,
            policy,
            max_per_site: max_per_site.max(1),
            sites: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            not_before: Mutex::new(HashMap::new()),
            clock: Clock::system(),
            outbound,
        })
    }

    /// Read time from `clock` (tests: the fake site's) for "not before" decisions.
    pub fn with_clock(mut self, clock: Clock) -> AtlassianHttp {
        self.clock = clock;
        self
    }

    /// The time this client decides "not before" with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// No call to `site` before `until` (learnt from the store: another job or invocation
    /// saw the quota 429). Only ever moves the time later.
    pub fn hold_site_until(&self, site: &str, until: OffsetDateTime) {
        let mut map = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(site.to_owned()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Until when `site` must not be called, if it must not be now.
    pub fn site_held_until(&self, site: &str) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let map = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        map.get(site).copied().filter(|until| *until > now)
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Start a request; finish it with `.build()` and pass it to [`AtlassianHttp::send`].
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// The current concurrency limit of one endpoint of a site (lowered by burst 429s).
    pub fn endpoint_limit(&self, site: &str, endpoint: &'static str) -> usize {
        self.limiter(site, endpoint).limit.load(Ordering::Acquire)
    }

    fn limiter(&self, site: &str, endpoint: &'static str) -> Arc<SiteLimiter> {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((site.to_owned(), endpoint))
            .or_insert_with(|| Arc::new(SiteLimiter::new(self.max_per_site)))
            .clone()
    }

    fn site_permits(&self, site: &str) -> Arc<Semaphore> {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites
            .entry(site.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_site)))
            .clone()
    }

    /// Send `request` with retries. `endpoint` is a fixed label for logs and errors (never the
    /// URL); `site` keys the concurrency limit (the cloudId, or "auth" for the token endpoint).
    /// Returns any 2xx answer, after following redirects to Atlassian's hosts (outbound.rs);
    /// a redirect not followed is [`TransportKind::Redirect`]; 4xx (but 429) is an
    /// [`HttpError::Status`] at once.
    pub async fn send(
        &self,
        endpoint: &'static str,
        site: &str,
        idempotency: Idempotency,
        request: Request,
    ) -> Result<AtlassianResponse, HttpError> {
        let limiter = self.limiter(site, endpoint);
        let site_permits = self.site_permits(site);
        // A request with a streaming body cannot be replayed: one attempt only.
        let template = request.try_clone();
        let mut next = Some(request);
        let mut attempt = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let mut throttle: Option<Throttle> = None;
            let Some(req) = next.take() else {
                return Err(HttpError::Transport {
                    endpoint,
                    kind: TransportKind::Builder,
                });
            };
            let closed = |_| HttpError::Transport {
                endpoint,
                kind: TransportKind::Builder,
            };
            let permit = limiter
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(closed)?;
            let site_permit = site_permits.clone().acquire_owned().await.map_err(closed)?;
            let mut held = Some((permit, site_permit));
            // Checked once the permits are ours: a quota 429 answered to a concurrent call
            // while we queued stops this one too.
            if let Some(until) = self.site_held_until(site) {
                return Err(HttpError::SiteWaiting { endpoint, until });
            }
            let started = Instant::now();
            let origin = req.url().origin();
            let method = req.method().clone();
            let outcome = match self.client.execute(req).await {
                Ok(resp) => {
                    // A redirect to another origin (a download sent to Atlassian's media host)
                    // ends the site's part of the request: its permits go before the hop, so
                    // the site serves other calls while the media host answers. How many
                    // downloads go on at once is the caller's bound (the attachment streams).
                    if leaves_origin(&resp, &origin) {
                        held = None;
                    }
                    match outbound::follow(&self.client, &self.outbound, &method, resp).await {
                        Ok(resp) => Ok(resp),
                        Err(Refused::Transport(e)) => Err(e),
                        // Not retried: the same answer would come again.
                        Err(Refused::Refused) => {
                            return Err(HttpError::Transport {
                                endpoint,
                                kind: TransportKind::Redirect,
                            });
                        }
                    }
                }
                Err(e) => Err(e),
            };
            let (failure, delay) = match outcome {
                Ok(resp) if resp.status().is_success() => {
                    limiter.succeeded();
                    tracing::debug!(
                        endpoint,
                        http_status = resp.status().as_u16(),
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "atlassian call"
                    );
                    // A body the site serves itself holds the site's permits while it is read;
                    // one from another origin does not (they went at the redirect, above).
                    let permit = held.filter(|_| resp.url().origin() == origin);
                    return Ok(AtlassianResponse {
                        response: resp,
                        permit,
                        endpoint,
                    });
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    throttle = Throttle::of(status, resp.headers());
                    match throttle.map(|t| t.scope) {
                        Some(ThrottleScope::Endpoint) => limiter.throttled(),
                        Some(ThrottleScope::Site) => {
                            let until = throttle
                                .map(|t| t.not_before(self.clock.now()))
                                .unwrap_or_else(|| self.clock.now());
                            let budget_left = self.policy.max_total_wait.saturating_sub(waited);
                            if retry_after.is_none_or(|d| d > budget_left) {
                                self.hold_site_until(site, until);
                            }
                        }
                        None => {}
                    }
                    if !retryable_status(status, idempotency) {
                        let redirected = resp.url().origin() != origin;
                        let body = read_error_body(resp).await;
                        return Err(HttpError::Status {
                            endpoint,
                            status,
                            body,
                            redirected,
                        });
                    }
                    // Drain a little so the connection can be reused; ignore failures.
                    drop(resp);
                    (Failure::Status(status), retry_after)
                }
                Err(e) => {
                    let kind = TransportKind::of(&e);
                    if !retryable_transport(kind, idempotency) {
                        return Err(HttpError::Transport { endpoint, kind });
                    }
                    (Failure::Transport(kind), None)
                }
            };
            drop(held);
            let server_delay = delay;
            let delay = server_delay.unwrap_or_else(|| self.policy.backoff(attempt));
            let replay = template.as_ref().and_then(Request::try_clone);
            if attempt >= self.policy.max_attempts
                || waited.saturating_add(delay) > self.policy.max_total_wait
                || replay.is_none()
            {
                tracing::warn!(endpoint, attempt, error = %failure, "atlassian call gave up");
                return Err(HttpError::Exhausted {
                    endpoint,
                    attempts: attempt,
                    last: failure,
                    retry_after: server_delay,
                    throttle,
                });
            }
            tracing::info!(endpoint, attempt, error = %failure,
                retry_in_ms = delay.as_millis() as u64, "atlassian call will be retried");
            tokio::time::sleep(delay).await;
            waited = waited.saturating_add(delay);
            next = replay;
        }
    }
}

/// Whether `resp` redirects to an origin other than `origin` (the request's).
fn leaves_origin(resp: &reqwest::Response, origin: &url::Origin) -> bool {
    resp.status().is_redirection()
        && outbound::location(resp).is_some_and(|next| next.origin() != *origin)
}

fn retryable_status(status: StatusCode, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Safe => matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504),
        Idempotency::Once => status == StatusCode::TOO_MANY_REQUESTS,
    }
}

fn retryable_transport(kind: TransportKind, idempotency: Idempotency) -> bool {
    kind == TransportKind::Connect
        || (idempotency == Idempotency::Safe
            && matches!(
                kind,
                TransportKind::Timeout | TransportKind::Broken | TransportKind::Body
            ))
}

/// `Retry-After` as seconds or as an HTTP date, at most [`MAX_RETRY_AFTER`]; `None` if absent
/// or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        // Any number of digits: one too long for a u64 is still "very long".
        let secs = raw.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (when - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)).min(MAX_RETRY_AFTER))
}

async fn read_error_body(resp: reqwest::Response) -> ErrorBody {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    ErrorBody(String::from_utf8_lossy(&body).into_owned())
}

/// A successful answer. Holds the site's concurrency permit until it is consumed, so a
/// download the site streams itself counts against the site's limit for as long as it runs
/// (one redirected to the media host does not: see [`AtlassianHttp::send`]).
pub struct AtlassianResponse {
    response: reqwest::Response,
    /// The endpoint's and the site's, while the site serves the body.
    permit: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    endpoint: &'static str,
}

impl AtlassianResponse {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    pub async fn json<T: DeserializeOwned + Send + 'static>(self) -> Result<T, HttpError> {
        self.json_within(MAX_JSON_BODY).await
    }

    /// As [`AtlassianResponse::json`], refusing a body over `limit` bytes (announced or read).
    pub async fn json_within<T: DeserializeOwned + Send + 'static>(
        self,
        limit: usize,
    ) -> Result<T, HttpError> {
        let endpoint = self.endpoint;
        let too_large = HttpError::TooLarge { endpoint, limit };
        if self
            .response
            .content_length()
            .is_some_and(|n| n > limit as u64)
        {
            return Err(too_large);
        }
        let mut bytes = Vec::new();
        let mut stream = self.response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| HttpError::Transport {
                endpoint,
                kind: TransportKind::of(&e),
            })?;
            if bytes.len().saturating_add(chunk.len()) > limit {
                return Err(too_large);
            }
            bytes.extend_from_slice(&chunk);
        }
        drop(self.permit);
        let small = bytes.len() < PARSE_ON_BLOCKING_POOL;
        let parse = move || {
            serde_json::from_slice(&bytes).map_err(|e| HttpError::Decode {
                endpoint,
                detail: format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            })
        };
        if small {
            return parse();
        }
        // A bulk fetch of 100 issues is megabytes of JSON: parsed on the blocking pool, the
        // export's own task goes on writing items meanwhile (it is one task; see offload.rs).
        crate::offload::cpu(parse).await.unwrap_or_else(|_| {
            Err(HttpError::Decode {
                endpoint,
                detail: "the runtime shut down while the body was parsed".into(),
            })
        })
    }

    /// The body as a stream of chunks, for bodies of any size.
    pub fn bytes_stream(self) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + 'static {
        let endpoint = self.endpoint;
        let permit = self.permit;
        self.response.bytes_stream().map(move |chunk| {
            let _held = &permit;
            chunk.map_err(|e| HttpError::Transport {
                endpoint,
                kind: TransportKind::of(&e),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_its_step() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(10),
        };
        for _ in 0..200 {
            let d1 = p.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d10 = p.backoff(10);
            assert!(
                d10 >= Duration::from_millis(500) && d10 <= Duration::from_secs(1),
                "{d10:?}"
            );
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let p = RetryPolicy::default();
        let samples: std::collections::HashSet<Duration> = (0..50).map(|_| p.backoff(4)).collect();
        assert!(samples.len() > 10, "only {} distinct delays", samples.len());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(
                retryable_status(
                    StatusCode::from_u16(s).unwrap_or_default(),
                    Idempotency::Safe
                ),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 501] {
            assert!(
                !retryable_status(
                    StatusCode::from_u16(s).unwrap_or_default(),
                    Idempotency::Safe
                ),
                "{s}"
            );
        }
        assert!(retryable_status(
            StatusCode::TOO_MANY_REQUESTS,
            Idempotency::Once
        ));
        assert!(!retryable_status(
            StatusCode::BAD_GATEWAY,
            Idempotency::Once
        ));
        assert!(retryable_transport(
            TransportKind::Connect,
            Idempotency::Once
        ));
        assert!(!retryable_transport(
            TransportKind::Timeout,
            Idempotency::Once
        ));
    }

    #[test]
    fn error_body_message_reads_every_atlassian_shape() {
        let jira = ErrorBody(
            r#"{"errorMessages":["Field 'foo' does not exist."],"errors":{"jql":"bad"}}"#.into(),
        );
        assert_eq!(
            jira.message().as_deref(),
            Some("Field 'foo' does not exist.; jql: bad")
        );
        let conf = ErrorBody(r#"{"statusCode":400,"message":"Could not parse cql"}"#.into());
        assert_eq!(conf.message().as_deref(), Some("Could not parse cql"));
        let oauth = ErrorBody(
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#
                .into(),
        );
        assert_eq!(oauth.oauth_error().as_deref(), Some("invalid_grant"));
        assert_eq!(ErrorBody("<html>".into()).message(), None);
    }

    #[test]
    fn error_body_debug_hides_the_content() {
        let e = HttpError::Status {
            endpoint: "jira.search",
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody("project = SECRET".into()),
            redirected: false,
        };
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_quota_429_concerns_the_site_and_a_burst_429_the_endpoint() {
        let quota = Throttle::of(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[
                ("retry-after", "1800"),
                ("ratelimit-reason", "jira-quota-tenant-based"),
                ("x-ratelimit-reset", "2026-03-02T10:30Z"),
            ]),
        );
        let quota = quota.unwrap_or_else(|| panic!("not a throttle"));
        assert_eq!(quota.scope, ThrottleScope::Site);
        assert_eq!(quota.retry_after, Some(Duration::from_secs(1800)));
        assert_eq!(
            quota.reset,
            Some(time::macros::datetime!(2026-03-02 10:30 UTC))
        );
        let burst = Throttle::of(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[
                ("retry-after", "2"),
                ("ratelimit-reason", "jira-burst-based"),
            ]),
        );
        assert_eq!(burst.map(|t| t.scope), Some(ThrottleScope::Endpoint));
        let unsaid = Throttle::of(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new());
        assert_eq!(unsaid.map(|t| t.scope), Some(ThrottleScope::Site));
        let busy = Throttle::of(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(&[("retry-after", "120")]),
        );
        assert_eq!(busy.map(|t| t.scope), Some(ThrottleScope::Site));
        assert_eq!(
            Throttle::of(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()),
            None
        );
        assert_eq!(
            Throttle::of(StatusCode::BAD_GATEWAY, &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn not_before_is_the_later_of_retry_after_and_reset() {
        let now = time::macros::datetime!(2026-03-02 10:00 UTC);
        let t = Throttle {
            scope: ThrottleScope::Site,
            retry_after: Some(Duration::from_secs(60)),
            reset: Some(now + Duration::from_secs(600)),
        };
        assert_eq!(t.not_before(now), now + Duration::from_secs(600));
        let t = Throttle {
            reset: Some(now),
            ..t
        };
        assert_eq!(t.not_before(now), now + Duration::from_secs(60));
    }

    #[test]
    fn a_held_site_is_not_called_until_its_time() {
        let fixed = time::macros::datetime!(2026-03-02 10:00 UTC);
        let http = AtlassianHttp::new(RetryPolicy::default(), 2, Outbound::loopback())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_clock(Clock::from_fn(move || fixed));
        assert_eq!(http.site_held_until("c1"), None);
        http.hold_site_until("c1", fixed + Duration::from_secs(30));
        http.hold_site_until("c1", fixed + Duration::from_secs(10));
        assert_eq!(
            http.site_held_until("c1"),
            Some(fixed + Duration::from_secs(30)),
            "only ever later"
        );
        assert_eq!(http.site_held_until("c2"), None);
    }

    #[tokio::test]
    async fn throttling_lowers_the_site_limit_and_successes_raise_it() {
        let l = SiteLimiter::new(4);
        l.throttled();
        l.throttled();
        assert_eq!(l.limit.load(Ordering::Acquire), 2);
        for _ in 0..SUCCESSES_PER_STEP_UP {
            l.succeeded();
        }
        assert_eq!(l.limit.load(Ordering::Acquire), 3);
        for _ in 0..10 {
            l.throttled();
        }
        assert_eq!(l.limit.load(Ordering::Acquire), 1, "never below one");
    }

    /// Issue 16: generated error bodies (Jira, Confluence, OAuth shapes) never panic.
    #[test]
    fn generated_error_bodies_never_panic() {
        const KEYS: &[&str] = &[
            "errorMessages",
            "errors",
            "message",
            "error",
            "error_description",
            "statusCode",
        ];
        let samples = vec![
            serde_json::json!({"errorMessages": ["The value 'X' does not exist"], "errors": {"jql": "bad"}}),
            serde_json::json!({"statusCode": 400, "message": "Could not parse cql"}),
            serde_json::json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
        ];
        crate::props::run(
            "error bodies",
            crate::props::cases(5_000),
            crate::props::near(samples, KEYS),
            |_, bytes| {
                let body = ErrorBody(String::from_utf8_lossy(bytes).into_owned());
                let _ = body.message();
                let _ = body.oauth_error();
                Ok(())
            },
        );
    }
}
