//! Delayed deliveries: how a job that Atlassian asked to wait is resumed after the wait
//! without any Lambda waiting. The job records its resume time and stops; a message goes to
//! the resume queue (SQS) with a delivery delay. SQS delays a message by at most 15 minutes
//! (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html),
//! so a longer wait is a chain: the export function receives the message, finds the time not
//! yet come, and sends it again with the delay left. When the time has come it publishes
//! `ExportContinued` on the bus, and the job runs through the ordinary path (Lambda's retries,
//! the dead-letter queue). The sweeper (`jobs-due` index) is the backstop if a message is lost.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AwsError;
use crate::ids::{ConnectorId, JobId, TenantId};

/// The longest delay SQS applies to one message.
pub const MAX_DELAY_SECS: i64 = 900;

/// The resume queue's message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeAt {
    pub tenant: TenantId,
    pub job_id: JobId,
    /// The job's connector (absent in messages from before issue 16): carried on into
    /// `ExportContinued`, so a retry that finds the job erased can sweep what it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<ConnectorId>,
    /// Not before this (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Sends delayed resume messages. Without a queue (a deployment or local run without one) the
/// sweeper alone resumes waiting jobs, within its period.
#[derive(Debug, Clone)]
pub struct Resumer {
    sqs: aws_sdk_sqs::Client,
    queue_url: Option<String>,
    /// The stack's dead-letter queue: where a job that kept dying is reported.
    dead_letter_url: Option<String>,
    /// The longest delay put on a message: SQS's [`MAX_DELAY_SECS`]; less only where delays
    /// cannot be waited out (tests, which move a clock instead: every message carries its
    /// due time and is sent on while that has not come).
    delay_cap: i32,
}

/// Seconds to delay a message due at `at`, seen at `now`: 0..=900.
pub fn delay_secs(at: OffsetDateTime, now: OffsetDateTime) -> i32 {
    let left = (at - now).whole_seconds() + i64::from((at - now).subsec_nanoseconds() > 0);
    left.clamp(0, MAX_DELAY_SECS) as i32
}

impl Resumer {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: Option<String>) -> Resumer {
        Resumer {
            sqs,
            queue_url,
            dead_letter_url: None,
            delay_cap: MAX_DELAY_SECS as i32,
        }
    }

    /// Cap every delay at `secs` (tests: 0 makes messages visible at once, and the handler
    /// sends a message on until its due time has come on the test's clock).
    pub fn with_delay_cap(mut self, secs: i32) -> Resumer {
        self.delay_cap = secs.clamp(0, MAX_DELAY_SECS as i32);
        self
    }

    /// Send `body` (JSON) to the queue, delivered at `at` or up to 15 minutes before (the
    /// receiver sends it on while its time has not come). `false` without a queue.
    pub async fn send_at<T: Serialize>(
        &self,
        body: &T,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, AwsError> {
        let Some(url) = &self.queue_url else {
            return Ok(false);
        };
        let body = serde_json::to_string(body).map_err(|e| AwsError {
            operation: "sqs:SendMessage",
            code: None,
            detail: format!("message could not be serialised: {e}"),
        })?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(delay_secs(at, now).min(self.delay_cap))
            .send()
            .await
            .map_err(|e| AwsError::new("sqs:SendMessage", &e))?;
        Ok(true)
    }

    /// Report jobs that kept dying to this queue (the dead-letter queue).
    pub fn with_dead_letters(mut self, url: Option<String>) -> Resumer {
        self.dead_letter_url = url;
        self
    }

    /// A job failed because its invocations kept dying: put it where failed deliveries go,
    /// so the dead-letter alarm fires and an operator sees it. Ids and the reason only.
    pub async fn dead_letter(
        &self,
        tenant: &TenantId,
        job: &JobId,
        reason: &str,
    ) -> Result<(), AwsError> {
        let Some(url) = &self.dead_letter_url else {
            return Ok(());
        };
        let body = serde_json::json!({
            "detail-type": "ExportJobDied",
            "detail": { "tenant": tenant, "job_id": job, "reason": reason },
        });
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| AwsError::new("sqs:SendMessage(dead letter)", &e))?;
        Ok(())
    }

    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref()
    }

    /// Ask for a delivery of `msg` at `msg.at` (or up to 15 minutes before it, for a chain).
    pub async fn schedule(&self, msg: &ResumeAt, now: OffsetDateTime) -> Result<(), AwsError> {
        if !self.send_at(msg, msg.at, now).await? {
            tracing::info!(resume_at = %msg.at, "no resume queue configured; the sweeper resumes the job");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_capped_at_fifteen_minutes_and_rounded_up() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(delay_secs(now + time::Duration::seconds(1800), now), 900);
        assert_eq!(delay_secs(now + time::Duration::milliseconds(1500), now), 2);
        assert_eq!(delay_secs(now - time::Duration::seconds(5), now), 0);
    }

    #[test]
    fn the_message_round_trips() {
        let m = ResumeAt {
            tenant: TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}")),
            job_id: JobId::parse("job-20260101-00").unwrap_or_else(|e| panic!("{e}")),
            connector_id: None,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1800),
        };
        let back: ResumeAt = serde_json::from_str(&serde_json::to_string(&m).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
    }
}
