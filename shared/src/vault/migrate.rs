//! Migration of connections written before grants existed: each held its own copy of the
//! tokens of the consent that created it (one consent covering two sites gave two copies of
//! ONE token family, which then killed each other by rotation).
//!
//! A legacy connection becomes a grant + a connection pointing to it. Legacy connections of
//! the same tenant and product that hold the same token pair came from one consent and join
//! one grant. The grant id is derived from the group, the grant is created only if absent and
//! each connection is re-pointed conditionally, so the migration is idempotent and an
//! interrupted one completes on the next read (by an export or the schedule).

use super::TokenPair;
use super::refresh::{TokenError, TokenKeeper};
use crate::secret::ExposeSecret;
use crate::store::NewGrant;
use crate::store::connections::Connection;
use crate::store::grants::legacy_grant_id;

fn same_pair(a: &TokenPair, b: &TokenPair) -> bool {
    a.access_token.expose_secret() == b.access_token.expose_secret()
        && a.refresh_token.as_ref().map(|t| t.expose_secret())
            == b.refresh_token.as_ref().map(|t| t.expose_secret())
}

/// Migrate `conn` if it still holds its own tokens; returns it as stored afterwards.
pub async fn migrate_connection(
    keeper: &TokenKeeper,
    conn: Connection,
) -> Result<Connection, TokenError> {
    if conn.grant_id.is_some() {
        return Ok(conn);
    }
    let Some(legacy) = conn.legacy.clone() else {
        // Revoked before grants existed: there is nothing to move.
        keeper.store.strip_legacy_attributes(&conn).await?;
        return Ok(conn);
    };
    let tokens = keeper
        .vault
        .open(&conn.legacy_envelope_context(), &legacy.envelope)
        .await?;
    let mut group = vec![conn.clone()];
    for other in keeper.store.list_connections(&conn.tenant).await? {
        if other.id == conn.id || other.product != conn.product || other.grant_id.is_some() {
            continue;
        }
        let Some(other_legacy) = &other.legacy else {
            continue;
        };
        match keeper
            .vault
            .open(&other.legacy_envelope_context(), &other_legacy.envelope)
            .await
        {
            Ok(other_tokens) if same_pair(&tokens, &other_tokens) => group.push(other),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, connection_id = %other.id, "a legacy connection could not be opened; migrated on its own later");
            }
        }
    }
    let seed = group
        .iter()
        .map(|c| c.id.as_str())
        .min()
        .unwrap_or(conn.id.as_str())
        .to_owned();
    let grant_id = legacy_grant_id(&conn.tenant, conn.product, &seed);
    let now = keeper.now();
    let envelope = keeper
        .vault
        .seal(
            &crate::vault::EnvelopeContext::grant(&conn.tenant, &grant_id, conn.product),
            &tokens,
        )
        .await?;
    let created = keeper
        .store
        .create_grant(&NewGrant {
            tenant: conn.tenant.clone(),
            id: grant_id.clone(),
            product: conn.product,
            scope: legacy.scope.clone(),
            token_type: legacy.token_type.clone(),
            access_expires_at: legacy.access_expires_at.unwrap_or(now),
            envelope,
            consented_at: legacy.consented_at,
            last_refreshed_at: legacy.last_refreshed_at.unwrap_or(now),
            unattached_until: None,
        })
        .await?;
    for member in &group {
        keeper
            .store
            .attach_legacy_connection(member, &grant_id, now)
            .await?;
    }
    tracing::info!(
        tenant = %conn.tenant,
        grant_id = %grant_id,
        count = group.len() as u64,
        outcome = if created { "created" } else { "existing" },
        "legacy connections migrated to a grant"
    );
    keeper
        .store
        .get_connection(&conn.tenant, &conn.id)
        .await?
        .ok_or(TokenError::NotFound)
}
