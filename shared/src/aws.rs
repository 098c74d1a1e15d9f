//! AWS SDK clients, built once per cold start from one shared `SdkConfig`.
//!
//! With `AWS_ENDPOINT_URL` set (the emulator, locally) every client talks to that endpoint and
//! S3 uses path-style addressing, since an emulator on `127.0.0.1:PORT` has no bucket
//! subdomains. `AWS_ENDPOINT_URL_S3` (`Config::aws_endpoint_url_s3`) sends S3 elsewhere: the SDK
//! would read that variable itself, but an endpoint set in code wins over every environment
//! variable (aws-sdk-s3 `impl From<&SdkConfig> for config::Builder`), so it is applied here.

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
        AwsClients::with_s3_endpoint(sdk, path_style, None)
    }

    /// As [`AwsClients::new`], with S3 sent to `s3_endpoint` when given (path-style: a local
    /// S3 server has no bucket subdomains either).
    pub fn with_s3_endpoint(
        sdk: &SdkConfig,
        path_style: bool,
        s3_endpoint: Option<&Url>,
    ) -> AwsClients {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_config(sdk, path_style, s3_endpoint).build()),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }

    /// Clients that reach no AWS at all, for in-process tests (issue 16's property tests): every
    /// call goes to `endpoint` (a loopback port nothing listens on: refused at once) with the
    /// SDK's retries off and fixed dummy credentials, so a request that gets as far as AWS
    /// fails fast with an ordinary SDK error instead of waiting on a network.
    pub async fn unreachable(endpoint: &Url) -> AwsClients {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDOFFLINE",
                "offline",
                None,
                None,
                "offline",
            ))
            .endpoint_url(endpoint.as_str().trim_end_matches('/'))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        AwsClients::new(&sdk, true)
    }

    /// Clients for a validated [`crate::config::Config`].
    pub async fn from_config(config: &crate::config::Config) -> AwsClients {
        let endpoint = config.aws_endpoint_url.as_ref();
        let sdk = sdk_config(endpoint).await;
        AwsClients::with_s3_endpoint(
            &sdk,
            endpoint.is_some(),
            config.aws_endpoint_url_s3.as_ref(),
        )
    }
}

/// The S3 client's configuration: path-style when asked for or when `endpoint` (a local S3
/// server) is given, sent to `endpoint` if given.
pub fn s3_config(
    sdk: &SdkConfig,
    path_style: bool,
    endpoint: Option<&Url>,
) -> aws_sdk_s3::config::Builder {
    let mut builder =
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style || endpoint.is_some());
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    builder
}
