//! PDF text with `lopdf`, kept within bounds that `lopdf` itself does not enforce.
//!
//! `lopdf` decompresses a stream wholly whenever it decodes one, and does so eagerly for
//! cross-reference streams (while reading the file) and object streams (while loading
//! objects); page contents and fonts are decoded when text is extracted. A small compressed
//! stream can expand to gigabytes, so each of those moments is guarded:
//! 1. before loading, every stream that may be a cross-reference stream is inflated into a
//!    counter (nothing kept) and the file is skipped if one expands past
//!    [`Limits::max_stream_bytes`] (see [`check_xref_streams`]);
//! 2. while loading, a filter (`lopdf`'s `LoadOptions::filter`) empties image streams (their
//!    bytes are not text and are most of a large PDF) and empties any object stream that would
//!    expand past the same limit, or past that limit in total;
//! 3. after loading, any other stream that would decode past it is emptied, and a page whose
//!    content streams add up to more than [`Limits::max_page_content_bytes`] is left out
//!    (the result says how many).
//!
//! So peak memory is about: the input, plus the non-image stream bytes `lopdf` copies out of it,
//! plus one decoded object stream budget, plus one page's decoded and tokenised content, plus
//! the text limit. Encrypted files are skipped: `lopdf` decrypts and decompresses their object
//! streams outside the filter. `lopdf` is built without its `rayon` feature, so the filter runs
//! on this thread and can read the per-extraction state kept in a thread local.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;

use flate2::read::{DeflateDecoder, ZlibDecoder};
use lopdf::{Document, LoadOptions, Object, ObjectId, Stream};

use super::{Format, Limits, Outcome, SkipReason, TextSink};

/// LZW emits at most 4,096 bytes per code of at least 9 bits: a bound on its expansion.
const LZW_MAX_RATIO: u64 = 4096 * 8 / 9 + 1;

/// How far before a `stream` keyword its dictionary is looked for.
const DICT_WINDOW: usize = 64 * 1024;

pub(crate) fn extract(data: &[u8], limits: &Limits, sink: &mut TextSink) -> Outcome {
    if memchr::memmem::find(data, b"/Encrypt").is_some() {
        return Err(SkipReason::Encrypted(Format::Pdf));
    }
    check_xref_streams(data, limits)?;

    let doc = {
        let _guard = LoadGuard::install(limits);
        let options = LoadOptions {
            filter: Some(load_filter),
            ..LoadOptions::default()
        };
        Document::load_mem_with_options(data, options)
            .map_err(|_| SkipReason::Malformed(Format::Pdf))?
    };
    let mut doc = doc;
    let sizes = bound_streams(&mut doc, limits.max_stream_bytes);

    let mut notes = Vec::new();
    let pages = doc.get_pages();
    let mut oversized = 0usize;
    for (&number, &page_id) in &pages {
        if sink.is_full() {
            break;
        }
        let content: u64 = doc
            .get_page_contents(page_id)
            .iter()
            .map(|id| sizes.get(id).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        if content > limits.max_page_content_bytes {
            oversized += 1;
            continue;
        }
        for chunk in doc.extract_text_chunks(&[number]).into_iter().flatten() {
            if !sink.push(&chunk) {
                break;
            }
        }
        sink.blank_line();
    }
    if oversized > 0 {
        notes.push(format!(
            "{oversized} of {} pages left out: content over {} bytes",
            pages.len(),
            limits.max_page_content_bytes
        ));
    }
    Ok(notes)
}

/// Step 1: the streams `lopdf` inflates while reading the cross-reference table, measured.
/// A stream counts when its dictionary mentions `XRef`, or uses a `#` escape in a name (which
/// could spell it), or cannot be found. Others are left to steps 2 and 3.
fn check_xref_streams(data: &[u8], limits: &Limits) -> Result<(), SkipReason> {
    let mut measured = 0u64;
    for at in memchr::memmem::find_iter(data, b"stream") {
        if at >= 3 && &data[at - 3..at] == b"end" {
            continue;
        }
        let from = at.saturating_sub(DICT_WINDOW);
        let dict = match memchr::memmem::rfind(&data[from..at], b"obj") {
            Some(o) => &data[from + o..at],
            None => &data[from..at],
        };
        let may_be_xref = memchr::memmem::find(dict, b"XRef").is_some()
            || dict.contains(&b'#')
            || dict.len() == at - from;
        if !may_be_xref {
            continue;
        }
        let start = stream_start(data, at + b"stream".len());
        let body = &data[start..];
        let size = if memchr::memmem::find(dict, b"LZW").is_some() {
            let end = memchr::memmem::find(body, b"endstream").unwrap_or(body.len());
            (end as u64).saturating_mul(LZW_MAX_RATIO)
        } else {
            inflated_size(body, limits.max_stream_bytes)
        };
        if size > limits.max_stream_bytes {
            return Err(SkipReason::StreamTooLarge {
                limit: limits.max_stream_bytes,
            });
        }
        measured = measured.saturating_add(size);
        if measured > limits.max_unpacked_bytes {
            return Err(SkipReason::UnpackedTooLarge {
                limit: limits.max_unpacked_bytes,
            });
        }
    }
    Ok(())
}

/// Where stream data starts: after the keyword, optional spaces, and one end of line.
fn stream_start(data: &[u8], mut p: usize) -> usize {
    while data.get(p).is_some_and(|c| *c == b' ' || *c == b'\t') {
        p += 1;
    }
    match (data.get(p), data.get(p + 1)) {
        (Some(b'\r'), Some(b'\n')) => p + 2,
        (Some(b'\r' | b'\n'), _) => p + 1,
        _ => p,
    }
    .min(data.len())
}

/// How many bytes `lopdf` would get from inflating `input` (zlib, or raw deflate after the
/// two header bytes, as `lopdf` retries), counted up to `cap + 1` and never stored.
fn inflated_size(input: &[u8], cap: u64) -> u64 {
    let zlib = count_read(ZlibDecoder::new(input), cap);
    if zlib.0 > 0 || zlib.1 || input.len() <= 2 {
        return zlib.0;
    }
    count_read(DeflateDecoder::new(&input[2..]), cap).0
}

/// (bytes read up to `cap + 1`, whether it ended cleanly).
fn count_read(mut r: impl Read, cap: u64) -> (u64, bool) {
    let mut buf = [0u8; 16 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (n, true),
            Ok(k) => {
                n += k as u64;
                if n > cap {
                    return (n, false);
                }
            }
            Err(_) => return (n, false),
        }
    }
}

/// An upper bound on the bytes `Stream::decompressed_content` returns, or `u64::MAX` when a
/// filter chain cannot be bounded without decoding it.
fn decoded_bound(s: &Stream, cap: u64) -> u64 {
    let len = s.content.len() as u64;
    let Ok(filters) = s.filters() else {
        return len;
    };
    match filters.as_slice() {
        [] => len,
        [b"FlateDecode" | b"Fl"] => inflated_size(&s.content, cap),
        [b"LZWDecode" | b"LZW"] => len.saturating_mul(LZW_MAX_RATIO),
        [b"ASCII85Decode" | b"A85"] => len.saturating_mul(4),
        // Filters lopdf does not decode: it falls back to the raw bytes.
        f if f.iter().all(|f| {
            matches!(
                *f,
                b"DCTDecode"
                    | b"DCT"
                    | b"JPXDecode"
                    | b"CCITTFaxDecode"
                    | b"CCF"
                    | b"JBIG2Decode"
                    | b"RunLengthDecode"
                    | b"RL"
            )
        }) =>
        {
            len
        }
        _ => u64::MAX,
    }
}

fn is_image(s: &Stream) -> bool {
    s.dict
        .get(b"Subtype")
        .and_then(Object::as_name)
        .is_ok_and(|n| n == b"Image")
}

fn empty(s: &mut Stream) {
    s.dict.remove(b"Filter");
    s.dict.remove(b"DecodeParms");
    s.set_content(Vec::new());
}

/// Step 3: empties every stream still unbounded after loading (including streams whose length
/// was an indirect object, which `lopdf` fills in after the filter ran) and returns each kept
/// stream's decoded size bound.
fn bound_streams(doc: &mut Document, cap: u64) -> HashMap<ObjectId, u64> {
    let mut sizes = HashMap::new();
    for (id, obj) in doc.objects.iter_mut() {
        if let Object::Stream(s) = obj {
            if is_image(s) {
                empty(s);
                continue;
            }
            let bound = decoded_bound(s, cap);
            if bound > cap {
                empty(s);
                sizes.insert(*id, 0);
            } else {
                sizes.insert(*id, bound);
            }
        }
    }
    sizes
}

/// State the load filter reads: per extraction, on this thread.
struct LoadState {
    max_stream: u64,
    /// Decoded object-stream bytes still allowed.
    object_streams_left: u64,
}

thread_local! {
    static LOAD: RefCell<Option<LoadState>> = const { RefCell::new(None) };
}

/// Installs the filter's state for one load and removes it when dropped (also on unwind).
struct LoadGuard;

impl LoadGuard {
    fn install(limits: &Limits) -> Self {
        LOAD.with(|s| {
            *s.borrow_mut() = Some(LoadState {
                max_stream: limits.max_stream_bytes,
                object_streams_left: limits.max_stream_bytes,
            })
        });
        LoadGuard
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        LOAD.with(|s| *s.borrow_mut() = None);
    }
}

/// Step 2, `lopdf`'s load filter: runs on each top-level object before `lopdf` expands object
/// streams. Objects inside object streams (never streams themselves) pass through unchanged.
/// With no state installed (a load on another thread) every stream is emptied: bounded, if
/// textless.
fn load_filter(id: ObjectId, obj: &mut Object) -> Option<(ObjectId, Object)> {
    let Object::Stream(s) = obj else {
        return Some((id, obj.clone()));
    };
    LOAD.with(|state| {
        let mut state = state.borrow_mut();
        let Some(st) = state.as_mut() else {
            empty(s);
            return;
        };
        if is_image(s) {
            empty(s);
        } else if s.dict.has_type(b"ObjStm") {
            let bound = decoded_bound(s, st.max_stream);
            if bound > st.max_stream || bound > st.object_streams_left {
                empty(s);
            } else {
                st.object_streams_left -= bound;
            }
        }
    });
    // lopdf keeps the object it passed in (mutated above); what is returned here is used only for
    // objects inside object streams, which are never streams.
    Some((id, Object::Null))
}
