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
    let api = connectors_api::Api {
        connect: ConnectService::from_config(config, &aws).await?,
    };
    let api = &api;
    run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(connectors_api::handle(api, req).await)
    }))
    .await
}
