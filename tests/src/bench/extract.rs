//! Issue 18: peak memory while extracting the text of one 50 MiB PDF (bound: 128 MiB).
//!
//! The parent writes a deterministic PDF shaped like a scanned or illustrated report — many
//! text pages with Flate-compressed content streams, and large image XObjects (half JPEG-like
//! `DCTDecode`, half `FlateDecode` pixels) that make up most of its bytes — into a temporary
//! file, never into the repository. A child process (`bench child-extract PATH`) then does what
//! the exporter does for one attachment (`shared::export::document::text::extract`): the
//! precheck with the exporter's limits, the bytes read into one buffer sized from the declared
//! length and filled chunk by chunk (as `BlobStore::get_bytes_capped` fills it from the S3 body),
//! and `documents::extract_text` on a blocking thread. It reports its own peak RSS (`VmHWM`),
//! the text's length and the time. No server is involved: the S3 read is replaced by the file
//! read, which buffers the same bytes the same way.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::BytesMut;
use documents::{Extraction, extract_text, precheck};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde_json::json;

use crate::child::emit;
use crate::procfs;
use crate::report::{Row, Verdict, median, num};
use crate::world::{run_child, say};

/// The bound on the extracting process's peak RSS.
const BOUND_MIB: f64 = 128.0;
/// The PDF's size.
const PDF_BYTES: u64 = 50 * 1024 * 1024;
/// Text pages; every [`IMAGE_EVERY`]-th one also shows one of the images.
const PAGES: usize = 600;
const IMAGE_EVERY: usize = 15;
const IMAGES: usize = PAGES / IMAGE_EVERY;
const LINES_PER_PAGE: usize = 48;
/// The attachment's name and type, as Jira would list them.
const FILE_NAME: &str = "annual-report.pdf";
const MIME: &str = "application/pdf";
/// The chunk size of the read (the S3 body arrives in chunks of about this size).
const CHUNK: usize = 64 * 1024;

const WORDS: &[&str] = &[
    "revenue",
    "quarter",
    "customer",
    "platform",
    "migration",
    "incident",
    "review",
    "budget",
    "forecast",
    "release",
    "security",
    "latency",
    "storage",
    "region",
    "contract",
    "support",
    "roadmap",
    "backlog",
    "capacity",
    "audit",
    "network",
    "invoice",
    "supplier",
    "growth",
    "retention",
    "survey",
    "analysis",
    "project",
    "milestone",
    "delivery",
    "risk",
    "owner",
    "the",
    "of",
    "and",
    "to",
    "in",
    "for",
    "with",
    "on",
    "by",
    "was",
    "were",
    "is",
    "a",
    "an",
];

/// Deterministic xorshift64* (the same PDF on every run and machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A writer that knows its offset (for the cross-reference table).
struct Out<W: Write> {
    w: W,
    at: u64,
}

impl<W: Write> Out<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.w.write_all(b)?;
        self.at += b.len() as u64;
        Ok(())
    }

    fn stream(&mut self, id: usize, dict: &str, body: &[u8]) -> std::io::Result<()> {
        self.put(format!("{id} 0 obj\n<< {dict} /Length {} >>\nstream\n", body.len()).as_bytes())?;
        self.put(body)?;
        self.put(b"\nendstream\nendobj\n")
    }
}

fn zlib(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
    z.write_all(data)?;
    z.finish()
}

/// The marker the first line of page `n` (1-based) carries; the extracted text must hold the
/// first and last page's.
fn page_marker(n: usize) -> String {
    format!("Page {n} of the bench report")
}

/// Writes the PDF to `path`; returns its size. Objects: 1 catalog, 2 page tree, 3 font, then
/// the images, then each page and its content stream; the images are written last, sized so
/// the file comes to [`PDF_BYTES`].
fn write_pdf(path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = Out {
        w: BufWriter::new(file),
        at: 0,
    };
    let mut rng = Rng(0x5EED_0018_BE1C_4001);
    let first_image = 4;
    let first_page = first_image + IMAGES;
    let total = first_page + 2 * PAGES;
    let mut offsets = vec![0u64; total];

    out.put(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")?;
    offsets[3] = out.at;
    out.put(
        b"3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\nendobj\n",
    )?;
    for p in 0..PAGES {
        let (page_id, content_id) = (first_page + 2 * p, first_page + 2 * p + 1);
        let image = (p % IMAGE_EVERY == IMAGE_EVERY - 1).then(|| first_image + p / IMAGE_EVERY);
        let mut text = format!("BT /F1 10 Tf 12 TL 56 800 Td ({}) Tj\n", page_marker(p + 1));
        for _ in 1..LINES_PER_PAGE {
            let n = 8 + (rng.next() % 7) as usize;
            let line: Vec<&str> = (0..n)
                .map(|_| WORDS[(rng.next() % WORDS.len() as u64) as usize])
                .collect();
            text.push_str(&format!("T* ({}.) Tj\n", line.join(" ")));
        }
        text.push_str("ET\n");
        let xobject = match image {
            Some(id) => {
                text.push_str(&format!("q 480 0 0 360 56 40 cm /Im{id} Do Q\n"));
                format!(" /XObject << /Im{id} {id} 0 R >>")
            }
            None => String::new(),
        };
        offsets[page_id] = out.at;
        out.put(
            format!(
                "{page_id} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
                 /Resources << /Font << /F1 3 0 R >>{xobject} >> /Contents {content_id} 0 R >>\nendobj\n"
            )
            .as_bytes(),
        )?;
        offsets[content_id] = out.at;
        out.stream(content_id, "/Filter /FlateDecode", &zlib(text.as_bytes())?)?;
    }
    offsets[2] = out.at;
    let kids: Vec<String> = (0..PAGES)
        .map(|p| format!("{} 0 R", first_page + 2 * p))
        .collect();
    out.put(
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {PAGES} >>\nendobj\n",
            kids.join(" ")
        )
        .as_bytes(),
    )?;
    offsets[1] = out.at;
    out.put(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")?;

    // The images fill the rest (the trailer is under 20 bytes per object plus a few hundred).
    let trailer_room = 20 * total as u64 + 512;
    let room = PDF_BYTES.saturating_sub(out.at + trailer_room);
    let per_image = (room / IMAGES as u64) as usize;
    for i in 0..IMAGES {
        let id = first_image + i;
        offsets[id] = out.at;
        let overhead = 200;
        let size = per_image.saturating_sub(overhead).max(1024);
        if i % 2 == 0 {
            // A scanned page: JPEG data (never decoded by the extractor; noise is its size).
            let mut body = vec![0u8; size];
            rng.fill(&mut body);
            body[..2].copy_from_slice(&[0xFF, 0xD8]);
            let (w, h) = (2480, 3508);
            out.stream(
                id,
                &format!(
                    "/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB \
                     /BitsPerComponent 8 /Filter /DCTDecode"
                ),
                &body,
            )?;
        } else {
            // A chart: 8-bit gray pixels, Flate-compressed (noise, so about its raw size).
            let width = 2048usize;
            let height = size / width;
            let mut raw = vec![0u8; width * height];
            rng.fill(&mut raw);
            let body = zlib(&raw)?;
            out.stream(
                id,
                &format!(
                    "/Type /XObject /Subtype /Image /Width {width} /Height {height} \
                     /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"
                ),
                &body,
            )?;
        }
    }

    let xref = out.at;
    out.put(format!("xref\n0 {total}\n0000000000 65535 f \n").as_bytes())?;
    for o in &offsets[1..] {
        out.put(format!("{o:010} 00000 n \n").as_bytes())?;
    }
    out.put(
        format!("trailer\n<< /Size {total} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    )?;
    out.w.flush()?;
    Ok(out.at)
}

/// The temporary PDF; removed when dropped.
struct TempPdf(PathBuf);

impl Drop for TempPdf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The measured side: `bench child-extract PATH`.
pub async fn child(path: &str) {
    let limits = shared::export::document::Settings::default().limits;
    let rss_start = procfs::own_rss_kib();
    let started = Instant::now();
    let path = PathBuf::from(path);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<bytes::Bytes> {
        let mut file = std::fs::File::open(&path)?;
        let declared = file.metadata()?.len();
        if let Some(reason) = precheck(declared, Some(FILE_NAME), Some(MIME), &limits) {
            return Err(std::io::Error::other(format!("precheck: {reason}")));
        }
        // As `BlobStore::get_bytes_capped`: one buffer of the declared length, filled chunk by
        // chunk (each chunk a separate allocation, as the SDK's body hands them over).
        let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(buf.freeze())
    })
    .await
    .unwrap_or_else(|e| panic!("bench child-extract: {e}"))
    .unwrap_or_else(|e| panic!("bench child-extract: reading the PDF: {e}"));
    let input_bytes = read.len();
    let read_secs = started.elapsed().as_secs_f64();
    let extraction = tokio::task::spawn_blocking(move || {
        extract_text(&read, Some(FILE_NAME), Some(MIME), &limits)
    })
    .await
    .unwrap_or_else(|e| panic!("bench child-extract: the extractor panicked: {e}"));
    let secs = started.elapsed().as_secs_f64();
    let (text, skipped) = match extraction {
        Extraction::Extracted(t) => (Some(t), None),
        Extraction::Skipped(reason) => (None, Some(reason.to_string())),
    };
    let text_bytes = text.as_ref().map_or(0, |t| t.text.len());
    let complete = text
        .as_ref()
        .is_some_and(|t| t.text.contains(&page_marker(1)) && t.text.contains(&page_marker(PAGES)));
    emit(json!({
        "secs": secs,
        "read_secs": read_secs,
        "input_bytes": input_bytes,
        "text_bytes": text_bytes,
        "all_pages": complete,
        "incomplete": text.as_ref().and_then(|t| t.incomplete.clone()),
        "skipped": skipped,
        "rss_start_kib": rss_start,
        "memory": crate::child::memory(),
    }));
}

pub async fn bench(runs: usize) -> Vec<Row> {
    let name = "Peak RSS extracting the text of one 50 MiB PDF (extracting process)".to_owned();
    let time_name = "Extracting the text of one 50 MiB PDF".to_owned();
    let bound = format!("< {BOUND_MIB:.0} MiB");
    let path =
        TempPdf(std::env::temp_dir().join(format!("bench-extract-{}.pdf", std::process::id())));
    let written = {
        let p = path.0.clone();
        tokio::task::spawn_blocking(move || write_pdf(&p))
            .await
            .unwrap_or_else(|e| panic!("bench set-up: {e}"))
    };
    let size = match written {
        Ok(size) => size,
        Err(e) => {
            let why = format!("could not write the PDF: {e}");
            return vec![Row::not_measured(
                "extract.pdf_50mib.peak_rss",
                &name,
                &bound,
                &why,
            )];
        }
    };
    say(format!(
        "extract: {:.1} MiB PDF ({PAGES} pages, {IMAGES} images) at {}",
        size as f64 / 1048576.0,
        path.0.display()
    ));
    let mut peaks = Vec::new();
    let mut times = Vec::new();
    let mut details = Vec::new();
    let mut failure = None;
    for run in 1..=runs {
        let child = run_child(
            vec!["child-extract".into(), path.0.display().to_string()],
            Vec::new(),
        )
        .await;
        let r = child.result;
        let secs = r["secs"].as_f64().unwrap_or(f64::NAN);
        let peak = r["memory"]["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
        say(format!(
            "extract run {run}/{runs}: {} text bytes in {secs:.1} s, peak RSS {peak:.1} MiB",
            r["text_bytes"]
        ));
        if r["all_pages"] != true {
            failure = Some(format!(
                "the text misses pages (skipped: {}, incomplete: {})",
                r["skipped"], r["incomplete"]
            ));
        }
        peaks.push(peak);
        times.push(secs);
        details.push(r);
    }
    drop(path);
    let peak = median(&peaks);
    let time = median(&times);
    let verdict = match (peak, &failure) {
        (Some(p), None) => Verdict::of(p < BOUND_MIB),
        _ => Verdict::Fail,
    };
    vec![
        Row {
            id: "extract.pdf_50mib.peak_rss".into(),
            benchmark: name,
            value: peak,
            unit: "MiB".into(),
            samples: peaks,
            figure: peak.map_or("—".into(), |p| format!("{} MiB", num(p, 1))),
            bound,
            verdict,
            note: failure.unwrap_or_default(),
            details: json!({
                "pdf_bytes": size,
                "pages": PAGES,
                "images": IMAGES,
                "measured": "VmHWM of a child process that read the PDF into memory as the exporter \
                             reads it back from S3 and ran documents::extract_text with the exporter's limits",
                "runs": details,
            }),
        },
        Row {
            id: "extract.pdf_50mib.secs".into(),
            benchmark: time_name,
            value: time,
            unit: "s".into(),
            samples: times,
            figure: time.map_or("—".into(), |t| format!("{} s", num(t, 1))),
            bound: "—".into(),
            verdict: Verdict::Info,
            note: String::new(),
            details: serde_json::Value::Null,
        },
    ]
}
