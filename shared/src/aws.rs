//! AWS SDK clients, built once per cold start from one shared `SdkConfig`.
//!
//! With `AWS_ENDPOINT_URL` set (the emulator, locally) every client talks to that endpoint and
//! S3 uses path-style addressing, since an emulator on `127.0.0.1:PORT` has no bucket
//! subdomains.

use aws_config::{BehaviorVersion, SdkConfig};
use url::Url;

/// Load region and credentials the standard way, pointed at `endpoint` if given.
pub async fn sdk_config(endpoint: Option<&Url>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    loader.load().await
}

/// Every AWS client the functions use. Cheap to clone (each client is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Clients from one `SdkConfig`. `path_style` forces path-style S3 addressing (needed for
    /// an emulator endpoint).
    pub fn new(sdk: &SdkConfig, path_style: bool) -> AwsClients {
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }

    /// Clients for a validated [`crate::config::Config`].
    pub async fn from_config(config: &crate::config::Config) -> AwsClients {
        let endpoint = config.aws_endpoint_url.as_ref();
        let sdk = sdk_config(endpoint).await;
        AwsClients::new(&sdk, endpoint.is_some())
    }
}
