//! The keep-alive schedule: every run refreshes the grants whose keep-alive is due (last
//! refresh a week ago, far inside Atlassian's 90-day inactivity limit), found through the
//! refresh-due index, with bounded concurrency, and stops taking new work before the Lambda
//! deadline. Access tokens are refreshed where they are used (the export), not here, so an
//! idle grant rotates about four times a month instead of every hour. Connections written
//! before grants existed are migrated here too.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use shared::store::StoreError;
use shared::vault::refresh::{Obtained, TokenError, TokenKeeper};
use tokio::time::Instant;

/// Connections refreshed at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// No new refresh starts when less than this is left before the deadline: one refresh with
/// its retries fits in it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// What one run did; also the function's result.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Grants (and legacy connections) the index said were due.
    pub due: u64,
    pub refreshed: u64,
    /// No longer due when read, or refreshed meanwhile by another caller.
    pub skipped: u64,
    pub revoked: u64,
    pub failed: u64,
    /// Not attempted: too close to the deadline. The next run picks them up.
    pub deferred: u64,
}

enum Outcome {
    Refreshed,
    Skipped,
    Revoked,
    Failed,
    Deferred,
}

pub struct Refresher {
    pub keeper: TokenKeeper,
    pub concurrency: usize,
}

impl Refresher {
    /// Keep alive everything due now, starting no refresh after `deadline - DEADLINE_MARGIN`.
    pub async fn run(&self, deadline: Instant) -> Result<RunReport, StoreError> {
        let due = self.keeper.store.due_for_refresh(self.keeper.now()).await?;
        let mut report = RunReport {
            due: due.len() as u64,
            ..RunReport::default()
        };
        let cutoff = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
        let mut outcomes = futures::stream::iter(due)
            .map(|due| async move {
                if Instant::now() >= cutoff {
                    return Outcome::Deferred;
                }
                match self.keeper.keep_alive(&due).await {
                    Ok(Obtained::Refreshed) => Outcome::Refreshed,
                    Ok(Obtained::Stored | Obtained::FromWinner) => Outcome::Skipped,
                    Err(TokenError::Revoked) => Outcome::Revoked,
                    Err(TokenError::NotFound) => Outcome::Skipped,
                    Err(e) => {
                        tracing::warn!(error = %e, "keep-alive refresh failed");
                        Outcome::Failed
                    }
                }
            })
            .buffer_unordered(self.concurrency.max(1));
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Refreshed => report.refreshed += 1,
                Outcome::Skipped => report.skipped += 1,
                Outcome::Revoked => report.revoked += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Deferred => report.deferred += 1,
            }
        }
        tracing::info!(
            count = report.due,
            refreshed = report.refreshed,
            skipped = report.skipped,
            revoked = report.revoked,
            failed = report.failed,
            remaining_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            outcome = if report.deferred > 0 {
                "partial"
            } else {
                "complete"
            },
            "refresh run finished"
        );
        Ok(report)
    }
}
