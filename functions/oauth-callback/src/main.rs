use lambda_http::{Error, Request, run, service_fn};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::connect::ConnectService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    config.redirect_url()?;
    let aws = AwsClients::from_config(&config).await;
    let service = ConnectService::from_config(config, &aws).await?;
    let service = &service;
    run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(oauth_callback::handle(service, req).await)
    }))
    .await
}
