//! AI-ready documents (issue 18): one Markdown document and one metadata record per exported
//! Jira issue or Confluence page, and the text of their attachments.
//!
//! - [`adf_to_markdown`] and [`storage_to_markdown`] render the two rich-text formats through one
//!   intermediate shape, so both products' documents look alike.
//! - [`document_markdown`] assembles title, body and comments.
//! - [`DocumentMetadata`] is the one metadata schema; `schema/document-metadata.v1.json` is its
//!   JSON Schema ([`METADATA_SCHEMA_V1`]).
//! - [`extract_text`] turns an attachment into text in bounded memory, or says why it skipped it.
//!
//! Nothing here does I/O or knows AWS; the export runner feeds it and writes what it returns.

pub mod adf;
pub mod document;
pub mod extract;
mod markdown;
pub mod metadata;
pub mod resolve;
pub mod storage;
mod xml;

pub use adf::adf_to_markdown;
pub use document::{Body, Comment, DocumentSource, document_markdown};
pub use extract::{
    ExtractedText, Extraction, Format, Limits, SkipReason, detect_format, extract_text, precheck,
};
pub use metadata::{
    AttachmentMeta, Container, ContainerKind, DocumentMetadata, ItemRef, METADATA_SCHEMA_V1,
    Product, SCHEMA_VERSION, content_hash, normalize_timestamp,
};
pub use resolve::{AttachmentLink, AttachmentRef, NoResolver, Resolver};
pub use storage::storage_to_markdown;
