use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::export::runner::Exporter;

fn time_left(deadline_ms: u64) -> Duration {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_config(&config).await;
    let exporter = Exporter::from_config(&config, &aws).await?;
    let exporter = &exporter;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = tokio::time::Instant::now() + time_left(event.context.deadline);
            match export::handle(exporter, event.payload, deadline).await {
                Ok(summary) => Ok(summary),
                Err(e) if e.retryable() => Err(Error::from(e.to_string())),
                Err(e) => {
                    tracing::error!(error = %e, "event rejected");
                    Ok(serde_json::json!({ "outcome": "rejected", "reason": e.to_string() }))
                }
            }
        },
    ))
    .await
}
