use std::time::{Duration, SystemTime};

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::export::runner::Exporter;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_config(&config).await;
    let exporter = Exporter::from_config(&config, &aws).await?;
    let exporter = &exporter;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let deadline = tokio::time::Instant::now() + left;
            match export::handle(exporter, event.payload, deadline).await {
                Ok(summary) => Ok(summary),
                // A failed invocation: Lambda retries the event, then sends it to the
                // dead-letter queue.
                Err(e) if e.retryable() => Err(Diagnostic::from(e)),
                Err(e) => {
                    tracing::error!(error = %e, "event rejected");
                    Ok(serde_json::json!({ "outcome": "rejected", "reason": e.to_string() }))
                }
            }
        },
    ))
    .await
}
