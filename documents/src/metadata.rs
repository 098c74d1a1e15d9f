//! One metadata schema for Jira issues and Confluence pages (and blog posts).
//!
//! Serialized as camelCase JSON with every field present (`null` when unknown), exactly the
//! shape `schema/document-metadata.v1.json` describes; a test validates examples of both
//! products against that file. People appear by display name only, never by account id.
//! A change that is not backward compatible gets a new schema file and [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version written into every record (`schemaVersion`).
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of [`DocumentMetadata`], version 1.
pub const METADATA_SCHEMA_V1: &str = include_str!("../schema/document-metadata.v1.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Jira,
    Confluence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// A Jira project.
    Project,
    /// A Confluence space.
    Space,
}

/// The project (Jira) or space (Confluence) an item belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub kind: ContainerKind,
    pub id: Option<String>,
    pub key: Option<String>,
    pub name: Option<String>,
}

/// Another issue or page, as a parent or ancestor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRef {
    pub id: String,
    /// The issue key; `None` for pages.
    pub key: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentMeta {
    /// The Atlassian attachment id.
    pub id: String,
    pub name: String,
    pub mime_type: Option<String>,
    /// Bytes, as Atlassian reported them.
    pub size: Option<u64>,
    /// The S3 key of the exported file.
    pub key: String,
    /// The S3 key of its extracted text, when text was extracted.
    pub text_key: Option<String>,
    /// Why no text was extracted (e.g. `skipped: unsupported file type`), when it was not.
    pub text_skipped: Option<String>,
}

/// The metadata record written beside each document (`documents/{itemId}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentMetadata {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The issue id or page id.
    pub id: String,
    /// The issue key (`PROJ-123`); `None` for pages.
    pub key: Option<String>,
    pub product: Product,
    /// The site's base URL (`https://example.atlassian.net`).
    pub site: String,
    /// The human link to the item (`…/browse/PROJ-123`, `…/wiki/spaces/…/pages/…`).
    pub url: String,
    pub title: String,
    /// The issue type name (`Bug`) or the content type (`page`, `blogpost`).
    #[serde(rename = "type")]
    pub item_type: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub labels: Vec<String>,
    pub container: Container,
    pub parent: Option<ItemRef>,
    /// From the root down to the parent (the parent is the last one).
    pub ancestors: Vec<ItemRef>,
    /// RFC 3339, UTC (see [`normalize_timestamp`]).
    pub created: Option<String>,
    pub updated: Option<String>,
    /// Display names, never account ids.
    pub creator: Option<String>,
    pub assignee: Option<String>,
    pub last_editor: Option<String>,
    pub comment_count: u64,
    pub attachments: Vec<AttachmentMeta>,
    /// [`content_hash`] of the Markdown document.
    pub content_hash: String,
}

/// `sha256:<hex>` of a document's Markdown: changes exactly when the document's text does.
pub fn content_hash(markdown: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(markdown.as_bytes()))
    )
}

/// An Atlassian timestamp as RFC 3339 in UTC (`2024-01-02T03:04:05.123Z`). Accepts RFC 3339
/// (Confluence) and Jira's `2024-01-02T03:04:05.123+0000` (offset without a colon).
pub fn normalize_timestamp(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let s = s.trim();
    let parsed = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| {
            time::OffsetDateTime::parse(
                s,
                format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
                ),
            )
        })
        .or_else(|_| {
            time::OffsetDateTime::parse(
                s,
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"),
            )
        })
        .ok()?;
    parsed.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_and_confluence_timestamps_normalize_to_utc() {
        assert_eq!(
            normalize_timestamp("2024-01-02T03:04:05.123+0100").as_deref(),
            Some("2024-01-02T02:04:05.123Z")
        );
        assert_eq!(
            normalize_timestamp("2024-01-02T03:04:05.000Z").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(normalize_timestamp("yesterday"), None);
    }

    #[test]
    fn content_hash_is_sha256_of_the_text() {
        assert_eq!(
            content_hash(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
