//! The account-id scanner: every shape of an Atlassian account id, raw or encoded, and the rule
//! that decides which 24-hex words are account ids (see the module documentation of `redact`).
//!
//! Shapes (ATLASSIAN.md, "Where account IDs hide"):
//! - `NNNNNN:uuid` (`557058:f58131cb-b67d-43c7-b30d-6b58d40bd077`): unambiguous, always an id.
//! - JSM portal-only customers, `qm:<uuid>:<hex or uuid>`
//!   (`qm:a713c8ea-1075-4e30-9d96-891a7d181739:5ad6d3581db05e2a66fa80b`, as in the Jira Service
//!   Management REST reference's customer examples): unambiguous.
//! - Personal-space keys derived from an account id: `~` followed by the legacy id
//!   (`~5a75b5612d61371e861f4dae`) or by the new id without its `:` and `-`
//!   (`~712020f889c42ef53e4500a7c6706c3ef10951` for `712020:f889c42e-f53e-4500-a7c6-706c3ef10951`,
//!   as a Confluence v2 `/spaces` answer shows in its `key` and `currentActiveAlias`): unambiguous
//!   after the `~` (only the id part is replaced, the `~` stays).
//! - Legacy ids: 24 hex digits as a whole word (`5b10ac8d82e05b22cc7d4ef5`). Ambiguous: the same
//!   shape is an object id, a hash prefix... See [`Legacy`].
//!
//! Every separator inside a shape (`:` of `NNNNNN:uuid`, the `~`, and the `=`, `"`, `/` of a
//! context) is also recognised encoded: percent-encoded once or more (`%3A`, `%253A`,
//! `%25253A`), as an HTML character reference (`&#58;`, `&#x3a;`, `&colon;`) or as a JSON/JS
//! escape (`\u003a`).
//!
//! Every index produced sits on an ASCII byte or at the end of the text, so slicing is safe.

use super::encoding::{decoded_at, encoded_char_at};
use super::names::NameBook;

/// What an account id found in free text is replaced with.
pub const ACCOUNT_PLACEHOLDER: &str = "[account]";

/// Legacy account ids: 24 hex digits (a MongoDB object id).
pub(super) const LEGACY_ID_LEN: usize = 24;
/// `8-4-4-4-12` hex digits.
const UUID_LEN: usize = 36;
/// How far back a context (`accountId=`, `/people/`...) is looked for.
const CONTEXT_WINDOW: usize = 96;
/// Longest gap (`", "`) between two ids of one list (`accountIds=a,b`).
const LIST_GAP: usize = 16;
/// Shortest known id (a legacy `userKey` is 32 hex digits) matched by the [`NameBook`].
const MIN_KNOWN_LEN: usize = 16;

/// Which 24-hex words count as account ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Legacy {
    /// Every one: sinks (failure reasons, events, logs, keys, metadata) and scanners.
    All,
    /// Only known ids, ids in an account-id context, and (`keyed`) every one in a string that is
    /// the value of a JSON key naming users.
    Precise { keyed: bool },
}

/// Every account id found in `text`, every shape and encoding, and EVERY 24-hex word (this is the
/// broad finder: "anything shaped like an account id"; the redactor itself keeps 24-hex words
/// outside an account-id context, see the module documentation). Non-ASCII characters count as
/// word boundaries.
#[must_use]
pub fn find_account_ids(text: &str) -> Vec<String> {
    id_spans(text, None, Legacy::All)
        .into_iter()
        .filter_map(|(a, b)| text.get(a..b).map(str::to_owned))
        .collect()
}

/// Replace every account id found by [`find_account_ids`] in `text` with `[account]`.
#[must_use]
pub fn scrub_account_ids(text: &str) -> (String, u64) {
    scrub_with(text, None, Legacy::All, ACCOUNT_PLACEHOLDER)
}

/// `text` with the ids `id_spans` finds replaced by `with`, and how many.
pub(super) fn scrub_with(
    text: &str,
    names: Option<&NameBook>,
    legacy: Legacy,
    with: &str,
) -> (String, u64) {
    let spans = id_spans(text, names, legacy);
    if spans.is_empty() {
        return (text.to_owned(), 0);
    }
    (replace_spans(text, &spans, with), spans.len() as u64)
}

/// Is `s` (trimmed) exactly one account id of any shape (a legacy one included)?
pub(super) fn is_account_id(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && id_spans(s, None, Legacy::All) == [(0, s.len())]
}

pub(super) fn replace_spans(text: &str, spans: &[(usize, usize)], with: &str) -> String {
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
pub(super) fn id_spans(
    text: &str,
    names: Option<&NameBook>,
    legacy: Legacy,
) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    uuid_ids(b, &mut spans);
    customer_ids(b, &mut spans);
    space_keys(b, &mut spans);
    merge(&mut spans);
    // The ids found so far count as word boundaries, so that replacing them (by a placeholder
    // that is a boundary too) never makes a new legacy id appear.
    let unambiguous = spans.clone();
    legacy_ids(text, &unambiguous, names, legacy, &mut spans);
    merge(&mut spans);
    spans
}

fn merge(spans: &mut Vec<(usize, usize)>) {
    if spans.len() < 2 {
        return;
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(a, z) in spans.iter() {
        match merged.last_mut() {
            Some(last) if a < last.1 => last.1 = last.1.max(z),
            _ => merged.push((a, z)),
        }
    }
    *spans = merged;
}

/// `NNNNNN:uuid` with the colon raw or encoded.
fn uuid_ids(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < b.len() {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        let mut start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        // `%20557058%3A...`: the first two digits belong to the escape before.
        if start > 0 && b.get(start - 1) == Some(&b'%') && i - start > 2 {
            start += 2;
        }
        if let Some(sep) = encoded_char_at(b, i, b':')
            && is_uuid_at(b, i + sep)
        {
            i += sep + UUID_LEN;
            spans.push((start, i));
        }
    }
}

/// `qm:<uuid>:<hex>` (JSM portal-only customers), colons raw or encoded.
fn customer_ids(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(q) = find_ci(b, from, b"qm") {
        from = q + 1;
        if q > 0 && b.get(q - 1).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let Some(sep) = encoded_char_at(b, q + 2, b':') else {
            continue;
        };
        let uuid = q + 2 + sep;
        if !is_uuid_at(b, uuid) {
            continue;
        }
        let Some(sep) = encoded_char_at(b, uuid + UUID_LEN, b':') else {
            // `qm:<uuid>` alone is still a customer id.
            spans.push((q, uuid + UUID_LEN));
            from = uuid + UUID_LEN;
            continue;
        };
        let tail = uuid + UUID_LEN + sep;
        let mut end = tail;
        while b
            .get(end)
            .is_some_and(|&c| c.is_ascii_hexdigit() || c == b'-')
        {
            end += 1;
        }
        let end = if end > tail { end } else { uuid + UUID_LEN };
        spans.push((q, end));
        from = end;
    }
}

/// `~<legacy id>` and `~<digits><32 hex>` personal-space keys (the `~` raw or encoded): the id
/// part only.
fn space_keys(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < b.len() {
        // A `~`, raw or encoded, starts with one of these bytes: the others are skipped at once.
        let Some(skip) = b.get(i..).and_then(|rest| {
            rest.iter()
                .position(|c| matches!(c, b'~' | b'%' | b'&' | b'\\'))
        }) else {
            return;
        };
        i += skip;
        let Some(tilde) = encoded_char_at(b, i, b'~') else {
            i += 1;
            continue;
        };
        let start = i + tilde;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            end += 1;
        }
        if let Some(run) = b.get(start..end)
            && is_space_key_id(run)
        {
            spans.push((start, end));
        }
        i = end.max(i + 1);
    }
}

/// A whole alphanumeric run after `~` that is an account id turned into a space key.
pub(super) fn is_space_key_id(run: &[u8]) -> bool {
    if !run.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    match run.len() {
        LEGACY_ID_LEN => true,
        // The `NNNNNN` prefix (5 or 6 digits seen; up to 8 allowed) glued to 32 hex digits.
        n @ 33..=40 => run.iter().take(n - 32).all(u8::is_ascii_digit),
        _ => false,
    }
}

fn legacy_ids(
    text: &str,
    unambiguous: &[(usize, usize)],
    names: Option<&NameBook>,
    legacy: Legacy,
    spans: &mut Vec<(usize, usize)>,
) {
    let b = text.as_bytes();
    let mut next_known = unambiguous.iter().peekable();
    // End of the last id taken for its context (or as part of such a list).
    let mut list_end: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        while next_known.next_if(|&&(_, end)| end <= i).is_some() {}
        let limit = match next_known.peek() {
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
        let Some(id_start) = legacy_id_start(b, start, i) else {
            if let Some(names) = names
                && i - start >= MIN_KNOWN_LEN
                && text.get(start..i).is_some_and(|run| names.knows(run))
            {
                spans.push((start, i));
            }
            continue;
        };
        let take = match legacy {
            Legacy::All => true,
            Legacy::Precise { keyed } => {
                if keyed
                    || in_context(text, id_start)
                    || list_end.is_some_and(|end| in_same_list(b, end, id_start))
                {
                    list_end = Some(i);
                    true
                } else {
                    names.is_some_and(|n| text.get(id_start..i).is_some_and(|id| n.knows(id)))
                }
            }
        };
        if take {
            spans.push((id_start, i));
        }
    }
}

/// Where the legacy id in the alphanumeric run `b[start..end]` starts, if the run is one: 24 hex
/// digits, possibly glued to the escape before it (`%3D<id>`, `%253D<id>`, `\u003d<id>`).
fn legacy_id_start(b: &[u8], start: usize, end: usize) -> Option<usize> {
    let run = b.get(start..end)?;
    if !run.iter().all(u8::is_ascii_hexdigit)
        && !run.first().is_some_and(|&c| c == b'u' || c == b'U')
    {
        return None;
    }
    let id_start = end.checked_sub(LEGACY_ID_LEN)?;
    if id_start < start || !b.get(id_start..end)?.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    if id_start == start {
        return Some(start);
    }
    // The run's head must be exactly the escape that precedes the id.
    let prefix = start.checked_sub(1)?;
    match b.get(prefix)? {
        b'%' => {
            let head = b.get(start..id_start)?;
            let pairs = head.len() / 2;
            let ok = head.len() % 2 == 0
                && pairs >= 1
                && head.chunks(2).take(pairs - 1).all(|pair| pair == b"25")
                && head.iter().all(u8::is_ascii_hexdigit);
            ok.then_some(id_start)
        }
        b'\\' => {
            let head = b.get(start..id_start)?;
            (head.len() == 5
                && head.first().is_some_and(|&c| c == b'u' || c == b'U')
                && head.iter().skip(1).all(u8::is_ascii_hexdigit))
            .then_some(id_start)
        }
        _ => None,
    }
}

/// Two ids of one list: only separators (`,`, `;`, `"`, `'`, `|`, `+`, whitespace, raw or
/// encoded) between `end` and `start`.
fn in_same_list(b: &[u8], end: usize, start: usize) -> bool {
    if start < end || start - end > LIST_GAP {
        return false;
    }
    let mut i = end;
    while i < start {
        let Some((c, len)) = decoded_at(b, i) else {
            return false;
        };
        if !matches!(c, b',' | b';' | b'"' | b'\'' | b'|' | b'+' | b'\\')
            && !c.is_ascii_whitespace()
        {
            return false;
        }
        i += len;
    }
    true
}

/// Is the id starting at `start` in an account-id context: after `accountId=`, `"ownerId":"`,
/// `ri:account-id="`, `[~accountid:`, `/people/`, `/user/`, `@`, ... (raw or encoded)?
fn in_context(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let b = text.as_bytes();
    let mut tail = Vec::with_capacity(start - from);
    let mut i = from;
    while i < start {
        match decoded_at(b, i) {
            Some((c, len)) if i + len <= start => {
                tail.push(c.to_ascii_lowercase());
                i += len;
            }
            _ => {
                tail.push(b.get(i).map_or(b' ', u8::to_ascii_lowercase));
                i += 1;
            }
        }
    }
    if tail.last().is_some_and(|&c| c == b'@' || c == b'~') {
        return true;
    }
    let trimmed_len = tail
        .iter()
        .rposition(|&c| {
            !matches!(
                c,
                b'"' | b'\'' | b'=' | b':' | b'\\' | b'(' | b'[' | b'{' | b','
            ) && !c.is_ascii_whitespace()
        })
        .map_or(0, |p| p + 1);
    let t = tail.get(..trimmed_len).unwrap_or_default();
    if t.ends_with(b"/") {
        return PATH_CONTEXTS.iter().any(|p| t.ends_with(p.as_bytes()));
    }
    let word_start = t
        .iter()
        .rposition(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':')))
        .map_or(0, |p| p + 1);
    let word = t.get(word_start..).unwrap_or_default();
    // `ri:account-id` -> `account-id`: a namespace prefix does not change the meaning.
    let word = word
        .iter()
        .rposition(|&c| c == b':')
        .and_then(|p| word.get(p + 1..))
        .unwrap_or(word);
    let word: String = word
        .iter()
        .filter(|c| !matches!(c, b'-' | b'_' | b'.'))
        .map(|&c| char::from(c))
        .collect();
    is_user_word(&word, false)
}

/// URL paths whose next segment is an account id (`/wiki/people/<id>`, `/rest/api/3/user/<id>`,
/// `ari:cloud:identity::user/<id>`, Confluence `/wiki/aa-avatar/<id>`, the avatar host's
/// `.../atl-paas.net/<id>/...`).
const PATH_CONTEXTS: [&str; 6] = [
    "people/",
    "user/",
    "users/",
    "aa-avatar/",
    "atl-paas.net/",
    "profile/",
];

/// Key names (lower case, without `-`, `_`, `.`) whose values are account ids wherever they are.
const USER_WORDS: [&str; 40] = [
    "user",
    "users",
    "assignee",
    "assignees",
    "reporter",
    "reporters",
    "creator",
    "author",
    "authors",
    "owner",
    "owners",
    "watcher",
    "watchers",
    "participant",
    "participants",
    "member",
    "members",
    "approver",
    "approvers",
    "voter",
    "voters",
    "mention",
    "mentions",
    "contributor",
    "contributors",
    "publisher",
    "publishers",
    "customer",
    "customers",
    "requester",
    "actor",
    "person",
    "people",
    "principal",
    "assignedto",
    "completedby",
    "createdby",
    "updatedby",
    "modifiedby",
    "lastmodifiedby",
];

/// Suffixes of key names that name a user id (`tmpFromAccountId`, `data-account-id`, `spaceOwnerId`).
const USER_SUFFIXES: [&str; 14] = [
    "accountid",
    "accountids",
    "userid",
    "userids",
    "userkey",
    "userkeys",
    "ownerid",
    "authorid",
    "creatorid",
    "modifierid",
    "assigneeid",
    "reporterid",
    "user",
    "users",
];

/// Keys naming users only as JSON keys (Jira changelog `from`/`to`, Confluence `by`): as words
/// in prose they say nothing.
const JSON_ONLY_USER_WORDS: [&str; 3] = ["from", "to", "by"];

/// Does `word` (lower case, without `-`, `_`, `.`) name a user (or user id)?
pub(super) fn is_user_word(word: &str, json_key: bool) -> bool {
    USER_WORDS.contains(&word)
        || USER_SUFFIXES.iter().any(|s| word.ends_with(s))
        || (json_key && JSON_ONLY_USER_WORDS.contains(&word))
}

/// `key` normalised for [`is_user_word`]: lower case, without `-`, `_`, `.`, namespace prefix.
pub(super) fn normalize_key(key: &str) -> String {
    lowercase_without(key_tail(key), is_key_separator).collect()
}

/// [`normalize_key`] into `out` (cleared first): one buffer serves every key of a tree walk.
pub(super) fn normalize_key_into(key: &str, out: &mut String) {
    lowercase_without_into(key_tail(key), is_key_separator, out);
}

/// Is `key`, normalised as by [`normalize_key`], exactly `normalized`? Allocates nothing (every
/// key of every object is asked whether it is `accountId`).
pub(super) fn key_is(key: &str, normalized: &str) -> bool {
    let tail = key_tail(key);
    if tail.is_ascii() {
        // Separators only shorten it: a shorter key cannot match.
        return tail.len() >= normalized.len()
            && tail
                .bytes()
                .filter(|b| !is_key_separator(char::from(*b)))
                .map(|b| b.to_ascii_lowercase())
                .eq(normalized.bytes());
    }
    lowercase_without(tail, is_key_separator).eq(normalized.chars())
}

/// `key` lower-cased without the characters `drop` matches, into `out` (cleared first). An
/// ASCII key (nearly every one) is copied whole and lower-cased in place.
pub(super) fn lowercase_without_into(key: &str, drop: fn(char) -> bool, out: &mut String) {
    out.clear();
    if key.is_ascii() {
        out.push_str(key);
        if key.chars().any(drop) {
            out.retain(|c| !drop(c));
        }
        out.make_ascii_lowercase();
    } else {
        out.extend(lowercase_without(key, drop));
    }
}

fn lowercase_without(key: &str, drop: fn(char) -> bool) -> impl Iterator<Item = char> + '_ {
    key.chars()
        .filter(move |c| !drop(*c))
        .flat_map(char::to_lowercase)
}

/// The key without its namespace prefix (`ri:account-id` → `account-id`).
fn key_tail(key: &str) -> &str {
    key.rsplit(':').next().unwrap_or(key)
}

fn is_key_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.')
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

/// ASCII-case-insensitive search of an ASCII `needle` in `hay[from..]`.
pub(super) fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
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

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
