//! Attachment text: PDF, DOCX, PPTX, XLSX, CSV, HTML, Markdown and plain text.
//!
//! Memory is bounded by design, not by measurement after the fact:
//! - the input is at most [`Limits::max_input_bytes`] (the runner asks [`precheck`] with the
//!   size Atlassian reports before it downloads anything);
//! - the text is built in a sink that stops at [`Limits::max_text_bytes`];
//! - OOXML parts are decompressed as a stream through a counter that stops at
//!   [`Limits::max_unpacked_bytes`] in total, in archives of at most
//!   [`Limits::max_archive_entries`] entries, and XML is parsed event by event;
//! - PDF streams are never decompressed past [`Limits::max_stream_bytes`], images are dropped
//!   on load, and a page whose content is over [`Limits::max_page_content_bytes`] is left out
//!   (see `pdf.rs`).
//!
//! Nothing here fails or panics on a bad or hostile file: every parser runs under
//! `catch_unwind`, and every way of not producing text is a [`SkipReason`]. (Release builds must
//! keep `panic = "unwind"`, the default, for that to hold.)

mod ooxml;
mod pdf;
mod sink;
mod text;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) use sink::TextSink;

/// A format this module extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Pdf,
    Docx,
    Pptx,
    Xlsx,
    Csv,
    Html,
    Markdown,
    PlainText,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Pptx => "PPTX",
            Format::Xlsx => "XLSX",
            Format::Csv => "CSV",
            Format::Html => "HTML",
            Format::Markdown => "Markdown",
            Format::PlainText => "text",
        })
    }
}

/// The bounds every extraction stays within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A larger file is not read at all.
    pub max_input_bytes: u64,
    /// Text beyond this is cut (the result says so).
    pub max_text_bytes: usize,
    /// A zip container with more entries is skipped.
    pub max_archive_entries: usize,
    /// Total bytes decompressed from one zip container (or, for a PDF, from its
    /// cross-reference streams) before the file is skipped as a bomb.
    pub max_unpacked_bytes: u64,
    /// One PDF stream decoded beyond this is dropped (or, for a stream the parser must decode
    /// to load the file, the file is skipped).
    pub max_stream_bytes: u64,
    /// A PDF page whose decoded content is larger is left out.
    pub max_page_content_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            max_input_bytes: 64 * MIB,
            max_text_bytes: 8 * MIB as usize,
            max_archive_entries: 10_000,
            max_unpacked_bytes: 256 * MIB,
            max_stream_bytes: 16 * MIB,
            max_page_content_bytes: 4 * MIB,
        }
    }
}

/// Why an attachment yielded no text. Its `Display` is the reason recorded in the metadata
/// (`skipped: …`); it never contains file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    UnsupportedType,
    TooLarge {
        size: u64,
        limit: u64,
    },
    TooManyEntries {
        limit: usize,
    },
    /// A zip bomb, or a PDF whose compressed streams expand past the limit.
    UnpackedTooLarge {
        limit: u64,
    },
    /// A PDF stream the parser must decode to load the file decodes past the limit.
    StreamTooLarge {
        limit: u64,
    },
    Encrypted(Format),
    Malformed(Format),
    /// A third-party parser panicked; caught.
    ParserFailed(Format),
    NoText,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnsupportedType => write!(f, "skipped: unsupported file type"),
            SkipReason::TooLarge { size, limit } => {
                write!(f, "skipped: {size} bytes is over the {limit}-byte limit")
            }
            SkipReason::TooManyEntries { limit } => {
                write!(f, "skipped: archive has more than {limit} entries")
            }
            SkipReason::UnpackedTooLarge { limit } => {
                write!(f, "skipped: compressed content expands past {limit} bytes")
            }
            SkipReason::StreamTooLarge { limit } => {
                write!(
                    f,
                    "skipped: a required PDF stream decodes past {limit} bytes"
                )
            }
            SkipReason::Encrypted(format) => write!(f, "skipped: encrypted {format}"),
            SkipReason::Malformed(format) => write!(f, "skipped: malformed {format}"),
            SkipReason::ParserFailed(format) => write!(f, "skipped: the {format} parser failed"),
            SkipReason::NoText => write!(f, "skipped: no text found"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedText {
    pub format: Format,
    pub text: String,
    /// Set when part of the text was left out, saying what (e.g. the text was cut at the limit,
    /// or pages with oversized content were skipped).
    pub incomplete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extraction {
    Extracted(ExtractedText),
    Skipped(SkipReason),
}

/// The format named by a MIME type or, failing that, by a file name's extension.
pub fn detect_format(file_name: Option<&str>, mime_type: Option<&str>) -> Option<Format> {
    mime_type
        .and_then(format_of_mime)
        .or_else(|| file_name.and_then(format_of_name))
}

fn format_of_mime(mime: &str) -> Option<Format> {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match mime.as_str() {
        "application/pdf" | "application/x-pdf" => Format::Pdf,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Format::Docx,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => Format::Pptx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Format::Xlsx,
        "text/csv" | "text/tab-separated-values" | "application/csv" => Format::Csv,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "application/json" | "application/xml" | "application/x-yaml" | "application/yaml" => {
            Format::PlainText
        }
        m if m.starts_with("text/") => Format::PlainText,
        _ => return None,
    })
}

fn format_of_name(name: &str) -> Option<Format> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => Format::Pdf,
        "docx" => Format::Docx,
        "pptx" => Format::Pptx,
        "xlsx" => Format::Xlsx,
        "csv" | "tsv" => Format::Csv,
        "html" | "htm" | "xhtml" => Format::Html,
        "md" | "markdown" => Format::Markdown,
        "txt" | "text" | "log" | "json" | "xml" | "yaml" | "yml" => Format::PlainText,
        _ => return None,
    })
}

/// Whether to download an attachment at all: `Some(reason)` to skip it unread (its type is not
/// extracted, or it is too large), `None` to fetch it and call [`extract_text`].
pub fn precheck(
    size: u64,
    file_name: Option<&str>,
    mime_type: Option<&str>,
    limits: &Limits,
) -> Option<SkipReason> {
    if detect_format(file_name, mime_type).is_none() {
        return Some(SkipReason::UnsupportedType);
    }
    (size > limits.max_input_bytes).then_some(SkipReason::TooLarge {
        size,
        limit: limits.max_input_bytes,
    })
}

/// The text of one attachment, or why there is none. Never panics and never fails: a broken or
/// hostile file is a [`SkipReason`].
pub fn extract_text(
    data: &[u8],
    file_name: Option<&str>,
    mime_type: Option<&str>,
    limits: &Limits,
) -> Extraction {
    let size = data.len() as u64;
    if size > limits.max_input_bytes {
        return Extraction::Skipped(SkipReason::TooLarge {
            size,
            limit: limits.max_input_bytes,
        });
    }
    // The bytes decide when they are unambiguous: a PDF or a zip named or typed otherwise is
    // still read as what it is.
    let declared = detect_format(file_name, mime_type);
    let format = if data.starts_with(b"%PDF-") {
        Some(Format::Pdf)
    } else if data.starts_with(b"PK\x03\x04") {
        let by_name = file_name.and_then(format_of_name);
        match (declared, by_name) {
            (Some(f @ (Format::Docx | Format::Pptx | Format::Xlsx)), _)
            | (_, Some(f @ (Format::Docx | Format::Pptx | Format::Xlsx))) => Some(f),
            _ => None,
        }
    } else {
        declared
    };
    let Some(format) = format else {
        return Extraction::Skipped(SkipReason::UnsupportedType);
    };
    let mut sink = TextSink::new(limits.max_text_bytes);
    let run = catch_unwind(AssertUnwindSafe(|| match format {
        Format::Pdf => pdf::extract(data, limits, &mut sink),
        Format::Docx => ooxml::docx(data, limits, &mut sink),
        Format::Pptx => ooxml::pptx(data, limits, &mut sink),
        Format::Xlsx => ooxml::xlsx(data, limits, &mut sink),
        Format::Html => text::html(data, &mut sink),
        Format::Csv | Format::Markdown | Format::PlainText => text::plain(data, format, &mut sink),
    }));
    let notes = match run {
        Ok(Ok(notes)) => notes,
        Ok(Err(reason)) => return Extraction::Skipped(reason),
        Err(_) => return Extraction::Skipped(SkipReason::ParserFailed(format)),
    };
    let (text, truncated) = sink.finish();
    if text.trim().is_empty() {
        return Extraction::Skipped(SkipReason::NoText);
    }
    let mut incomplete: Vec<String> = notes;
    if truncated {
        incomplete.push(format!("text cut at {} bytes", limits.max_text_bytes));
    }
    Extraction::Extracted(ExtractedText {
        format,
        text,
        incomplete: (!incomplete.is_empty()).then(|| incomplete.join("; ")),
    })
}

/// What an extractor returns: notes on what it left out, or why it gave up.
pub(crate) type Outcome = Result<Vec<String>, SkipReason>;
