use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::vault::refresh::TokenKeeper;
use token_refresh::{DEFAULT_CONCURRENCY, Refresher};

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
            // The runtime's own view of the time left (Context::deadline()).
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let report = refresher.run(tokio::time::Instant::now() + left).await?;
            Ok::<_, Error>(report)
        },
    ))
    .await
}
