//! Connections: one per (tenant, product, Atlassian site the customer chose), pointing to the
//! grant whose tokens reach that site. A connection holds no token: what PRIVACY.md P3 allows —
//! site id and URL (and the site's name), product, status, timestamps.
//!
//! Connections written before grants existed still carry their own token envelope until they
//! are migrated (`crate::vault::migrate`); [`Connection::legacy`] exposes it for that alone.

use std::fmt;

use aws_sdk_dynamodb::types::ReturnValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::attrs::{self, Item};
use super::grants::envelope_from;
use super::schema::{PK, REFRESH_BUCKET, REFRESH_DUE_AT, SK};
use super::{Store, StoreError, is_conditional_failure, tenant_pk};
use crate::error::AwsError;
use crate::ids::{CloudId, ConnectionId, GrantId, Product, TenantId};
use crate::vault::{Envelope, EnvelopeContext, EnvelopeOwner};

/// Every attribute a connection item may have (PRIVACY.md P1, P3). A test reads stored items
/// and fails if one carries anything else.
pub const CONNECTION_ATTRIBUTES: &[&str] = &[
    PK,
    SK,
    "tenant",
    "connection_id",
    "product",
    "cloud_id",
    "site_url",
    "site_name",
    "grant_id",
    "status",
    "status_reason",
    "version",
    "created_at",
    "updated_at",
    "connected_at",
];

/// What a connection item held before grants existed, besides [`CONNECTION_ATTRIBUTES`]; the
/// migration removes all of them.
pub const LEGACY_TOKEN_ATTRIBUTES: &[&str] = &[
    "scope",
    "token_type",
    "access_expires_at",
    "token_ciphertext",
    "token_key",
    "envelope_version",
    "consented_at",
    "last_refreshed_at",
    "consecutive_failures",
    "lease_owner",
    "lease_expires_at",
    REFRESH_BUCKET,
    REFRESH_DUE_AT,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    /// The grant lives, but Atlassian no longer lists this site for it (the site left the
    /// grant, or the app was removed from that site only). Re-consent for the site restores it.
    SiteAccessLost,
    /// The grant was revoked at Atlassian (or expired): its tokens are deleted.
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::SiteAccessLost => "site_access_lost",
            ConnectionStatus::Revoked => "revoked",
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
            "site_access_lost" => Ok(ConnectionStatus::SiteAccessLost),
            "revoked" => Ok(ConnectionStatus::Revoked),
            // Before grants existed, refresh failures were kept on the connection; they now
            // live on the grant, which the migration creates with a clean slate.
            "error" => Ok(ConnectionStatus::Active),
            _ => Err(()),
        }
    }
}

/// The tokens of a connection written before grants existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTokens {
    pub envelope: Envelope,
    pub scope: String,
    pub token_type: String,
    pub access_expires_at: Option<OffsetDateTime>,
    pub consented_at: OffsetDateTime,
    pub last_refreshed_at: Option<OffsetDateTime>,
}

/// A stored connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub tenant: TenantId,
    pub id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    pub site_url: String,
    pub site_name: Option<String>,
    /// The grant whose tokens reach this site (`None` only before migration, or for a legacy
    /// connection revoked before grants existed).
    pub grant_id: Option<GrantId>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the customer last chose this site in a consent.
    pub connected_at: OffsetDateTime,
    /// Tokens of a not yet migrated connection (see the module docs).
    pub legacy: Option<LegacyTokens>,
}

impl Connection {
    /// The encryption context of a legacy connection's own envelope.
    pub fn legacy_envelope_context(&self) -> EnvelopeContext {
        EnvelopeContext {
            tenant: self.tenant.clone(),
            owner: EnvelopeOwner::LegacyConnection(self.id.clone()),
            product: self.product,
        }
    }
}

/// What a consent writes for one chosen site.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub tenant: TenantId,
    pub id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    pub site_url: Url,
    pub site_name: Option<String>,
    pub grant_id: GrantId,
    pub now: OffsetDateTime,
}

/// A stored connection, and the grant it pointed to before (a newer consent supersedes it).
#[derive(Debug, Clone)]
pub struct Upserted {
    pub connection: Connection,
    pub previous_grant: Option<GrantId>,
}

pub(crate) fn conn_sk(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

/// The connection id for a (tenant, product, site): deterministic, so consenting again to the
/// same site updates the existing connection (it keeps its id) instead of adding a second one.
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
    /// Create the connection, or point an existing one at a new grant (a new consent): status
    /// back to active, version incremented, anything a legacy item held removed.
    pub async fn upsert_connection(&self, c: &NewConnection) -> Result<Upserted, StoreError> {
        let previous_grant = self
            .get_connection(&c.tenant, &c.id)
            .await?
            .and_then(|old| old.grant_id)
            .filter(|old| *old != c.grant_id);
        let mut update = attrs::Update::default();
        update.set("tenant", attrs::s(c.tenant.as_str()));
        update.set("connection_id", attrs::s(c.id.as_str()));
        update.set("product", attrs::s(c.product.as_str()));
        update.set("cloud_id", attrs::s(c.cloud_id.as_str()));
        update.set("site_url", attrs::s(c.site_url.as_str()));
        update.set("grant_id", attrs::s(c.grant_id.as_str()));
        update.set("status", attrs::s(ConnectionStatus::Active.as_str()));
        update.set("updated_at", attrs::epoch(c.now));
        update.set("connected_at", attrs::epoch(c.now));
        update.set_if_absent("created_at", attrs::epoch(c.now));
        match &c.site_name {
            Some(name) => update.set("site_name", attrs::s(name)),
            None => update.remove("site_name"),
        }
        update.increment("version");
        update.remove("status_reason");
        for attr in LEGACY_TOKEN_ATTRIBUTES {
            update.remove(attr);
        }
        let out = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&c.tenant)))
            .key(SK, attrs::s(conn_sk(&c.id)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:UpdateItem(connection)", &e))?;
        let item = out
            .attributes
            .ok_or_else(|| StoreError::Malformed("no attributes returned".into()))?;
        let connection = connection_from(&item)?;
        Ok(Upserted {
            connection,
            previous_grant,
        })
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
            .key(PK, attrs::s(tenant_pk(tenant)))
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
                .expression_attribute_values(":pk", attrs::s(tenant_pk(tenant)))
                .expression_attribute_values(":conn", attrs::s("CONN#"))
                .consistent_read(true)
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

    /// The tenant's connections that point to `grant`.
    pub async fn connections_of_grant(
        &self,
        tenant: &TenantId,
        grant: &GrantId,
    ) -> Result<Vec<Connection>, StoreError> {
        Ok(self
            .list_connections(tenant)
            .await?
            .into_iter()
            .filter(|c| c.grant_id.as_ref() == Some(grant))
            .collect())
    }

    /// Set a connection's status, only while it still points to `grant` and is not already in
    /// that status. `Ok(true)` if this call changed it (the caller then announces it).
    pub async fn set_connection_status(
        &self,
        conn: &Connection,
        grant: &GrantId,
        status: ConnectionStatus,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut update = attrs::Update::default();
        update.set("status", attrs::s(status.as_str()));
        update.set("status_reason", attrs::s(reason));
        update.set("updated_at", attrs::epoch(now));
        update.increment("version");
        let (g, gv) = (
            update.name("grant_id"),
            update.value(attrs::s(grant.as_str())),
        );
        let (st, sv) = (
            update.name("status"),
            update.value(attrs::s(status.as_str())),
        );
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .condition_expression(format!("{g} = {gv} AND {st} <> {sv}"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(connection status)", &e).into()),
        }
    }

    /// Migration: point a legacy connection (still at the version read, with no grant yet) at
    /// `grant` and remove its own tokens. `Ok(false)` if someone else moved it on first.
    pub async fn attach_legacy_connection(
        &self,
        conn: &Connection,
        grant: &GrantId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut update = attrs::Update::default();
        update.set("grant_id", attrs::s(grant.as_str()));
        update.set("updated_at", attrs::epoch(now));
        update.set("connected_at", attrs::epoch(conn.connected_at));
        update.increment("version");
        for attr in LEGACY_TOKEN_ATTRIBUTES {
            update.remove(attr);
        }
        let (v, vv) = (update.name("version"), update.value(attrs::n(conn.version)));
        let g = update.name("grant_id");
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .condition_expression(format!("{v} = {vv} AND attribute_not_exists({g})"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(migrate connection)", &e).into()),
        }
    }

    /// Migration of a legacy connection that was revoked before grants existed: no tokens to
    /// move; drop whatever token bookkeeping it still has. Best effort, idempotent.
    pub async fn strip_legacy_attributes(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut update = attrs::Update::default();
        for attr in LEGACY_TOKEN_ATTRIBUTES {
            update.remove(attr);
        }
        update.set("updated_at", attrs::epoch(conn.updated_at));
        update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(tenant_pk(&conn.tenant)))
            .key(SK, attrs::s(conn_sk(&conn.id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if is_conditional_failure(&e) {
                    Ok(())
                } else {
                    Err(AwsError::new("dynamodb:UpdateItem(strip legacy)", &e).into())
                }
            })
    }
}

fn id_err(e: crate::ids::InvalidId) -> StoreError {
    StoreError::Malformed(e.to_string())
}

pub(crate) fn connection_from(item: &Item) -> Result<Connection, StoreError> {
    let legacy = match envelope_from(item)? {
        Some(envelope) => Some(LegacyTokens {
            envelope,
            scope: attrs::opt_s(item, "scope").unwrap_or_default().to_owned(),
            token_type: attrs::opt_s(item, "token_type")
                .unwrap_or_default()
                .to_owned(),
            access_expires_at: attrs::opt_time(item, "access_expires_at"),
            consented_at: attrs::opt_time(item, "consented_at")
                .map_or_else(|| attrs::get_time(item, "created_at"), Ok)?,
            last_refreshed_at: attrs::opt_time(item, "last_refreshed_at"),
        }),
        None => None,
    };
    let connected_at = match attrs::opt_time(item, "connected_at") {
        Some(t) => t,
        None => attrs::opt_time(item, "consented_at")
            .map_or_else(|| attrs::get_time(item, "created_at"), Ok)?,
    };
    Ok(Connection {
        tenant: TenantId::parse(attrs::get_s(item, "tenant")?).map_err(id_err)?,
        id: ConnectionId::parse(attrs::get_s(item, "connection_id")?).map_err(id_err)?,
        product: attrs::parse(item, "product")?,
        cloud_id: CloudId::parse(attrs::get_s(item, "cloud_id")?).map_err(id_err)?,
        site_url: attrs::get_s(item, "site_url")?.to_owned(),
        site_name: attrs::opt_s(item, "site_name").map(str::to_owned),
        grant_id: attrs::opt_s(item, "grant_id")
            .map(GrantId::parse)
            .transpose()
            .map_err(id_err)?,
        status: attrs::parse(item, "status")?,
        status_reason: attrs::opt_s(item, "status_reason").map(str::to_owned),
        version: attrs::get_n(item, "version")?,
        created_at: attrs::get_time(item, "created_at")?,
        updated_at: attrs::get_time(item, "updated_at")?,
        connected_at,
        legacy,
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

    #[test]
    fn legacy_error_status_reads_as_active_and_unknown_is_refused() {
        assert_eq!("error".parse(), Ok(ConnectionStatus::Active));
        assert_eq!(
            "site_access_lost".parse(),
            Ok(ConnectionStatus::SiteAccessLost)
        );
        assert!("paused".parse::<ConnectionStatus>().is_err());
    }
}
