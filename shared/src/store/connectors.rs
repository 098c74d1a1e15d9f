//! Connectors: what to export from a connection (product, JQL or CQL, options) and the
//! incremental watermark. One running job per connector at a time (`active_job`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::attrs::{self, Item};
use super::schema::{PK, SK};
use super::{Store, StoreError};
use crate::error::AwsError;
use crate::ids::{ConnectionId, ConnectorId, JobId, Product, TenantId};

/// How an export behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorOptions {
    /// Download attachments of exported items.
    pub attachments: bool,
    /// Fetch every comment (Jira search returns at most 20).
    pub all_comments: bool,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions {
            attachments: true,
            all_comments: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub tenant: TenantId,
    pub id: ConnectorId,
    pub connection_id: ConnectionId,
    pub product: Product,
    /// JQL (Jira) or CQL (Confluence), validated when set.
    pub query: String,
    pub options: ConnectorOptions,
    /// Items updated before this were exported by an earlier completed job.
    pub watermark: Option<OffsetDateTime>,
    /// The job that is running now, if any (claimed when the export is requested).
    pub active_job: Option<JobId>,
    /// When `active_job` was claimed.
    pub active_job_at: Option<OffsetDateTime>,
    pub last_job: Option<JobId>,
    /// The last completed full (non-incremental) job, whose id set deletion detection compares to.
    pub last_full_job: Option<JobId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub(crate) fn pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

fn sk(id: &ConnectorId) -> String {
    format!("CONNECTOR#{id}")
}

/// The connector item's key (erase deletes it by key).
pub(crate) fn connector_key(tenant: &TenantId, id: &ConnectorId) -> (String, String) {
    (pk(tenant), sk(id))
}

fn parse_id<T>(r: Result<T, crate::ids::InvalidId>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Malformed(e.to_string()))
}

fn connector_from(item: &Item) -> Result<Connector, StoreError> {
    let opt_job = |name: &str| {
        attrs::opt_s(item, name)
            .map(JobId::parse)
            .transpose()
            .map_err(|e| StoreError::Malformed(e.to_string()))
    };
    Ok(Connector {
        tenant: parse_id(TenantId::parse(attrs::get_s(item, "tenant")?))?,
        id: parse_id(ConnectorId::parse(attrs::get_s(item, "connector_id")?))?,
        connection_id: parse_id(ConnectionId::parse(attrs::get_s(item, "connection_id")?))?,
        product: attrs::parse(item, "product")?,
        query: attrs::get_s(item, "query")?.to_owned(),
        options: attrs::opt_s(item, "options")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| StoreError::Malformed("options".into()))?
            .unwrap_or_default(),
        watermark: attrs::opt_time(item, "watermark"),
        active_job: opt_job("active_job")?,
        active_job_at: attrs::opt_time(item, "active_job_at"),
        last_job: opt_job("last_job")?,
        last_full_job: opt_job("last_full_job")?,
        created_at: attrs::get_time(item, "created_at")?,
        updated_at: attrs::get_time(item, "updated_at")?,
    })
}

/// How long a claimed job that has not started yet (its `ExportRequested` not yet picked up)
/// keeps the connector's slot; after that the claim is taken to be lost.
pub const UNSTARTED_CLAIM_TTL: time::Duration = time::Duration::minutes(15);

impl Store {
    /// Whether `holder`, the connector's claimed job, still holds the slot at `now`: its job
    /// is running or waiting, or it was claimed moments ago and has not started yet.
    pub async fn holds_slot(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        holder: &JobId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if let Some(job) = self.get_job(tenant, holder).await? {
            return Ok(job.status.is_live());
        }
        let claimed_at = self
            .get_connector(tenant, id)
            .await?
            .filter(|c| c.active_job.as_ref() == Some(holder))
            .and_then(|c| c.active_job_at);
        Ok(claimed_at.is_some_and(|at| now - at < UNSTARTED_CLAIM_TTL))
    }

    /// Create or replace a connector's definition (keeps its watermark and job pointers unless
    /// the query changed, in which case the next export is a full one).
    pub async fn put_connector(&self, c: &Connector) -> Result<Connector, StoreError> {
        let existing = self.get_connector(&c.tenant, &c.id).await?;
        let query_changed = existing
            .as_ref()
            .is_some_and(|e| e.query != c.query || e.connection_id != c.connection_id);
        let options =
            serde_json::to_string(&c.options).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let mut update = attrs::Update::default();
        update.set("tenant", attrs::s(c.tenant.as_str()));
        update.set("connector_id", attrs::s(c.id.as_str()));
        update.set("connection_id", attrs::s(c.connection_id.as_str()));
        update.set("product", attrs::s(c.product.as_str()));
        update.set("query", attrs::s(&c.query));
        update.set("options", attrs::s(options));
        update.set("updated_at", attrs::epoch(c.updated_at));
        update.set_if_absent("created_at", attrs::epoch(c.created_at));
        if query_changed {
            update.remove("watermark");
            update.remove("last_full_job");
        }
        let out = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(pk(&c.tenant)))
            .key(SK, attrs::s(sk(&c.id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:UpdateItem(connector)", &e))?;
        connector_from(&out.attributes.unwrap_or_default())
    }

    pub async fn get_connector(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
    ) -> Result<Option<Connector>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(tenant)))
            .key(SK, attrs::s(sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("dynamodb:GetItem(connector)", &e))?;
        out.item.as_ref().map(connector_from).transpose()
    }

    /// Make `job` the connector's running job, unless another job is running. Returns the job
    /// that holds the slot (ours if we got it).
    pub async fn claim_active_job(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        job: &JobId,
        now: OffsetDateTime,
    ) -> Result<Option<JobId>, StoreError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, attrs::s(pk(tenant)))
            .key(SK, attrs::s(sk(id)))
            .update_expression("SET active_job = :job, last_job = :job, active_job_at = :now")
            .expression_attribute_values(":now", attrs::epoch(now))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(active_job) OR active_job = :job)",
            )
            .expression_attribute_values(":job", attrs::s(job.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(job.clone())),
            Err(e) if super::is_conditional_failure(&e) => Ok(self
                .get_connector(tenant, id)
                .await?
                .and_then(|c| c.active_job)),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(claim job)", &e).into()),
        }
    }

    /// A job ended: free the slot; on success move the watermark (and remember a full run),
    /// but only if the connector still selects what the job exported (`query`, its snapshot):
    /// a query changed during the run makes the next run a full one.
    pub async fn finish_active_job(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        job: &JobId,
        completed: Option<(OffsetDateTime, bool)>,
        query: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some((watermark, full)) = completed {
            let mut update = attrs::Update::default();
            update.remove("active_job");
            update.remove("active_job_at");
            update.set("watermark", attrs::epoch(watermark));
            if full {
                update.set("last_full_job", attrs::s(job.as_str()));
            }
            let (active, j) = (
                update.name("active_job"),
                update.value(attrs::s(job.as_str())),
            );
            let mut cond = format!("{active} = {j}");
            if let Some(q) = query {
                let (qn, qv) = (update.name("query"), update.value(attrs::s(q)));
                cond.push_str(&format!(" AND {qn} = {qv}"));
            }
            let result = update
                .apply(self.ddb.update_item().table_name(&self.table))
                .key(PK, attrs::s(pk(tenant)))
                .key(SK, attrs::s(sk(id)))
                .condition_expression(cond)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if super::is_conditional_failure(&e) => {}
                Err(e) => return Err(AwsError::new("dynamodb:UpdateItem(finish job)", &e).into()),
            }
        }
        let mut update = attrs::Update::default();
        update.remove("active_job");
        update.remove("active_job_at");
        let (active, j) = (
            update.name("active_job"),
            update.value(attrs::s(job.as_str())),
        );
        let result = update
            .apply(self.ddb.update_item().table_name(&self.table))
            .key(PK, attrs::s(pk(tenant)))
            .key(SK, attrs::s(sk(id)))
            .condition_expression(format!("{active} = {j}"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if super::is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::new("dynamodb:UpdateItem(finish job)", &e).into()),
        }
    }
}
