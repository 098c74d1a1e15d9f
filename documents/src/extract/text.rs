//! Plain text, Markdown, CSV and HTML.

use quick_xml::events::Event;

use super::{Format, Outcome, SkipReason, TextSink};
use crate::xml::{entity_text, lenient_reader, name_of};

/// Syntax errors tolerated in one HTML file before the rest is given up.
const MAX_HTML_ERRORS: usize = 1000;

/// UTF-8 (with or without BOM) or UTF-16 with BOM; anything else as UTF-8 with replacement
/// characters. Text with NUL bytes and no UTF-16 BOM is binary, not text.
pub(crate) fn decode(data: &[u8], format: Format) -> Result<String, SkipReason> {
    if let Some(rest) = data.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(String::from_utf8_lossy(rest).into_owned());
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    if let Some(rest) = data.strip_prefix(b"\xFF\xFE") {
        return Ok(utf16(rest, true));
    }
    if let Some(rest) = data.strip_prefix(b"\xFE\xFF") {
        return Ok(utf16(rest, false));
    }
    let head = &data[..data.len().min(8192)];
    if head.contains(&0) {
        return Err(SkipReason::Malformed(format));
    }
    Ok(String::from_utf8_lossy(data).into_owned())
}

/// Plain text, Markdown and CSV are already text: decoded and kept as they are.
pub(crate) fn plain(data: &[u8], format: Format, sink: &mut TextSink) -> Outcome {
    let text = decode(data, format)?;
    sink.push(&text.replace("\r\n", "\n"));
    Ok(Vec::new())
}

/// Block-level HTML elements: each starts and ends a line.
const BLOCKS: [&str; 27] = [
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "title",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "main",
];

/// Elements whose content is not text a reader sees.
const HIDDEN: [&str; 5] = ["script", "style", "noscript", "template", "svg"];

/// HTML text: what a browser shows, one line per block, cells separated by tabs. Parsed with
/// `quick-xml` in its lenient mode (HTML is rarely well-formed XML: end tags are optional and
/// do not have to match).
pub(crate) fn html(data: &[u8], sink: &mut TextSink) -> Outcome {
    let source = decode(data, Format::Html)?;
    // Where `reader` started in `source`: it restarts after a script or style element.
    let mut offset = 0usize;
    let mut reader = lenient_reader(&source);
    let mut errors = 0usize;
    let mut in_pre = false;
    loop {
        if sink.is_full() {
            break;
        }
        let before = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = name_of(&e);
                if HIDDEN.contains(&name.as_str()) {
                    // Raw text up to the end tag (a `<` in a script is not markup): skipped, and
                    // parsing starts again at the end tag.
                    let from =
                        offset + usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                    match source
                        .get(from..)
                        .and_then(|rest| find_end_tag(rest.as_bytes(), name.as_bytes()))
                    {
                        Some(at) => {
                            offset = from + at;
                            reader = lenient_reader(&source[offset..]);
                        }
                        None => break,
                    }
                    continue;
                }
                if name == "pre" {
                    in_pre = true;
                }
                block_or_cell(&name, sink);
            }
            Ok(Event::Empty(e)) => block_or_cell(&name_of(&e), sink),
            Ok(Event::End(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
                if name == "pre" {
                    in_pre = false;
                }
                if BLOCKS.contains(&name.as_str()) {
                    sink.newline();
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                push_html_text(&text, in_pre, sink);
            }
            Ok(Event::GeneralRef(r)) => push_html_text(&entity_text(&r), in_pre, sink),
            Ok(Event::CData(c)) => {
                let text = c.decode().map(|c| c.into_owned()).unwrap_or_default();
                push_html_text(&text, in_pre, sink);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => {
                errors += 1;
                if errors > MAX_HTML_ERRORS || reader.buffer_position() == before {
                    break;
                }
            }
        }
    }
    Ok(Vec::new())
}

/// Where `</name` starts (name compared ignoring ASCII case).
fn find_end_tag(hay: &[u8], name: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'<', hay).find(|&at| {
        hay.get(at + 1) == Some(&b'/')
            && hay
                .get(at + 2..at + 2 + name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

fn block_or_cell(name: &str, sink: &mut TextSink) {
    if BLOCKS.contains(&name) {
        sink.newline();
    } else if (name == "td" || name == "th") && !sink.ends_with_whitespace() {
        sink.push("\t");
    }
}

fn push_html_text(text: &str, in_pre: bool, sink: &mut TextSink) {
    if in_pre {
        sink.push(text);
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut space = sink.ends_with_whitespace();
    for c in text.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    sink.push(&out);
}
