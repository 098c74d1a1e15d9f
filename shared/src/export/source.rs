//! What the export machinery needs from a product. Two real implementations: Jira
//! ([`super::jira`]) and Confluence.

use serde_json::Value;

use super::ExportError;
use crate::atlassian::AtlassianUrls;
use crate::atlassian::http::AtlassianHttp;
use crate::ids::CloudId;
use crate::secret::Secret;
use crate::store::jobs::Skipped;

/// One page of search results: item ids in order, and the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<String>,
    pub next: Option<String>,
}

/// An attachment to stream into S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRef {
    pub id: String,
    pub filename: String,
    pub size: Option<u64>,
    pub mime_type: String,
    /// Where to download it through the API gateway (it may redirect to a media host).
    pub url: url::Url,
}

/// One fetched item, not yet redacted.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub doc: Value,
    pub attachments: Vec<AttachmentRef>,
}

/// A batch of fetched items, and the ids that could not be fetched.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<Item>,
    pub skipped: Vec<Skipped>,
}

/// Per-job context for a source's calls.
pub struct Ctx<'a> {
    pub http: &'a AtlassianHttp,
    pub urls: &'a AtlassianUrls,
    pub cloud_id: &'a CloudId,
    /// The site's base URL (`https://example.atlassian.net`): the documents' human links.
    pub site_url: &'a str,
}

/// A product's side of an export.
pub trait Source: Sync {
    /// The query this job runs: the connector's query, narrowed to items changed since
    /// `since_minutes` minutes ago for an incremental run.
    fn effective_query(&self, query: &str, since_minutes: Option<i64>) -> String;

    /// One page of ids.
    fn page(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        query: &str,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, ExportError>> + Send;

    /// Full documents for `ids` (at most [`Source::BATCH`]), with all comments / bodies.
    fn fetch(
        &self,
        ctx: &Ctx<'_>,
        token: &Secret,
        ids: &[String],
        all_comments: bool,
    ) -> impl Future<Output = Result<Batch, ExportError>> + Send;

    /// Redact a document in place (PRIVACY.md P5). A function of the document alone (no
    /// `self`), so the runner can run it on the blocking pool.
    fn redact(doc: &mut Value, names: &mut super::redact::NameBook);

    /// Items fetched per batch (and per checkpoint).
    const BATCH: usize;
    /// Ids per search page.
    const PAGE_SIZE: usize;
}

/// The products an exporter runs jobs over: a [`Source`] per product. Production's is
/// [`Products`] (Jira and Confluence as they are, zero-sized: the runner is compiled for them
/// with no indirection); a test gives its own to run the runner over a scripted source.
pub trait Sources: Send + Sync {
    type Jira: Source;
    type Confluence: Source;
    fn jira(&self) -> &Self::Jira;
    fn confluence(&self) -> &Self::Confluence;
}

/// Jira and Confluence through Atlassian's APIs: production's [`Sources`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Products;

impl Sources for Products {
    type Jira = super::jira::Jira;
    type Confluence = super::confluence::Confluence;

    fn jira(&self) -> &Self::Jira {
        &super::jira::Jira
    }

    fn confluence(&self) -> &Self::Confluence {
        &super::confluence::Confluence
    }
}

/// Split a JQL or CQL query at its trailing `ORDER BY` (outside quotes), case-insensitively,
/// so a restriction can be added before the ordering.
pub fn split_order_by(query: &str) -> (&str, &str) {
    let lower = query.to_ascii_lowercase();
    let mut in_quote: Option<char> = None;
    let mut found = None;
    for (pos, c) in lower.char_indices() {
        match in_quote {
            Some(q) if c == q => in_quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => in_quote = Some(c),
            None if lower[pos..].starts_with("order by") => found = Some(pos),
            None => {}
        }
    }
    match found {
        Some(at) => (query[..at].trim(), query[at..].trim()),
        None => (query.trim(), ""),
    }
}
