use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::vault::refresh::TokenKeeper;
use token_refresh::{DEFAULT_CONCURRENCY, Refresher};

/// Time left until the invocation's deadline (epoch milliseconds).
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
    let refresher = Refresher {
        keeper: TokenKeeper::from_config(&config, &aws).await?,
        concurrency: DEFAULT_CONCURRENCY,
    };
    let refresher = &refresher;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = tokio::time::Instant::now() + time_left(event.context.deadline);
            let report = refresher
                .run(time::OffsetDateTime::now_utc(), deadline)
                .await?;
            Ok::<_, Error>(report)
        },
    ))
    .await
}
