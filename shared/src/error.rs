//! Errors shared by several boundaries. Each boundary (HTTP handler, event handler) owns the
//! mapping of these to a response or to a retryable / terminal Lambda failure.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

// `SdkError` is one type across every AWS SDK crate; the DynamoDB re-export serves them all.

/// A failed AWS call: which operation, and the service's error code and message (AWS error
/// messages name resources and conditions, never the data we sent).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl AwsError {
    pub fn new<E>(operation: &'static str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_owned);
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code.to_owned(),
            _ => DisplayErrorContext(err).to_string(),
        };
        AwsError {
            operation,
            code,
            detail,
        }
    }

    /// The service's error code, e.g. `ConditionalCheckFailedException`.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// What stops a function from starting: bad configuration or an unusable dependency.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Http(#[from] crate::atlassian::http::HttpError),
}
