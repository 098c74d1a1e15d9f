//! A site's "not before" time: when Atlassian answered a quota 429 (or a 503 with
//! `Retry-After`) for a site, no job of any tenant, and no token refresh of that site, calls it
//! again before this time (ATLASSIAN.md, Rate limits). One small item per site, expiring a day
//! after the time it holds.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | site wait | `SITE#<cloudId>` | `NOT_BEFORE` |

use time::OffsetDateTime;

use super::attrs;
use super::schema::{PK, SK, TTL};
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::CloudId;

fn pk(cloud: &CloudId) -> String {
    format!("SITE#{cloud}")
}

const SK_NOT_BEFORE: &str = "NOT_BEFORE";

impl Store {
    /// When `cloud` may be called again, if a wait was recorded (possibly already over).
    pub async fn site_not_before(
        &self,
        cloud: &CloudId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(cloud)))
            .key(SK, attrs::s(SK_NOT_BEFORE))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(site)", &e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| attrs::opt_time(i, "not_before")))
    }

    /// Record that `cloud` must not be called before `until`. Only ever moves the time later
    /// (two jobs reporting the same wait, or an older answer arriving last, keep the latest).
    /// Returns the time now stored.
    pub async fn hold_site(
        &self,
        cloud: &CloudId,
        until: OffsetDateTime,
    ) -> Result<OffsetDateTime, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(cloud)))
            .key(SK, attrs::s(SK_NOT_BEFORE))
            .update_expression("SET not_before = :u, #ttl = :ttl")
            .condition_expression("attribute_not_exists(not_before) OR not_before < :u")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":u", attrs::epoch_ceil(until))
            .expression_attribute_values(":ttl", attrs::epoch(until + time::Duration::days(1)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(until),
            Err(e) if super::is_conditional_failure(&e) => {
                Ok(self.site_not_before(cloud).await?.unwrap_or(until))
            }
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(site)", &e).into()),
        }
    }
}
