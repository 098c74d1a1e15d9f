//! Attachments with crafted bytes (issue 18), seeded only when `SeedSpec::crafted_attachments`
//! is on: every other attachment's bytes are a seeded pseudo-random stream, which no extractor
//! can read, so the export's attachment-text path needs real files to show that it extracts
//! text, and hostile ones to show that it skips them and completes:
//! - `crafted-notes.md`: Markdown, whose text is [`NOTES_TEXT`];
//! - `crafted-zip-bomb.docx`: a DOCX (an OOXML zip, ECMA-376 part 2) whose one part inflates to
//!   16 MiB from a few KiB: a zip bomb against an unpacked-bytes limit below that;
//! - `crafted-truncated.pdf`: a one-page PDF (ISO 32000-1, 7.5: header, objects, xref table,
//!   trailer) cut in the middle of its objects, as an interrupted upload leaves it.
//!
//! Atlassian stores and serves attachment bytes as uploaded (developer.atlassian.com, Jira REST
//! v3 "Get attachment content"; Confluence "Download attachment"), so a site can hold any of
//! these. Like every attachment they are served by the media host with their exact length.

use std::io::{Cursor, Write};
use std::sync::OnceLock;

/// The text of `crafted-notes.md`.
pub const NOTES_TEXT: &str = "Release notes: the crafted sample says hello.";

/// Bytes the zip bomb's one part inflates to.
pub const ZIP_BOMB_UNPACKED: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crafted {
    Notes,
    ZipBomb,
    TruncatedPdf,
}

impl Crafted {
    pub const ALL: [Crafted; 3] = [Crafted::Notes, Crafted::ZipBomb, Crafted::TruncatedPdf];

    pub fn filename(self) -> &'static str {
        match self {
            Crafted::Notes => "crafted-notes.md",
            Crafted::ZipBomb => "crafted-zip-bomb.docx",
            Crafted::TruncatedPdf => "crafted-truncated.pdf",
        }
    }

    /// The crafted file of that name, if it is one.
    pub fn by_filename(name: &str) -> Option<Crafted> {
        Crafted::ALL.into_iter().find(|c| c.filename() == name)
    }

    /// Its bytes (built once per process).
    pub fn bytes(self) -> &'static [u8] {
        static NOTES: OnceLock<Vec<u8>> = OnceLock::new();
        static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
        static PDF: OnceLock<Vec<u8>> = OnceLock::new();
        match self {
            Crafted::Notes => {
                NOTES.get_or_init(|| format!("# Notes\n\n{NOTES_TEXT}\n").into_bytes())
            }
            Crafted::ZipBomb => BOMB.get_or_init(zip_bomb),
            Crafted::TruncatedPdf => PDF.get_or_init(|| {
                let pdf = one_page_pdf("Hello from a PDF that was cut short");
                pdf[..pdf.len() / 2].to_vec()
            }),
        }
    }
}

fn zip_bomb() -> Vec<u8> {
    const W: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let head = format!("<w:document {W}><w:body><w:p><w:r><w:t>");
    let tail = "</w:t></w:r></w:p></w:body></w:document>";
    let fill = vec![b'a'; ZIP_BOMB_UNPACKED - head.len() - tail.len()];
    let written = w
        .start_file("word/document.xml", opts)
        .and_then(|()| {
            w.write_all(head.as_bytes())?;
            w.write_all(&fill)?;
            w.write_all(tail.as_bytes())?;
            Ok(())
        })
        .and_then(|()| w.finish().map(Cursor::into_inner));
    written.unwrap_or_else(|e| panic!("building the zip bomb: {e}"))
}

/// A minimal one-page PDF showing `text` in Helvetica, with a correct xref table.
fn one_page_pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 700 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bomb_is_small_and_the_pdf_is_cut() {
        assert!(Crafted::ZipBomb.bytes().len() < 256 * 1024);
        assert!(Crafted::ZipBomb.bytes().starts_with(b"PK\x03\x04"));
        let pdf = Crafted::TruncatedPdf.bytes();
        assert!(pdf.starts_with(b"%PDF-") && !pdf.ends_with(b"%%EOF\n"));
        assert_eq!(
            Crafted::by_filename("crafted-notes.md"),
            Some(Crafted::Notes)
        );
    }
}
