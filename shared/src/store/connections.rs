//! Connections: one per (tenant, product, Atlassian site), holding exactly what PRIVACY.md P1
//! and P3 allow — the token envelope, scope, token type, expiry, site id and URL, product,
//! status, timestamps — and a `version` that every token write is conditioned on.

use std::fmt;

use aws_sdk_dynamodb::types::ReturnValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::attrs::{self, Item};
use super::schema::{PK, REFRESH_BUCKET, REFRESH_DUE_AT, REFRESH_DUE_INDEX, SK};
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::{CloudId, ConnectionId, Product, TenantId};
use crate::vault::{Envelope, EnvelopeContext};

/// Every attribute a connection item may have (PRIVACY.md P1). A test reads stored items and
/// fails if one carries anything else.
pub const CONNECTION_ATTRIBUTES: &[&str] = &[
    PK,
    SK,
    "tenant",
    "connection_id",
    "product",
    "cloud_id",
    "site_url",
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
];

/// The one GSI bucket connections are filed under while they can be due for a refresh.
pub const REFRESH_BUCKET_ACTIVE: &str = "active";

/// How long before the access token expires a connection becomes due for a refresh.
pub const REFRESH_MARGIN: time::Duration = time::Duration::minutes(15);

/// Longest a connection goes without a refresh even if nobody needs its access token:
/// Atlassian's refresh tokens die after 90 days unused, so this is well inside that.
pub const KEEPALIVE: time::Duration = time::Duration::days(7);

/// When a connection refreshed at `refreshed_at` is next due: before its access token expires,
/// and at the latest after the keep-alive period.
pub fn refresh_due_at(
    access_expires_at: OffsetDateTime,
    refreshed_at: OffsetDateTime,
) -> OffsetDateTime {
    (access_expires_at - REFRESH_MARGIN).min(refreshed_at + KEEPALIVE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    /// The grant was revoked at Atlassian (or expired): tokens deleted, re-consent needed.
    Revoked,
    /// Refreshes keep failing for a reason that is not revocation.
    Error,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Revoked => "revoked",
            ConnectionStatus::Error => "error",
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectionStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "active" => Ok(ConnectionStatus::Active),
            "revoked" => Ok(ConnectionStatus::Revoked),
            "error" => Ok(ConnectionStatus::Error),
            _ => Err(()),
        }
    }
}

/// A stored connection. Tokens stay sealed in `envelope` until the vault opens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub tenant: TenantId,
    pub id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    pub site_url: String,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: Option<OffsetDateTime>,
    pub envelope: Option<Envelope>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the user last consented; Atlassian's refresh tokens die 365 days after it.
    pub consented_at: OffsetDateTime,
    pub last_refreshed_at: Option<OffsetDateTime>,
    pub consecutive_failures: u32,
    /// When the refresh schedule should next refresh it (absent once revoked).
    pub refresh_due_at: Option<OffsetDateTime>,
}

impl Connection {
    pub fn envelope_context(&self) -> EnvelopeContext {
        EnvelopeContext {
            tenant: self.tenant.clone(),
            connection: self.id.clone(),
            product: self.product,
        }
    }

    /// When the user must consent again at the latest (Atlassian's absolute 365-day limit).
    pub fn reconsent_due_at(&self) -> OffsetDateTime {
        self.consented_at + time::Duration::days(365)
    }
}

/// What a completed consent writes for one granted site.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub tenant: TenantId,
    pub id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    pub site_url: Url,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: OffsetDateTime,
    pub envelope: Envelope,
    pub now: OffsetDateTime,
}

fn conn_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

fn conn_sk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

/// The connection id for a (tenant, product, site): deterministic, so consenting again to the
/// same site updates the existing connection instead of adding a second one.
pub fn connection_id(tenant: &TenantId, product: Product, cloud_id: &CloudId) -> ConnectionId {
    let mut h = Sha256::new();
    for part in [tenant.as_str(), product.as_str(), cloud_id.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    // 26 hex digits, not 24: a 24-hex token is the shape of a legacy Atlassian account id,
    // and the account-id scanner must never mistake our own ids for one.
    let id = format!("conn-{}", &hex::encode(h.finalize())[..26]);
    // 31 characters of [a-z0-9-]: always a valid id.
    ConnectionId::parse(id).unwrap_or_else(|_| unreachable!("hex ids are valid"))
}

impl Store {
    /// Create the connection, or replace its tokens if it exists (a new consent): status back
    /// to active, version incremented, failures cleared.
    pub async fn upsert_connection(&self, c: &NewConnection) -> Result<Connection, StoreError> {
        let due = refresh_due_at(c.access_expires_at, c.now);
        let set = [
            ("tenant", attrs::s(c.tenant.as_str())),
            ("connection_id", attrs::s(c.id.as_str())),
            ("product", attrs::s(c.product.as_str())),
            ("cloud_id", attrs::s(c.cloud_id.as_str())),
            ("site_url", attrs::s(c.site_url.as_str())),
            ("status", attrs::s(ConnectionStatus::Active.as_str())),
            ("scope", attrs::s(&c.scope)),
            ("token_type", attrs::s(&c.token_type)),
            ("access_expires_at", attrs::epoch(c.access_expires_at)),
            ("token_ciphertext", attrs::b(c.envelope.ciphertext.clone())),
            ("token_key", attrs::b(c.envelope.encrypted_key.clone())),
            ("envelope_version", attrs::n(c.envelope.version)),
            ("updated_at", attrs::epoch(c.now)),
            ("consented_at", attrs::epoch(c.now)),
            ("last_refreshed_at", attrs::epoch(c.now)),
            ("consecutive_failures", attrs::n(0)),
            (REFRESH_BUCKET, attrs::s(REFRESH_BUCKET_ACTIVE)),
            (REFRESH_DUE_AT, attrs::epoch(due)),
        ];
        let mut update = attrs::Update::default();
        for (name, value) in set {
            update.set(name, value);
        }
        update.set_if_absent("created_at", attrs::epoch(c.now));
        update.increment("version");
        update.remove("status_reason");
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let out = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(conn_pk(&c.tenant)))
            .key(SK, attrs::s(conn_sk(&c.id)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:UpdateItem(connection)", &e))?;
        let item = out
            .attributes
            .ok_or_else(|| StoreError::Malformed("no attributes returned".into()))?;
        connection_from(&item)
    }

    pub async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(conn_pk(tenant)))
            .key(SK, attrs::s(conn_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(connection)", &e))?;
        out.item.as_ref().map(connection_from).transpose()
    }

    pub async fn list_connections(&self, tenant: &TenantId) -> Result<Vec<Connection>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :conn)")
                .expression_attribute_values(":pk", attrs::s(conn_pk(tenant)))
                .expression_attribute_values(":conn", attrs::s("CONN#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::new("dynamodb:Query(connections)", &e))?;
            for item in out.items() {
                found.push(connection_from(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }
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

fn is_conditional_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)
        == Some("ConditionalCheckFailedException")
}

impl Store {
    /// Take the short refresh lease on `conn` if nobody else holds it and the item is still at
    /// the version read. `Ok(false)` when another refresher holds it or the item moved on.
    pub async fn try_lease(
        &self,
        conn: &Connection,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<bool, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .update_expression("SET lease_owner = :owner, lease_expires_at = :until")
            .condition_expression(
                "version = :v AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now OR lease_owner = :owner)",
            )
            .expression_attribute_values(":owner", attrs::s(owner))
            .expression_attribute_values(":until", attrs::epoch(now + ttl))
            .expression_attribute_values(":now", attrs::epoch(now))
            .expression_attribute_values(":v", attrs::n(conn.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(lease)", &e).into()),
        }
    }

    /// The schedule's shortcut: take the refresh lease on a connection only if it is due at
    /// `now`, on the schedule (not revoked) and nobody holds the lease, and return it as
    /// leased, in one conditional write instead of a read and a write. `Ok(None)` when any of
    /// that is not so (the caller then reads it to see why).
    pub async fn lease_if_due(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<Connection>, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(conn_pk(tenant)))
            .key(SK, attrs::s(conn_sk(id)))
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
            Ok(out) => out.attributes.as_ref().map(connection_from).transpose(),
            Err(e) if is_conditional_failure(&e) => Ok(None),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(lease if due)", &e).into()),
        }
    }

    /// Store a refreshed pair, only if the item is still at the version read and we still hold
    /// the lease; releases the lease and clears failures. [`StoreError::Conflict`] otherwise.
    pub async fn store_refreshed(
        &self,
        conn: &Connection,
        owner: &str,
        t: &RefreshedTokens,
    ) -> Result<Connection, StoreError> {
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
        update.set("status", attrs::s(ConnectionStatus::Active.as_str()));
        update.set(
            REFRESH_DUE_AT,
            attrs::epoch(refresh_due_at(t.access_expires_at, t.now)),
        );
        update.increment("version");
        update.remove("status_reason");
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let (v, o, cond) = (
            update.value(attrs::n(conn.version)),
            update.value(attrs::s(owner)),
            update.name("version"),
        );
        let lease = update.name("lease_owner");
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .condition_expression(format!("{cond} = {v} AND {lease} = {o}"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => connection_from(&out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("store refreshed tokens"))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(refreshed)", &e).into()),
        }
    }

    /// Make the connection due at once (after a refresh whose result could not be stored, so
    /// the rotated-out refresh token is retried within Atlassian's reuse leeway).
    pub async fn mark_due_now(
        &self,
        conn: &Connection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .update_expression("SET #d = :now")
            .condition_expression("attribute_exists(#b)")
            .expression_attribute_names("#d", REFRESH_DUE_AT)
            .expression_attribute_names("#b", REFRESH_BUCKET)
            .expression_attribute_values(":now", attrs::epoch(now))
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:UpdateItem(due)", &e))?;
        Ok(())
    }

    /// Give the lease back without changing anything else (best effort: it also expires).
    pub async fn release_lease(&self, conn: &Connection, owner: &str) -> Result<(), StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .update_expression("REMOVE lease_owner, lease_expires_at")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(release)", &e).into()),
        }
    }

    /// Count a failed refresh that was not a revocation; after `max_failures` in a row the
    /// status becomes `error` with `reason`. Tokens are left as they are. Releases the lease.
    pub async fn record_failure(
        &self,
        conn: &Connection,
        owner: &str,
        reason: &str,
        max_failures: u32,
        now: OffsetDateTime,
    ) -> Result<Connection, StoreError> {
        let failures = conn.consecutive_failures.saturating_add(1);
        let mut update = attrs::Update::default();
        update.set("consecutive_failures", attrs::n(failures));
        update.set("updated_at", attrs::epoch(now));
        if failures >= max_failures {
            update.set("status", attrs::s(ConnectionStatus::Error.as_str()));
            update.set("status_reason", attrs::s(reason));
        }
        update.remove("lease_owner");
        update.remove("lease_expires_at");
        let (o, lease) = (update.value(attrs::s(owner)), update.name("lease_owner"));
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .condition_expression(format!("{lease} = {o}"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => connection_from(&out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("record refresh failure"))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(failure)", &e).into()),
        }
    }

    /// The grant is dead: delete the token envelope (PRIVACY.md P9, P10), mark the connection
    /// revoked and take it off the refresh schedule. Unconditional: revocation wins.
    /// `Ok(true)` if this call revoked it, `Ok(false)` if it was revoked already (two callers
    /// racing, e.g. the schedule's `invalid_grant` and an export's 401: only the first
    /// announces it).
    pub async fn mark_revoked(
        &self,
        conn: &Connection,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut update = attrs::Update::default();
        update.set("status", attrs::s(ConnectionStatus::Revoked.as_str()));
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
            .key(PK, attrs::s(conn_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
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
                .is_none_or(|old| old != ConnectionStatus::Revoked.as_str())),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("mark revoked: connection is gone"))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(revoke)", &e).into()),
        }
    }

    /// The connections due for a refresh at `now`, from the refresh-due index (never a scan).
    pub async fn due_connections(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, ConnectionId)>, StoreError> {
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
                let (Some(tenant), Some(id)) =
                    (pk.strip_prefix("TENANT#"), sk.strip_prefix("CONN#"))
                else {
                    continue;
                };
                due.push((
                    TenantId::parse(tenant).map_err(id_err)?,
                    ConnectionId::parse(id).map_err(id_err)?,
                ));
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(due),
            }
        }
    }
}

fn id_err(e: crate::ids::InvalidId) -> StoreError {
    StoreError::Malformed(e.to_string())
}

pub(crate) fn connection_from(item: &Item) -> Result<Connection, StoreError> {
    let envelope = match (
        attrs::opt_b(item, "token_ciphertext"),
        attrs::opt_b(item, "token_key"),
    ) {
        (Some(ciphertext), Some(encrypted_key)) => Some(Envelope {
            version: attrs::get_n(item, "envelope_version")?,
            ciphertext,
            encrypted_key,
        }),
        _ => None,
    };
    Ok(Connection {
        tenant: TenantId::parse(attrs::get_s(item, "tenant")?).map_err(id_err)?,
        id: ConnectionId::parse(attrs::get_s(item, "connection_id")?).map_err(id_err)?,
        product: attrs::parse(item, "product")?,
        cloud_id: CloudId::parse(attrs::get_s(item, "cloud_id")?).map_err(id_err)?,
        site_url: attrs::get_s(item, "site_url")?.to_owned(),
        status: attrs::parse(item, "status")?,
        status_reason: attrs::opt_s(item, "status_reason").map(str::to_owned),
        scope: attrs::opt_s(item, "scope").unwrap_or_default().to_owned(),
        token_type: attrs::opt_s(item, "token_type")
            .unwrap_or_default()
            .to_owned(),
        access_expires_at: attrs::opt_time(item, "access_expires_at"),
        envelope,
        version: attrs::get_n(item, "version")?,
        created_at: attrs::get_time(item, "created_at")?,
        updated_at: attrs::get_time(item, "updated_at")?,
        consented_at: attrs::get_time(item, "consented_at")?,
        last_refreshed_at: attrs::opt_time(item, "last_refreshed_at"),
        consecutive_failures: attrs::opt_n(item, "consecutive_failures").unwrap_or(0),
        refresh_due_at: attrs::opt_time(item, REFRESH_DUE_AT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_stable_and_distinct() {
        let t = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let c = CloudId::parse("site-1").unwrap_or_else(|e| panic!("{e}"));
        let a = connection_id(&t, Product::Jira, &c);
        assert_eq!(a, connection_id(&t, Product::Jira, &c));
        assert_ne!(a, connection_id(&t, Product::Confluence, &c));
        assert!(a.as_str().starts_with("conn-") && a.as_str().len() == 31);
        assert!(crate::export::redact::find_account_ids(a.as_str()).is_empty());
    }
}
