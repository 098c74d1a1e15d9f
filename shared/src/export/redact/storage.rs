//! Confluence storage format (XHTML with `ac:`/`ri:` elements) and rendered HTML (`view`,
//! Jira `renderedFields`), read with `quick-xml` in its most lenient setting.
//!
//! Storage format is not well-formed XML on its own: `ac:`/`ri:` prefixes come without namespace
//! declarations, HTML entities (`&nbsp;`) are undeclared, rendered HTML leaves `<br>` open and
//! attributes unquoted. So: no namespace resolution, no entity expansion (only byte ranges are
//! used and everything not replaced is copied byte for byte), end names unchecked, unmatched ends
//! allowed, HTML attribute syntax. Where the reader still gives up (an unterminated tag, comment
//! or CDATA section, a `<` that starts no tag), the text up to the next `<` is kept as it is and
//! reading starts again there, at most [`MAX_RESTARTS`] times; what was not understood is left to
//! the free-text rule that runs after this pass, which removes every id in an account-id context
//! (`ri:account-id="..."` is one). This pass never fails.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::ids::{self, Legacy};
use super::names::{NameBook, UNKNOWN_USER};

/// Markup attributes that name a user whatever their value.
const USER_ATTRIBUTES: [&str; 4] = [
    "data-account-id",
    "data-account-ids",
    "data-user-key",
    "data-username",
];
/// Attributes of `<ri:user>` that identify the user, in order of preference.
const RI_USER_ID_ATTRIBUTES: [&str; 3] = ["ri:account-id", "ri:userkey", "ri:username"];
/// How many times reading starts again after markup the reader cannot read (bounds the work on
/// pathological input: each restart may read to the end of the text).
const MAX_RESTARTS: u32 = 64;

/// Replace `<ri:user ri:account-id="..."/>` (also with ri:userkey / self-closing or not, inside
/// or outside <ac:link>, any attribute order/quotes) in Confluence storage XHTML by the text
/// `@Display Name` (XML-escaped) from `names`, or `@unknown user` when unknown.
///
/// An `<ac:link>` holding a user reference is replaced as a whole (with its link body, if any),
/// since a link without a resource is not valid storage format. Returns the new text and the
/// number of mentions replaced.
#[must_use]
pub fn redact_storage_body(xhtml: &str, names: &NameBook) -> (String, u64) {
    let out = redact_markup(xhtml, names, false);
    match out.text {
        Some(text) => (text, out.mentions),
        None => (xhtml.to_owned(), 0),
    }
}

/// What [`redact_markup`] did.
pub(super) struct Markup {
    /// The new text, `None` when nothing changed.
    pub(super) text: Option<String>,
    pub(super) mentions: u64,
    /// Attributes removed.
    pub(super) attributes: u64,
}

/// Is `text` markup that may hold a user reference or a user attribute (worth parsing)?
pub(super) fn may_name_users(text: &str, names: &NameBook, rule: Legacy) -> bool {
    let b = text.as_bytes();
    b.contains(&b'<')
        && (ids::find_ci(b, 0, b"<ri:user").is_some()
            || USER_ATTRIBUTES
                .iter()
                .any(|a| ids::find_ci(b, 0, a.as_bytes()).is_some())
            || ids::find_ci(b, 0, b"rel=").is_some()
            || !ids::id_spans(text, Some(names), rule).is_empty())
}

/// `<ri:user>` references (and the `<ac:link>` around them) -> `@Name`; with `strip_attributes`,
/// also every attribute naming a user ([`USER_ATTRIBUTES`], or a value holding an account id:
/// `href=".../wiki/people/<id>"`, avatar `src`, Jira's user-hover `rel="<id>"`), the tag written
/// anew without it.
pub(super) fn redact_markup(text: &str, names: &NameBook, strip_attributes: bool) -> Markup {
    let toks = tokenize(text, names, strip_attributes);
    let links = LinkIndex::new(&toks);
    let mut out = String::new();
    let mut copied_tok = 0;
    let (mut mentions, mut attributes) = (0u64, 0u64);
    let emit = |out: &mut String, from: usize, to: usize, attributes: &mut u64| {
        for t in toks.get(from..to).unwrap_or_default() {
            match &t.rebuilt {
                Some((tag, n)) => {
                    out.push_str(tag);
                    *attributes += n;
                }
                None => out.push_str(text.get(t.start..t.end).unwrap_or_default()),
            }
        }
    };
    let mut i = 0;
    while i < toks.len() {
        let Some(mention) = toks.get(i).and_then(|t| t.mention.as_deref()) else {
            i += 1;
            continue;
        };
        let user_end = element_end(&toks, i);
        match links.enclosing(copied_tok, i, user_end) {
            Some((open, close)) => {
                emit(&mut out, copied_tok, open, &mut attributes);
                let inside: Vec<&str> = toks
                    .get(open..close)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| t.mention.as_deref())
                    .collect();
                out.push_str(&inside.join(" "));
                mentions += inside.len() as u64;
                copied_tok = close + 1;
            }
            None => {
                emit(&mut out, copied_tok, i, &mut attributes);
                out.push_str(mention);
                mentions += 1;
                copied_tok = user_end + 1;
            }
        }
        i = copied_tok;
    }
    emit(&mut out, copied_tok, toks.len(), &mut attributes);
    let changed = mentions > 0 || attributes > 0;
    Markup {
        text: changed.then_some(out),
        mentions,
        attributes,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Empty,
    Close,
    Text,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Link,
    Other,
}

/// One piece of the text: the pieces cover it without gap or overlap.
struct Tok {
    start: usize,
    end: usize,
    kind: Kind,
    role: Role,
    /// `@Name` (escaped) of a `<ri:user>` start or empty tag.
    mention: Option<String>,
    /// The tag without its user attributes, and how many were removed.
    rebuilt: Option<(String, u64)>,
}

impl Tok {
    fn plain(start: usize, end: usize, kind: Kind) -> Tok {
        Tok {
            start,
            end,
            kind,
            role: Role::Other,
            mention: None,
            rebuilt: None,
        }
    }

    fn is(&self, kind: Kind, role: Role) -> bool {
        self.kind == kind && self.role == role
    }
}

fn reader(text: &str) -> Reader<&[u8]> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.allow_unmatched_ends = true;
    config.check_end_names = false;
    config.check_comments = false;
    config.expand_empty_elements = false;
    config.trim_text(false);
    reader
}

fn tokenize(text: &str, names: &NameBook, strip_attributes: bool) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    let mut restarts = 0u32;
    let mut base = 0usize;
    'restart: while base < text.len() {
        let slice = text.get(base..).unwrap_or_default();
        let mut reader = reader(slice);
        let mut last = 0usize;
        loop {
            let event = reader.read_event();
            let pos = usize::try_from(reader.buffer_position())
                .map_or(slice.len(), |p| p.min(slice.len()));
            let (start, end) = (base + last, base + pos);
            let kind = match event {
                Ok(Event::Eof) => break 'restart,
                Ok(Event::Start(tag) | Event::Empty(tag))
                    if !tag
                        .name()
                        .as_ref()
                        .first()
                        .is_some_and(u8::is_ascii_alphabetic)
                        && restarts < MAX_RESTARTS =>
                {
                    // `a < b`: not a tag; its `<` is text, and reading goes on after it.
                    restarts += 1;
                    toks.push(Tok::plain(start, start + 1, Kind::Text));
                    base = start + 1;
                    continue 'restart;
                }
                Ok(Event::Start(tag)) => {
                    toks.push(tag_tok(
                        start,
                        end,
                        Kind::Open,
                        &tag,
                        names,
                        strip_attributes,
                    ));
                    last = pos;
                    continue;
                }
                Ok(Event::Empty(tag)) => {
                    toks.push(tag_tok(
                        start,
                        end,
                        Kind::Empty,
                        &tag,
                        names,
                        strip_attributes,
                    ));
                    last = pos;
                    continue;
                }
                Ok(Event::End(tag)) => {
                    let mut t = Tok::plain(start, end, Kind::Close);
                    t.role = role_of(tag.name().as_ref());
                    toks.push(t);
                    last = pos;
                    continue;
                }
                Ok(Event::Text(_) | Event::GeneralRef(_)) => Kind::Text,
                Ok(_) => Kind::Other,
                Err(_) => {
                    let err_at = base
                        + usize::try_from(reader.error_position()).map_or(last, |p| p.max(last));
                    let next = if restarts < MAX_RESTARTS {
                        restarts += 1;
                        b.get(err_at + 1..)
                            .and_then(|rest| rest.iter().position(|&c| c == b'<'))
                            .map_or(text.len(), |rel| err_at + 1 + rel)
                    } else {
                        text.len()
                    };
                    toks.push(Tok::plain(base + last, next, Kind::Other));
                    base = next;
                    continue 'restart;
                }
            };
            toks.push(Tok::plain(start, end, kind));
            last = pos;
        }
    }
    toks
}

fn role_of(name: &[u8]) -> Role {
    if name.eq_ignore_ascii_case(b"ri:user") {
        Role::User
    } else if name.eq_ignore_ascii_case(b"ac:link") {
        Role::Link
    } else {
        Role::Other
    }
}

fn tag_tok(
    start: usize,
    end: usize,
    kind: Kind,
    tag: &BytesStart<'_>,
    names: &NameBook,
    strip_attributes: bool,
) -> Tok {
    let role = role_of(tag.name().as_ref());
    let mut t = Tok::plain(start, end, kind);
    t.role = role;
    let attrs = attributes(tag);
    if role == Role::User {
        let name = RI_USER_ID_ATTRIBUTES
            .iter()
            .filter_map(|wanted| {
                attrs
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
            })
            .find_map(|(_, id)| names.name_of(id.trim()));
        t.mention = Some(format!("@{}", xml_escape(name.unwrap_or(UNKNOWN_USER))));
    } else if strip_attributes
        && let Some(attrs) = attrs
        && attrs.iter().any(|(k, v)| names_user(k, v, names))
    {
        let mut tag_text = String::from("<");
        tag_text.push_str(&String::from_utf8_lossy(tag.name().as_ref()));
        let mut removed = 0;
        for (k, v) in &attrs {
            if names_user(k, v, names) {
                removed += 1;
                continue;
            }
            // The raw value, re-quoted (an attribute without a value gets an empty one).
            let quote = if v.contains('"') { '\'' } else { '"' };
            let escaped = if quote == '"' { "&quot;" } else { "&#39;" };
            tag_text.push(' ');
            tag_text.push_str(k);
            tag_text.push('=');
            tag_text.push(quote);
            tag_text.push_str(&v.replace(quote, escaped));
            tag_text.push(quote);
        }
        tag_text.push_str(if kind == Kind::Empty { "/>" } else { ">" });
        t.rebuilt = Some((tag_text, removed));
    }
    t
}

/// The attributes of `tag` as (name, raw value); `None` when they cannot all be read (the tag is
/// then kept as it is, for the free-text rule).
fn attributes(tag: &BytesStart<'_>) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut attrs = tag.html_attributes();
    attrs.with_checks(false);
    for attr in attrs {
        let attr = attr.ok()?;
        let key = std::str::from_utf8(attr.key.as_ref()).ok()?.to_owned();
        let value = std::str::from_utf8(&attr.value).ok()?.to_owned();
        out.push((key, value));
    }
    Some(out)
}

/// Does the attribute name a user: a user attribute, a value holding an account id (in the
/// attribute's own context: `data-owner-id` makes any 24-hex value one), or Jira's user-hover
/// `rel="<id>"`?
fn names_user(key: &str, value: &str, names: &NameBook) -> bool {
    if USER_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(key)) {
        return true;
    }
    let keyed = ids::is_user_word(&ids::normalize_key(key), false);
    if !ids::id_spans(value, Some(names), Legacy::Precise { keyed }).is_empty() {
        return true;
    }
    key.eq_ignore_ascii_case("rel") && ids::is_account_id(value)
}

/// Index of the last token of the `<ri:user>` element starting at token `i`: its `</ri:user>`
/// when that follows with only text in between, else the start tag itself.
fn element_end(toks: &[Tok], i: usize) -> usize {
    if !toks.get(i).is_some_and(|t| t.kind == Kind::Open) {
        return i;
    }
    let close_at = |j: usize| toks.get(j).is_some_and(|t| t.is(Kind::Close, Role::User));
    if close_at(i + 1) {
        i + 1
    } else if toks.get(i + 1).is_some_and(|t| t.kind == Kind::Text) && close_at(i + 2) {
        i + 2
    } else {
        i
    }
}

/// For every token: the nearest `<ac:link>` start before it and `</ac:link>` before it, and the
/// first of each after it (linear precomputation, so that no input makes the pass quadratic).
struct LinkIndex {
    open_before: Vec<Option<usize>>,
    close_before: Vec<Option<usize>>,
    open_after: Vec<Option<usize>>,
    close_after: Vec<Option<usize>>,
}

impl LinkIndex {
    fn new(toks: &[Tok]) -> LinkIndex {
        let n = toks.len();
        let mut idx = LinkIndex {
            open_before: vec![None; n],
            close_before: vec![None; n],
            open_after: vec![None; n],
            close_after: vec![None; n],
        };
        let (mut open, mut close) = (None, None);
        for (i, t) in toks.iter().enumerate() {
            idx.open_before[i] = open;
            idx.close_before[i] = close;
            if t.is(Kind::Open, Role::Link) {
                open = Some(i);
            } else if t.is(Kind::Close, Role::Link) {
                close = Some(i);
            }
        }
        let (mut open, mut close) = (None, None);
        for (i, t) in toks.iter().enumerate().rev() {
            idx.open_after[i] = open;
            idx.close_after[i] = close;
            if t.is(Kind::Open, Role::Link) {
                open = Some(i);
            } else if t.is(Kind::Close, Role::Link) {
                close = Some(i);
            }
        }
        idx
    }

    /// The `<ac:link>` element around the user element `user..=user_end` (not starting before
    /// token `lo`): still open at the user, closed after it before any other link opens.
    fn enclosing(&self, lo: usize, user: usize, user_end: usize) -> Option<(usize, usize)> {
        let open = (*self.open_before.get(user)?)?;
        if open < lo
            || self
                .close_before
                .get(user)
                .copied()
                .flatten()
                .is_some_and(|c| c > open)
        {
            return None;
        }
        let close = (*self.close_after.get(user_end)?)?;
        if self
            .open_after
            .get(user_end)
            .copied()
            .flatten()
            .is_some_and(|o| o < close)
        {
            return None;
        }
        Some((open, close))
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
