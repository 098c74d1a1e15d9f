//! Errors the fake's Rust API returns to tests (HTTP errors are responses, not these). Nothing
//! here is seen over HTTP, so nothing here models Atlassian.

/// What went wrong when a test drove the fake directly.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The authorize URL would have been refused by `GET /authorize` (the message says why).
    #[error("invalid authorize request: {0}")]
    InvalidAuthorizeRequest(String),
    /// No configured site has this cloud id.
    #[error("unknown cloud id {0}")]
    UnknownSite(String),
    /// No such issue, page, project or space on that site.
    #[error("not found: {0}")]
    NotFound(String),
}
