//! Grants: what one consent yields — ONE token family (an access token and a rotating refresh
//! token) for one tenant and product (ARCHITECTURE.md data model, `../shared/ATLASSIAN.md`:
//! "only one grant exists per app for a given Atlassian account", and every site the user
//! granted is reached with the same tokens). The tokens are stored and refreshed once per
//! grant; the connections (one per chosen site) point to it.
//!
//! A grant holds exactly what PRIVACY.md P1 allows: the token envelope, scope, token type,
//! expiries, status, timestamps, and the bookkeeping of its refresh lease and version.

use std::fmt;

use aws_sdk_dynamodb::types::ReturnValue;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::attrs::{self, Item};
use super::schema::{PK, REFRESH_BUCKET, REFRESH_DUE_AT, REFRESH_DUE_INDEX, SK, TTL};
use super::{Store, StoreError, is_conditional_failure, tenant_pk};
use crate::error::AwsError;
use crate::ids::{GrantId, Product, TenantId};
use crate::vault::{Envelope, EnvelopeContext};

/// Every attribute a grant item may have (PRIVACY.md P1). A test reads stored items and fails
/// if one carries anything else.
pub const GRANT_ATTRIBUTES: &[&str] = &[
    PK,
    SK,
    "tenant",
    "grant_id",
    "product",
    "status",
    "status_reason",
    "scope",
    "token_type",
    "access_expires_at",
    "token_ciphertext",
    "token_key",
    "envelope_version",
    "version",
    "created_at",
    "updated_at",
    "consented_at",
    "last_refreshed_at",
    "consecutive_failures",
    "lease_owner",
    "lease_expires_at",
    REFRESH_BUCKET,
    REFRESH_DUE_AT,
    TTL,
];

/// The one GSI bucket grants are filed under while they are kept alive.
pub const REFRESH_BUCKET_ACTIVE: &str = "active";

/// Longest a grant goes without a refresh even if nobody needs its access token: Atlassian's
/// refresh tokens die after 90 days unused, so a weekly refresh stays far inside that while
/// rotating a family about four times a month instead of every access-token lifetime.
pub const KEEPALIVE: time::Duration = time::Duration::days(7);

/// A grant whose consent did not (yet) lead to a connection (the user left the site chooser)
/// is deleted by DynamoDB's TTL after this long (PRIVACY.md P9).
pub const UNATTACHED_LIFETIME: time::Duration = time::Duration::minutes(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    Active,
    /// Atlassian answered `invalid_grant`: tokens deleted, the user must consent again.
    Revoked,
    /// Refreshes keep failing for a reason that is not revocation; tokens kept.
    Error,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Active => "active",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Error => "error",
        }
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GrantStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "active" => Ok(GrantStatus::Active),
            "revoked" => Ok(GrantStatus::Revoked),
            "error" => Ok(GrantStatus::Error),
            _ => Err(()),
        }
    }
}

/// A stored grant. Tokens stay sealed in `envelope` until the vault opens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: TenantId,
    pub id: GrantId,
    pub product: Product,
    pub status: GrantStatus,
    pub status_reason: Option<String>,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: Option<OffsetDateTime>,
    pub envelope: Option<Envelope>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the user consented; Atlassian's refresh tokens die 365 days after it.
    pub consented_at: OffsetDateTime,
    pub last_refreshed_at: Option<OffsetDateTime>,
    pub consecutive_failures: u32,
    /// When the schedule next keeps it alive (absent once revoked).
    pub refresh_due_at: Option<OffsetDateTime>,
    pub lease_expires_at: Option<OffsetDateTime>,
}

impl Grant {
    pub fn envelope_context(&self) -> EnvelopeContext {
        EnvelopeContext::grant(&self.tenant, &self.id, self.product)
    }

    /// When the user must consent again at the latest (Atlassian's absolute 365-day limit).
    pub fn reconsent_due_at(&self) -> OffsetDateTime {
        self.consented_at + time::Duration::days(365)
    }
}

/// What a completed consent writes.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub tenant: TenantId,
    pub id: GrantId,
    pub product: Product,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: OffsetDateTime,
    pub envelope: Envelope,
    pub consented_at: OffsetDateTime,
    pub last_refreshed_at: OffsetDateTime,
    /// Until a connection points to it, the grant expires (TTL) at this time.
    pub unattached_until: Option<OffsetDateTime>,
}

/// A refreshed token pair to store.
#[derive(Debug, Clone)]
pub struct RefreshedTokens {
    pub envelope: Envelope,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: OffsetDateTime,
    pub now: OffsetDateTime,
}

/// A fresh grant id: 104 random bits as 26 hex digits (never 24: that is the shape of a legacy
/// Atlassian account id, which the account-id scanner looks for).
pub fn new_grant_id() -> GrantId {
    let mut raw = [0u8; 13];
    rand::rng().fill_bytes(&mut raw);
    grant_id_from(&raw)
}

/// The deterministic grant id a migrated legacy connection gets (idempotent migration).
pub fn legacy_grant_id(tenant: &TenantId, product: Product, seed: &str) -> GrantId {
    let mut h = Sha256::new();
    for part in ["legacy-grant", tenant.as_str(), product.as_str(), seed] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    grant_id_from(&h.finalize()[..13])
}

fn grant_id_from(bytes: &[u8]) -> GrantId {
    let id = format!("grant-{}", hex::encode(bytes));
    GrantId::parse(id).unwrap_or_else(|_| unreachable!("hex ids are valid"))
}

pub(crate) fn grant_sk(id: &GrantId) -> String {
    format!("GRANT#{id}")
}

/// When a grant refreshed at `refreshed_at` is next kept alive.
pub fn keepalive_due_at(refreshed_at: OffsetDateTime) -> OffsetDateTime {
    refreshed_at + KEEPALIVE
}

impl Store {
    /// Store a new grant (never overwrites: grant ids are fresh, or deterministic for a
    /// migration, where an existing one means the migration already ran).
    /// `Ok(false)` if it existed.
    pub async fn create_grant(&self, g: &NewGrant) -> Result<bool, StoreError> {
        let due = keepalive_due_at(g.last_refreshed_at);
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item(PK, attrs::s(tenant_pk(&g.tenant)))
            .item(SK, attrs::s(grant_sk(&g.id)))
            .item("tenant", attrs::s(g.tenant.as_str()))
            .item("grant_id", attrs::s(g.id.as_str()))
            .item("product", attrs::s(g.product.as_str()))
            .item("status", attrs::s(GrantStatus::Active.as_str()))
            .item("scope", attrs::s(&g.scope))
            .item("token_type", attrs::s(&g.token_type))
            .item("access_expires_at", attrs::epoch(g.access_expires_at))
            .item("token_ciphertext", attrs::b(g.envelope.ciphertext.clone()))
            .item("token_key", attrs::b(g.envelope.encrypted_key.clone()))
            .item("envelope_version", attrs::n(g.envelope.version))
            .item("version", attrs::n(1))
            .item("created_at", attrs::epoch(g.last_refreshed_at))
            .item("updated_at", attrs::epoch(g.last_refreshed_at))
            .item("consented_at", attrs::epoch(g.consented_at))
            .item("last_refreshed_at", attrs::epoch(g.last_refreshed_at))
            .item("consecutive_failures", attrs::n(0))
            .item(REFRESH_BUCKET, attrs::s(REFRESH_BUCKET_ACTIVE))
            .item(REFRESH_DUE_AT, attrs::epoch(due))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(until) = g.unattached_until {
            req = req.item(TTL, attrs::epoch(until));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AwsError::new("dynamodb:PutItem(grant)", &e).into()),
        }
    }

    pub async fn get_grant(
        &self,
        tenant: &TenantId,
        id: &GrantId,
    ) -> Result<Option<Grant>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(tenant)))
            .key(SK, attrs::s(grant_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(grant)", &e))?;
        out.item.as_ref().map(grant_from).transpose()
    }

    /// A connection now points to the grant: it is no longer deleted by TTL.
    pub async fn attach_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(tenant)))
            .key(SK, attrs::s(grant_sk(id)))
            .update_expression("REMOVE #ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", TTL)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict("attach grant")),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(attach grant)", &e).into()),
        }
    }

    /// Delete a grant item with its tokens (no connection points to it any more).
    pub async fn delete_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<(), StoreError> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(tenant)))
            .key(SK, attrs::s(grant_sk(id)))
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:DeleteItem(grant)", &e))?;
        Ok(())
    }

    /// Take the refresh lease on `grant` if nobody else holds a live one and the item is still
    /// at the version read. Returns the lease's end, or `None` when someone else holds it or
    /// the item moved on.
    pub async fn try_lease_grant(
        &self,
        grant: &Grant,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let until = now + ttl;
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(&grant.tenant)))
            .key(SK, attrs::s(grant_sk(&grant.id)))
            .update_expression("SET lease_owner = :owner, lease_expires_at = :until")
            .condition_expression(
                "version = :v AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now OR lease_owner = :owner)",
            )
            .expression_attribute_values(":owner", attrs::s(owner))
            .expression_attribute_values(":until", attrs::epoch(until))
            .expression_attribute_values(":now", attrs::epoch(now))
            .expression_attribute_values(":v", attrs::n(grant.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(until)),
            Err(e) if is_conditional_failure(&e) => Ok(None),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(grant lease)", &e).into()),
        }
    }

    /// The schedule's shortcut: take the lease only if the grant is due at `now`, kept alive
    /// (not revoked) and unleased, and return it as leased, in one conditional write.
    /// `Ok(None)` when any of that is not so (the caller then reads it to see why).
    pub async fn lease_grant_if_due(
        &self,
        tenant: &TenantId,
        id: &GrantId,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<Grant>, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(tenant)))
            .key(SK, attrs::s(grant_sk(id)))
            .update_expression("SET lease_owner = :owner, lease_expires_at = :until")
            .condition_expression(
                "attribute_exists(#b) AND #d <= :now AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now)",
            )
            .expression_attribute_names("#b", REFRESH_BUCKET)
            .expression_attribute_names("#d", REFRESH_DUE_AT)
            .expression_attribute_values(":owner", attrs::s(owner))
            .expression_attribute_values(":until", attrs::epoch(now + ttl))
            .expression_attribute_values(":now", attrs::epoch(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.as_ref().map(grant_from).transpose(),
            Err(e) if is_conditional_failure(&e) => Ok(None),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(grant lease if due)", &e).into()),
        }
    }

    /// Store a refreshed pair, only if the item is still at the version read and we still hold
    /// the lease; releases the lease and clears failures. [`StoreError::Conflict`] otherwise.
    pub async fn store_refreshed_grant(
        &self,
        grant: &Grant,
        owner: &str,
        t: &RefreshedTokens,
    ) -> Result<Grant, StoreError> {
        if self.take_injected_failure() {
            return Err(StoreError::Aws(AwsError {
                operation: "dynamodb:UpdateItem(refreshed)",
                code: Some("InjectedFailure".into()),
                detail: "injected by a test".into(),
            }));
        }
        let mut update = attrs::Update::default();
        update.set("token_ciphertext", attrs::b(t.envelope.ciphertext.clone()));
        update.set("token_key", attrs::b(t.envelope.encrypted_key.clone()));
        update.set("envelope_version", attrs::n(t.envelope.version));
        update.set("scope", attrs::s(&t.scope));
        update.set("token_type", attrs::s(&t.token_type));
        update.set("access_expires_at", attrs::epoch(t.access_expires_at));
        update.set("last_refreshed_at", attrs::epoch(t.now));
        update.set("updated_at", attrs::epoch(t.now));
        update.set("consecutive_failures", attrs::n(0));
        update.set("status", attrs::s(GrantStatus::Active.as_str()));
        update.set(REFRESH_DUE_AT, attrs::epoch(keepalive_due_at(t.now)));
        update.increment("version");
        update.remove("status_reason");
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let (v, o, cond) = (
            update.value(attrs::n(grant.version)),
            update.value(attrs::s(owner)),
            update.name("version"),
        );
        let lease = update.name("lease_owner");
        let bucket = update.name(REFRESH_BUCKET);
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&grant.tenant)))
            .key(SK, attrs::s(grant_sk(&grant.id)))
            // A revoked grant (no bucket) never gets tokens back.
            .condition_expression(format!(
                "{cond} = {v} AND {lease} = {o} AND attribute_exists({bucket})"
            ))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => grant_from(&out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("store refreshed tokens"))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(refreshed)", &e).into()),
        }
    }

    /// After a refresh whose result could not be stored: make the grant due at once and its
    /// access token count as expired, so the next caller (or the next scheduled run) refreshes
    /// with the refresh token we sent, which Atlassian still accepts during its reuse leeway.
    /// Releases our lease.
    pub async fn mark_grant_due_now(
        &self,
        grant: &Grant,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(&grant.tenant)))
            .key(SK, attrs::s(grant_sk(&grant.id)))
            .update_expression(
                "SET #d = :now, access_expires_at = :now REMOVE lease_owner, lease_expires_at",
            )
            .condition_expression("attribute_exists(#b) AND lease_owner = :owner")
            .expression_attribute_names("#d", REFRESH_DUE_AT)
            .expression_attribute_names("#b", REFRESH_BUCKET)
            .expression_attribute_values(":now", attrs::epoch(now))
            .expression_attribute_values(":owner", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(grant due)", &e).into()),
        }
    }

    /// Give the lease back without changing anything else (best effort: it also expires).
    pub async fn release_grant_lease(&self, grant: &Grant, owner: &str) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(tenant_pk(&grant.tenant)))
            .key(SK, attrs::s(grant_sk(&grant.id)))
            .update_expression("REMOVE lease_owner, lease_expires_at")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(grant release)", &e).into()),
        }
    }

    /// Count a failed refresh that was not a revocation; after `max_failures` in a row the
    /// status becomes `error` with `reason`. Tokens are left as they are. Releases the lease.
    pub async fn record_grant_failure(
        &self,
        grant: &Grant,
        owner: &str,
        reason: &str,
        max_failures: u32,
        now: OffsetDateTime,
    ) -> Result<Grant, StoreError> {
        let failures = grant.consecutive_failures.saturating_add(1);
        let mut update = attrs::Update::default();
        update.set("consecutive_failures", attrs::n(failures));
        update.set("updated_at", attrs::epoch(now));
        if failures >= max_failures {
            update.set("status", attrs::s(GrantStatus::Error.as_str()));
            update.set("status_reason", attrs::s(reason));
        }
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let (o, lease) = (update.value(attrs::s(owner)), update.name("lease_owner"));
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&grant.tenant)))
            .key(SK, attrs::s(grant_sk(&grant.id)))
            .condition_expression(format!("{lease} = {o}"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => grant_from(&out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("record refresh failure"))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(grant failure)", &e).into()),
        }
    }

    /// The grant is dead: delete its tokens (PRIVACY.md P9, P10), mark it revoked and take it
    /// off the schedule. Unconditional: revocation wins. `Ok(true)` if this call revoked it,
    /// `Ok(false)` if it was revoked already (only the first caller announces it).
    pub async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &GrantId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut update = attrs::Update::default();
        update.set("status", attrs::s(GrantStatus::Revoked.as_str()));
        update.set("status_reason", attrs::s(reason));
        update.set("updated_at", attrs::epoch(now));
        update.increment("version");
        for attr in [
            "token_ciphertext",
            "token_key",
            "envelope_version",
            "access_expires_at",
            "lease_owner",
            "lease_expires_at",
            REFRESH_BUCKET,
            REFRESH_DUE_AT,
        ] {
            update.remove(attr);
        }
        let exists = update.name(PK);
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(tenant)))
            .key(SK, attrs::s(grant_sk(id)))
            .condition_expression(format!("attribute_exists({exists})"))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .as_ref()
                .and_then(|old| old.get("status"))
                .and_then(|v| v.as_s().ok())
                .is_none_or(|old| old != GrantStatus::Revoked.as_str())),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(revoke grant)", &e).into()),
        }
    }

    /// The items due for a keep-alive at `now`, from the refresh-due index (never a scan):
    /// grants by id, and connections written before grants existed (to migrate) by their keys.
    pub async fn due_for_refresh(&self, now: OffsetDateTime) -> Result<Vec<Due>, StoreError> {
        let mut due = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(REFRESH_DUE_INDEX)
                .key_condition_expression("#b = :bucket AND #d <= :now")
                .expression_attribute_names("#b", REFRESH_BUCKET)
                .expression_attribute_names("#d", REFRESH_DUE_AT)
                .expression_attribute_values(":bucket", attrs::s(REFRESH_BUCKET_ACTIVE))
                .expression_attribute_values(":now", attrs::epoch(now))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:Query(refresh-due)", &e))?;
            for item in out.items() {
                let pk = attrs::get_s(item, PK)?;
                let sk = attrs::get_s(item, SK)?;
                let Some(tenant) = pk.strip_prefix("TENANT#") else {
                    continue;
                };
                let tenant = TenantId::parse(tenant).map_err(id_err)?;
                if let Some(g) = sk.strip_prefix("GRANT#") {
                    due.push(Due::Grant(tenant, GrantId::parse(g).map_err(id_err)?));
                } else if let Some(c) = sk.strip_prefix("CONN#") {
                    let id = crate::ids::ConnectionId::parse(c).map_err(id_err)?;
                    due.push(Due::LegacyConnection(tenant, id));
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(due),
            }
        }
    }
}

/// One entry of the refresh-due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Grant(TenantId, GrantId),
    /// A connection item that still holds its own tokens (written before grants existed).
    LegacyConnection(TenantId, crate::ids::ConnectionId),
}

fn id_err(e: crate::ids::InvalidId) -> StoreError {
    StoreError::Malformed(e.to_string())
}

/// Where a grant's sealed tokens sit in an item (shared with legacy connection items).
pub(crate) fn envelope_from(item: &Item) -> Result<Option<Envelope>, StoreError> {
    match (
        attrs::opt_b(item, "token_ciphertext"),
        attrs::opt_b(item, "token_key"),
    ) {
        (Some(ciphertext), Some(encrypted_key)) => Ok(Some(Envelope {
            version: attrs::get_n(item, "envelope_version")?,
            ciphertext,
            encrypted_key,
        })),
        _ => Ok(None),
    }
}

pub(crate) fn grant_from(item: &Item) -> Result<Grant, StoreError> {
    Ok(Grant {
        tenant: TenantId::parse(attrs::get_s(item, "tenant")?).map_err(id_err)?,
        id: GrantId::parse(attrs::get_s(item, "grant_id")?).map_err(id_err)?,
        product: attrs::parse(item, "product")?,
        status: attrs::parse(item, "status")?,
        status_reason: attrs::opt_s(item, "status_reason").map(str::to_owned),
        scope: attrs::opt_s(item, "scope").unwrap_or_default().to_owned(),
        token_type: attrs::opt_s(item, "token_type")
            .unwrap_or_default()
            .to_owned(),
        access_expires_at: attrs::opt_time(item, "access_expires_at"),
        envelope: envelope_from(item)?,
        version: attrs::get_n(item, "version")?,
        created_at: attrs::get_time(item, "created_at")?,
        updated_at: attrs::get_time(item, "updated_at")?,
        consented_at: attrs::get_time(item, "consented_at")?,
        last_refreshed_at: attrs::opt_time(item, "last_refreshed_at"),
        consecutive_failures: attrs::opt_n(item, "consecutive_failures").unwrap_or(0),
        refresh_due_at: attrs::opt_time(item, REFRESH_DUE_AT),
        lease_expires_at: attrs::opt_time(item, "lease_expires_at"),
    })
}

/// A short random owner tag for a lease (never a token: 128 random bits, base64url).
pub fn lease_owner() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_are_never_shaped_like_account_ids() {
        for _ in 0..50 {
            let id = new_grant_id();
            assert_eq!(id.as_str().len(), "grant-".len() + 26);
            assert!(crate::export::redact::find_account_ids(id.as_str()).is_empty());
        }
        let t = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let a = legacy_grant_id(&t, Product::Jira, "conn-1");
        assert_eq!(a, legacy_grant_id(&t, Product::Jira, "conn-1"));
        assert_ne!(a, legacy_grant_id(&t, Product::Confluence, "conn-1"));
    }
}
