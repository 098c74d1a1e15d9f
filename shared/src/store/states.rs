//! OAuth states: a random 256-bit value per authorization attempt, single use, 10 minutes.
//!
//! Only a SHA-256 of the state is stored, so a table dump holds nothing an attacker could
//! present to the callback. Consuming is one conditional delete: of two callbacks racing with
//! the same state exactly one wins.

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::attrs::{self, Item};
use super::schema::{PK, SK, TTL};
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::{Product, TenantId};
use crate::secret::{ExposeSecret, Secret};

/// How long a user has to consent.
pub const STATE_LIFETIME: time::Duration = time::Duration::minutes(10);

/// What a state stands for until the callback consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub tenant: TenantId,
    pub product: Product,
    pub return_url: Option<Url>,
    /// The site the platform asked to connect (a site URL or cloud id), if it named one.
    pub site: Option<String>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeStateError {
    /// Never issued, or already used.
    #[error("unknown or already used state")]
    Unknown,
    #[error("expired state")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn state_key(state: &str) -> String {
    format!("STATE#{}", hex::encode(Sha256::digest(state.as_bytes())))
}

impl Store {
    pub async fn put_state(
        &self,
        state: &Secret,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item(PK, attrs::s(state_key(state.expose_secret())))
            .item(SK, attrs::s("STATE"))
            .item("tenant", attrs::s(pending.tenant.as_str()))
            .item("product", attrs::s(pending.product.as_str()))
            .item(TTL, attrs::epoch(pending.expires_at))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(url) = &pending.return_url {
            req = req.item("return_url", attrs::s(url.as_str()));
        }
        if let Some(site) = &pending.site {
            req = req.item("site", attrs::s(site));
        }
        req.send()
            .await
            .map_err(|e| AwsError::new("dynamodb:PutItem(state)", &e))?;
        Ok(())
    }

    /// Delete the state if it exists and has not expired, returning what it stood for.
    pub async fn consume_state(
        &self,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, ConsumeStateError> {
        let item = self
            .consume_once(state_key(state), "STATE", "dynamodb:DeleteItem(state)", now)
            .await?;
        Ok(pending_from(&item)?)
    }

    /// The single-use consume shared by states and site choices: one conditional delete of an
    /// item that exists and has not expired (`#ttl > now`; DynamoDB's TTL sweep is late by up
    /// to days), returning what it held. Of two callers racing for it exactly one wins. An
    /// expired item is removed at once and reported as `Expired`; a missing one as `Unknown`.
    pub(crate) async fn consume_once(
        &self,
        pk: String,
        sk: &'static str,
        operation: &'static str,
        now: OffsetDateTime,
    ) -> Result<Item, ConsumeStateError> {
        let result = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk.clone()))
            .key(SK, attrs::s(sk))
            .condition_expression("attribute_exists(pk) AND #ttl > :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", attrs::epoch(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let e = match result {
            Ok(out) => return out.attributes.ok_or(ConsumeStateError::Unknown),
            Err(e) => e,
        };
        let expired = e
            .as_service_error()
            .and_then(|se| match se {
                aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c) => Some(c),
                _ => None,
            })
            .map(|c| c.item().is_some_and(|i| !i.is_empty()));
        match expired {
            Some(true) => {
                // Expired: remove it now rather than wait for TTL (best effort; TTL remains).
                let _ = self
                    .ddb
                    .delete_item()
                    .table_name(&self.table)
                    .key(PK, attrs::s(pk))
                    .key(SK, attrs::s(sk))
                    .send()
                    .await;
                Err(ConsumeStateError::Expired)
            }
            Some(false) => Err(ConsumeStateError::Unknown),
            None => Err(StoreError::from(AwsError::new(operation, &e)).into()),
        }
    }
}

fn pending_from(item: &Item) -> Result<PendingAuthorization, StoreError> {
    let tenant = TenantId::parse(attrs::get_s(item, "tenant")?)
        .map_err(|e| StoreError::Malformed(e.to_string()))?;
    let return_url = attrs::opt_s(item, "return_url")
        .map(Url::parse)
        .transpose()
        .map_err(|_| StoreError::Malformed("return_url".into()))?;
    Ok(PendingAuthorization {
        tenant,
        product: attrs::parse(item, "product")?,
        return_url,
        site: attrs::opt_s(item, "site").map(str::to_owned),
        expires_at: attrs::get_time(item, TTL)?,
    })
}
