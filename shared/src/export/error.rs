//! Why an export stopped, and whether trying again can help.

use crate::atlassian::http::HttpError;
use crate::blob::BlobError;
use crate::store::StoreError;
use crate::vault::refresh::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Atlassian refused the JQL/CQL (400): the job fails with Atlassian's own message.
    #[error("Atlassian rejected the query: {0}")]
    InvalidQuery(String),
    /// A call was refused with 401; the caller renews the token and tries once more.
    #[error("{0}: Atlassian answered 401")]
    Unauthorized(&'static str),
    #[error("the connection was revoked; the customer must connect again")]
    Revoked,
    #[error("{0}")]
    Http(HttpError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Something that will not get better by retrying (missing connector, bad data).
    #[error("{0}")]
    Terminal(String),
    /// Atlassian refused a page cursor (Jira: "The provided next page token is invalid or
    /// expired", after 7 days): the search restarts from the first page.
    #[error("the search's page cursor expired")]
    CursorExpired,
    /// The invocation's deadline came inside a batch: pause, the continuation redoes it.
    #[error("the invocation ran out of time inside a batch")]
    OutOfTime,
    /// Another invocation took the job over, or the job was erased.
    #[error("the job lease was lost (another invocation took over, or the job was erased)")]
    LeaseLost,
}

impl From<HttpError> for ExportError {
    fn from(e: HttpError) -> Self {
        match &e {
            // A 401 from the API gateway is about our token; one from the host a redirect led
            // to (the media host) is not, and is handled where the redirect was followed.
            HttpError::Status {
                endpoint,
                status,
                redirected: false,
                ..
            } if status.as_u16() == 401 => ExportError::Unauthorized(endpoint),
            _ => ExportError::Http(e),
        }
    }
}

impl From<crate::offload::RuntimeGone> for ExportError {
    fn from(_: crate::offload::RuntimeGone) -> Self {
        ExportError::Terminal("the runtime shut down while an item was written".into())
    }
}

impl ExportError {
    /// When Atlassian asked us to come back, if this is such an answer (see
    /// [`HttpError::wait`]).
    pub fn wait(
        &self,
        now: time::OffsetDateTime,
    ) -> Option<(time::OffsetDateTime, crate::atlassian::http::ThrottleScope)> {
        match self {
            ExportError::Http(e) => e.wait(now),
            _ => None,
        }
    }

    /// Retrying the same event later cannot help: fail the job.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ExportError::InvalidQuery(_)
                | ExportError::Revoked
                | ExportError::Terminal(_)
                | ExportError::Token(
                    TokenError::Revoked
                        | TokenError::SiteAccessLost
                        | TokenError::NotFound
                        | TokenError::NotConfigured(_)
                        | TokenError::NoRefreshToken
                )
        )
    }
}
