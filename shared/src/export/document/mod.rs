//! AI-ready documents beside each exported item (issue 18): `documents/{itemId}.md`, its
//! metadata record `documents/{itemId}.json` (one schema for both products,
//! `documents/schema/document-metadata.v1.json`), and the text of its attachments
//! (`documents/{itemId}/attachments/{attachmentId}.txt`, see [`text`]).
//!
//! The runner calls this module from one place in its item write path, after the attachments
//! were copied and before the item's JSON is written (the item is written last, so a crash in
//! between redoes the documents too). Documents are built from the REDACTED item only: the
//! redaction pass already turned every mention into `@Display Name` and every user object into
//! its display name, so the renderers never see an account id (and their own last line of
//! defence, `documents::resolve`, drops any name shaped like one).
//!
//! What is product-specific (item JSON → [`DocumentSource`] and [`DocumentMetadata`]) lives in
//! [`jira`] and [`confluence`].
//!
//! Documents are data at rest like items: written under the connector's prefix (so the erase of
//! a tenant, connection or connector removes them with everything else, PRIVACY.md P11), without
//! the expiry tag (they stay while their connector exists, like items), SSE-KMS like every
//! object (P8).

mod confluence;
mod jira;
pub mod text;

use bytes::Bytes;
use documents::{
    AttachmentLink, AttachmentMeta, AttachmentRef as RichRef, DocumentMetadata, DocumentSource,
    Limits, Resolver, content_hash, document_markdown,
};
use serde_json::Value;
use sha2::Digest;

use super::ExportError;
use super::keys::Layout;
use super::source::AttachmentRef;
use crate::blob::{BlobStore, Stored};
use crate::ids::Product;
use crate::store::jobs::Skipped;

/// What the export does about documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Write documents and attachment text at all (off only to measure their cost).
    pub enabled: bool,
    /// The bounds of attachment text extraction.
    pub limits: Limits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            limits: Limits::default(),
        }
    }
}

/// The texts of one item's attachments, extracted and stored (see [`extract_texts`]), before
/// its document is rendered ([`render_item`]).
#[derive(Debug, Default)]
pub struct Texts {
    /// `{itemId}/{attachmentId}` of every attachment text stored or found current.
    pub texts: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// What became of each copied attachment's text, in the order of `copied`.
    outcomes: Vec<text::TextOutcome>,
}

#[derive(Debug)]
pub struct Rendered {
    markdown: String,
    json: Vec<u8>,
    /// SHA-256 (hex) of the metadata record, which holds the Markdown's hash: the same value
    /// means the same document.
    pub sha256: String,
}

/// The first half of what documents add to one item, from the runner's item write path: the
/// text of its copied attachments (`copied`: each attachment and what S3 stored), extracted
/// and stored now unless current. Called after the attachments were copied and before the
/// item's JSON is written. `known_new`: no attachment text of the item can exist yet (the
/// runner's fresh invocation), so none is looked up before it is written.
pub async fn extract_texts(
    blobs: &BlobStore,
    settings: &Settings,
    layout: &Layout,
    item_id: &str,
    copied: &[(AttachmentRef, Stored)],
    known_new: bool,
) -> Result<Texts, ExportError> {
    let mut out = Texts::default();
    if !settings.enabled {
        return Ok(out);
    }
    for (att, stored) in copied {
        let text_key = layout.attachment_text(item_id, &att.id);
        let outcome = text::extract(blobs, settings, att, stored, &text_key, known_new).await?;
        if outcome.key().is_some() {
            out.texts.push(format!("{item_id}/{}", att.id));
        }
        if let text::TextOutcome::Skipped(reason) = &outcome {
            out.skipped.push(Skipped {
                id: format!("{item_id}/attachment/{}/text", att.id),
                reason: reason.clone(),
            });
        }
        out.outcomes.push(outcome);
    }
    Ok(out)
}

/// The second half: the document and metadata record of one REDACTED item, rendered for
/// [`put`] to write (pure: the runner calls it on the blocking pool). `None` when documents
/// are off.
pub fn render_item(
    settings: &Settings,
    product: Product,
    site_url: &str,
    item_id: &str,
    doc: &Value,
    copied: &[(AttachmentRef, Stored)],
    texts: &Texts,
) -> Result<Option<Rendered>, ExportError> {
    if !settings.enabled {
        return Ok(None);
    }
    let attachments = copied
        .iter()
        .zip(&texts.outcomes)
        .map(|((att, stored), outcome)| AttachmentMeta {
            id: att.id.clone(),
            name: redacted_name(doc, &att.id)
                .unwrap_or_else(|| crate::export::redact::safe_key_component(&att.filename)),
            mime_type: Some(att.mime_type.clone()).filter(|m| !m.is_empty()),
            size: Some(stored.bytes),
            key: stored.key.clone(),
            text_key: outcome.key().map(str::to_owned),
            text_skipped: outcome.reason().map(str::to_owned),
        })
        .collect();
    render(product, site_url, item_id, doc, attachments).map(Some)
}

/// The Markdown and metadata record of one redacted item, serialized.
pub fn render(
    product: Product,
    site_url: &str,
    item_id: &str,
    doc: &Value,
    attachments: Vec<AttachmentMeta>,
) -> Result<Rendered, ExportError> {
    let (markdown, meta) = build(product, doc, site_url, attachments);
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| ExportError::Terminal(format!("document of item {item_id}: {e}")))?;
    let sha256 = hex::encode(sha2::Sha256::digest(&json));
    Ok(Rendered {
        markdown,
        json,
        sha256,
    })
}

/// Write one item's Markdown, then its metadata record (the record last: a crash in between
/// leaves the old record, whose hash no longer matches, so the next run writes both again).
/// The caller decides whether they changed (the item's object records the document's hash).
/// Returns the bytes written.
pub async fn put(
    blobs: &BlobStore,
    layout: &Layout,
    item_id: &str,
    rendered: Rendered,
) -> Result<u64, ExportError> {
    let written = (rendered.markdown.len() + rendered.json.len()) as u64;
    blobs
        .put_bytes(
            &layout.document_markdown(item_id),
            Bytes::from(rendered.markdown),
            "text/markdown; charset=utf-8",
            &[("item-id", item_id)],
        )
        .await?;
    blobs
        .put_bytes(
            &layout.document_metadata(item_id),
            Bytes::from(rendered.json),
            "application/json",
            &[("item-id", item_id), (CONTENT_SHA256, &rendered.sha256)],
        )
        .await?;
    Ok(written)
}

/// The document keys a manifest lists.
#[derive(Debug, Default)]
pub struct ManifestKeys {
    /// For every exported item, its Markdown and its metadata record.
    pub documents: Vec<String>,
    /// Every attachment text stored.
    pub texts: Vec<String>,
}

/// The manifest's document keys: derived from the item ids the job exported (so an item an
/// incremental run found unchanged, and did not write again, keeps its keys), and from the
/// `{itemId}/{attachmentId}` pairs of the texts it stored or found current.
pub fn manifest_keys(
    layout: &Layout,
    items: &std::collections::BTreeSet<String>,
    texts: &std::collections::BTreeSet<String>,
    enabled: bool,
) -> ManifestKeys {
    if !enabled {
        return ManifestKeys::default();
    }
    ManifestKeys {
        documents: items
            .iter()
            .flat_map(|id| [layout.document_markdown(id), layout.document_metadata(id)])
            .collect(),
        texts: texts
            .iter()
            .filter_map(|t| t.split_once('/'))
            .filter(|(item, _)| items.contains(*item))
            .map(|(item, att)| layout.attachment_text(item, att))
            .collect(),
    }
}

/// An attachment's file name as the item's REDACTED JSON shows it (Jira `fields.attachment[]
/// .filename`, our Confluence `attachments[].title`): the source's own copy was taken before
/// redaction.
fn redacted_name(doc: &Value, attachment_id: &str) -> Option<String> {
    ["/fields/attachment", "/attachments"]
        .iter()
        .filter_map(|p| doc.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|a| id_at(a, "/id").as_deref() == Some(attachment_id))
        .and_then(|a| a["filename"].as_str().or_else(|| a["title"].as_str()))
        .map(str::to_owned)
}

/// Object metadata holding a document's SHA-256 (hex), to skip rewriting unchanged ones.
const CONTENT_SHA256: &str = "content-sha256";

/// The Markdown document and metadata record of one redacted item.
pub fn build(
    product: Product,
    doc: &Value,
    site_url: &str,
    attachments: Vec<AttachmentMeta>,
) -> (String, DocumentMetadata) {
    let site = site_url.trim_end_matches('/');
    let resolver = Links {
        site,
        attachments: &attachments,
    };
    let (source, mut meta) = match product {
        Product::Jira => jira::source(doc, site),
        Product::Confluence => confluence::source(doc, site),
    };
    let markdown = document_markdown(&source, &resolver);
    meta.content_hash = content_hash(&markdown);
    meta.attachments = attachments;
    (markdown, meta)
}

/// Links the renderers cannot know: attachments (by file name: ADF media `alt`, storage
/// `ri:filename`) to our S3 keys, issue keys to the site's browse links.
struct Links<'a> {
    site: &'a str,
    attachments: &'a [AttachmentMeta],
}

impl Resolver for Links<'_> {
    fn attachment(&self, a: &RichRef<'_>) -> Option<AttachmentLink> {
        // An attachment on another page (storage `ri:page` inside `ri:attachment`) is not ours.
        if a.page_title.is_some() {
            return None;
        }
        // By name only: Atlassian documents no mapping from an ADF media id to an attachment
        // id (ATLASSIAN.md). Confluence keeps one attachment per name on a page (an upload of
        // the same name is a new version of it); Jira lets two attachments of an issue share a
        // name. A name that more than one attachment has links to none of them: the text
        // keeps the name, and the metadata lists both files; a wrong link would show the
        // reader the other file's content as this one's.
        let name = a.file_name?;
        let mut named = self.attachments.iter().filter(|m| m.name == name);
        let first = named.next()?;
        if named.next().is_some() {
            return None;
        }
        Some(AttachmentLink {
            name: first.name.clone(),
            href: first.key.clone(),
        })
    }

    fn issue_url(&self, key: &str) -> Option<String> {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plain.then(|| format!("{}/browse/{key}", self.site))
    }
}

/// A string field, trimmed, `None` when absent or empty.
pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) fn owned_at(v: &Value, pointer: &str) -> Option<String> {
    str_at(v, pointer).map(str::to_owned)
}

/// A timestamp field as RFC 3339 UTC (`None` when absent or not a timestamp: the schema
/// requires the format).
pub(crate) fn time_at(v: &Value, pointer: &str) -> Option<String> {
    str_at(v, pointer).and_then(documents::normalize_timestamp)
}

/// An id that may be a JSON number or string.
pub(crate) fn id_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The default metadata both products start from; the product modules fill it in.
pub(crate) fn blank(
    product: documents::Product,
    id: String,
    site: &str,
    kind: documents::ContainerKind,
) -> DocumentMetadata {
    DocumentMetadata {
        schema_version: documents::SCHEMA_VERSION,
        id,
        key: None,
        product,
        site: site.to_owned(),
        url: site.to_owned(),
        title: String::new(),
        item_type: String::new(),
        status: None,
        priority: None,
        labels: Vec::new(),
        container: documents::Container {
            kind,
            id: None,
            key: None,
            name: None,
        },
        parent: None,
        ancestors: Vec::new(),
        created: None,
        updated: None,
        creator: None,
        assignee: None,
        last_editor: None,
        comment_count: 0,
        attachments: Vec::new(),
        content_hash: String::new(),
    }
}

/// Keeps the borrowed parts of a [`DocumentSource`] and its owned metadata together.
pub(crate) type Built<'a> = (DocumentSource<'a>, DocumentMetadata);

/// A person's display name from a (redacted) user object, never anything shaped like an
/// account id (24 hex digits, or digits:uuid; see shared/ATLASSIAN.md).
pub(crate) fn person_at(v: &Value, pointer: &str) -> Option<String> {
    let name = str_at(v, pointer)?;
    let hex = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
    let legacy = name.len() == 24 && hex(name);
    let modern = name.split_once(':').is_some_and(|(p, rest)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && rest.len() == 36
    });
    (!legacy && !modern).then(|| name.to_owned())
}

/// A rich-text value: ADF when it is an ADF document, plain text when a string.
pub(crate) fn body_of(v: Option<&Value>) -> documents::Body<'_> {
    match v {
        Some(adf @ Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("doc") => {
            documents::Body::Adf(adf)
        }
        Some(Value::String(s)) if !s.trim().is_empty() => documents::Body::Text(s),
        _ => documents::Body::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, name: &str) -> AttachmentMeta {
        AttachmentMeta {
            id: id.into(),
            name: name.into(),
            mime_type: None,
            size: None,
            key: format!("t/files/{id}/{name}"),
            text_key: None,
            text_skipped: None,
        }
    }

    fn by_name(name: &str) -> RichRef<'_> {
        RichRef {
            file_name: Some(name),
            ..RichRef::default()
        }
    }

    #[test]
    fn an_attachment_links_by_its_name_only_when_no_other_shares_it() {
        let attachments = [
            meta("1", "screenshot.png"),
            meta("2", "report.pdf"),
            meta("3", "screenshot.png"),
        ];
        let links = Links {
            site: "https://example.atlassian.net",
            attachments: &attachments,
        };
        let unique = links.attachment(&by_name("report.pdf"));
        assert_eq!(unique.map(|l| l.href), Some("t/files/2/report.pdf".into()));
        assert_eq!(
            links.attachment(&by_name("screenshot.png")),
            None,
            "ambiguous"
        );
        assert_eq!(links.attachment(&by_name("missing.txt")), None);
    }
}
