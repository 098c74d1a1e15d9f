//! Small helpers over `quick-xml` shared by the storage-format parser and the extractors.

use quick_xml::escape::resolve_html5_entity;
use quick_xml::events::{BytesRef, BytesStart};
use quick_xml::{Reader, XmlVersion};

/// A reader that tolerates what real documents contain: end tags that do not match (HTML's
/// optional end tags, or markup cut short) are not errors.
pub(crate) fn lenient_reader(text: &str) -> Reader<&[u8]> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.check_comments = false;
    reader
}

/// The text of `&name;` or `&#…;`: XML's and HTML5's named entities (storage format uses the
/// latter, e.g. `&nbsp;` and `&rsquo;`), character references; anything else stays as written.
pub(crate) fn entity_text(r: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return c.to_string();
    }
    let name = String::from_utf8_lossy(r);
    match resolve_html5_entity(&name) {
        Some(s) => s.to_string(),
        None => format!("&{name};"),
    }
}

/// The element's name as written (with its `ac:`/`ri:`/`w:` prefix), lower-cased.
pub(crate) fn name_of(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase()
}

/// Attributes as (lower-cased name, unescaped value); malformed ones are skipped.
pub(crate) fn attributes_of(e: &BytesStart<'_>) -> Vec<(String, String)> {
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    attrs
        .filter_map(Result::ok)
        .map(|a| {
            let key = String::from_utf8_lossy(a.key.as_ref()).to_ascii_lowercase();
            let value =
                match a.normalized_value_with(XmlVersion::Implicit1_0, 4, resolve_html5_entity) {
                    Ok(v) => v.into_owned(),
                    Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
                };
            (key, value)
        })
        .collect()
}

/// The value of one attribute, if present (name compared lower-case).
pub(crate) fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    attrs
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}
