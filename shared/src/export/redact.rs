//! Redaction of exported documents (PRIVACY.md P5): no Atlassian account id and no other
//! profile data (avatars, time zone, locale, account type, user links) leaves this module;
//! display names and e-mail addresses of creators and editors may remain.
//!
//! The pass works on `serde_json::Value` trees, walks them without recursion (so no input can
//! exhaust the stack), never panics, and is idempotent. In order, for every object:
//!
//! 1. An object with an `accountId` key is a user object: it keeps only its display name
//!    (`displayName`, or `publicName` when there is no usable `displayName`) and its e-mail
//!    (`emailAddress` / `email`).
//! 2. An ADF `mention` node keeps only `type` and `attrs.text` (`@Name`).
//! 3. Profile fields (`accountType`, `avatarUrls`, `authorId`, any key containing `accountId`,
//!    user `self` links, ...) are dropped; object keys holding an account id are scrubbed.
//!
//! and for every string: an embedded ADF/JSON document (Confluence `atlas_doc_format`) is parsed
//! and redacted as a tree; Jira wiki mentions `[~accountid:...]` and Confluence storage
//! `<ri:user .../>` references become `@Display Name`; markup attributes carrying account ids
//! (`data-account-id`, `/wiki/people/<id>` links) are removed; finally every remaining account
//! id is replaced by [`ACCOUNT_PLACEHOLDER`].

use std::collections::HashMap;
use std::fmt;
use std::ops::AddAssign;

use serde::Serialize;
use serde_json::{Map, Value};

/// What an account id found in free text is replaced with.
pub const ACCOUNT_PLACEHOLDER: &str = "[account]";
/// The name used for a mention of a user the [`NameBook`] does not know.
pub const UNKNOWN_USER: &str = "unknown user";

/// Legacy account ids: 24 hex digits (a MongoDB object id).
const LEGACY_ID_LEN: usize = 24;
/// `8-4-4-4-12` hex digits.
const UUID_LEN: usize = 36;
/// How deep JSON documents embedded in strings (in strings of embedded documents...) are parsed.
const MAX_EMBEDDED_DEPTH: u8 = 3;
/// Jira wiki-markup mention, as found in API v2 bodies and changelog `fromString`/`toString`.
const WIKI_MENTION: &[u8] = b"[~accountid:";
/// The longest id looked at between `[~accountid:` and `]`.
const WIKI_MENTION_MAX_ID: usize = 128;
/// Markup attributes that name a user whatever their value.
const USER_ATTRIBUTES: [&str; 4] = [
    "data-account-id",
    "data-account-ids",
    "data-user-key",
    "data-username",
];
/// Attributes of `<ri:user>` that identify the user, in order of preference.
const RI_USER_ID_ATTRIBUTES: [&str; 3] = ["ri:account-id", "ri:userkey", "ri:username"];

// ------------------------------------------------------------------------------------------------
// NameBook
// ------------------------------------------------------------------------------------------------

/// account id -> display name, learned from user objects seen so far in a job (so mentions in
/// Confluence storage bodies, which carry only the id, can be replaced by a name).
///
/// `Debug` prints only the number of entries: the ids must never reach a log line.
#[derive(Default, Clone)]
pub struct NameBook {
    names: HashMap<String, String>,
}

impl fmt::Debug for NameBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameBook")
            .field("len", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl NameBook {
    /// Walks `doc` (before it is redacted) and records `accountId` (and legacy `userKey`) ->
    /// `displayName`/`publicName` of every user object, and `attrs.id` -> `attrs.text` of ADF
    /// mention nodes (a user object's name wins over a mention's text).
    pub fn learn_from(&mut self, doc: &Value) {
        let mut stack = vec![doc];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    self.learn_object(map);
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items.iter()),
                _ => {}
            }
        }
    }

    /// Records one name (for callers that learn names elsewhere, e.g. a user lookup).
    /// Names that themselves contain an account id are ignored.
    pub fn insert(&mut self, account_id: impl Into<String>, display_name: impl Into<String>) {
        let account_id = account_id.into();
        let display_name = display_name.into();
        if let Some(name) = usable_name(&display_name) {
            let id = account_id.trim();
            if !id.is_empty() {
                self.names.insert(id.to_owned(), name.to_owned());
            }
        }
    }

    #[must_use]
    pub fn name_of(&self, account_id: &str) -> Option<&str> {
        self.names.get(account_id.trim()).map(String::as_str)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn learn_object(&mut self, map: &Map<String, Value>) {
        if map.contains_key("accountId") {
            let name = non_empty_str(map.get("displayName"))
                .or_else(|| non_empty_str(map.get("publicName")));
            if let Some(name) = name {
                for key in ["accountId", "userKey"] {
                    if let Some(id) = non_empty_str(map.get(key)) {
                        self.insert(id, name);
                    }
                }
            }
        }
        if let Some(attrs) = mention_attrs(map) {
            let id = non_empty_str(attrs.get("id")).map(str::trim);
            let text = non_empty_str(attrs.get("text")).map(|t| t.trim().trim_start_matches('@'));
            if let (Some(id), Some(text)) = (id, text)
                && !id.is_empty()
                && let Some(name) = usable_name(text)
            {
                self.names
                    .entry(id.to_owned())
                    .or_insert_with(|| name.to_owned());
            }
        }
    }

    /// `@Name` for a mention of `account_id` (unescaped), `@unknown user` when unknown.
    fn mention_of(&self, account_id: &str) -> String {
        format!("@{}", self.name_of(account_id).unwrap_or(UNKNOWN_USER))
    }
}

fn usable_name(name: &str) -> Option<&str> {
    let name = name.trim();
    (!name.is_empty() && account_id_spans(name).is_empty()).then_some(name)
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

// ------------------------------------------------------------------------------------------------
// Redactions
// ------------------------------------------------------------------------------------------------

/// What a redaction pass removed (counts only, for progress/manifest; never the values).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Redactions {
    /// User objects reduced to name and e-mail.
    pub user_objects: u64,
    /// Mentions (ADF nodes, storage `<ri:user>`, wiki `[~accountid:]`) turned into `@Name`.
    pub mentions: u64,
    /// Keys (and markup attributes) removed.
    pub fields: u64,
    /// Strings (values or object keys) in which account ids were replaced.
    pub strings: u64,
}

impl Redactions {
    /// Sum of all counts: zero means the pass changed nothing.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.user_objects
            .saturating_add(self.mentions)
            .saturating_add(self.fields)
            .saturating_add(self.strings)
    }
}

impl AddAssign for Redactions {
    fn add_assign(&mut self, other: Self) {
        self.user_objects = self.user_objects.saturating_add(other.user_objects);
        self.mentions = self.mentions.saturating_add(other.mentions);
        self.fields = self.fields.saturating_add(other.fields);
        self.strings = self.strings.saturating_add(other.strings);
    }
}

// ------------------------------------------------------------------------------------------------
// Document entry points
// ------------------------------------------------------------------------------------------------

/// Redact one Jira issue JSON (as returned by search/jql or issue/bulkfetch with fields, plus our
/// own additions like a full `comments` array) in place.
pub fn redact_jira_issue(issue: &mut Value, names: &mut NameBook) -> Redactions {
    names.learn_from(issue);
    redact_value(issue, names)
}

/// Redact one Confluence content JSON (v1 content with expand=body.storage,version,history,space,
/// ancestors; or v2 page/attachment JSON) in place, including its storage-format body.
pub fn redact_confluence_content(content: &mut Value, names: &mut NameBook) -> Redactions {
    names.learn_from(content);
    redact_value(content, names)
}

/// Redact any JSON generically (see the module documentation for the rules).
pub fn redact_value(v: &mut Value, names: &NameBook) -> Redactions {
    redact_tree(v, names, 0)
}

fn redact_tree(root: &mut Value, names: &NameBook, depth: u8) -> Redactions {
    let mut r = Redactions::default();
    // (node, "a string here is ADF serialized as JSON")
    let mut stack: Vec<(&mut Value, bool)> = vec![(root, false)];
    while let Some((v, adf)) = stack.pop() {
        match v {
            Value::Object(map) => {
                redact_object(map, names, &mut r);
                let adf_body = adf
                    || map
                        .get("representation")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("atlas_doc_format"));
                for (k, child) in map.iter_mut() {
                    let hint = k == "atlas_doc_format" || (adf_body && k == "value");
                    stack.push((child, hint));
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut().map(|c| (c, false))),
            Value::String(s) => {
                if let Some(new) = redact_string(s, adf, names, depth, &mut r) {
                    *s = new;
                }
            }
            _ => {}
        }
    }
    r
}

/// Rules 1-3 for one object (its children are visited afterwards by the caller).
fn redact_object(map: &mut Map<String, Value>, names: &NameBook, r: &mut Redactions) {
    if map.contains_key("accountId") {
        reduce_user_object(map);
        r.user_objects += 1;
        return;
    }
    if mention_attrs(map).is_some() {
        if rewrite_mention(map, names) {
            r.mentions += 1;
        }
        return;
    }
    let before = map.len();
    map.retain(|k, v| !is_profile_field(k, v));
    r.fields += (before - map.len()) as u64;
    r.strings += scrub_keys(map);
}

fn reduce_user_object(map: &mut Map<String, Value>) {
    let name_key = if non_empty_str(map.get("displayName")).is_some() {
        "displayName"
    } else if map.contains_key("publicName") {
        "publicName"
    } else {
        "displayName"
    };
    map.retain(|k, _| k == name_key || k == "emailAddress" || k == "email");
}

/// `attrs` of an ADF mention node (`{"type":"mention","attrs":{...}}`).
fn mention_attrs(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    if map.get("type").and_then(Value::as_str) != Some("mention") {
        return None;
    }
    map.get("attrs").and_then(Value::as_object)
}

/// Reduces a mention node to `{"type":"mention","attrs":{"text":"@Name"}}`; false when it
/// already had that form.
fn rewrite_mention(map: &mut Map<String, Value>, names: &NameBook) -> bool {
    let Some(attrs) = map.get("attrs").and_then(Value::as_object) else {
        return false;
    };
    let text = non_empty_str(attrs.get("text"));
    if map.len() == 2 && attrs.len() == 1 && text.is_some() {
        return false;
    }
    let clean_text = text.filter(|t| account_id_spans(t).is_empty());
    let text = match (clean_text, non_empty_str(attrs.get("id"))) {
        (Some(t), _) => t.to_owned(),
        (None, Some(id)) if names.name_of(id).is_some() => names.mention_of(id),
        (None, _) => format!("@{UNKNOWN_USER}"),
    };
    map.retain(|k, _| k == "type");
    let mut attrs = Map::new();
    attrs.insert("text".to_owned(), Value::String(text));
    map.insert("attrs".to_owned(), Value::Object(attrs));
    true
}

fn is_profile_field(key: &str, value: &Value) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if norm.contains("accountid") {
        return true;
    }
    match norm.as_str() {
        "accounttype" | "avatarurls" | "profilepicture" | "timezone" | "locale" | "authorid"
        | "ownerid" | "lastownerid" | "userkey" | "userkeys" | "username" => true,
        "createdby" => value.is_string(),
        _ => key == "self" && value.as_str().is_some_and(is_user_url),
    }
}

fn is_user_url(url: &str) -> bool {
    let b = url.as_bytes();
    [&b"accountid="[..], b"/user?", b"/rest/api/user"]
        .iter()
        .any(|needle| find_ci(b, 0, needle).is_some())
}

/// Object keys that contain an account id are replaced by their scrubbed form (`#2`, `#3`...
/// appended on a collision). Returns how many keys changed.
fn scrub_keys(map: &mut Map<String, Value>) -> u64 {
    let bad: Vec<String> = map
        .keys()
        .filter(|k| !account_id_spans(k).is_empty())
        .cloned()
        .collect();
    let mut changed = 0;
    for key in bad {
        if let Some(v) = map.remove(&key) {
            let base = scrub_account_ids(&key).0;
            let mut new_key = base.clone();
            let mut n = 2u64;
            while map.contains_key(&new_key) {
                new_key = format!("{base}#{n}");
                n += 1;
            }
            map.insert(new_key, v);
            changed += 1;
        }
    }
    changed
}

/// Rule 4 for one string value; `None` when it stays as it is.
fn redact_string(
    s: &str,
    adf_hint: bool,
    names: &NameBook,
    depth: u8,
    r: &mut Redactions,
) -> Option<String> {
    let mut cur: Option<String> = None;

    if depth < MAX_EMBEDDED_DEPTH
        && (adf_hint || looks_like_embedded_user_json(s))
        && let Ok(mut inner) = serde_json::from_str::<Value>(s)
        && (inner.is_object() || inner.is_array())
    {
        let sub = redact_tree(&mut inner, names, depth + 1);
        if sub.total() > 0
            && let Ok(text) = serde_json::to_string(&inner)
        {
            *r += sub;
            cur = Some(text);
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    if find_ci(text.as_bytes(), 0, WIKI_MENTION).is_some() {
        let (new, n) = replace_wiki_mentions(text, names);
        if n > 0 {
            r.mentions += n;
            cur = Some(new);
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    if find_ci(text.as_bytes(), 0, b"<ri:user").is_some() {
        let (new, n) = redact_storage_body(text, names);
        if n > 0 {
            r.mentions += n;
            cur = Some(new);
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    if text.contains('<')
        && (USER_ATTRIBUTES
            .iter()
            .any(|a| find_ci(text.as_bytes(), 0, a.as_bytes()).is_some())
            || !account_id_spans(text).is_empty())
    {
        let (new, n) = remove_user_attributes(text);
        if n > 0 {
            r.fields += n;
            cur = Some(new);
        }
    }

    let text = cur.as_deref().unwrap_or(s);
    let spans = account_id_spans(text);
    if !spans.is_empty() {
        r.strings += 1;
        cur = Some(replace_spans(text, &spans, ACCOUNT_PLACEHOLDER));
    }
    cur
}

fn looks_like_embedded_user_json(s: &str) -> bool {
    let t = s.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && (t.contains("\"mention\"") || t.contains("\"accountId\""))
}

/// `[~accountid:<id>]` (Jira wiki markup) -> `@Name`.
fn replace_wiki_mentions(text: &str, names: &NameBook) -> (String, u64) {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    let mut count = 0;
    while let Some(p) = find_ci(b, from, WIKI_MENTION) {
        let id_start = p + WIKI_MENTION.len();
        let window_end = b.len().min(id_start + WIKI_MENTION_MAX_ID);
        let close = b
            .get(id_start..window_end)
            .and_then(|w| w.iter().position(|&c| c == b']'))
            .map(|rel| id_start + rel);
        let id = close.and_then(|c| text.get(id_start..c)).map(str::trim);
        match (close, id) {
            (Some(close), Some(id)) if account_id_spans(id) == [(0, id.len())] => {
                out.push_str(text.get(copied..p).unwrap_or_default());
                out.push_str(&names.mention_of(id));
                copied = close + 1;
                from = close + 1;
                count += 1;
            }
            _ => from = p + 1,
        }
    }
    if count == 0 {
        return (text.to_owned(), 0);
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    (out, count)
}

// ------------------------------------------------------------------------------------------------
// Confluence storage format and rendered markup
// ------------------------------------------------------------------------------------------------

/// Replace `<ri:user ri:account-id="..."/>` (also with ri:userkey / self-closing or not, inside
/// or outside <ac:link>, any attribute order/quotes) in Confluence storage XHTML by the text
/// `@Display Name` (XML-escaped) from `names`, or `@unknown user` when unknown.
///
/// An `<ac:link>` holding a user reference is replaced as a whole (with its link body, if any),
/// since a link without a resource is not valid storage format. Returns the new text and the
/// number of mentions replaced.
#[must_use]
pub fn redact_storage_body(xhtml: &str, names: &NameBook) -> (String, u64) {
    let b = xhtml.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    let mut count = 0u64;
    let mut link_close = NextMatch::default();
    let mut link_open = NextMatch::default();
    while let Some(u) = find_tag_start(b, from, b"<ri:user") {
        let tag = match parse_tag(xhtml, u) {
            TagParse::Tag(t) => t,
            // Nothing after this can be parsed reliably; the safety net scrubs ids there.
            TagParse::Unterminated => break,
            TagParse::NotATag => {
                from = u + 1;
                continue;
            }
        };
        let user_end = element_end(xhtml, &tag, b"ri:user");
        let link = enclosing_link(xhtml, copied, u, user_end, &mut link_open, &mut link_close);
        let (start, end, text, n) = match link {
            Some((link_start, close_start, close_end)) => {
                let (text, n) = mentions_between(xhtml, u, close_start, names);
                (link_start, close_end, text, n)
            }
            None => (u, user_end, user_mention(xhtml, &tag, names), 1),
        };
        out.push_str(xhtml.get(copied..start).unwrap_or_default());
        out.push_str(&text);
        count += n;
        copied = end;
        from = end;
    }
    if count == 0 {
        return (xhtml.to_owned(), 0);
    }
    out.push_str(xhtml.get(copied..).unwrap_or_default());
    (out, count)
}

/// The `@Name` text for one `<ri:user>` tag, XML-escaped.
fn user_mention(s: &str, tag: &Tag, names: &NameBook) -> String {
    let name = RI_USER_ID_ATTRIBUTES
        .iter()
        .filter_map(|attr| tag.attr_value(s, attr))
        .find_map(|id| names.name_of(id));
    format!("@{}", xml_escape(name.unwrap_or(UNKNOWN_USER)))
}

/// Mentions for every `<ri:user>` in `s[from..to]`, separated by a space.
fn mentions_between(s: &str, from: usize, to: usize, names: &NameBook) -> (String, u64) {
    let head = s.get(..to).unwrap_or(s);
    let mut texts = Vec::new();
    let mut p = from;
    while let Some(q) = find_tag_start(head.as_bytes(), p, b"<ri:user") {
        match parse_tag(head, q) {
            TagParse::Tag(t) => {
                texts.push(user_mention(head, &t, names));
                p = t.end;
            }
            _ => p = q + 1,
        }
    }
    if texts.is_empty() {
        texts.push(format!("@{UNKNOWN_USER}"));
    }
    let n = texts.len() as u64;
    (texts.join(" "), n)
}

/// End of the `<ri:user>` element starting with `tag`: after `</ri:user>` when that closing tag
/// follows with only text in between, else right after the start tag.
fn element_end(s: &str, tag: &Tag, name: &[u8]) -> usize {
    if tag.self_closing {
        return tag.end;
    }
    let b = s.as_bytes();
    let next_lt = s
        .get(tag.end..)
        .and_then(|rest| rest.find('<'))
        .map(|rel| tag.end + rel);
    next_lt
        .and_then(|q| close_tag_at(b, q, name))
        .unwrap_or(tag.end)
}

/// The `<ac:link>` element around the `<ri:user>` at `u` (which ends at `user_end`), if any:
/// (start of `<ac:link`, start of `</ac:link>`, end of `</ac:link>`).
fn enclosing_link(
    s: &str,
    lo: usize,
    u: usize,
    user_end: usize,
    link_open: &mut NextMatch,
    link_close: &mut NextMatch,
) -> Option<(usize, usize, usize)> {
    let b = s.as_bytes();
    let head = s.get(..u)?;
    // The nearest `<ac:link` start tag before the user (not `<ac:link-body`); one parse only,
    // so that runs of broken tags cannot make this quadratic.
    let mut hi = u;
    let link_start = loop {
        let p = rfind_ci(b, lo, hi, b"<ac:link")?;
        match b.get(p + b"<ac:link".len()) {
            Some(&c) if c.is_ascii_whitespace() || c == b'/' || c == b'>' => break p,
            _ => hi = p,
        }
    };
    let TagParse::Tag(link_tag) = parse_tag(head, link_start) else {
        return None;
    };
    if link_tag.self_closing {
        return None;
    }
    // The link must still be open at `u`...
    if find_close_tag(b, link_tag.end, u, b"ac:link").is_some() {
        return None;
    }
    // ...and closed after the user, before any other link opens.
    let (close_start, close_end) = link_close.next(user_end, |from| {
        find_close_tag(b, from, b.len(), b"ac:link")
    })?;
    let next_open = link_open.next(user_end, |from| {
        find_tag_start(b, from, b"<ac:link").map(|p| (p, p))
    });
    if next_open.is_some_and(|(p, _)| p < close_start) {
        return None;
    }
    Some((link_start, close_start, close_end))
}

/// Memo of "the first match at or after `from`" for searches whose `from` only grows, so that
/// pathological input (many openings, one far closing) stays linear.
#[derive(Default)]
struct NextMatch {
    from: usize,
    found: Option<Option<(usize, usize)>>,
}

impl NextMatch {
    fn next(
        &mut self,
        from: usize,
        search: impl FnOnce(usize) -> Option<(usize, usize)>,
    ) -> Option<(usize, usize)> {
        if let Some(found) = self.found
            && from >= self.from
        {
            match found {
                None => return None,
                Some(m) if m.0 >= from => return Some(m),
                Some(_) => {}
            }
        }
        let found = search(from);
        self.from = from;
        self.found = Some(found);
        found
    }
}

/// Removes markup attributes that name a user: `data-account-id` & co., and any attribute whose
/// value contains an account id (`href=".../wiki/people/<id>"`, avatar `src`, Jira `rel`).
/// Returns the new text and how many attributes were removed.
fn remove_user_attributes(s: &str) -> (String, u64) {
    let mut out = String::new();
    let mut copied = 0;
    let mut removed = 0u64;
    let mut i = 0;
    while let Some(lt) = s
        .get(i..)
        .and_then(|rest| rest.find('<'))
        .map(|rel| i + rel)
    {
        match parse_tag(s, lt) {
            TagParse::Unterminated => break,
            TagParse::NotATag => i = lt + 1,
            TagParse::Tag(tag) => {
                for attr in &tag.attrs {
                    if attr_names_user(s, attr) {
                        out.push_str(s.get(copied..attr.start).unwrap_or_default());
                        copied = attr.end;
                        removed += 1;
                    }
                }
                i = tag.end;
            }
        }
    }
    if removed == 0 {
        return (s.to_owned(), 0);
    }
    out.push_str(s.get(copied..).unwrap_or_default());
    (out, removed)
}

fn attr_names_user(s: &str, attr: &Attr) -> bool {
    let name = s.get(attr.name.0..attr.name.1).unwrap_or_default();
    if USER_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return true;
    }
    attr.value
        .and_then(|(v0, v1)| s.get(v0..v1))
        .is_some_and(|v| !account_id_spans(v).is_empty())
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

// --- a small, forgiving tag scanner ------------------------------------------------------------
//
// Every index it produces sits on an ASCII byte or at the end of the text, so slicing the text
// with them is always on a char boundary.

struct Tag {
    /// Index just after the closing `>`.
    end: usize,
    self_closing: bool,
    attrs: Vec<Attr>,
}

struct Attr {
    /// The attribute including its leading whitespace: removing `start..end` removes it cleanly.
    start: usize,
    end: usize,
    name: (usize, usize),
    value: Option<(usize, usize)>,
}

impl Tag {
    fn attr_value<'s>(&self, s: &'s str, name: &str) -> Option<&'s str> {
        self.attrs
            .iter()
            .find(|a| {
                s.get(a.name.0..a.name.1)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|a| a.value)
            .and_then(|(v0, v1)| s.get(v0..v1))
            .map(str::trim)
    }
}

enum TagParse {
    NotATag,
    /// The text ends inside the tag (or inside a quoted attribute value).
    Unterminated,
    Tag(Tag),
}

fn is_tag_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_' | b'.')
}

/// Parses a start tag (`<name attr="v" ...>` or `.../>`) at `lt`.
fn parse_tag(s: &str, lt: usize) -> TagParse {
    let b = s.as_bytes();
    if b.get(lt) != Some(&b'<') || !b.get(lt + 1).is_some_and(u8::is_ascii_alphabetic) {
        return TagParse::NotATag;
    }
    let mut i = lt + 1;
    while b.get(i).is_some_and(|&c| is_tag_name_byte(c)) {
        i += 1;
    }
    match b.get(i) {
        None => return TagParse::Unterminated,
        Some(&c) if c.is_ascii_whitespace() || c == b'/' || c == b'>' => {}
        Some(_) => return TagParse::NotATag,
    }
    let mut attrs = Vec::new();
    loop {
        let attr_start = i;
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let Some(&c) = b.get(i) else {
            return TagParse::Unterminated;
        };
        if c == b'>' {
            return TagParse::Tag(Tag {
                end: i + 1,
                self_closing: false,
                attrs,
            });
        }
        if c == b'/' {
            if b.get(i + 1) == Some(&b'>') {
                return TagParse::Tag(Tag {
                    end: i + 2,
                    self_closing: true,
                    attrs,
                });
            }
            i += 1;
            continue;
        }
        let n0 = i;
        while b
            .get(i)
            .is_some_and(|&c| !c.is_ascii_whitespace() && !matches!(c, b'=' | b'>' | b'/'))
        {
            i += 1;
        }
        if i == n0 {
            // A stray '=': skip it.
            i += 1;
            continue;
        }
        let n1 = i;
        let mut j = i;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            attrs.push(Attr {
                start: attr_start,
                end: n1,
                name: (n0, n1),
                value: None,
            });
            i = n1;
            continue;
        }
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let (v0, v1) = match b.get(j) {
            None => return TagParse::Unterminated,
            Some(&q) if q == b'"' || q == b'\'' => {
                let v0 = j + 1;
                let Some(rel) = b
                    .get(v0..)
                    .and_then(|rest| rest.iter().position(|&c| c == q))
                else {
                    return TagParse::Unterminated;
                };
                i = v0 + rel + 1;
                (v0, v0 + rel)
            }
            Some(_) => {
                let v0 = j;
                while b.get(j).is_some_and(|&c| {
                    !c.is_ascii_whitespace()
                        && c != b'>'
                        && !(c == b'/' && b.get(j + 1) == Some(&b'>'))
                }) {
                    j += 1;
                }
                i = j;
                (v0, j)
            }
        };
        attrs.push(Attr {
            start: attr_start,
            end: i,
            name: (n0, n1),
            value: Some((v0, v1)),
        });
    }
}

/// First `needle` (`<` + tag name) at or after `from` that really starts that tag (the name is
/// followed by whitespace, `/` or `>`).
fn find_tag_start(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut from = from;
    loop {
        let p = find_ci(b, from, needle)?;
        match b.get(p + needle.len()) {
            Some(&c) if c.is_ascii_whitespace() || c == b'/' || c == b'>' => return Some(p),
            _ => from = p + 1,
        }
    }
}

/// `</name>` (optional whitespace before `>`) exactly at `q`: the index after it.
fn close_tag_at(b: &[u8], q: usize, name: &[u8]) -> Option<usize> {
    if b.get(q..q + 2)? != b"</" || !b.get(q + 2..q + 2 + name.len())?.eq_ignore_ascii_case(name) {
        return None;
    }
    let mut i = q + 2 + name.len();
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    (b.get(i) == Some(&b'>')).then_some(i + 1)
}

/// First `</name>` starting in `from..to`: (start, end).
fn find_close_tag(b: &[u8], from: usize, to: usize, name: &[u8]) -> Option<(usize, usize)> {
    let hay = b.get(..to)?;
    let mut from = from;
    loop {
        let p = find_ci(hay, from, b"</")?;
        if let Some(end) = close_tag_at(b, p, name) {
            return Some((p, end));
        }
        from = p + 1;
    }
}

/// ASCII-case-insensitive search of an ASCII `needle` in `hay[from..]`.
fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = needle.first()?.to_ascii_lowercase();
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = from;
    while i <= last_start {
        if hay.get(i).map(u8::to_ascii_lowercase) == Some(first)
            && hay
                .get(i..i + needle.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Last `needle` lying entirely in `hay[lo..hi]`.
fn rfind_ci(hay: &[u8], lo: usize, hi: usize, needle: &[u8]) -> Option<usize> {
    let mut p = hi.checked_sub(needle.len())?;
    loop {
        if p < lo {
            return None;
        }
        if hay
            .get(p..p + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        {
            return Some(p);
        }
        p = p.checked_sub(1)?;
    }
}

// ------------------------------------------------------------------------------------------------
// Account id scanner
// ------------------------------------------------------------------------------------------------

/// Every account id found in `text`, both formats: legacy 24 lower/upper-case hex chars as a whole
/// word (not part of a longer hex/alnum run), and `NNNNNN:uuid` (digits, colon, 8-4-4-4-12 hex).
/// Used by the scanner tests and as a last-line safety net.
///
/// Also found: the URL-encoded forms `NNNNNN%3Auuid` and `%XX` directly followed by a legacy id
/// (e.g. `accountId%3D5b10...`). Non-ASCII characters count as word boundaries.
#[must_use]
pub fn find_account_ids(text: &str) -> Vec<String> {
    account_id_spans(text)
        .into_iter()
        .filter_map(|(a, b)| text.get(a..b).map(str::to_owned))
        .collect()
}

/// Replace every account id found by [`find_account_ids`] in `text` with `[account]`.
#[must_use]
pub fn scrub_account_ids(text: &str) -> (String, u64) {
    let spans = account_id_spans(text);
    if spans.is_empty() {
        return (text.to_owned(), 0);
    }
    (
        replace_spans(text, &spans, ACCOUNT_PLACEHOLDER),
        spans.len() as u64,
    )
}

fn replace_spans(text: &str, spans: &[(usize, usize)], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for &(a, b) in spans {
        out.push_str(text.get(copied..a).unwrap_or_default());
        out.push_str(with);
        copied = b;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// Byte ranges of the account ids in `text`, sorted, not overlapping, on ASCII boundaries.
fn account_id_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();

    // `NNNNNN:uuid` (or `NNNNNN%3Auuid`): a run of digits, the separator, a UUID.
    let mut i = 0;
    while i < b.len() {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let sep = if b.get(i) == Some(&b':') {
            1
        } else if b
            .get(i..i + 3)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"%3a"))
        {
            3
        } else {
            0
        };
        if sep > 0 && is_uuid_at(b, i + sep) {
            i += sep + UUID_LEN;
            spans.push((start, i));
        }
    }

    // Legacy: a whole alphanumeric run of exactly 24 hex digits (or `%XX` + 24 hex digits).
    // The ids found above count as word boundaries, so that replacing them (by a placeholder
    // that is a boundary too) never makes a new legacy id appear.
    let uuid_spans = spans.clone();
    let mut next_uuid = uuid_spans.iter().peekable();
    let mut i = 0;
    while i < b.len() {
        while next_uuid.next_if(|&&(_, end)| end <= i).is_some() {}
        let limit = match next_uuid.peek() {
            Some(&&(start, end)) if start <= i => {
                i = end;
                continue;
            }
            Some(&&(start, _)) => start,
            None => b.len(),
        };
        if !b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
            continue;
        }
        let start = i;
        while i < limit && b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
        }
        let run = b.get(start..i).unwrap_or_default();
        if run.iter().all(u8::is_ascii_hexdigit) {
            if run.len() == LEGACY_ID_LEN {
                spans.push((start, i));
            } else if run.len() == LEGACY_ID_LEN + 2 && start > 0 && b.get(start - 1) == Some(&b'%')
            {
                spans.push((start + 2, i));
            }
        }
    }

    if spans.len() > 1 {
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (a, z) in spans {
            match merged.last_mut() {
                Some(last) if a < last.1 => last.1 = last.1.max(z),
                _ => merged.push((a, z)),
            }
        }
        spans = merged;
    }
    spans
}

fn is_uuid_at(b: &[u8], p: usize) -> bool {
    let Some(w) = b.get(p..p + UUID_LEN) else {
        return false;
    };
    w.iter().enumerate().all(|(k, c)| match k {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    const ALICE: &str = "5b10ac8d82e05b22cc7d4ef5";
    const BOB: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
    const CAROL: &str = "712020:0e7a4f3c-8a52-4d1e-9a3b-2f6c1d4e5a6b";
    /// Only ever mentioned, never seen as a user object.
    const DAVE: &str = "5d53f3cbc6b9320d9ea5bdc2";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    const LOCAL_ID: &str = "c7e5f0b4-2d0a-4e8b-9f3c-1a2b3c4d5e6f";
    const SITE: &str = "https://example.atlassian.net";

    // --- fixtures ------------------------------------------------------------------------------

    fn jira_user(id: &str, name: &str, email: Option<&str>) -> Value {
        let avatar = |size: u32| {
            format!(
                "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{id}/8f4c7c5e-3b0d-4c8e-9d5a-2b1f0e6a7c3d/{size}"
            )
        };
        let mut user = json!({
            "self": format!("{SITE}/rest/api/3/user?accountId={id}"),
            "accountId": id,
            "avatarUrls": {
                "48x48": avatar(48), "24x24": avatar(24), "16x16": avatar(16), "32x32": avatar(32)
            },
            "displayName": name,
            "active": true,
            "timeZone": "Europe/Berlin",
            "accountType": "atlassian",
            "locale": "en_US"
        });
        if let Some(email) = email {
            user["emailAddress"] = json!(email);
        }
        user
    }

    fn adf_mention(id: &str, text: Option<&str>) -> Value {
        let mut attrs = json!({
            "id": id, "accessLevel": "", "userType": "DEFAULT",
            "localId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
        });
        if let Some(text) = text {
            attrs["text"] = json!(text);
        }
        json!({"type": "mention", "attrs": attrs})
    }

    fn adf_paragraph(content: Vec<Value>) -> Value {
        json!({"type": "paragraph", "content": content})
    }

    fn adf_text(text: &str) -> Value {
        json!({"type": "text", "text": text})
    }

    fn jira_description() -> Value {
        json!({
            "type": "doc",
            "version": 1,
            "content": [
                adf_paragraph(vec![
                    adf_text("Upload of build "),
                    json!({"type": "text", "text": SHA256, "marks": [{"type": "code"}]}),
                    adf_text(" fails, see https://status.example.com/incidents/42"),
                ]),
                {
                    "type": "table",
                    "attrs": {"isNumberColumnEnabled": false, "layout": "default", "localId": LOCAL_ID},
                    "content": [{
                        "type": "tableRow",
                        "content": [
                            {"type": "tableHeader", "attrs": {}, "content": [adf_paragraph(vec![adf_text("Owner")])]},
                            {"type": "tableCell", "attrs": {}, "content": [
                                adf_paragraph(vec![adf_text("Owner: "), adf_mention(BOB, Some("@Bob Builder"))])
                            ]}
                        ]
                    }]
                }
            ]
        })
    }

    fn jira_comment() -> Value {
        json!({
            "self": format!("{SITE}/rest/api/3/issue/10042/comment/10200"),
            "id": "10200",
            "author": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
            "updateAuthor": jira_user(BOB, "Bob Builder", None),
            "body": {
                "type": "doc", "version": 1,
                "content": [adf_paragraph(vec![
                    adf_text("Thanks "),
                    adf_mention(ALICE, None),
                    adf_text(" and "),
                    adf_mention(DAVE, Some("")),
                    adf_text(", fixed in ALPHA-2."),
                ])]
            },
            "created": "2024-05-02T11:00:00.000+0000",
            "updated": "2024-05-02T11:05:00.000+0000",
            "jsdPublic": true
        })
    }

    fn jira_issue() -> Value {
        json!({
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": "10042",
            "self": format!("{SITE}/rest/api/3/issue/10042"),
            "key": "ALPHA-1",
            "fields": {
                "summary": "Export fails on large attachments",
                "created": "2024-05-02T10:15:30.123+0000",
                "updated": "2024-05-03T08:00:00.000+0000",
                "status": {"self": format!("{SITE}/rest/api/3/status/3"), "id": "3", "name": "In Progress"},
                "project": {
                    "self": format!("{SITE}/rest/api/3/project/10000"),
                    "id": "10000", "key": "ALPHA", "name": "Alpha",
                    "avatarUrls": {"48x48": format!("{SITE}/rest/api/3/universal_avatar/view/type/project/avatar/10400")}
                },
                "reporter": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
                "assignee": jira_user(BOB, "Bob Builder", None),
                "creator": jira_user(ALICE, "Alice Example", Some("alice@example.com")),
                "customfield_10050": [
                    jira_user(ALICE, "Alice Example", Some("alice@example.com")),
                    jira_user(CAROL, "Carol Chen", Some("carol@example.com"))
                ],
                "customfield_10060": format!("sha256:{SHA256}"),
                "customfield_10061": SHA1,
                "attachment": [{
                    "self": format!("{SITE}/rest/api/3/attachment/10100"),
                    "id": "10100",
                    "filename": "trace.log",
                    "author": jira_user(BOB, "Bob Builder", None),
                    "created": "2024-05-02T10:20:00.000+0000",
                    "size": 2048,
                    "mimeType": "text/plain",
                    "content": format!("{SITE}/rest/api/3/attachment/content/10100")
                }],
                "description": jira_description(),
                "comment": {
                    "comments": [jira_comment()],
                    "self": format!("{SITE}/rest/api/3/issue/10042/comment"),
                    "maxResults": 1, "total": 1, "startAt": 0
                }
            },
            "renderedFields": {
                "description": format!(
                    "<p>Owner: <a href=\"{SITE}/secure/ViewProfile.jspa?accountId=557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077\" class=\"user-hover\" rel=\"{BOB}\" data-account-id=\"{BOB}\">Bob Builder</a></p>"
                )
            },
            "comments": [jira_comment()],
            "changelog": {
                "startAt": 0, "maxResults": 2, "total": 2,
                "histories": [{
                    "id": "100",
                    "author": jira_user(CAROL, "Carol Chen", Some("carol@example.com")),
                    "created": "2024-05-02T12:00:00.000+0000",
                    "items": [{
                        "field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                        "from": ALICE, "fromString": "Alice Example",
                        "to": BOB, "toString": "Bob Builder",
                        "tmpFromAccountId": ALICE, "tmpToAccountId": BOB
                    }, {
                        "field": "description", "fieldtype": "jira", "fieldId": "description",
                        "from": null, "fromString": format!("Ask [~accountid:{ALICE}]"),
                        "to": null, "toString": format!("Ask [~accountid:{BOB}] please")
                    }]
                }]
            }
        })
    }

    fn confluence_user(id: &str, display: Option<&str>, public: &str, email: &str) -> Value {
        let mut user = json!({
            "type": "known",
            "accountId": id,
            "accountType": "atlassian",
            "email": email,
            "publicName": public,
            "profilePicture": {
                "path": format!("/wiki/aa-avatar/{id}"), "width": 48, "height": 48, "isDefault": false
            },
            "timeZone": "Europe/London",
            "isExternalCollaborator": false,
            "_expandable": {"operations": "", "personalSpace": ""},
            "_links": {"self": format!("{SITE}/wiki/rest/api/user?accountId={id}")}
        });
        if let Some(display) = display {
            user["displayName"] = json!(display);
        }
        user
    }

    fn storage_body() -> String {
        format!(
            "<p>Owner: <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link>, reviewer \
             <ac:link><ri:user ri:account-id='{ALICE}'></ri:user></ac:link>, \
             cc <ri:user ri:account-id=\"{DAVE}\"/>. Home: <ac:link><ri:page ri:content-title=\"Home\" /></ac:link>. \
             Checksum <code>{SHA256}</code>.</p>"
        )
    }

    fn confluence_adf_body() -> String {
        json!({
            "type": "doc", "version": 1,
            "content": [adf_paragraph(vec![adf_text("Ping "), adf_mention(CAROL, Some("@Carol Chen"))])]
        })
        .to_string()
    }

    fn confluence_v1_page() -> Value {
        json!({
            "id": "393217",
            "type": "page",
            "status": "current",
            "title": "Release checklist",
            "space": {
                "id": 98306, "key": "ENG", "name": "Engineering", "type": "global",
                "_links": {"webui": "/spaces/ENG", "self": format!("{SITE}/wiki/rest/api/space/ENG")},
                "_expandable": {"homepage": "/rest/api/content/393200"}
            },
            "history": {
                "latest": true,
                "createdBy": confluence_user(BOB, Some("Bob Builder"), "Bob Builder", "bob@example.com"),
                "createdDate": "2024-04-01T09:00:00.000Z",
                "lastUpdated": {
                    "by": confluence_user(ALICE, Some("Alice Example"), "Alice Example", "alice@example.com"),
                    "when": "2024-04-02T09:00:00.000Z",
                    "friendlyWhen": "yesterday at 9:00 AM",
                    "message": "", "number": 3, "minorEdit": false
                },
                "contributors": {"publishers": {
                    "users": [confluence_user(CAROL, None, "Carol Chen", "carol@example.com")],
                    "userAccountIds": [CAROL],
                    "userKeys": ["ff8080815a0b3b12015a0b3c7e2a0000"]
                }}
            },
            "version": {
                "by": confluence_user(ALICE, Some("Alice Example"), "Alice Example", "alice@example.com"),
                "when": "2024-04-02T09:00:00.000Z",
                "friendlyWhen": "yesterday at 9:00 AM",
                "message": "Fixed typo",
                "number": 3,
                "minorEdit": false,
                "confRev": "confluence$content$393217.5",
                "contentTypeModified": false
            },
            "ancestors": [{"id": "393200", "type": "page", "status": "current", "title": "Releases"}],
            "body": {
                "storage": {
                    "value": storage_body(),
                    "representation": "storage",
                    "embeddedContent": [],
                    "_expandable": {"content": "/rest/api/content/393217"}
                },
                "atlas_doc_format": {"value": confluence_adf_body(), "representation": "atlas_doc_format"},
                "view": {
                    "value": format!(
                        "<p>Owner: <a class=\"confluence-userlink user-mention\" data-account-id=\"{BOB}\" \
                         href=\"{SITE}/wiki/people/{BOB}?ref=confluence\" data-linked-resource-type=\"userinfo\" \
                         data-base-url=\"{SITE}/wiki\">Bob Builder</a></p>"
                    ),
                    "representation": "view"
                }
            },
            "_links": {
                "webui": "/spaces/ENG/pages/393217/Release+checklist",
                "self": format!("{SITE}/wiki/rest/api/content/393217"),
                "base": format!("{SITE}/wiki"),
                "tinyui": "/x/AQAG"
            }
        })
    }

    fn confluence_v2_page() -> Value {
        json!({
            "id": "393217",
            "status": "current",
            "title": "Release checklist",
            "spaceId": "98306",
            "parentId": "393200",
            "parentType": "page",
            "position": 4,
            "authorId": BOB,
            "ownerId": BOB,
            "lastOwnerId": null,
            "createdAt": "2024-04-01T09:00:00.000Z",
            "version": {
                "createdAt": "2024-04-02T09:00:00.000Z", "message": "", "number": 3,
                "minorEdit": false, "authorId": ALICE
            },
            "body": {"storage": {
                "representation": "storage",
                "value": format!("<p>Hi <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link></p>")
            }},
            "_links": {
                "editui": "/pages/resumedraft.action?draftId=393217",
                "webui": "/spaces/ENG/pages/393217/Release+checklist",
                "tinyui": "/x/AQAG"
            }
        })
    }

    fn confluence_v2_attachment() -> Value {
        json!({
            "id": "att393300",
            "status": "current",
            "title": "trace.log",
            "createdAt": "2024-04-02T09:00:00.000Z",
            "pageId": "393217",
            "mediaType": "text/plain",
            "fileId": LOCAL_ID,
            "fileSize": 2048,
            "webuiLink": "/pages/viewpageattachments.action?pageId=393217",
            "downloadLink": "/download/attachments/393217/trace.log?version=1&api=v2",
            "createdBy": CAROL,
            "version": {"createdAt": "2024-04-02T09:00:00.000Z", "number": 1, "authorId": CAROL}
        })
    }

    fn assert_no_account_ids(doc: &Value) {
        let text = serde_json::to_string(doc).unwrap();
        assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
    }

    fn redacted_jira_issue() -> (Value, Redactions) {
        let mut doc = jira_issue();
        let mut names = NameBook::default();
        let r = redact_jira_issue(&mut doc, &mut names);
        (doc, r)
    }

    fn redacted_confluence(doc: Value) -> (Value, Redactions) {
        let mut doc = doc;
        let mut names = NameBook::default();
        let r = redact_confluence_content(&mut doc, &mut names);
        (doc, r)
    }

    fn text_of_mention(v: &Value) -> &str {
        assert_eq!(v["type"], "mention", "{v}");
        v["attrs"]["text"].as_str().unwrap()
    }

    // --- find_account_ids / scrub_account_ids ------------------------------------------------

    #[test]
    fn find_account_ids_finds_legacy_hex_ids() {
        assert_eq!(find_account_ids(ALICE), vec![ALICE]);
        assert_eq!(
            find_account_ids(&format!("by {ALICE} and {DAVE}.")),
            vec![ALICE, DAVE]
        );
    }

    #[test]
    fn find_account_ids_finds_digits_colon_uuid_ids() {
        assert_eq!(find_account_ids(BOB), vec![BOB]);
        assert_eq!(
            find_account_ids(&format!("{BOB},{CAROL}")),
            vec![BOB, CAROL]
        );
        assert_eq!(
            find_account_ids("70121:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
            vec!["70121:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"]
        );
    }

    #[test]
    fn find_account_ids_finds_ids_bounded_by_punctuation() {
        for text in [
            format!("accountId={ALICE}"),
            format!("\"@{ALICE}\""),
            format!("/wiki/people/{ALICE}?ref=confluence"),
            format!("user_{ALICE}_avatar"),
            format!("({ALICE})"),
            format!("x-{ALICE}-y"),
        ] {
            assert_eq!(find_account_ids(&text), vec![ALICE], "{text}");
        }
        assert_eq!(
            find_account_ids(&format!("{SITE}/wiki/people/{BOB}?ref=confluence")),
            vec![BOB]
        );
    }

    #[test]
    fn find_account_ids_ignores_hex_runs_that_are_not_whole_24_char_words() {
        for text in [
            "5b10ac8d82e05b22cc7d4ef".to_owned(),   // 23
            "5b10ac8d82e05b22cc7d4ef5a".to_owned(), // 25
            format!("x{ALICE}"),
            format!("{ALICE}g"),
            format!("{ALICE}0"),
            SHA1.to_owned(),
            SHA256.to_owned(),
            format!("sha256:{SHA256}"),
            "5b10ac8d82e05b22cc7d4eg5".to_owned(), // not hex
        ] {
            assert_eq!(find_account_ids(&text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn find_account_ids_ignores_uuids_numbers_keys_and_timestamps() {
        let text = format!(
            "{LOCAL_ID} 10042 ALPHA-1 2024-05-02T10:15:30.123+0000 12:{LOCAL_ID}x \
             557058:f58131cb-b67d-43c7-b30d-6b58d40bd07 557058-{LOCAL_ID} :{LOCAL_ID} \
             {SITE}/rest/api/3/issue/10042"
        );
        // `12:<uuid>` has the account id shape and is found; everything else is not.
        assert_eq!(find_account_ids(&text), vec![format!("12:{LOCAL_ID}")]);
        let text = format!(
            "{LOCAL_ID} 10042 ALPHA-1 2024-05-02T10:15:30.123+0000 \
             557058:f58131cb-b67d-43c7-b30d-6b58d40bd07 557058-{LOCAL_ID} :{LOCAL_ID}"
        );
        assert_eq!(find_account_ids(&text), Vec::<String>::new());
    }

    #[test]
    fn find_account_ids_accepts_upper_and_mixed_case() {
        let upper = ALICE.to_uppercase();
        let mixed = "5B10ac8D82e05b22CC7d4ef5";
        let bob_upper = BOB.to_uppercase();
        assert_eq!(
            find_account_ids(&format!("{upper} {mixed} {bob_upper}")),
            vec![upper.clone(), mixed.to_owned(), bob_upper.clone()]
        );
    }

    #[test]
    fn find_account_ids_finds_percent_encoded_ids() {
        assert_eq!(
            find_account_ids("accountId=557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077&x=1"),
            vec!["557058%3Af58131cb-b67d-43c7-b30d-6b58d40bd077"]
        );
        assert_eq!(
            find_account_ids(&format!("q=accountId%3D{ALICE}%26")),
            vec![ALICE]
        );
    }

    #[test]
    fn find_account_ids_treats_non_ascii_as_a_boundary() {
        assert_eq!(find_account_ids(&format!("é{ALICE}ü")), vec![ALICE]);
        assert_eq!(find_account_ids(&format!("😀{BOB}😀")), vec![BOB]);
        assert_eq!(find_account_ids("ééé😀"), Vec::<String>::new());
    }

    #[test]
    fn find_account_ids_splits_ids_glued_to_each_other() {
        // The uuid form needs no boundary after it, and ends a legacy id's word.
        assert_eq!(
            find_account_ids(&format!("{CAROL}{DAVE}")),
            vec![CAROL, DAVE]
        );
        assert_eq!(
            find_account_ids(&format!("x{BOB}{BOB}")),
            vec![BOB.to_owned(), BOB.to_owned()]
        );
    }

    #[test]
    fn scrub_account_ids_replaces_each_id_with_placeholder() {
        let (out, n) = scrub_account_ids(&format!("from {ALICE} to {BOB}; {SHA1}"));
        assert_eq!(out, format!("from [account] to [account]; {SHA1}"));
        assert_eq!(n, 2);
        let (again, n) = scrub_account_ids(&out);
        assert_eq!((again, n), (out, 0));
    }

    // --- storage format --------------------------------------------------------------------------

    fn book() -> NameBook {
        let mut names = NameBook::default();
        names.insert(ALICE, "Alice Example");
        names.insert(BOB, "Bob Builder");
        names
    }

    #[test]
    fn storage_user_link_becomes_display_name() {
        let xhtml =
            format!("<p>Owner: <ac:link><ri:user ri:account-id=\"{BOB}\" /></ac:link>!</p>");
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!(out, "<p>Owner: @Bob Builder!</p>");
        assert_eq!(n, 1);
    }

    #[test]
    fn storage_user_outside_link_becomes_display_name() {
        let xhtml = format!(
            "<ac:structured-macro ac:name=\"profile\"><ac:parameter ac:name=\"user\"><ri:user ri:account-id=\"{ALICE}\"/></ac:parameter></ac:structured-macro>"
        );
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!(
            out,
            "<ac:structured-macro ac:name=\"profile\"><ac:parameter ac:name=\"user\">@Alice Example</ac:parameter></ac:structured-macro>"
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn storage_unknown_user_becomes_unknown_user() {
        let xhtml = format!("<p><ac:link><ri:user ri:account-id=\"{DAVE}\"/></ac:link></p>");
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!(out, "<p>@unknown user</p>");
        assert_eq!(n, 1);
    }

    #[test]
    fn storage_user_tag_variants_are_all_recognised() {
        let names = book();
        for tag in [
            format!("<ri:user ri:account-id=\"{BOB}\"/>"),
            format!("<ri:user ri:account-id=\"{BOB}\" />"),
            format!("<ri:user ri:account-id='{BOB}'/>"),
            format!("<ri:user ri:account-id=\"{BOB}\"></ri:user>"),
            format!("<ri:user ri:account-id=\"{BOB}\" ></ri:user >"),
            format!("<ri:user ri:local-id=\"{LOCAL_ID}\" ri:account-id=\"{BOB}\" />"),
            format!("<ri:user\n  ri:account-id = \"{BOB}\"\n/>"),
            format!("<RI:USER RI:ACCOUNT-ID=\"{BOB}\"/>"),
            format!("<ri:user ri:account-id={BOB} />"),
            format!(
                "<ri:user ri:userkey=\"ff8080815a0b3b12015a0b3c7e2a0000\" ri:account-id=\"{BOB}\"/>"
            ),
        ] {
            for wrapped in [
                format!("a <ac:link>{tag}</ac:link> b"),
                format!("a <ac:link ac:card-appearance=\"inline\">{tag}</ac:link > b"),
                format!("a {tag} b"),
            ] {
                let (out, n) = redact_storage_body(&wrapped, &names);
                assert_eq!(out, "a @Bob Builder b", "{wrapped}");
                assert_eq!(n, 1, "{wrapped}");
            }
        }
    }

    #[test]
    fn storage_userkey_only_reference_is_replaced() {
        let mut names = NameBook::default();
        names.insert("ff8080815a0b3b12015a0b3c7e2a0000", "Old Timer");
        let (out, n) = redact_storage_body(
            "<ac:link><ri:user ri:userkey=\"ff8080815a0b3b12015a0b3c7e2a0000\"/></ac:link> and <ri:user ri:userkey=\"nobody\"/>",
            &names,
        );
        assert_eq!(out, "@Old Timer and @unknown user");
        assert_eq!(n, 2);
    }

    #[test]
    fn storage_display_name_is_xml_escaped() {
        let mut names = NameBook::default();
        names.insert(ALICE, "R&D <Ops> \"Team\" O'Neil");
        let (out, _) =
            redact_storage_body(&format!("<ri:user ri:account-id=\"{ALICE}\"/>"), &names);
        assert_eq!(out, "@R&amp;D &lt;Ops&gt; &quot;Team&quot; O&#39;Neil");
    }

    #[test]
    fn storage_user_link_with_link_body_is_replaced_whole() {
        let xhtml = format!(
            "<p><ac:link><ri:user ri:account-id=\"{BOB}\" /><ac:plain-text-link-body><![CDATA[the builder]]></ac:plain-text-link-body></ac:link> and \
             <ac:link><ri:user ri:account-id=\"{ALICE}\" /><ac:link-body><strong>Al</strong></ac:link-body></ac:link></p>"
        );
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!(out, "<p>@Bob Builder and @Alice Example</p>");
        assert_eq!(n, 2);
    }

    #[test]
    fn storage_without_user_references_is_unchanged() {
        let xhtml = format!(
            "<p><ac:link><ri:page ri:content-title=\"Home\" /><ac:link-body>home</ac:link-body></ac:link> \
             <ri:username-like>x</ri:username-like> <ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[a < b]]></ac:plain-text-body></ac:structured-macro> {SHA256}</p>"
        );
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!((out.as_str(), n), (xhtml.as_str(), 0));
    }

    #[test]
    fn storage_other_links_next_to_user_links_are_kept() {
        let xhtml = format!(
            "<ac:link><ri:page ri:content-title=\"Home\"/></ac:link> <ac:link><ri:user ri:account-id=\"{ALICE}\"/></ac:link> <ac:link><ri:page ri:content-title=\"Away\"/></ac:link>"
        );
        let (out, n) = redact_storage_body(&xhtml, &book());
        assert_eq!(
            out,
            "<ac:link><ri:page ri:content-title=\"Home\"/></ac:link> @Alice Example <ac:link><ri:page ri:content-title=\"Away\"/></ac:link>"
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn storage_malformed_markup_keeps_what_it_cannot_parse() {
        let names = book();
        // Unclosed link: only the user element is replaced.
        let (out, n) = redact_storage_body(
            &format!("<ac:link><ri:user ri:account-id=\"{ALICE}\"/> tail"),
            &names,
        );
        assert_eq!((out.as_str(), n), ("<ac:link>@Alice Example tail", 1));
        // Unterminated tag: left for the string safety net.
        let text = format!("x <ri:user ri:account-id=\"{ALICE}");
        let (out, n) = redact_storage_body(&text, &names);
        assert_eq!((out.as_str(), n), (text.as_str(), 0));
    }

    // --- NameBook --------------------------------------------------------------------------------

    #[test]
    fn name_book_learns_users_and_mentions() {
        let mut names = NameBook::default();
        names.learn_from(&jira_issue());
        names.learn_from(&confluence_v1_page());
        assert_eq!(names.name_of(ALICE), Some("Alice Example"));
        assert_eq!(names.name_of(BOB), Some("Bob Builder"));
        assert_eq!(names.name_of(CAROL), Some("Carol Chen"));
        assert_eq!(names.name_of(DAVE), None);
        assert_eq!(names.len(), 3);
        assert!(!names.is_empty());

        let mut from_mention = NameBook::default();
        from_mention.learn_from(&adf_mention(DAVE, Some("@Dave Doe")));
        assert_eq!(from_mention.name_of(DAVE), Some("Dave Doe"));
    }

    #[test]
    fn name_book_prefers_user_objects_over_mention_text() {
        let mut names = NameBook::default();
        names.learn_from(&json!([
            adf_mention(ALICE, Some("@Al")),
            jira_user(ALICE, "Alice Example", None),
            adf_mention(ALICE, Some("@Ally"))
        ]));
        assert_eq!(names.name_of(ALICE), Some("Alice Example"));
    }

    #[test]
    fn name_book_debug_shows_no_account_ids() {
        let debug = format!("{:?}", book());
        assert!(find_account_ids(&debug).is_empty(), "{debug}");
        assert!(!debug.contains("Alice"), "{debug}");
    }

    // --- redact_value rules --------------------------------------------------------------------

    #[test]
    fn jira_user_object_keeps_only_display_name_and_email() {
        let mut v = jira_user(ALICE, "Alice Example", Some("alice@example.com"));
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"displayName": "Alice Example", "emailAddress": "alice@example.com"})
        );
        assert_eq!(r.user_objects, 1);
    }

    #[test]
    fn confluence_user_object_keeps_public_name_when_display_name_is_missing() {
        let mut v = confluence_user(CAROL, None, "Carol Chen", "carol@example.com");
        redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"publicName": "Carol Chen", "email": "carol@example.com"})
        );
        let mut v = confluence_user(BOB, Some("Bob Builder"), "Bob B.", "bob@example.com");
        redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"displayName": "Bob Builder", "email": "bob@example.com"})
        );
    }

    #[test]
    fn user_picker_arrays_are_reduced_element_by_element() {
        let mut v = json!({"customfield_10050": [
            jira_user(ALICE, "Alice Example", None),
            jira_user(CAROL, "Carol Chen", Some("carol@example.com"))
        ]});
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"customfield_10050": [
                {"displayName": "Alice Example"},
                {"displayName": "Carol Chen", "emailAddress": "carol@example.com"}
            ]})
        );
        assert_eq!(r.user_objects, 2);
    }

    #[test]
    fn profile_fields_are_removed_anywhere() {
        let mut v = json!({
            "authorId": BOB, "ownerId": BOB, "lastOwnerId": null, "createdBy": CAROL,
            "version": {"number": 2, "authorId": ALICE},
            "nested": [{"timeZone": "UTC", "locale": "de_DE", "accountType": "app", "userKey": "k",
                        "username": "alice", "atlassianAccountId": ALICE, "avatarUrls": {},
                        "profilePicture": {"path": "/x"}, "keep": 1}],
            "items": [{"tmpFromAccountId": ALICE, "tmpToAccountId": null, "field": "assignee"}],
            "title": "stays"
        });
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({
                "version": {"number": 2},
                "nested": [{"keep": 1}],
                "items": [{"field": "assignee"}],
                "title": "stays"
            })
        );
        assert_eq!(r.fields, 15);
        assert_eq!(r.user_objects, 0);
    }

    #[test]
    fn created_by_object_is_reduced_not_removed() {
        let mut v = json!({"createdBy": confluence_user(BOB, Some("Bob Builder"), "Bob", "bob@example.com")});
        redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"createdBy": {"displayName": "Bob Builder", "email": "bob@example.com"}})
        );
    }

    #[test]
    fn user_self_links_are_removed_and_other_self_links_kept() {
        let mut v = json!([
            {"self": format!("{SITE}/rest/api/3/user?accountId={ALICE}"), "name": "a"},
            {"self": format!("{SITE}/wiki/rest/api/user/current"), "name": "b"},
            {"self": format!("{SITE}/rest/api/3/issue/10042"), "name": "c"},
            {"self": format!("{SITE}/rest/api/3/attachment/10100"), "name": "d"}
        ]);
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!([
                {"name": "a"},
                {"name": "b"},
                {"self": format!("{SITE}/rest/api/3/issue/10042"), "name": "c"},
                {"self": format!("{SITE}/rest/api/3/attachment/10100"), "name": "d"}
            ])
        );
        assert_eq!(r.fields, 2);
    }

    #[test]
    fn adf_mention_keeps_only_type_and_text() {
        let mut v = adf_mention(BOB, Some("@Bob Builder"));
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"type": "mention", "attrs": {"text": "@Bob Builder"}})
        );
        assert_eq!(r.mentions, 1);
    }

    #[test]
    fn adf_mention_without_text_uses_name_book_or_unknown_user() {
        let mut v = json!([
            adf_mention(ALICE, None),
            adf_mention(DAVE, Some("")),
            adf_mention(BOB, Some(&format!("@{BOB}"))),
            adf_mention(DAVE, Some(&format!("@{DAVE}")))
        ]);
        let r = redact_value(&mut v, &book());
        assert_eq!(
            v,
            json!([
                {"type": "mention", "attrs": {"text": "@Alice Example"}},
                {"type": "mention", "attrs": {"text": "@unknown user"}},
                {"type": "mention", "attrs": {"text": "@Bob Builder"}},
                {"type": "mention", "attrs": {"text": "@unknown user"}}
            ])
        );
        assert_eq!(r.mentions, 4);
        assert_eq!(r.strings, 0);
    }

    #[test]
    fn atlas_doc_format_string_is_redacted_as_adf() {
        let mut v = json!({"body": {"atlas_doc_format": {
            "value": confluence_adf_body(), "representation": "atlas_doc_format"
        }}});
        let r = redact_value(&mut v, &NameBook::default());
        let adf: Value =
            serde_json::from_str(v["body"]["atlas_doc_format"]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            text_of_mention(&adf["content"][0]["content"][1]),
            "@Carol Chen"
        );
        assert_eq!(adf["content"][0]["content"][0]["text"], "Ping ");
        assert_eq!(r.mentions, 1);
        assert_no_account_ids(&v);
    }

    #[test]
    fn view_markup_loses_account_id_attributes_and_people_links() {
        let mut v = json!({"body": {"view": {"representation": "view", "value": format!(
            "<p><a class=\"confluence-userlink user-mention\" data-account-id=\"{BOB}\" href=\"{SITE}/wiki/people/{BOB}?ref=confluence\" data-linked-resource-type=\"userinfo\">Bob Builder</a> \
             <a href=\"{SITE}/wiki/spaces/ENG\">space</a> <img src=\"/wiki/aa-avatar/{ALICE}\" alt=\"Alice\"/></p>"
        )}}});
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v["body"]["view"]["value"],
            format!(
                "<p><a class=\"confluence-userlink user-mention\" data-linked-resource-type=\"userinfo\">Bob Builder</a> \
                 <a href=\"{SITE}/wiki/spaces/ENG\">space</a> <img alt=\"Alice\"/></p>"
            )
        );
        assert_eq!(r.fields, 3);
    }

    #[test]
    fn jira_wiki_mentions_become_names() {
        let mut v = json!({"toString": format!("Ask [~accountid:{BOB}] and [~accountId:{DAVE}] or [~jsmith]")});
        let r = redact_value(&mut v, &book());
        assert_eq!(
            v["toString"],
            "Ask @Bob Builder and @unknown user or [~jsmith]"
        );
        assert_eq!(r.mentions, 2);
    }

    #[test]
    fn account_ids_in_free_text_are_scrubbed() {
        let mut v =
            json!({"from": ALICE, "to": BOB, "note": format!("moved from {ALICE}"), "n": 10042});
        let r = redact_value(&mut v, &NameBook::default());
        assert_eq!(
            v,
            json!({"from": "[account]", "to": "[account]", "note": "moved from [account]", "n": 10042})
        );
        assert_eq!(r.strings, 3);
    }

    #[test]
    fn object_keys_holding_account_ids_are_scrubbed() {
        let mut v = json!({"watchers": {ALICE: true, BOB: false, "count": 2}});
        let r = redact_value(&mut v, &NameBook::default());
        let watchers = v["watchers"].as_object().unwrap();
        assert_eq!(watchers.len(), 3);
        assert!(watchers.contains_key("[account]"));
        assert!(watchers.contains_key("[account]#2"));
        assert_eq!(watchers["count"], 2);
        assert_eq!(r.strings, 2);
        assert_no_account_ids(&v);
    }

    #[test]
    fn json_with_users_embedded_in_a_string_is_redacted_as_json() {
        let embedded = json!({"owner": jira_user(ALICE, "Alice Example", None)}).to_string();
        let mut v = json!({"properties": {"config": embedded}});
        let r = redact_value(&mut v, &NameBook::default());
        let inner: Value =
            serde_json::from_str(v["properties"]["config"].as_str().unwrap()).unwrap();
        assert_eq!(inner, json!({"owner": {"displayName": "Alice Example"}}));
        assert_eq!(r.user_objects, 1);
    }

    // --- whole documents -------------------------------------------------------------------------

    #[test]
    fn jira_issue_has_no_account_ids_after_redaction() {
        let before = serde_json::to_string(&jira_issue()).unwrap();
        assert!(find_account_ids(&before).len() > 20);
        let (doc, _) = redacted_jira_issue();
        assert_no_account_ids(&doc);
        let text = serde_json::to_string(&doc).unwrap();
        for needle in [
            "avatarUrls",
            "timeZone",
            "accountType",
            "locale",
            "accountId",
            "tmpFromAccountId",
            "/user?",
        ] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn jira_issue_keeps_display_names_and_emails() {
        let (doc, _) = redacted_jira_issue();
        let f = &doc["fields"];
        assert_eq!(
            f["reporter"],
            json!({"displayName": "Alice Example", "emailAddress": "alice@example.com"})
        );
        assert_eq!(f["assignee"], json!({"displayName": "Bob Builder"}));
        assert_eq!(f["creator"], f["reporter"]);
        assert_eq!(
            f["attachment"][0]["author"],
            json!({"displayName": "Bob Builder"})
        );
        assert_eq!(
            f["customfield_10050"][1],
            json!({"displayName": "Carol Chen", "emailAddress": "carol@example.com"})
        );
        assert_eq!(f["comment"]["comments"][0]["author"], f["reporter"]);
        assert_eq!(f["comment"]["comments"][0]["updateAuthor"], f["assignee"]);
        assert_eq!(
            doc["changelog"]["histories"][0]["author"],
            json!({"displayName": "Carol Chen", "emailAddress": "carol@example.com"})
        );
    }

    #[test]
    fn jira_issue_mentions_become_names() {
        let (doc, _) = redacted_jira_issue();
        let cell = &doc["fields"]["description"]["content"][1]["content"][0]["content"][1];
        assert_eq!(
            text_of_mention(&cell["content"][0]["content"][1]),
            "@Bob Builder"
        );
        for comment in [
            &doc["fields"]["comment"]["comments"][0],
            &doc["comments"][0],
        ] {
            let para = &comment["body"]["content"][0]["content"];
            assert_eq!(text_of_mention(&para[1]), "@Alice Example");
            assert_eq!(text_of_mention(&para[3]), "@unknown user");
        }
        let item = &doc["changelog"]["histories"][0]["items"][1];
        assert_eq!(item["fromString"], "Ask @Alice Example");
        assert_eq!(item["toString"], "Ask @Bob Builder please");
        let rendered = doc["renderedFields"]["description"].as_str().unwrap();
        assert_eq!(
            rendered,
            "<p>Owner: <a class=\"user-hover\">Bob Builder</a></p>"
        );
    }

    #[test]
    fn jira_issue_unrelated_content_is_unchanged() {
        let original = jira_issue();
        let (doc, _) = redacted_jira_issue();
        for pointer in [
            "/expand",
            "/id",
            "/key",
            "/self",
            "/fields/summary",
            "/fields/created",
            "/fields/updated",
            "/fields/status",
            "/fields/customfield_10060",
            "/fields/customfield_10061",
            "/fields/attachment/0/self",
            "/fields/attachment/0/content",
            "/fields/attachment/0/filename",
            "/fields/attachment/0/size",
            "/fields/description/content/0",
            "/fields/description/content/1/attrs",
            "/fields/comment/self",
            "/fields/comment/total",
            "/fields/comment/comments/0/self",
            "/fields/comment/comments/0/created",
            "/changelog/histories/0/items/0/field",
            "/changelog/histories/0/items/0/fromString",
        ] {
            assert_eq!(doc.pointer(pointer), original.pointer(pointer), "{pointer}");
            assert!(doc.pointer(pointer).is_some(), "{pointer}");
        }
        // Project avatars go too: `avatarUrls` is dropped wherever it is.
        assert_eq!(
            doc["fields"]["project"],
            json!({"self": format!("{SITE}/rest/api/3/project/10000"), "id": "10000", "key": "ALPHA", "name": "Alpha"})
        );
    }

    #[test]
    fn jira_issue_redactions_are_counted() {
        let (_, r) = redacted_jira_issue();
        assert_eq!(
            r,
            Redactions {
                // reporter, assignee, creator, 2 pickers, attachment author,
                // 2 x (comment author + updateAuthor), changelog author
                user_objects: 11,
                // description, 2 x 2 in comments, 2 wiki mentions in the changelog
                mentions: 7,
                // project avatarUrls, tmpFrom/tmpTo, href + rel + data-account-id in renderedFields
                fields: 6,
                // changelog from/to
                strings: 2,
            }
        );
    }

    #[test]
    fn confluence_v1_page_has_no_account_ids_and_keeps_names() {
        let (doc, _) = redacted_confluence(confluence_v1_page());
        assert_no_account_ids(&doc);
        assert_eq!(
            doc["history"]["createdBy"],
            json!({"displayName": "Bob Builder", "email": "bob@example.com"})
        );
        assert_eq!(
            doc["history"]["lastUpdated"]["by"],
            json!({"displayName": "Alice Example", "email": "alice@example.com"})
        );
        assert_eq!(doc["version"]["by"], doc["history"]["lastUpdated"]["by"]);
        assert_eq!(
            doc["history"]["contributors"]["publishers"],
            json!({"users": [{"publicName": "Carol Chen", "email": "carol@example.com"}]})
        );
        let text = serde_json::to_string(&doc).unwrap();
        for needle in [
            "profilePicture",
            "accountType",
            "timeZone",
            "isExternalCollaborator",
            "aa-avatar",
            "/people/",
            "data-account-id",
        ] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn confluence_v1_storage_mentions_become_names() {
        let (doc, _) = redacted_confluence(confluence_v1_page());
        assert_eq!(
            doc["body"]["storage"]["value"],
            format!(
                "<p>Owner: @Bob Builder, reviewer @Alice Example, cc @unknown user. Home: \
                 <ac:link><ri:page ri:content-title=\"Home\" /></ac:link>. Checksum <code>{SHA256}</code>.</p>"
            )
        );
        assert_eq!(doc["body"]["storage"]["representation"], "storage");
    }

    #[test]
    fn confluence_v1_unrelated_content_is_unchanged() {
        let original = confluence_v1_page();
        let (doc, _) = redacted_confluence(confluence_v1_page());
        for pointer in [
            "/id",
            "/type",
            "/status",
            "/title",
            "/space",
            "/ancestors",
            "/_links",
            "/history/createdDate",
            "/history/lastUpdated/when",
            "/history/lastUpdated/friendlyWhen",
            "/version/message",
            "/version/number",
            "/version/confRev",
            "/body/storage/_expandable",
            "/body/storage/embeddedContent",
            "/body/atlas_doc_format/representation",
            "/body/view/representation",
        ] {
            assert_eq!(doc.pointer(pointer), original.pointer(pointer), "{pointer}");
            assert!(doc.pointer(pointer).is_some(), "{pointer}");
        }
    }

    #[test]
    fn confluence_v2_page_drops_author_and_owner_ids() {
        let (doc, r) = redacted_confluence(confluence_v2_page());
        assert_no_account_ids(&doc);
        let mut expected = confluence_v2_page();
        let obj = expected.as_object_mut().unwrap();
        for key in ["authorId", "ownerId", "lastOwnerId"] {
            obj.remove(key);
        }
        expected["version"]
            .as_object_mut()
            .unwrap()
            .remove("authorId");
        expected["body"]["storage"]["value"] = json!("<p>Hi @unknown user</p>");
        assert_eq!(doc, expected);
        assert_eq!(
            r,
            Redactions {
                user_objects: 0,
                mentions: 1,
                fields: 4,
                strings: 0
            }
        );
    }

    #[test]
    fn confluence_v2_mentions_use_names_learned_earlier_in_the_job() {
        let mut names = NameBook::default();
        let mut v1 = confluence_v1_page();
        redact_confluence_content(&mut v1, &mut names);
        let mut v2 = confluence_v2_page();
        redact_confluence_content(&mut v2, &mut names);
        assert_eq!(v2["body"]["storage"]["value"], "<p>Hi @Bob Builder</p>");
    }

    #[test]
    fn confluence_v2_attachment_keeps_file_id_and_drops_creator() {
        let (doc, _) = redacted_confluence(confluence_v2_attachment());
        assert_no_account_ids(&doc);
        assert_eq!(doc["fileId"], LOCAL_ID);
        assert_eq!(
            doc["downloadLink"],
            confluence_v2_attachment()["downloadLink"]
        );
        assert!(doc.get("createdBy").is_none());
        assert_eq!(
            doc["version"],
            json!({"createdAt": "2024-04-02T09:00:00.000Z", "number": 1})
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        for doc in [
            jira_issue(),
            confluence_v1_page(),
            confluence_v2_page(),
            confluence_v2_attachment(),
        ] {
            let mut names = NameBook::default();
            let mut doc = doc;
            let first = redact_jira_issue(&mut doc, &mut names);
            assert!(first.total() > 0);
            let once = doc.clone();
            let second = redact_confluence_content(&mut doc, &mut names);
            assert_eq!(second, Redactions::default());
            assert_eq!(doc, once);
        }
    }

    #[test]
    fn redactions_serialize_as_plain_counts() {
        let r = Redactions {
            user_objects: 1,
            mentions: 2,
            fields: 3,
            strings: 4,
        };
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({"user_objects": 1, "mentions": 2, "fields": 3, "strings": 4})
        );
    }

    #[test]
    fn pathological_markup_takes_linear_time() {
        let names = book();
        let user = format!("<ri:user ri:account-id=\"{ALICE}\"/>");
        let inputs = [
            format!("{}{user}", "<ac:link-body>".repeat(20_000)),
            format!("{}{user}", "<ac:link ".repeat(20_000)),
            format!("<ac:link>{}", user.repeat(5_000)),
            format!("{user}{}", "<ri:user ".repeat(20_000)),
            "<ac:link><ri:user/>".repeat(20_000),
            "[~accountid:".repeat(20_000),
            format!("<a data-account-id=\"{BOB}\">{}", "<a x=".repeat(20_000)),
            format!("{} {ALICE}", "<a b=\"c\" ".repeat(20_000)),
        ];
        let started = std::time::Instant::now();
        for input in inputs {
            let mut v = Value::String(input);
            redact_value(&mut v, &names);
            assert_clean_tree(&v);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    // --- garbage ---------------------------------------------------------------------------------

    const FRAGMENTS: &[&str] = &[
        ALICE,
        BOB,
        CAROL,
        DAVE,
        SHA1,
        SHA256,
        LOCAL_ID,
        "557058",
        ":",
        "%3A",
        "%3D",
        "%",
        "-",
        "f58131cb",
        "<",
        ">",
        "/>",
        "/",
        "=",
        "\"",
        "'",
        " ",
        "\n",
        "<ri:user",
        " ri:account-id=",
        " ri:userkey=",
        "</ri:user>",
        "<ac:link>",
        "<ac:link",
        "</ac:link>",
        "</ac:link",
        "<ac:link-body>",
        "</ac:link-body>",
        "<a href=\"",
        "/wiki/people/",
        " data-account-id=",
        "<![CDATA[",
        "]]>",
        "[~accountid:",
        "]",
        "@",
        "accountId=",
        "{\"type\":\"mention\",\"attrs\":{\"id\":\"",
        "\"}}",
        "{\"accountId\":\"",
        "é",
        "😀",
        "\u{0}",
        "\u{8}",
        "a",
        "0",
        "F",
        "ALPHA-1",
        "10042",
    ];

    /// Whole pieces of markup with ids, so that well-formed references are common too.
    fn composed_fragments() -> Vec<String> {
        vec![
            format!("<ri:user ri:account-id=\"{ALICE}\"/>"),
            format!("<ri:user ri:account-id='{BOB}'></ri:user>"),
            format!("<ac:link><ri:user ri:account-id=\"{DAVE}\" />"),
            format!("<ri:user ri:userkey=\"{CAROL}\" ri:local-id=\"{LOCAL_ID}\">"),
            format!("<a href=\"/wiki/people/{BOB}\" data-account-id=\"{BOB}\">"),
            format!("[~accountid:{ALICE}]"),
            format!("{{\"type\":\"mention\",\"attrs\":{{\"id\":\"{BOB}\",\"text\":\"@B\"}}}}"),
        ]
    }

    fn random_string(rng: &mut StdRng) -> String {
        let composed = composed_fragments();
        let mut s = String::new();
        for _ in 0..rng.random_range(0..12) {
            match rng.random_range(0..10) {
                0 | 1 => s.push(rng.random::<char>()),
                2 => s.push_str(&composed[rng.random_range(0..composed.len())]),
                _ => s.push_str(FRAGMENTS[rng.random_range(0..FRAGMENTS.len())]),
            }
        }
        s
    }

    const KEYS: &[&str] = &[
        "accountId",
        "displayName",
        "publicName",
        "emailAddress",
        "email",
        "type",
        "attrs",
        "text",
        "id",
        "self",
        "createdBy",
        "authorId",
        "body",
        "storage",
        "value",
        "representation",
        "atlas_doc_format",
        "content",
        "mention",
        ALICE,
        BOB,
        "x",
    ];

    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        let pick = if depth == 0 {
            rng.random_range(0..5)
        } else {
            rng.random_range(0..8)
        };
        match pick {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => json!(rng.random_range(-1_000_000i64..1_000_000)),
            3 => json!(rng.random_range(-1000.0f64..1000.0)),
            4 => Value::String(random_string(rng)),
            5 => {
                // A mention node or a user object, possibly broken.
                let mut m = Map::new();
                m.insert(
                    "type".into(),
                    json!(if rng.random_bool(0.7) {
                        "mention"
                    } else {
                        "doc"
                    }),
                );
                m.insert("attrs".into(), random_value(rng, depth - 1));
                if rng.random_bool(0.3) {
                    m.insert("accountId".into(), random_value(rng, depth - 1));
                }
                Value::Object(m)
            }
            6 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.random_range(0..5) {
                    let key = if rng.random_bool(0.8) {
                        KEYS[rng.random_range(0..KEYS.len())].to_owned()
                    } else {
                        random_string(rng)
                    };
                    let value = if rng.random_bool(0.1) {
                        // JSON embedded in a string, as atlas_doc_format does.
                        Value::String(random_value(rng, depth - 1).to_string())
                    } else {
                        random_value(rng, depth - 1)
                    };
                    m.insert(key, value);
                }
                Value::Object(m)
            }
        }
    }

    /// Every string and key of `v` is free of account ids.
    fn assert_clean_tree(v: &Value) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => assert!(find_account_ids(s).is_empty(), "{s:?}"),
                Value::Array(items) => stack.extend(items),
                Value::Object(m) => {
                    for (k, child) in m {
                        assert!(find_account_ids(k).is_empty(), "{k:?}");
                        assert!(!k.eq("accountId"));
                        stack.push(child);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn random_json_never_panics_and_ends_clean_and_stable() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0005);
        for _ in 0..2_000 {
            let mut doc = random_value(&mut rng, 5);
            let mut names = NameBook::default();
            redact_jira_issue(&mut doc, &mut names);
            assert_clean_tree(&doc);
            let once = doc.clone();
            let second = redact_confluence_content(&mut doc, &mut names);
            assert_eq!(second, Redactions::default(), "{once}");
            assert_eq!(doc, once);
        }
    }

    #[test]
    fn random_strings_never_panic_and_end_clean_and_stable() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0006);
        let names = book();
        for _ in 0..2_000 {
            let s = random_string(&mut rng);
            for id in find_account_ids(&s) {
                assert!(s.contains(&id));
            }
            let (scrubbed, n) = scrub_account_ids(&s);
            assert_eq!(n as usize, find_account_ids(&s).len());
            assert!(
                find_account_ids(&scrubbed).is_empty(),
                "{s:?} -> {scrubbed:?}"
            );
            let (storage, _) = redact_storage_body(&s, &names);
            let (storage_again, n) = redact_storage_body(&storage, &names);
            assert_eq!((storage_again.as_str(), n), (storage.as_str(), 0), "{s:?}");

            let mut v = Value::String(s.clone());
            redact_value(&mut v, &names);
            assert_clean_tree(&v);
            let once = v.clone();
            assert_eq!(redact_value(&mut v, &names), Redactions::default(), "{s:?}");
            assert_eq!(v, once);
        }
    }
}
