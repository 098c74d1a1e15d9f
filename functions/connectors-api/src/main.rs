use lambda_http::{Error, Request, run, service_fn};
use shared::aws::AwsClients;
use shared::blob::BlobStore;
use shared::clock::Clock;
use shared::config::Config;
use shared::connect::Authorizer;
use shared::erase::Eraser;
use shared::events::EventBus;
use shared::export::resume::Resumer;
use shared::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    config.redirect_url()?;
    let aws = AwsClients::from_config(&config).await;
    let eraser = Eraser {
        store: Store::new(aws.dynamodb.clone(), config.table_name.clone()),
        blobs: BlobStore::new(
            aws.s3.clone(),
            config.bucket()?.to_owned(),
            config.kms_key_id.clone(),
        ),
        // The delayed re-sweep after every erase, and the asynchronous tenant erase.
        queue: Resumer::new(aws.sqs.clone(), config.resume_queue_url.clone()),
        clock: Clock::system(),
    };
    let events = EventBus::new(aws.eventbridge.clone(), config.event_bus_name.clone());
    let api = connectors_api::Api {
        connect: Authorizer::from_config(config, &aws),
        events,
        eraser,
    };
    let api = &api;
    run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(connectors_api::handle(api, req).await)
    }))
    .await
}
