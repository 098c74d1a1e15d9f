//! Attachment text: PDF, DOCX, PPTX, XLSX/CSV, HTML, Markdown and plain text into
//! `documents/{itemId}/attachments/{attachmentId}.txt`.
//!
//! # When: re-read from S3 after the copy, not a tee of the download
//!
//! The attachment is first streamed into S3 exactly as before (bounded by two multipart parts,
//! with its retries); then, for an extractable type of at most `Limits::max_input_bytes`, it is
//! read back from S3 with that cap and handed to the extractor. Not teed off the download,
//! because:
//! - no bounded prefix would do: a zip's directory and a PDF's cross-reference table are at the
//!   END of the file, so extraction needs the whole file;
//! - a tee would hold the whole file for as long as the Atlassian download trickles in (minutes
//!   for a slow media host), for every attachment in flight; the re-read holds it for the
//!   in-region S3 read and the parse only, under a process-wide memory budget ([`BUDGET`]);
//! - the download's retries (a broken stream starts over) stay untouched, and the size is known
//!   exactly (what S3 stored) before one byte is buffered.
//!
//! The cost is one GetObject per extractable attachment, in region (no transfer charge). An
//! attachment whose text was already extracted from the same bytes (its object metadata holds
//! the source's SHA-256 and the extractor version) is not read again.
//!
//! Nothing here fails the export for a bad or hostile file: the library never panics or errors
//! (it returns a [`SkipReason`]), a panic escaping it anyway is caught by the blocking task, and
//! only S3 errors are errors.

use bytes::Bytes;
use documents::{Extraction, SkipReason, extract_text, precheck};
use tokio::sync::Semaphore;

use super::Settings;
use crate::blob::{BlobError, BlobStore, Stored};
use crate::export::ExportError;
use crate::export::source::AttachmentRef;

/// Bumped when extraction changes, so stored text is extracted again.
const EXTRACTOR: &str = "documents-1";
/// Object metadata of a text: `{EXTRACTOR}:{SHA-256 of the attachment it was extracted from}`.
const SOURCE: &str = "extracted-from";

/// Memory for attachments being extracted at once, process-wide, in KiB: a file of N bytes
/// takes N of it for its read and parse (the extractor's own working memory is bounded by its
/// limits). A file larger than the whole budget takes all of it.
const BUDGET_KIB: u32 = 96 * 1024;
static BUDGET: Semaphore = Semaphore::const_new(BUDGET_KIB as usize);

/// What became of one attachment's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextOutcome {
    /// Stored at this key (`incomplete` says what was left out, if anything).
    Extracted { key: String },
    /// Not a type we extract: nothing to record beyond the metadata.
    NotExtractable(String),
    /// A bad, hostile or oversized file, or one without text (a scanned PDF): recorded in the
    /// metadata and as a skipped record.
    Skipped(String),
}

impl TextOutcome {
    pub fn key(&self) -> Option<&str> {
        match self {
            TextOutcome::Extracted { key } => Some(key),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            TextOutcome::Extracted { .. } => None,
            TextOutcome::NotExtractable(r) | TextOutcome::Skipped(r) => Some(r),
        }
    }
}

fn outcome_of(reason: &SkipReason) -> TextOutcome {
    match reason {
        SkipReason::UnsupportedType => TextOutcome::NotExtractable(reason.to_string()),
        other => TextOutcome::Skipped(other.to_string()),
    }
}

/// Extract the text of one stored attachment into `text_key`, unless the text stored there
/// already comes from this content. `known_new`: nothing can be stored there yet, so that is
/// not asked.
pub async fn extract(
    blobs: &BlobStore,
    settings: &Settings,
    att: &AttachmentRef,
    stored: &Stored,
    text_key: &str,
    known_new: bool,
) -> Result<TextOutcome, ExportError> {
    let limits = settings.limits;
    let (name, mime) = (Some(att.filename.as_str()), Some(att.mime_type.as_str()));
    if let Some(reason) = precheck(stored.bytes, name, mime, &limits) {
        return Ok(outcome_of(&reason));
    }
    let source = format!("{EXTRACTOR}:{}", stored.sha256_hex);
    if !known_new && blobs.metadata_of(text_key, SOURCE).await?.as_deref() == Some(source.as_str())
    {
        return Ok(TextOutcome::Extracted {
            key: text_key.to_owned(),
        });
    }
    let kib = u32::try_from(stored.bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .clamp(1, BUDGET_KIB);
    let _permit = BUDGET
        .acquire_many(kib)
        .await
        .map_err(|_| ExportError::Terminal("the extraction budget was closed".into()))?;
    let data: Bytes = match blobs
        .get_bytes_capped(&stored.key, limits.max_input_bytes)
        .await
    {
        Ok(Some(data)) => data,
        // Gone meanwhile (an erase): nothing to extract.
        Ok(None) => return Ok(TextOutcome::Skipped("skipped: the file is gone".into())),
        Err(BlobError::LengthMismatch { got, .. }) => {
            return Ok(outcome_of(&SkipReason::TooLarge {
                size: got,
                limit: limits.max_input_bytes,
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let (name, mime) = (att.filename.clone(), att.mime_type.clone());
    // Parsing is CPU work (seconds for a large PDF): off the async workers, so heartbeats and
    // other items go on.
    let extraction =
        tokio::task::spawn_blocking(move || extract_text(&data, Some(&name), Some(&mime), &limits))
            .await;
    let text = match extraction {
        Ok(Extraction::Extracted(t)) => t,
        Ok(Extraction::Skipped(reason)) => return Ok(outcome_of(&reason)),
        Err(_) => {
            return Ok(TextOutcome::Skipped(
                "skipped: the extractor failed".to_owned(),
            ));
        }
    };
    let incomplete = text.incomplete.as_deref().map(crate::blob::metadata_value);
    let mut metadata = vec![(SOURCE, source.as_str())];
    if let Some(note) = &incomplete {
        metadata.push(("incomplete", note.as_str()));
    }
    blobs
        .put_bytes(
            text_key,
            Bytes::from(text.text),
            "text/plain; charset=utf-8",
            &metadata,
        )
        .await?;
    Ok(TextOutcome::Extracted {
        key: text_key.to_owned(),
    })
}
