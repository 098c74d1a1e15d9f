//! Site choices: when a consent's grant lists several sites and the platform did not name
//! one, the callback shows a chooser page. What the page offers is stored here under a fresh
//! random selection value (only its SHA-256 is stored), single use (one conditional delete),
//! expiring with the authorization it came from. The page posts the selection back with the
//! chosen site ids, so a forged or replayed form finds nothing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::attrs::{self, Item};
use super::schema::{PK, SK, TTL};
use super::states::ConsumeStateError;
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::{GrantId, Product, TenantId};
use crate::secret::{ExposeSecret, Secret};

/// A site the chooser offers: Atlassian's cloud id, URL and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedSite {
    pub cloud_id: String,
    pub url: String,
    pub name: String,
}

/// What a chooser page stands for until the user picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChoice {
    pub tenant: TenantId,
    pub product: Product,
    pub grant_id: GrantId,
    pub return_url: Option<Url>,
    pub sites: Vec<OfferedSite>,
    pub expires_at: OffsetDateTime,
}

fn choice_key(selection: &str) -> String {
    format!(
        "CHOICE#{}",
        hex::encode(Sha256::digest(selection.as_bytes()))
    )
}

impl Store {
    pub async fn put_choice(
        &self,
        selection: &Secret,
        choice: &PendingChoice,
    ) -> Result<(), StoreError> {
        let sites = serde_json::to_string(&choice.sites)
            .map_err(|_| StoreError::Malformed("offered sites".into()))?;
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item(PK, attrs::s(choice_key(selection.expose_secret())))
            .item(SK, attrs::s("CHOICE"))
            .item("tenant", attrs::s(choice.tenant.as_str()))
            .item("product", attrs::s(choice.product.as_str()))
            .item("grant_id", attrs::s(choice.grant_id.as_str()))
            .item("sites", attrs::s(sites))
            .item(TTL, attrs::epoch(choice.expires_at))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(url) = &choice.return_url {
            req = req.item("return_url", attrs::s(url.as_str()));
        }
        req.send()
            .await
            .map_err(|e| AwsError::new("dynamodb:PutItem(choice)", &e))?;
        Ok(())
    }

    /// Delete the choice if it exists and has not expired, returning what it offered.
    pub async fn consume_choice(
        &self,
        selection: &str,
        now: OffsetDateTime,
    ) -> Result<PendingChoice, ConsumeStateError> {
        let item = self
            .consume_once(
                choice_key(selection),
                "CHOICE",
                "dynamodb:DeleteItem(choice)",
                now,
            )
            .await?;
        Ok(choice_from(&item)?)
    }
}

fn choice_from(item: &Item) -> Result<PendingChoice, StoreError> {
    let malformed = |what: &str| StoreError::Malformed(what.into());
    Ok(PendingChoice {
        tenant: TenantId::parse(attrs::get_s(item, "tenant")?).map_err(|_| malformed("tenant"))?,
        product: attrs::parse(item, "product")?,
        grant_id: GrantId::parse(attrs::get_s(item, "grant_id")?)
            .map_err(|_| malformed("grant_id"))?,
        return_url: attrs::opt_s(item, "return_url")
            .map(Url::parse)
            .transpose()
            .map_err(|_| malformed("return_url"))?,
        sites: serde_json::from_str(attrs::get_s(item, "sites")?)
            .map_err(|_| malformed("sites"))?,
        expires_at: attrs::get_time(item, TTL)?,
    })
}
