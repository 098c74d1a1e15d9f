//! The events on the EventBridge bus: `source = "atlassian-connectors"`, `detail-type` = the
//! variant name, `detail` = the JSON below. README's event reference shows examples.

use serde::{Deserialize, Serialize};

use crate::error::AwsError;
use crate::ids::{CloudId, ConnectionId, ConnectorId, JobId, Product, TenantId};

/// Every event we publish carries this source.
pub const SOURCE: &str = "atlassian-connectors";

/// Why a connection was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// Atlassian answered `invalid_grant`: the user removed the app, or the grant expired.
    /// (The only certain sign of revocation: a 401 on a fresh token is a missing scope or a
    /// lost site, see `ConnectionSiteLost`.)
    InvalidGrant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRevoked {
    pub tenant: TenantId,
    pub connection_id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    pub reason: RevocationReason,
    /// RFC 3339.
    pub at: String,
}

/// The grant lives, but Atlassian no longer lists the connection's site for it: the
/// connection is `site_access_lost` until the customer connects the site again. The grant's
/// other connections go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSiteLost {
    pub tenant: TenantId,
    pub connection_id: ConnectionId,
    pub product: Product,
    pub cloud_id: CloudId,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequested {
    pub tenant: TenantId,
    pub connector_id: ConnectorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Export everything (and detect removed items) even if an earlier export completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportContinued {
    pub tenant: TenantId,
    pub job_id: JobId,
    /// The job's connector (absent in events from before issue 16, which still parse): a
    /// retry that finds the job erased sweeps what an invocation killed before its own
    /// clean-up wrote under this connector (shared/src/erase/later.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<ConnectorId>,
}

/// An export finished; its manifest lists every item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCompleted {
    pub tenant: TenantId,
    pub connector_id: ConnectorId,
    pub job_id: JobId,
    pub items: u64,
    pub attachments: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub removed: u64,
    /// S3 key of the manifest.
    pub manifest: String,
}

/// An export stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFailed {
    pub tenant: TenantId,
    pub connector_id: ConnectorId,
    pub job_id: JobId,
    pub reason: String,
}

/// An event we publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ConnectionRevoked(ConnectionRevoked),
    ConnectionSiteLost(ConnectionSiteLost),
    ExportRequested(ExportRequested),
    ExportContinued(ExportContinued),
    ExportCompleted(ExportCompleted),
    ExportFailed(ExportFailed),
}

impl Event {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Event::ConnectionRevoked(_) => "ConnectionRevoked",
            Event::ConnectionSiteLost(_) => "ConnectionSiteLost",
            Event::ExportRequested(_) => "ExportRequested",
            Event::ExportContinued(_) => "ExportContinued",
            Event::ExportCompleted(_) => "ExportCompleted",
            Event::ExportFailed(_) => "ExportFailed",
        }
    }

    pub fn detail(&self) -> Result<String, serde_json::Error> {
        match self {
            Event::ConnectionRevoked(e) => serde_json::to_string(e),
            Event::ConnectionSiteLost(e) => serde_json::to_string(e),
            Event::ExportRequested(e) => serde_json::to_string(e),
            Event::ExportContinued(e) => serde_json::to_string(e),
            Event::ExportCompleted(e) => serde_json::to_string(e),
            Event::ExportFailed(e) => serde_json::to_string(e),
        }
    }
}

/// Publishes to one bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> EventBus {
        EventBus {
            client,
            bus: bus.into(),
        }
    }

    pub async fn publish(&self, event: &Event) -> Result<(), AwsError> {
        let detail = event.detail().map_err(|e| AwsError {
            operation: "events:PutEvents",
            code: None,
            detail: format!("event could not be serialised: {e}"),
        })?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::new("events:PutEvents", &e))?;
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code().map(str::to_owned));
            return Err(AwsError {
                operation: "events:PutEvents",
                detail: format!("entry rejected: {}", code.as_deref().unwrap_or("unknown")),
                code,
            });
        }
        Ok(())
    }
}
