//! The export function: EventBridge delivers `ExportRequested` and `ExportContinued` events
//! (the envelope's `detail-type` names which); the shared runner does the work.

use serde::Deserialize;
use serde_json::{Value, json};
use shared::events::{ExportContinued, ExportRequested};
use shared::export::ExportError;
use shared::export::runner::{Exporter, Outcome};
use tokio::time::Instant;

/// The EventBridge envelope, as a rule target receives it.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Not an event for us: retrying will not help.
    #[error("unsupported event: {0}")]
    Unsupported(String),
    /// The event's detail is not valid.
    #[error("invalid {kind} event: {reason}")]
    Invalid { kind: &'static str, reason: String },
    /// Infrastructure trouble before the job could be saved: the event should be retried.
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl HandleError {
    /// Whether the Lambda should fail the invocation so the event is retried.
    pub fn retryable(&self) -> bool {
        matches!(self, HandleError::Export(e) if !e.is_terminal())
    }
}

fn summary(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Completed { manifest } => json!({ "outcome": "completed", "manifest": manifest }),
        Outcome::Failed { reason } => json!({ "outcome": "failed", "reason": reason }),
        Outcome::Continued => json!({ "outcome": "continued" }),
        Outcome::Busy => json!({ "outcome": "busy" }),
        Outcome::AlreadyFinished => json!({ "outcome": "already_finished" }),
        Outcome::AlreadyRunning { job } => json!({ "outcome": "already_running", "job_id": job }),
    }
}

/// Handle one delivered event.
pub async fn handle(
    exporter: &Exporter,
    event: Value,
    deadline: Instant,
) -> Result<Value, HandleError> {
    let envelope: Envelope = serde_json::from_value(event).map_err(|e| HandleError::Invalid {
        kind: "EventBridge",
        reason: e.to_string(),
    })?;
    let outcome = match envelope.detail_type.as_str() {
        "ExportRequested" => {
            let ev: ExportRequested =
                serde_json::from_value(envelope.detail).map_err(|e| HandleError::Invalid {
                    kind: "ExportRequested",
                    reason: e.to_string(),
                })?;
            exporter.requested(&ev, deadline).await
        }
        "ExportContinued" => {
            let ev: ExportContinued =
                serde_json::from_value(envelope.detail).map_err(|e| HandleError::Invalid {
                    kind: "ExportContinued",
                    reason: e.to_string(),
                })?;
            exporter.continued(&ev, deadline).await
        }
        other => return Err(HandleError::Unsupported(other.chars().take(64).collect())),
    };
    match outcome {
        Ok(o) => Ok(summary(&o)),
        // A terminal error before a job existed (unknown connector): nothing to retry.
        Err(e) if e.is_terminal() => Ok(json!({ "outcome": "rejected", "reason": e.to_string() })),
        Err(e) => Err(e.into()),
    }
}
