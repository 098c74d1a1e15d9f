//! DOCX, PPTX and XLSX: Office Open XML zip packages (ECMA-376), read part by part.
//!
//! Each part is decompressed as a stream through a counter shared by the whole package, and
//! parsed event by event, so memory holds one XML event and the text so far, never a whole part
//! (an XLSX shared-string table is the exception, and it is capped at the text limit). A zip
//! bomb meets the counter ([`Limits::max_unpacked_bytes`]) or the entry limit, checked on the
//! end-of-central-directory record before the archive is opened.

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;
use zip::ZipArchive;
use zip::result::ZipError;

use super::{Format, Limits, Outcome, SkipReason, TextSink};
use crate::xml::{attribute, entity_text, name_of};

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Shared strings kept from one workbook (a few dozen MB of `String` headers at most).
const MAX_SHARED_STRINGS: usize = 1_000_000;

/// The package, opened after its declared entry count was checked.
struct Package<'a> {
    zip: Archive<'a>,
    format: Format,
    /// Decompressed bytes still allowed.
    budget: u64,
    limit: u64,
}

impl<'a> Package<'a> {
    fn open(data: &'a [u8], format: Format, limits: &Limits) -> Result<Self, SkipReason> {
        check_declared_entries(data, limits.max_archive_entries, format)?;
        let zip = ZipArchive::new(Cursor::new(data)).map_err(|_| SkipReason::Malformed(format))?;
        if zip.len() > limits.max_archive_entries {
            return Err(SkipReason::TooManyEntries {
                limit: limits.max_archive_entries,
            });
        }
        Ok(Package {
            zip,
            format,
            budget: limits.max_unpacked_bytes,
            limit: limits.max_unpacked_bytes,
        })
    }

    fn names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_string).collect()
    }

    /// Streams one part's XML events to `on_event`, which returns false to stop early.
    /// A missing part is `Ok(false)`.
    fn read_xml(
        &mut self,
        name: &str,
        mut on_event: impl FnMut(&Event<'_>) -> bool,
    ) -> Result<bool, SkipReason> {
        let format = self.format;
        let entry = match self.zip.by_name(name) {
            Ok(e) => e,
            Err(ZipError::FileNotFound) => return Ok(false),
            Err(ZipError::UnsupportedArchive(m))
                if m.contains("ncrypt") || m.contains("assword") =>
            {
                return Err(SkipReason::Encrypted(format));
            }
            Err(_) => return Err(SkipReason::Malformed(format)),
        };
        if entry.encrypted() {
            return Err(SkipReason::Encrypted(format));
        }
        let counted = Counted {
            inner: entry,
            left: self.budget,
            over: false,
        };
        let mut xml = Reader::from_reader(BufReader::new(counted));
        xml.config_mut().check_end_names = false;
        let mut buf = Vec::new();
        let mut ok = true;
        loop {
            match xml.read_event_into(&mut buf) {
                Ok(Event::Eof) => break,
                Ok(ev) => {
                    if !on_event(&ev) {
                        break;
                    }
                }
                Err(_) => {
                    ok = false;
                    break;
                }
            }
            buf.clear();
        }
        let counted = xml.into_inner().into_inner();
        self.budget = counted.left;
        if counted.over {
            return Err(SkipReason::UnpackedTooLarge { limit: self.limit });
        }
        if !ok {
            return Err(SkipReason::Malformed(format));
        }
        Ok(true)
    }
}

/// A reader that fails once more than `left` bytes were read from it.
struct Counted<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a part that ends exactly at the limit from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over = true;
                    Err(std::io::Error::other("decompressed size limit"))
                }
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the entry count the end-of-central-directory record declares, so that a directory of
/// millions of entries is refused before the zip reader builds its index. ZIP64 (needed only
/// past 65,535 entries or 4 GiB) is refused too: no Office document needs it.
/// Record layout: APPNOTE.TXT 4.3.16 (EOCD) and 4.3.15 (ZIP64 locator).
fn check_declared_entries(data: &[u8], max: usize, format: Format) -> Result<(), SkipReason> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const ZIP64_LOCATOR: &[u8] = b"PK\x06\x07";
    let from = data.len().saturating_sub(22 + 65_535);
    let tail = &data[from..];
    let Some(at) = tail.windows(4).rposition(|w| w == EOCD) else {
        return Err(SkipReason::Malformed(format));
    };
    let eocd = &tail[at..];
    let total = eocd
        .get(10..12)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(u16::MAX);
    let zip64 = at >= 20 && &tail[at - 20..at - 16] == ZIP64_LOCATOR;
    if zip64 || total == u16::MAX || usize::from(total) > max {
        return Err(SkipReason::TooManyEntries { limit: max });
    }
    Ok(())
}

/// Word: the text runs (`w:t`) of the main document part, a line per paragraph, tabs and
/// breaks kept. Deleted text (`w:delText`) and field codes (`w:instrText`) are not text.
pub(crate) fn docx(data: &[u8], limits: &Limits, sink: &mut TextSink) -> Outcome {
    let mut pkg = Package::open(data, Format::Docx, limits)?;
    let mut in_t = false;
    let found = pkg.read_xml("word/document.xml", |ev| {
        match ev {
            Event::Start(e) if e.name().as_ref() == b"w:t" => in_t = true,
            Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_t = false,
                b"w:p" => {
                    sink.newline();
                }
                b"w:tc" => {
                    sink.push("\t");
                }
                _ => {}
            },
            Event::Empty(e) => match e.name().as_ref() {
                b"w:tab" => {
                    sink.push("\t");
                }
                b"w:br" | b"w:cr" => {
                    sink.newline();
                }
                _ => {}
            },
            Event::Text(t) if in_t => {
                sink.push(&t.decode().unwrap_or_default());
            }
            Event::GeneralRef(r) if in_t => {
                sink.push(&entity_text(r));
            }
            _ => {}
        }
        !sink.is_full()
    })?;
    if !found {
        return Err(SkipReason::Malformed(Format::Docx));
    }
    Ok(Vec::new())
}

/// PowerPoint: the text (`a:t`) of each slide in slide-number order, a line per paragraph, a
/// blank line between slides.
pub(crate) fn pptx(data: &[u8], limits: &Limits, sink: &mut TextSink) -> Outcome {
    let mut pkg = Package::open(data, Format::Pptx, limits)?;
    let mut slides: Vec<(u64, String)> = pkg
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((num, n))
        })
        .collect();
    if slides.is_empty() {
        return Err(SkipReason::Malformed(Format::Pptx));
    }
    slides.sort();
    for (_, name) in slides {
        let mut in_t = false;
        pkg.read_xml(&name, |ev| {
            match ev {
                Event::Start(e) if e.name().as_ref() == b"a:t" => in_t = true,
                Event::End(e) => match e.name().as_ref() {
                    b"a:t" => in_t = false,
                    b"a:p" => {
                        sink.newline();
                    }
                    _ => {}
                },
                Event::Empty(e) if e.name().as_ref() == b"a:br" => {
                    sink.newline();
                }
                Event::Text(t) if in_t => {
                    sink.push(&t.decode().unwrap_or_default());
                }
                Event::GeneralRef(r) if in_t => {
                    sink.push(&entity_text(r));
                }
                _ => {}
            }
            !sink.is_full()
        })?;
        if !sink.blank_line() {
            break;
        }
    }
    Ok(Vec::new())
}

/// Excel: each sheet in workbook order, its name on a line, then one line per row with cells
/// separated by tabs (cached values: shared and inline strings, numbers, booleans as
/// TRUE/FALSE; formulas themselves are not text).
pub(crate) fn xlsx(data: &[u8], limits: &Limits, sink: &mut TextSink) -> Outcome {
    let mut pkg = Package::open(data, Format::Xlsx, limits)?;
    let shared = shared_strings(&mut pkg, limits.max_text_bytes)?;
    let sheets = sheets(&mut pkg)?;
    if sheets.is_empty() {
        return Err(SkipReason::Malformed(Format::Xlsx));
    }
    for (sheet_name, path) in sheets {
        if !sink.push(&sheet_name) || !sink.newline() {
            break;
        }
        let mut row: Vec<String> = Vec::new();
        let mut cell = CellState::default();
        pkg.read_xml(&path, |ev| {
            match ev {
                Event::Start(e) if e.name().as_ref() == b"row" => row.clear(),
                Event::Start(e) if e.name().as_ref() == b"c" => {
                    cell = CellState {
                        kind: attribute(e, b"t"),
                        column: attribute(e, b"r").and_then(|r| column_of(&r)),
                        ..CellState::default()
                    };
                }
                Event::Start(e) if matches!(e.name().as_ref(), b"v" | b"t") => cell.in_value = true,
                Event::End(e) => match e.name().as_ref() {
                    b"v" | b"t" => cell.in_value = false,
                    b"c" => {
                        let value = cell.value(&shared);
                        let at = cell.column.unwrap_or(row.len()).min(16_384);
                        if at >= row.len() {
                            row.resize(at + 1, String::new());
                        }
                        row[at] = value;
                    }
                    b"row" => {
                        while row.last().is_some_and(String::is_empty) {
                            row.pop();
                        }
                        if !row.is_empty() {
                            sink.push(&row.join("\t"));
                            sink.newline();
                        }
                    }
                    _ => {}
                },
                Event::Text(t) if cell.in_value => {
                    cell.raw.push_str(&t.decode().unwrap_or_default())
                }
                Event::GeneralRef(r) if cell.in_value => cell.raw.push_str(&entity_text(r)),
                _ => {}
            }
            !sink.is_full()
        })?;
        if !sink.blank_line() {
            break;
        }
    }
    Ok(Vec::new())
}

#[derive(Default)]
struct CellState {
    kind: Option<String>,
    column: Option<usize>,
    in_value: bool,
    raw: String,
}

impl CellState {
    fn value(&self, shared: &[String]) -> String {
        let raw = self.raw.trim();
        match self.kind.as_deref() {
            Some("s") => raw
                .parse::<usize>()
                .ok()
                .and_then(|i| shared.get(i))
                .cloned()
                .unwrap_or_default(),
            Some("b") => (if raw == "1" { "TRUE" } else { "FALSE" }).to_string(),
            Some("inlineStr" | "str") => self.raw.clone(),
            _ => raw.to_string(),
        }
    }
}

/// `C12` → 2 (zero-based column of an A1 reference).
fn column_of(reference: &str) -> Option<usize> {
    let letters: Vec<u8> = reference
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let n = letters.iter().fold(0usize, |acc, c| {
        acc * 26 + usize::from(c.to_ascii_uppercase() - b'A') + 1
    });
    Some(n - 1)
}

/// The shared-string table (`xl/sharedStrings.xml`): each `si`'s text runs, phonetic runs
/// (`rPh`) left out. Strings past `max_bytes` in total are kept as empty strings, so that indices
/// still line up.
fn shared_strings(pkg: &mut Package<'_>, max_bytes: usize) -> Result<Vec<String>, SkipReason> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let (mut in_t, mut in_phonetic) = (false, false);
    let mut total = 0usize;
    pkg.read_xml("xl/sharedStrings.xml", |ev| {
        match ev {
            Event::Start(e) => match e.name().as_ref() {
                b"si" => cur.clear(),
                b"t" => in_t = true,
                b"rPh" => in_phonetic = true,
                _ => {}
            },
            Event::End(e) => match e.name().as_ref() {
                b"t" => in_t = false,
                b"rPh" => in_phonetic = false,
                b"si" => {
                    total += cur.len();
                    out.push(if total <= max_bytes {
                        std::mem::take(&mut cur)
                    } else {
                        String::new()
                    });
                }
                _ => {}
            },
            Event::Empty(e) if e.name().as_ref() == b"si" => out.push(String::new()),
            Event::Text(t) if in_t && !in_phonetic => cur.push_str(&t.decode().unwrap_or_default()),
            Event::GeneralRef(r) if in_t && !in_phonetic => cur.push_str(&entity_text(r)),
            _ => {}
        }
        // Later strings read as empty: a table of millions of tiny entries stays small.
        out.len() < MAX_SHARED_STRINGS
    })?;
    Ok(out)
}

/// The sheets in workbook order: names from `xl/workbook.xml`, parts from its relationships.
/// Falls back to the worksheet parts in number order when the workbook cannot be read.
fn sheets(pkg: &mut Package<'_>) -> Result<Vec<(String, String)>, SkipReason> {
    let mut declared: Vec<(String, String)> = Vec::new();
    pkg.read_xml("xl/workbook.xml", |ev| {
        if let Event::Empty(e) | Event::Start(e) = ev
            && e.name().as_ref() == b"sheet"
            && let (Some(name), Some(rid)) = (attribute(e, b"name"), attribute(e, b"r:id"))
        {
            declared.push((name, rid));
        }
        true
    })?;
    let mut targets: HashMap<String, String> = HashMap::new();
    pkg.read_xml("xl/_rels/workbook.xml.rels", |ev| {
        if let Event::Empty(e) | Event::Start(e) = ev
            && name_of(e) == "relationship"
            && let (Some(id), Some(target)) = (attribute(e, b"Id"), attribute(e, b"Target"))
        {
            targets.insert(id, target);
        }
        true
    })?;
    let resolved: Vec<(String, String)> = declared
        .into_iter()
        .filter_map(|(name, rid)| {
            let target = targets.get(&rid)?;
            let path = match target.strip_prefix('/') {
                Some(abs) => abs.to_string(),
                None => format!("xl/{target}"),
            };
            Some((name, path))
        })
        .collect();
    if !resolved.is_empty() {
        return Ok(resolved);
    }
    let mut parts: Vec<(u64, String)> = pkg
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n
                .strip_prefix("xl/worksheets/sheet")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((num, n))
        })
        .collect();
    parts.sort();
    Ok(parts
        .into_iter()
        .map(|(num, path)| (format!("Sheet{num}"), path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1_references_give_zero_based_columns() {
        assert_eq!(column_of("A1"), Some(0));
        assert_eq!(column_of("Z9"), Some(25));
        assert_eq!(column_of("AA10"), Some(26));
        assert_eq!(column_of("XFD1"), Some(16_383));
        assert_eq!(column_of("12"), None);
    }
}
