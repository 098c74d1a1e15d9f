//! The rotation-safe token cycle, used by everyone who needs an access token (the refresh
//! schedule and the export).
//!
//! Atlassian rotates refresh tokens: each refresh returns a new one and retires the one sent,
//! which then works only for a short leeway; a reuse after that kills the whole token family.
//! So exactly one caller refreshes a connection at a time:
//!
//! 1. read the connection; if its access token is good (or, for the schedule, it is not due),
//!    use it;
//! 2. take a short lease on the item (conditional on the version read); the loser waits for
//!    the version to move and uses the winner's tokens, never refreshing itself;
//! 3. the lease holder refreshes at Atlassian, seals the new pair and writes it conditional on
//!    the version read and its lease; a failed write is retried (the old refresh token stays
//!    usable for the leeway, so a later attempt can recover even if every retry fails);
//! 4. `invalid_grant` revokes: tokens deleted, status `revoked`, `ConnectionRevoked` published.

use std::time::Duration;

use rand::RngCore;
use time::OffsetDateTime;

use super::{EnvelopeContext, TokenPair, Vault, VaultError};
use crate::atlassian::AtlassianUrls;
use crate::atlassian::http::AtlassianHttp;
use crate::atlassian::oauth::{self, OAuthError};
use crate::connect::Apps;
use crate::events::{ConnectionRevoked, Event, EventBus, RevocationReason};
use crate::ids::{ConnectionId, Product, TenantId};
use crate::secret::Secret;
use crate::store::connections::REFRESH_MARGIN;
use crate::store::{Connection, ConnectionStatus, RefreshedTokens, Store, StoreError};

/// How long a refresher may hold the lease. Longer than a refresh with its retries takes, so
/// a slow holder is never overtaken by a second refresher.
pub const LEASE_TTL: time::Duration = time::Duration::minutes(2);
/// Failed refreshes in a row (not revocations) before the status becomes `error`.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 5;
/// How long a caller that lost the lease waits for the winner's tokens.
const WAIT_FOR_WINNER: Duration = Duration::from_secs(20);
/// Attempts to persist a pair Atlassian already issued.
const WRITE_ATTEMPTS: u32 = 6;
/// Rounds of read → lease → refresh before giving up as contended.
const MAX_ROUNDS: u32 = 4;

/// An access token ready for API calls.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: Option<OffsetDateTime>,
    pub connection: Connection,
}

/// How an access token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    /// The stored token was still good (or the connection was not due).
    Stored,
    /// We refreshed it at Atlassian.
    Refreshed,
    /// Another caller refreshed it while we waited.
    FromWinner,
}

/// What the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// An access token valid for at least [`REFRESH_MARGIN`] (export, API calls).
    AccessToken,
    /// A refresh if the connection is due on the schedule (keep-alive included).
    ScheduledRefresh,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("connection not found")]
    NotFound,
    #[error("connection is revoked; the user must consent again")]
    Revoked,
    #[error("connection is in error: {0}")]
    InError(String),
    #[error("the {0} app is not configured in this deployment")]
    NotConfigured(Product),
    #[error("the grant has no refresh token (offline_access was not granted)")]
    NoRefreshToken,
    /// Atlassian or AWS failed in a way that may pass; tokens are untouched.
    #[error("refresh failed for now: {0}")]
    Transient(String),
    /// Other callers kept the connection busy for longer than we wait.
    #[error("connection is being refreshed by another caller; try again shortly")]
    Contended,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keeps tokens fresh. Build once per cold start.
pub struct TokenKeeper {
    pub store: Store,
    pub vault: Vault,
    pub http: AtlassianHttp,
    pub urls: AtlassianUrls,
    pub apps: Apps,
    pub events: EventBus,
}

fn lease_owner() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

fn needs_refresh(conn: &Connection, need: Need, now: OffsetDateTime) -> bool {
    match need {
        Need::AccessToken => conn
            .access_expires_at
            .is_none_or(|exp| exp <= now + REFRESH_MARGIN),
        Need::ScheduledRefresh => conn.refresh_due_at.is_some_and(|due| due <= now),
    }
}

impl TokenKeeper {
    /// The connection's tokens as they are: `Err(Revoked)` if they were deleted.
    async fn open(&self, conn: &Connection) -> Result<TokenPair, TokenError> {
        let envelope = conn.envelope.as_ref().ok_or(TokenError::Revoked)?;
        Ok(self.vault.open(&conn.envelope_context(), envelope).await?)
    }

    async fn load(&self, tenant: &TenantId, id: &ConnectionId) -> Result<Connection, TokenError> {
        let conn = self
            .store
            .get_connection(tenant, id)
            .await?
            .ok_or(TokenError::NotFound)?;
        match conn.status {
            ConnectionStatus::Revoked => Err(TokenError::Revoked),
            _ => Ok(conn),
        }
    }

    /// An access token for `need`, refreshing (or waiting for another caller's refresh) only
    /// when necessary.
    pub async fn access_token(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        need: Need,
        now: OffsetDateTime,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let owner = lease_owner();
        if need == Need::ScheduledRefresh {
            // The common case on the schedule (due, nobody refreshing): lease and read in one
            // conditional write. Anything else goes the long way below.
            if let Some(conn) = self
                .store
                .lease_if_due(tenant, id, &owner, now, LEASE_TTL)
                .await?
            {
                return self.refresh_holding_lease(conn, &owner, now).await;
            }
        }
        for _ in 0..MAX_ROUNDS {
            let conn = self.load(tenant, id).await?;
            if !needs_refresh(&conn, need, now) {
                let tokens = self.open(&conn).await?;
                return Ok((self.token(tokens, conn), Obtained::Stored));
            }
            if self.store.try_lease(&conn, &owner, now, LEASE_TTL).await? {
                return self.refresh_holding_lease(conn, &owner, now).await;
            }
            if let Some(newer) = self.wait_for_newer(&conn).await? {
                let tokens = self.open(&newer).await?;
                return Ok((self.token(tokens, newer), Obtained::FromWinner));
            }
            // The holder neither finished nor gave up within our wait: its lease will expire,
            // try again.
        }
        Err(TokenError::Contended)
    }

    fn token(&self, tokens: TokenPair, connection: Connection) -> AccessToken {
        AccessToken {
            token: tokens.access_token,
            expires_at: connection.access_expires_at,
            connection,
        }
    }

    /// Poll until the item's version moves past `seen` (the winner wrote, or revoked).
    async fn wait_for_newer(&self, seen: &Connection) -> Result<Option<Connection>, TokenError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(25);
        while started.elapsed() < WAIT_FOR_WINNER {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            let now = self.load(&seen.tenant, &seen.id).await?;
            if now.version > seen.version {
                return Ok(Some(now));
            }
        }
        Ok(None)
    }

    async fn refresh_holding_lease(
        &self,
        conn: Connection,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let outcome = self.refresh_at_atlassian(&conn, now).await;
        let grant = match outcome {
            Ok(grant) => grant,
            Err(RefreshFailure::InvalidGrant) => {
                self.revoke(&conn, RevocationReason::InvalidGrant, now)
                    .await?;
                return Err(TokenError::Revoked);
            }
            Err(RefreshFailure::Other(e)) => {
                let reason = e.to_string();
                if let Err(store_err) = self
                    .store
                    .record_failure(&conn, owner, &reason, MAX_CONSECUTIVE_FAILURES, now)
                    .await
                {
                    tracing::warn!(error = %store_err, connection_id = %conn.id, "could not record the refresh failure");
                }
                return Err(e);
            }
        };
        let ctx = conn.envelope_context();
        let envelope = self.vault.seal(&ctx, &grant.tokens).await?;
        let refreshed = RefreshedTokens {
            envelope,
            scope: grant.scope.clone(),
            token_type: grant.token_type.clone(),
            access_expires_at: now
                + time::Duration::seconds(i64::try_from(grant.expires_in).unwrap_or(3600)),
            now,
        };
        let mut pause = Duration::from_millis(200);
        for attempt in 1..=WRITE_ATTEMPTS {
            match self.store.store_refreshed(&conn, owner, &refreshed).await {
                Ok(stored) => return Ok((self.token(grant.tokens, stored), Obtained::Refreshed)),
                Err(StoreError::Conflict(_)) => {
                    // Someone else moved the item on (our lease lapsed, or a revocation): use
                    // what they stored.
                    return match self.wait_for_newer(&conn).await? {
                        Some(newer) => {
                            let tokens = self.open(&newer).await?;
                            Ok((self.token(tokens, newer), Obtained::FromWinner))
                        }
                        None => Err(TokenError::Contended),
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, connection_id = %conn.id, attempt, "storing refreshed tokens failed; retrying");
                    if attempt < WRITE_ATTEMPTS {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
            }
        }
        // Atlassian issued a pair we could not save. The refresh token we sent stays usable for
        // the rotation leeway, and our lease expires well within it: make the connection due
        // now so the next run (or the next caller) uses it again in time.
        if let Err(e) = self.store.mark_due_now(&conn, now).await {
            tracing::error!(error = %e, connection_id = %conn.id, "could not mark the connection due after a lost write");
        }
        Err(TokenError::Transient(
            "refreshed at Atlassian but the new tokens could not be stored".into(),
        ))
    }

    async fn refresh_at_atlassian(
        &self,
        conn: &Connection,
        _now: OffsetDateTime,
    ) -> Result<oauth::TokenGrant, RefreshFailure> {
        let app =
            self.apps
                .get(conn.product)
                .ok_or(RefreshFailure::Other(TokenError::NotConfigured(
                    conn.product,
                )))?;
        let tokens = self.open(conn).await.map_err(RefreshFailure::Other)?;
        let refresh_token = tokens
            .refresh_token
            .ok_or(RefreshFailure::Other(TokenError::NoRefreshToken))?;
        match oauth::refresh(&self.http, &self.urls, app, &refresh_token).await {
            Ok(grant) => Ok(grant),
            Err(OAuthError::InvalidGrant { .. }) => Err(RefreshFailure::InvalidGrant),
            Err(e) => Err(RefreshFailure::Other(TokenError::Transient(e.to_string()))),
        }
    }

    /// The grant is dead (PRIVACY.md P10): delete the tokens, mark the connection revoked and
    /// tell the bus.
    pub async fn revoke(
        &self,
        conn: &Connection,
        reason: RevocationReason,
        now: OffsetDateTime,
    ) -> Result<(), TokenError> {
        let text = match reason {
            RevocationReason::InvalidGrant => {
                "Atlassian refused the refresh token (invalid_grant): access was revoked or expired"
            }
            RevocationReason::Unauthorized => {
                "Atlassian refused a freshly issued access token (401): access was revoked"
            }
        };
        match self.store.mark_revoked(conn, text, now).await {
            Ok(true) => {}
            // Someone else revoked it first and announced it.
            Ok(false) => return Ok(()),
            Err(StoreError::Conflict(_)) => return Err(TokenError::NotFound),
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(tenant = %conn.tenant, connection_id = %conn.id, reason = ?reason, "connection revoked");
        let at = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let event = Event::ConnectionRevoked(ConnectionRevoked {
            tenant: conn.tenant.clone(),
            connection_id: conn.id.clone(),
            product: conn.product,
            cloud_id: conn.cloud_id.clone(),
            reason,
            at,
        });
        if let Err(e) = self.events.publish(&event).await {
            // The revocation itself is stored; the event is informational.
            tracing::error!(error = %e, connection_id = %conn.id, "ConnectionRevoked could not be published");
        }
        Ok(())
    }
}

enum RefreshFailure {
    InvalidGrant,
    Other(TokenError),
}

/// Whether a connection's status is an error worth reporting.
pub fn status_error(conn: &Connection) -> Option<TokenError> {
    (conn.status == ConnectionStatus::Error).then(|| {
        TokenError::InError(
            conn.status_reason
                .clone()
                .unwrap_or_else(|| "refreshes keep failing".into()),
        )
    })
}

impl EnvelopeContext {
    /// The context of a stored connection.
    pub fn of(conn: &Connection) -> EnvelopeContext {
        conn.envelope_context()
    }
}

impl TokenKeeper {
    /// Build from validated config and the cold start's AWS clients (reads the client secrets).
    pub async fn from_config(
        config: &crate::config::Config,
        aws: &crate::aws::AwsClients,
    ) -> Result<TokenKeeper, crate::error::StartupError> {
        let apps = Apps::load(config, &aws.secrets).await?;
        let policy = crate::atlassian::http::RetryPolicy {
            // Leave the lease (2 minutes) plenty of room.
            max_total_wait: Duration::from_secs(20),
            ..Default::default()
        };
        Ok(TokenKeeper {
            store: Store::new(aws.dynamodb.clone(), config.table_name.clone()),
            vault: Vault::new(aws.kms.clone(), config.kms_key_id.clone()),
            http: AtlassianHttp::new(policy, config.atlassian.max_concurrency_per_site)?,
            urls: AtlassianUrls::new(&config.atlassian),
            apps,
            events: EventBus::new(aws.eventbridge.clone(), config.event_bus_name.clone()),
        })
    }
}
