//! The rotation-safe token cycle, per grant (one token family per consent), used by everyone
//! who needs an access token: the export and the keep-alive schedule.
//!
//! Atlassian rotates refresh tokens: each refresh returns a new one and retires the one sent,
//! which then works only for a 10-minute leeway; a reuse after that kills the whole family
//! (`../shared/ATLASSIAN.md`). So exactly one caller refreshes a grant at a time:
//!
//! 1. read the grant; if its access token is good for what the caller needs, use it;
//! 2. take a lease on the grant (conditional on the version read), bounded in wall time;
//!    the loser waits for the version to move and uses the winner's tokens;
//! 3. the holder sends the refresh token only if the call, with its retries, fits in what is
//!    left of the lease; it seals the new pair and writes it conditional on version and lease,
//!    retrying a failed seal or write for minutes (inside the leeway); if the pair is lost
//!    after all, the grant is made due at once, so the next caller refreshes again with the
//!    token we sent, which Atlassian still accepts during the leeway;
//! 4. only `invalid_grant` revokes: the grant's tokens are deleted and every connection of it
//!    is marked `revoked`, with one `ConnectionRevoked` each.
//!
//! The time is read from [`Clock`] each time it is needed, never carried through a run.

use std::time::Duration;

use time::OffsetDateTime;

use super::{TokenPair, Vault, VaultError};
use crate::atlassian::AtlassianUrls;
use crate::atlassian::http::AtlassianHttp;
use crate::atlassian::oauth::{self, OAuthError};
use crate::clock::Clock;
use crate::connect::Apps;
use crate::events::{ConnectionRevoked, ConnectionSiteLost, Event, EventBus, RevocationReason};
use crate::ids::{ConnectionId, GrantId, Product, TenantId};
use crate::secret::Secret;
use crate::store::grants::{Due, lease_owner};
use crate::store::{
    Connection, ConnectionStatus, Grant, GrantStatus, RefreshedTokens, Store, StoreError,
};

/// How long a refresher may hold a grant's lease.
pub const LEASE_TTL: time::Duration = time::Duration::minutes(2);
/// The token call with all its retries must end within this; the lease must have at least
/// this plus [`LEASE_SAFETY`] left when the refresh token is sent.
pub const REFRESH_CALL_BUDGET: Duration = Duration::from_secs(45);
/// Room left in the lease after the call for sealing and the first write.
pub const LEASE_SAFETY: Duration = Duration::from_secs(20);
/// An access token is refreshed when it is about to be used and expires within this.
pub const ACCESS_MARGIN: time::Duration = time::Duration::minutes(5);
/// Failed refreshes in a row (not revocations) before the grant's status becomes `error`.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 5;
/// How long we keep trying to seal and store a pair Atlassian already issued (well inside
/// the 10-minute reuse leeway of the refresh token we sent).
pub const PERSIST_WINDOW: Duration = Duration::from_secs(150);
/// Longest a caller waits for another caller's refresh before trying again itself.
const WAIT_FOR_WINNER: Duration = Duration::from_secs(30);
/// Rounds of read → lease → refresh before giving up as contended.
const MAX_ROUNDS: u32 = 4;

/// An access token ready for API calls, with the grant state it came from.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub grant: Grant,
}

/// How an access token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    /// The stored token was still good (or the grant was not due).
    Stored,
    /// We refreshed it at Atlassian.
    Refreshed,
    /// Another caller refreshed it while we waited.
    FromWinner,
}

/// What the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// An access token valid for at least [`ACCESS_MARGIN`].
    Usable,
    /// A token newer than the one issued at this grant version (after Atlassian refused it).
    NewerThan(u64),
    /// A refresh if the grant is due on the keep-alive schedule.
    KeepAlive,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("connection not found")]
    NotFound,
    #[error("access was revoked at Atlassian; the customer must connect again")]
    Revoked,
    #[error(
        "Atlassian no longer lists this site for the grant; the customer must connect the site again"
    )]
    SiteAccessLost,
    #[error("the {0} app is not configured in this deployment")]
    NotConfigured(Product),
    #[error("the grant has no refresh token (offline_access was not granted)")]
    NoRefreshToken,
    /// Atlassian or AWS failed in a way that may pass; tokens are untouched.
    #[error("refresh failed for now: {0}")]
    Transient(String),
    /// Other callers kept the grant busy for longer than we wait.
    #[error("the grant is being refreshed by another caller; try again shortly")]
    Contended,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What accessible-resources says after Atlassian refused a token we had just renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// The site is listed for this product: a missing scope, or the endpoint refuses us.
    SiteListed,
    /// The grant lives but no longer covers the site.
    SiteMissing,
    /// accessible-resources refused the token too (401): not a revocation by itself.
    TokenRefused,
    /// It could not be asked (transient); the caller retries later.
    Unknown(String),
}

/// Keeps tokens fresh. Build once per cold start.
pub struct TokenKeeper {
    pub store: Store,
    pub vault: Vault,
    pub http: AtlassianHttp,
    pub urls: AtlassianUrls,
    pub apps: Apps,
    pub events: EventBus,
    pub clock: Clock,
    /// [`PERSIST_WINDOW`]; tests shorten it.
    pub persist_window: Duration,
}

fn needs_refresh(grant: &Grant, want: Want, now: OffsetDateTime) -> bool {
    match want {
        Want::Usable => grant
            .access_expires_at
            .is_none_or(|exp| exp <= now + ACCESS_MARGIN),
        Want::NewerThan(version) => grant.version <= version,
        Want::KeepAlive => grant.refresh_due_at.is_some_and(|due| due <= now),
    }
}

impl TokenKeeper {
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The connection and an access token of its grant, refreshed if it expires within
    /// [`ACCESS_MARGIN`]. A connection written before grants existed is migrated first.
    pub async fn for_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<(Connection, AccessToken, Obtained), TokenError> {
        let conn = self
            .store
            .get_connection(tenant, id)
            .await?
            .ok_or(TokenError::NotFound)?;
        let conn = match conn.status {
            ConnectionStatus::Revoked => return Err(TokenError::Revoked),
            ConnectionStatus::SiteAccessLost => return Err(TokenError::SiteAccessLost),
            ConnectionStatus::Active if conn.grant_id.is_none() => {
                super::migrate::migrate_connection(self, conn).await?
            }
            ConnectionStatus::Active => conn,
        };
        let grant_id = conn.grant_id.clone().ok_or(TokenError::Revoked)?;
        let (token, obtained) = self.obtain(tenant, &grant_id, Want::Usable).await?;
        Ok((conn, token, obtained))
    }

    /// A token newer than the one Atlassian just refused (issued at `seen_version`): the
    /// stored one if another caller refreshed meanwhile, else a refresh.
    pub async fn renewed(
        &self,
        tenant: &TenantId,
        grant: &GrantId,
        seen_version: u64,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        self.obtain(tenant, grant, Want::NewerThan(seen_version))
            .await
    }

    /// The schedule's work on one entry of the refresh-due index.
    pub async fn keep_alive(&self, due: &Due) -> Result<Obtained, TokenError> {
        match due {
            Due::Grant(tenant, grant) => {
                if self.delete_if_unused(tenant, grant).await? {
                    return Err(TokenError::NotFound);
                }
                self.obtain(tenant, grant, Want::KeepAlive)
                    .await
                    .map(|(_, o)| o)
            }
            Due::LegacyConnection(tenant, id) => {
                let conn = self
                    .store
                    .get_connection(tenant, id)
                    .await?
                    .ok_or(TokenError::NotFound)?;
                let conn = super::migrate::migrate_connection(self, conn).await?;
                let grant = conn.grant_id.ok_or(TokenError::Revoked)?;
                self.obtain(tenant, &grant, Want::KeepAlive)
                    .await
                    .map(|(_, o)| o)
            }
        }
    }

    /// A grant no connection points to (superseded by a newer consent, or a connect that
    /// stopped halfway) is deleted rather than kept alive (PRIVACY.md P9). Only grants older
    /// than an hour, so a consent completing right now is never touched.
    async fn delete_if_unused(&self, tenant: &TenantId, id: &GrantId) -> Result<bool, TokenError> {
        if !self
            .store
            .connections_of_grant(tenant, id)
            .await?
            .is_empty()
        {
            return Ok(false);
        }
        let Some(grant) = self.store.get_grant(tenant, id).await? else {
            return Ok(true);
        };
        if self.now() - grant.updated_at < time::Duration::hours(1) {
            return Ok(false);
        }
        self.store.delete_grant(tenant, id).await?;
        tracing::info!(tenant = %tenant, grant_id = %id, "unused grant deleted");
        Ok(true)
    }

    async fn load(&self, tenant: &TenantId, id: &GrantId) -> Result<Grant, TokenError> {
        let grant = self
            .store
            .get_grant(tenant, id)
            .await?
            // A connection pointing to a grant that is gone has nothing to use.
            .ok_or(TokenError::Revoked)?;
        match grant.status {
            GrantStatus::Revoked => Err(TokenError::Revoked),
            _ => Ok(grant),
        }
    }

    async fn open(&self, grant: &Grant) -> Result<TokenPair, TokenError> {
        let envelope = grant.envelope.as_ref().ok_or(TokenError::Revoked)?;
        Ok(self.vault.open(&grant.envelope_context(), envelope).await?)
    }

    async fn stored(&self, grant: Grant) -> Result<AccessToken, TokenError> {
        let tokens = self.open(&grant).await?;
        Ok(AccessToken {
            token: tokens.access_token,
            grant,
        })
    }

    async fn obtain(
        &self,
        tenant: &TenantId,
        id: &GrantId,
        want: Want,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let owner = lease_owner();
        if want == Want::KeepAlive {
            // The common case on the schedule (due, nobody refreshing): lease and read in one
            // conditional write. Anything else goes the long way below.
            let now = self.now();
            if let Some(grant) = self
                .store
                .lease_grant_if_due(tenant, id, &owner, now, LEASE_TTL)
                .await?
            {
                return self
                    .refresh_holding_lease(grant, &owner, now + LEASE_TTL)
                    .await;
            }
        }
        for _ in 0..MAX_ROUNDS {
            let grant = self.load(tenant, id).await?;
            let now = self.now();
            if !needs_refresh(&grant, want, now) {
                return Ok((self.stored(grant).await?, Obtained::Stored));
            }
            if let Some(until) = self
                .store
                .try_lease_grant(&grant, &owner, now, LEASE_TTL)
                .await?
            {
                return self.refresh_holding_lease(grant, &owner, until).await;
            }
            if let Some(newer) = self.wait_for_newer(&grant).await? {
                return Ok((self.stored(newer).await?, Obtained::FromWinner));
            }
            // The holder neither finished nor gave up while we waited: its lease runs out.
        }
        Err(TokenError::Contended)
    }

    /// Poll until the grant's version moves past `seen` (the winner wrote, or revoked), at most
    /// until the holder's lease ends or [`WAIT_FOR_WINNER`] passes.
    async fn wait_for_newer(&self, seen: &Grant) -> Result<Option<Grant>, TokenError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(25);
        while started.elapsed() < WAIT_FOR_WINNER {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            let now = self.load(&seen.tenant, &seen.id).await?;
            if now.version > seen.version {
                return Ok(Some(now));
            }
            if now.lease_expires_at.is_none_or(|end| end < self.now()) {
                // Nobody holds it (the holder gave up, or its lease ran out): try ourselves.
                return Ok(None);
            }
        }
        Ok(None)
    }

    async fn refresh_holding_lease(
        &self,
        grant: Grant,
        owner: &str,
        lease_until: OffsetDateTime,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let needed = REFRESH_CALL_BUDGET + LEASE_SAFETY;
        if lease_until - self.now() < needed {
            // Never send the refresh token on a lease that may end while the call runs: a
            // second refresher could then send the same token.
            let _ = self.store.release_grant_lease(&grant, owner).await;
            return Err(TokenError::Transient(
                "too little of the refresh lease was left".into(),
            ));
        }
        let issued = match self.refresh_at_atlassian(&grant).await {
            Ok(issued) => issued,
            Err(RefreshFailure::InvalidGrant) => {
                self.revoke_grant(&grant.tenant, &grant.id, RevocationReason::InvalidGrant)
                    .await?;
                return Err(TokenError::Revoked);
            }
            Err(RefreshFailure::Unanswered) => {
                // Atlassian may have rotated without our hearing it; the token we sent stays
                // usable during the leeway, so make the next caller refresh at once.
                self.mark_due(&grant, owner).await;
                return Err(TokenError::Transient(
                    "the token endpoint did not answer in time".into(),
                ));
            }
            Err(RefreshFailure::Other(e)) => {
                let reason = e.to_string();
                if let Err(store_err) = self
                    .store
                    .record_grant_failure(
                        &grant,
                        owner,
                        &reason,
                        MAX_CONSECUTIVE_FAILURES,
                        self.now(),
                    )
                    .await
                {
                    tracing::warn!(error = %store_err, grant_id = %grant.id, "could not record the refresh failure");
                }
                return Err(e);
            }
        };
        self.persist(grant, owner, issued).await
    }

    /// Seal and store a pair Atlassian issued, retrying for [`PERSIST_WINDOW`].
    async fn persist(
        &self,
        grant: Grant,
        owner: &str,
        issued: oauth::TokenGrant,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let received = self.now();
        let access_expires_at =
            received + time::Duration::seconds(i64::try_from(issued.expires_in).unwrap_or(3600));
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(200);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let written = match self
                .vault
                .seal(&grant.envelope_context(), &issued.tokens)
                .await
            {
                Ok(envelope) => {
                    let refreshed = RefreshedTokens {
                        envelope,
                        scope: issued.scope.clone(),
                        token_type: issued.token_type.clone(),
                        access_expires_at,
                        now: self.now(),
                    };
                    self.store
                        .store_refreshed_grant(&grant, owner, &refreshed)
                        .await
                        .map_err(TokenError::from)
                }
                Err(e) => Err(e.into()),
            };
            match written {
                Ok(stored) => {
                    let token = AccessToken {
                        token: issued.tokens.access_token,
                        grant: stored,
                    };
                    return Ok((token, Obtained::Refreshed));
                }
                Err(TokenError::Store(StoreError::Conflict(_))) => {
                    // Someone moved the grant on (a revocation, or a holder after our lease):
                    // use what they stored.
                    return match self.wait_for_newer(&grant).await? {
                        Some(newer) => Ok((self.stored(newer).await?, Obtained::FromWinner)),
                        None => Err(TokenError::Contended),
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, grant_id = %grant.id, attempt, "storing refreshed tokens failed; retrying");
                    if started.elapsed() + pause > self.persist_window {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        }
        self.mark_due(&grant, owner).await;
        Err(TokenError::Transient(
            "refreshed at Atlassian but the new tokens could not be stored".into(),
        ))
    }

    async fn mark_due(&self, grant: &Grant, owner: &str) {
        if let Err(e) = self
            .store
            .mark_grant_due_now(grant, owner, self.now())
            .await
        {
            tracing::error!(error = %e, grant_id = %grant.id, "could not mark the grant due after a lost refresh");
        }
    }

    async fn refresh_at_atlassian(
        &self,
        grant: &Grant,
    ) -> Result<oauth::TokenGrant, RefreshFailure> {
        let app = self.apps.get(grant.product).ok_or(RefreshFailure::Other(
            TokenError::NotConfigured(grant.product),
        ))?;
        let tokens = self.open(grant).await.map_err(RefreshFailure::Other)?;
        let refresh_token = tokens
            .refresh_token
            .ok_or(RefreshFailure::Other(TokenError::NoRefreshToken))?;
        let call = oauth::refresh(&self.http, &self.urls, app, &refresh_token);
        match tokio::time::timeout(REFRESH_CALL_BUDGET, call).await {
            Err(_) => Err(RefreshFailure::Unanswered),
            Ok(Ok(issued)) => Ok(issued),
            Ok(Err(OAuthError::InvalidGrant { .. })) => Err(RefreshFailure::InvalidGrant),
            Ok(Err(e)) => Err(RefreshFailure::Other(TokenError::Transient(e.to_string()))),
        }
    }

    /// The grant is dead (PRIVACY.md P10): delete its tokens, mark every connection of it
    /// revoked and announce each once. Safe to repeat (an interrupted revocation completes).
    pub async fn revoke_grant(
        &self,
        tenant: &TenantId,
        grant: &GrantId,
        reason: RevocationReason,
    ) -> Result<(), TokenError> {
        let text = match reason {
            RevocationReason::InvalidGrant => {
                "Atlassian refused the refresh token (invalid_grant): access was revoked or expired"
            }
        };
        let now = self.now();
        if self.store.revoke_grant(tenant, grant, text, now).await? {
            tracing::warn!(tenant = %tenant, grant_id = %grant, "grant revoked");
        }
        for conn in self.store.connections_of_grant(tenant, grant).await? {
            if !self
                .store
                .set_connection_status(&conn, grant, ConnectionStatus::Revoked, text, now)
                .await?
            {
                continue;
            }
            let event = Event::ConnectionRevoked(ConnectionRevoked {
                tenant: conn.tenant.clone(),
                connection_id: conn.id.clone(),
                product: conn.product,
                cloud_id: conn.cloud_id.clone(),
                reason,
                at: rfc3339(now),
            });
            if let Err(e) = self.events.publish(&event).await {
                // The revocation itself is stored; the event is informational.
                tracing::error!(error = %e, connection_id = %conn.id, "ConnectionRevoked could not be published");
            }
        }
        Ok(())
    }

    /// Ask accessible-resources whether the grant still covers `conn`'s site for its product.
    pub async fn diagnose(&self, token: &Secret, conn: &Connection) -> Diagnosis {
        match oauth::accessible_resources(&self.http, &self.urls, token).await {
            Ok(sites) => {
                let listed = sites.iter().any(|s| {
                    s.id == conn.cloud_id.as_str() && oauth::serves_product(s, conn.product)
                });
                if listed {
                    Diagnosis::SiteListed
                } else {
                    Diagnosis::SiteMissing
                }
            }
            Err(OAuthError::Http(h)) if h.status().is_some_and(|s| s.as_u16() == 401) => {
                Diagnosis::TokenRefused
            }
            Err(e) => Diagnosis::Unknown(e.to_string()),
        }
    }

    /// The grant no longer covers `conn`'s site: mark it `site_access_lost` (tokens stay, the
    /// grant's other connections go on) and announce it once.
    pub async fn site_lost(&self, conn: &Connection) -> Result<(), TokenError> {
        let Some(grant) = &conn.grant_id else {
            return Ok(());
        };
        let now = self.now();
        let reason = "Atlassian no longer lists this site for the app's grant";
        if !self
            .store
            .set_connection_status(conn, grant, ConnectionStatus::SiteAccessLost, reason, now)
            .await?
        {
            return Ok(());
        }
        tracing::warn!(tenant = %conn.tenant, connection_id = %conn.id, "site access lost");
        let event = Event::ConnectionSiteLost(ConnectionSiteLost {
            tenant: conn.tenant.clone(),
            connection_id: conn.id.clone(),
            product: conn.product,
            cloud_id: conn.cloud_id.clone(),
            at: rfc3339(now),
        });
        if let Err(e) = self.events.publish(&event).await {
            tracing::error!(error = %e, connection_id = %conn.id, "ConnectionSiteLost could not be published");
        }
        Ok(())
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

enum RefreshFailure {
    InvalidGrant,
    /// No answer within [`REFRESH_CALL_BUDGET`].
    Unanswered,
    Other(TokenError),
}

impl TokenKeeper {
    /// Build from validated config and the cold start's AWS clients (reads the client secrets).
    pub async fn from_config(
        config: &crate::config::Config,
        aws: &crate::aws::AwsClients,
    ) -> Result<TokenKeeper, crate::error::StartupError> {
        let apps = Apps::load(config, &aws.secrets).await?;
        let policy = crate::atlassian::http::RetryPolicy {
            // The whole call is also bounded by REFRESH_CALL_BUDGET.
            max_total_wait: Duration::from_secs(20),
            ..Default::default()
        };
        Ok(TokenKeeper {
            store: Store::new(aws.dynamodb.clone(), config.table_name.clone()),
            vault: Vault::new(aws.kms.clone(), config.kms_key_id.clone()),
            http: AtlassianHttp::new(
                policy,
                config.atlassian.max_concurrency_per_site,
                crate::atlassian::outbound::Outbound::for_settings(&config.atlassian),
            )?,
            urls: AtlassianUrls::new(&config.atlassian),
            apps,
            events: EventBus::new(aws.eventbridge.clone(), config.event_bus_name.clone()),
            clock: Clock::system(),
            persist_window: PERSIST_WINDOW,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(version: u64, expires_in_min: i64, due_in_min: i64) -> Grant {
        let now = OffsetDateTime::now_utc();
        Grant {
            tenant: TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}")),
            id: GrantId::parse("grant-1").unwrap_or_else(|e| panic!("{e}")),
            product: Product::Jira,
            status: GrantStatus::Active,
            status_reason: None,
            scope: String::new(),
            token_type: "Bearer".into(),
            access_expires_at: Some(now + time::Duration::minutes(expires_in_min)),
            envelope: None,
            version,
            created_at: now,
            updated_at: now,
            consented_at: now,
            last_refreshed_at: Some(now),
            consecutive_failures: 0,
            refresh_due_at: Some(now + time::Duration::minutes(due_in_min)),
            lease_expires_at: None,
        }
    }

    #[test]
    fn a_token_is_refreshed_only_when_about_to_expire_newer_or_due() {
        let now = OffsetDateTime::now_utc();
        assert!(!needs_refresh(&grant(3, 30, 60), Want::Usable, now));
        assert!(needs_refresh(&grant(3, 4, 60), Want::Usable, now));
        assert!(needs_refresh(&grant(3, 30, 60), Want::NewerThan(3), now));
        assert!(!needs_refresh(&grant(4, 30, 60), Want::NewerThan(3), now));
        assert!(!needs_refresh(&grant(3, 1, 60), Want::KeepAlive, now));
        assert!(needs_refresh(&grant(3, 30, -1), Want::KeepAlive, now));
    }

    #[test]
    fn the_refresh_call_fits_in_the_lease_with_room_to_store() {
        let lease = Duration::try_from(LEASE_TTL).unwrap_or_default();
        assert!(REFRESH_CALL_BUDGET + LEASE_SAFETY < lease);
    }
}
