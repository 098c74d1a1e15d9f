//! The export function: EventBridge delivers `ExportRequested` and `ExportContinued` events
//! (the envelope's `detail-type` names which); the shared runner does the work. The resume
//! queue (SQS, an event source mapping) delivers the delayed messages of jobs that wait
//! (`shared::export::resume`), the erase's delayed re-sweep and the asynchronous tenant erase
//! (`shared::erase::later`).

use serde::Deserialize;
use serde_json::{Value, json};
use shared::erase::later::EraseTask;
use shared::events::{ExportContinued, ExportRequested};
use shared::export::ExportError;
use shared::export::resume::ResumeAt;
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
    /// Another invocation holds the job's lease: fail, so Lambda delivers the event again a
    /// minute or two later (when a dead holder's lease has lapsed). Never a silent success:
    /// the event would be gone and a dead holder's job stuck until the sweeper.
    #[error("job {0} is held by another invocation; retry later")]
    Busy(String),
}

impl HandleError {
    /// Whether the Lambda should fail the invocation so the event is retried.
    pub fn retryable(&self) -> bool {
        match self {
            HandleError::Export(e) => !e.is_terminal(),
            HandleError::Busy(_) => true,
            HandleError::Unsupported(_) | HandleError::Invalid { .. } => false,
        }
    }
}

/// The runtime's error report: `error_type` says whether a retry can help.
impl From<HandleError> for lambda_runtime::Diagnostic {
    fn from(e: HandleError) -> Self {
        let error_type = match &e {
            HandleError::Busy(_) => "JobBusy",
            HandleError::Export(_) if e.retryable() => "ExportRetryable",
            HandleError::Export(_) => "ExportTerminal",
            HandleError::Unsupported(_) => "UnsupportedEvent",
            HandleError::Invalid { .. } => "InvalidEvent",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

fn summary(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Completed { manifest } => json!({ "outcome": "completed", "manifest": manifest }),
        Outcome::Failed { reason } => json!({ "outcome": "failed", "reason": reason }),
        Outcome::Continued => json!({ "outcome": "continued" }),
        Outcome::Waiting { until } => json!({
            "outcome": "waiting",
            "resume_at": until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }),
        Outcome::Busy => json!({ "outcome": "busy" }),
        Outcome::AlreadyFinished => json!({ "outcome": "already_finished" }),
        Outcome::AlreadyRunning { job } => json!({ "outcome": "already_running", "job_id": job }),
        Outcome::Erased => json!({ "outcome": "erased" }),
    }
}

/// An SQS event as the event source mapping delivers it: only the fields we read (the shape
/// of `aws_lambda_events::sqs::SqsEvent`; docs.aws.amazon.com/lambda/latest/dg/with-sqs.html).
#[derive(Debug, Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRecord {
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    body: String,
}

/// A resume-queue message: a job's delayed resume, or a task for the eraser
/// (`{"sweep": …}` / `{"erase_tenant": …}`, shared/src/erase/later.rs). Read strictly.
#[derive(Debug)]
enum QueueMessage {
    Resume(ResumeAt),
    Erase(EraseTask),
}

fn queue_message(body: &str) -> Result<QueueMessage, serde_json::Error> {
    let value: Value = serde_json::from_str(body)?;
    let is_task = value.as_object().is_some_and(|o| {
        o.len() == 1 && (o.contains_key("sweep") || o.contains_key("erase_tenant"))
    });
    if is_task {
        Ok(QueueMessage::Erase(serde_json::from_value(value)?))
    } else {
        Ok(QueueMessage::Resume(serde_json::from_value(value)?))
    }
}

/// Resume-queue messages: each one is sent on (its time not yet come), turned into an
/// `ExportContinued`, or run (an eraser's task). Answers with the ids of the messages that
/// failed (`ReportBatchItemFailures`), so only those come back.
async fn resume_batch(exporter: &Exporter, event: SqsEvent) -> Value {
    let mut failed = Vec::new();
    for record in event.records {
        let msg = match queue_message(&record.body) {
            Ok(m) => m,
            Err(e) => {
                // Retrying an unreadable message cannot help: drop it (the sweeper resumes
                // any job whose resume time has passed).
                tracing::error!(error = %e, "resume message rejected");
                continue;
            }
        };
        let ok = match msg {
            QueueMessage::Resume(msg) => match exporter.resume_due(&msg).await {
                Ok(published) => {
                    tracing::info!(tenant = %msg.tenant, job_id = %msg.job_id, published, "resume message handled");
                    true
                }
                Err(e) => {
                    tracing::warn!(tenant = %msg.tenant, job_id = %msg.job_id, error = %e, "resume message failed; it comes back");
                    false
                }
            },
            QueueMessage::Erase(task) => match exporter.eraser().handle(&task).await {
                Ok(done) => {
                    tracing::info!(outcome = ?done, "erase task handled");
                    true
                }
                // Erasing is idempotent: the message comes back and the task runs again.
                Err(e) => {
                    tracing::warn!(error = %e, "erase task failed; it comes back");
                    false
                }
            },
        };
        if !ok {
            failed.push(json!({ "itemIdentifier": record.message_id }));
        }
    }
    json!({ "batchItemFailures": failed })
}

fn job_of(detail: &Value) -> String {
    detail["job_id"]
        .as_str()
        .unwrap_or("(new)")
        .chars()
        .take(64)
        .collect()
}

/// Handle one delivered event.
pub async fn handle(
    exporter: &Exporter,
    event: Value,
    deadline: Instant,
) -> Result<Value, HandleError> {
    // The sweeper's schedule (an EventBridge scheduled rule).
    if event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        let resumed = exporter.sweep().await?;
        return Ok(json!({ "outcome": "swept", "resumed": resumed.len() }));
    }
    if event.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(event).map_err(|e| HandleError::Invalid {
            kind: "SQS",
            reason: e.to_string(),
        })?;
        return Ok(resume_batch(exporter, sqs).await);
    }
    let envelope: Envelope = serde_json::from_value(event).map_err(|e| HandleError::Invalid {
        kind: "EventBridge",
        reason: e.to_string(),
    })?;
    let job = job_of(&envelope.detail);
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
        Ok(Outcome::Busy) => Err(HandleError::Busy(job)),
        Ok(o) => Ok(summary(&o)),
        // A terminal error before a job existed (unknown connector): nothing to retry.
        Err(e) if e.is_terminal() => Ok(json!({ "outcome": "rejected", "reason": e.to_string() })),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_messages_are_read_strictly() {
        let resume = r#"{"tenant":"acme","job_id":"job-20260101-00","at":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(queue_message(resume), Ok(QueueMessage::Resume(_))));
        let sweep = r#"{"sweep":{"tenant":"acme","at":"2026-01-01T00:00:00Z"}}"#;
        assert!(matches!(queue_message(sweep), Ok(QueueMessage::Erase(_))));
        let erase = r#"{"erase_tenant":{"tenant":"acme"}}"#;
        assert!(matches!(queue_message(erase), Ok(QueueMessage::Erase(_))));
        for bad in [
            r#"{"sweep":{"tenant":"acme","at":"2026-01-01T00:00:00Z","prefix":"acme/"}}"#,
            r#"{"sweep":{"tenant":"../x","at":"2026-01-01T00:00:00Z"}}"#,
            r#"{"erase_tenant":{"tenant":"acme"},"sweep":{}}"#,
            r#"{"erase_tenant":"acme"}"#,
            r#"[]"#,
        ] {
            assert!(queue_message(bad).is_err(), "{bad}");
        }
    }
}
