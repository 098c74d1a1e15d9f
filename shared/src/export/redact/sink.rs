//! One scrubbing function per kind of destination, for text that is not part of a redacted
//! document tree:
//!
//! - [`scrub_text`]: free text of a document (the precise rule, with the job's [`NameBook`]).
//! - [`scrub_for_sink`]: everything written beside the documents — failure reasons, events, log
//!   fields, object metadata (an attachment's original file name), error text from Atlassian
//!   (JQL/CQL errors quote user data). Every account-id shape goes, every 24-hex word included
//!   (nothing there is worth the risk), and every e-mail address.
//! - [`safe_key_component`]: an S3 key part built from a file name; the same removals, with
//!   placeholders that need no escaping, so the name stays readable.

use super::encoding;
use super::ids::{self, ACCOUNT_PLACEHOLDER, Legacy};
use super::names::NameBook;

/// What an e-mail address is replaced with by [`scrub_for_sink`].
pub const EMAIL_PLACEHOLDER: &str = "[email]";
/// Placeholders inside S3 key components ([`safe_key_component`]): no brackets, which S3 lists
/// among the characters to avoid in keys.
const KEY_ACCOUNT: &str = "account";
const KEY_EMAIL: &str = "email";

/// Document free text: account ids in every shape and encoding (unambiguous shapes always;
/// 24-hex words when `names` knows them or when they stand in an account-id context), e-mail
/// addresses kept (PRIVACY.md P5 allows them in documents).
#[must_use]
pub fn scrub_text(text: &str, names: &NameBook) -> String {
    ids::scrub_with(
        text,
        Some(names),
        Legacy::Precise { keyed: false },
        ACCOUNT_PLACEHOLDER,
    )
    .0
}

/// Text for a sink outside the documents (failure reason, event, log field, object metadata,
/// Atlassian error text): every account-id shape, raw or encoded, EVERY 24-hex word, and every
/// e-mail address (raw or with its `@` encoded) replaced by `[account]` / `[email]`.
#[must_use]
pub fn scrub_for_sink(text: &str) -> String {
    let (text, _) = ids::scrub_with(text, None, Legacy::All, ACCOUNT_PLACEHOLDER);
    mask_emails(&text, EMAIL_PLACEHOLDER)
}

/// An S3 key component made from a file name (`avatar-<accountId>.png` -> `avatar-account.png`):
/// account ids (as in [`scrub_for_sink`]) become `account`, e-mail addresses `email`; the rest
/// is kept for the caller's own key escaping (`blob::safe_key_segment`).
#[must_use]
pub fn safe_key_component(name: &str) -> String {
    let (name, _) = ids::scrub_with(name, None, Legacy::All, KEY_ACCOUNT);
    mask_emails_with(&name, KEY_EMAIL, true)
}

/// File extensions that end a file name rather than an e-mail domain (`logo@2x.png` is a file,
/// `cv of a@b.com.pdf` keeps its `.pdf`).
const FILE_EXTENSIONS: [&str; 24] = [
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "pdf", "doc", "docx", "xls", "xlsx",
    "ppt", "pptx", "txt", "csv", "log", "zip", "gz", "json", "xml", "md", "html",
];

/// Every e-mail address in `text` replaced by `with`: `local@domain.tld` with the `@` raw,
/// percent-encoded (once or more) or an HTML character reference.
#[must_use]
pub(super) fn mask_emails(text: &str, with: &str) -> String {
    mask_emails_with(text, with, false)
}

/// [`mask_emails`]; in a `file_name`, a last label that is a [`FILE_EXTENSIONS`] entry is not
/// part of the domain.
fn mask_emails_with(text: &str, with: &str, file_name: bool) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let Some(at_len) = encoding::encoded_char_at(b, i, b'@') else {
            i += 1;
            continue;
        };
        let mut start = i;
        while start > copied && b.get(start - 1).is_some_and(|&c| is_local_byte(c)) {
            start -= 1;
        }
        start = after_escape(b, start, i);
        let end = domain_end(b, i + at_len, file_name);
        match end {
            Some(end) if start < i => {
                out.push_str(text.get(copied..start).unwrap_or_default());
                out.push_str(with);
                copied = end;
                i = end;
            }
            _ => i += at_len,
        }
    }
    if copied == 0 {
        return text.to_owned();
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

fn is_local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-')
}

/// A local part glued to a percent escape (`reporter%3Dalice@...`, `%253D`): starts after it.
fn after_escape(b: &[u8], start: usize, at: usize) -> usize {
    if start == 0 || b.get(start - 1) != Some(&b'%') {
        return start;
    }
    let mut k = start;
    while b.get(k..k + 2) == Some(b"25")
        && b.get(k + 2..k + 4)
            .is_some_and(|w| w.iter().all(u8::is_ascii_hexdigit))
    {
        k += 2;
    }
    if b.get(k..k + 2)
        .is_some_and(|w| w.iter().all(u8::is_ascii_hexdigit))
        && k + 2 < at
    {
        k + 2
    } else {
        start
    }
}

/// End of a domain name (`labels.tld`, at least two labels, an alphabetic top-level label of two
/// or more letters) starting at `p`.
fn domain_end(b: &[u8], p: usize, file_name: bool) -> Option<usize> {
    let mut labels: Vec<(usize, usize)> = Vec::new();
    let mut i = p;
    loop {
        let start = i;
        while b
            .get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'-')
        {
            i += 1;
        }
        if i == start {
            break;
        }
        labels.push((start, i));
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
        } else {
            break;
        }
    }
    let label = |&(s, e): &(usize, usize)| b.get(s..e).unwrap_or_default();
    if file_name
        && labels.last().is_some_and(|l| {
            FILE_EXTENSIONS
                .iter()
                .any(|ext| label(l).eq_ignore_ascii_case(ext.as_bytes()))
        })
    {
        labels.pop();
    }
    let tld = labels.last()?;
    let ok = labels.len() >= 2
        && label(tld).len() >= 2
        && label(tld).iter().all(u8::is_ascii_alphabetic);
    ok.then_some(tld.1)
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
