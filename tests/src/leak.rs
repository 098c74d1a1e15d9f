//! An independent leak checker for tests (PRIVACY.md P5, P7): does a text carry an Atlassian
//! account id, a known secret value or (when asked) an e-mail address, in any encoding?
//!
//! Deliberately independent of the redactor (`shared::export::redact`): it shares no code with
//! it, and its patterns are broader. It first decodes the text (percent-encoding any number of
//! times, HTML character references, JSON `\u` escapes) and looks for declarative patterns in the
//! raw and the decoded text:
//! - `NNN:uuid` and JSM `qm:uuid[:tail]` ids;
//! - `~` followed by 24 to 40 hex digits (personal-space keys made from account ids);
//! - EVERY word of exactly 24 hex digits (legacy ids), unless explicitly allowed: where the
//!   redactor keeps a bare unknown 24-hex word in prose (its precise rule), a test that means it
//!   says so with [`LeakChecker::allowing`];
//! - every known value (seeded account ids, secrets), case-insensitively, also as the
//!   personal-space key an `NNN:uuid` id turns into;
//! - with [`LeakChecker::with_emails`], e-mail addresses.

use std::fmt;
use std::sync::OnceLock;

use regex_lite::{Captures, Regex};

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeakKind {
    /// Something shaped like an account id.
    AccountId,
    /// One of the values given to [`LeakChecker::with_known`].
    Known,
    /// An e-mail address ([`LeakChecker::with_emails`]).
    Email,
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: LeakKind,
    /// The text found (in the decoded form when `decoded`).
    pub value: String,
    /// Found only after decoding (percent-encoding, character references, escapes).
    pub decoded: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.decoded { " (decoded)" } else { "" };
        write!(f, "{:?} {:?}{how}", self.kind, self.value)
    }
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct LeakChecker {
    /// Lower case, with derived forms.
    known: Vec<String>,
    /// Lower case.
    allowed: Vec<String>,
    emails: bool,
}

struct Patterns {
    uuid_id: Regex,
    customer: Regex,
    space_key: Regex,
    word: Regex,
    email: Regex,
    percent: Regex,
    reference: Regex,
    escape: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("pattern {p}: {e}"));
        const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
        Patterns {
            uuid_id: re(&format!("(?i)[0-9]+:{UUID}")),
            customer: re(&format!("(?i)qm:{UUID}(?::[0-9a-f-]+)?")),
            space_key: re("(?i)~[0-9a-f]{24,40}"),
            word: re("[0-9A-Za-z]+"),
            email: re("(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,}"),
            percent: re("%([0-9A-Fa-f]{2})"),
            reference: re("&#([0-9]{1,7});|&#[xX]([0-9A-Fa-f]{1,6});|&([A-Za-z]{2,8});"),
            escape: re("\\\\[uU]([0-9A-Fa-f]{4})|\\\\([\"/\\\\])"),
        }
    })
}

impl LeakChecker {
    /// Account-id shapes only.
    #[must_use]
    pub fn new() -> LeakChecker {
        LeakChecker::default()
    }

    /// Also every one of `values` (seeded account ids, tokens, secrets), in any case and
    /// encoding; an `NNN:uuid` id also as its personal-space key (`NNN` + uuid without `-`).
    #[must_use]
    pub fn with_known<S: AsRef<str>>(mut self, values: &[S]) -> LeakChecker {
        for v in values {
            let v = v.as_ref().trim().to_ascii_lowercase();
            if v.is_empty() {
                continue;
            }
            if let Some((digits, uuid)) = v.split_once(':')
                && digits.bytes().all(|c| c.is_ascii_digit())
            {
                self.known
                    .push(format!("{digits}{}", uuid.replace('-', "")));
            }
            self.known.push(v);
        }
        self
    }

    /// Also e-mail addresses.
    #[must_use]
    pub fn with_emails(mut self) -> LeakChecker {
        self.emails = true;
        self
    }

    /// Findings equal to one of `values` (case-insensitive) are not reported: a 24-hex word a
    /// test keeps on purpose (a commit-hash prefix, an object id in prose).
    #[must_use]
    pub fn allowing<S: AsRef<str>>(mut self, values: &[S]) -> LeakChecker {
        self.allowed
            .extend(values.iter().map(|v| v.as_ref().to_ascii_lowercase()));
        self
    }

    /// Everything found in `text`, sorted, without duplicates.
    #[must_use]
    pub fn check_text(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        self.scan(text, false, &mut found);
        let decoded = decode(text);
        if decoded != text {
            let mut more = Vec::new();
            self.scan(&decoded, true, &mut more);
            for f in more {
                if !found
                    .iter()
                    .any(|g: &Finding| g.kind == f.kind && g.value.eq_ignore_ascii_case(&f.value))
                {
                    found.push(f);
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// [`Self::check_text`] over bytes (lossy UTF-8).
    #[must_use]
    pub fn check_bytes(&self, bytes: &[u8]) -> Vec<Finding> {
        self.check_text(&String::from_utf8_lossy(bytes))
    }

    /// Panics, naming `what` and the findings, unless `text` is clean.
    pub fn assert_clean(&self, what: &str, text: &str) {
        let found = self.check_text(text);
        assert!(
            found.is_empty(),
            "{what} leaks: {}",
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn scan(&self, text: &str, decoded: bool, found: &mut Vec<Finding>) {
        let p = patterns();
        let mut push = |kind: LeakKind, value: &str| {
            if !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                found.push(Finding {
                    kind,
                    value: value.to_owned(),
                    decoded,
                });
            }
        };
        for re in [&p.uuid_id, &p.customer, &p.space_key] {
            for m in re.find_iter(text) {
                push(LeakKind::AccountId, m.as_str());
            }
        }
        for m in p.word.find_iter(text) {
            let w = m.as_str();
            if w.len() == 24 && w.bytes().all(|c| c.is_ascii_hexdigit()) {
                push(LeakKind::AccountId, w);
            }
        }
        if !self.known.is_empty() {
            let lower = text.to_ascii_lowercase();
            for k in &self.known {
                if lower.contains(k.as_str()) {
                    push(LeakKind::Known, k);
                }
            }
        }
        if self.emails {
            for m in p.email.find_iter(text) {
                push(LeakKind::Email, m.as_str());
            }
        }
    }
}

/// `text` decoded until nothing changes (at most 8 rounds): percent escapes, HTML character
/// references, JSON/JS escapes.
#[must_use]
pub fn decode(text: &str) -> String {
    let p = patterns();
    let mut cur = text.to_owned();
    for _ in 0..8 {
        let next = p
            .percent
            .replace_all(&cur, |c: &Captures<'_>| {
                char_of(c.get(1).map(|m| m.as_str()), 16)
            })
            .into_owned();
        let next = p
            .reference
            .replace_all(&next, |c: &Captures<'_>| {
                if let Some(dec) = c.get(1) {
                    char_of(Some(dec.as_str()), 10)
                } else if let Some(hex) = c.get(2) {
                    char_of(Some(hex.as_str()), 16)
                } else {
                    named_reference(c.get(3).map_or("", |m| m.as_str()))
                        .unwrap_or_else(|| c.get(0).map_or("", |m| m.as_str()).to_owned())
                }
            })
            .into_owned();
        let next = p
            .escape
            .replace_all(&next, |c: &Captures<'_>| match c.get(1) {
                Some(hex) => char_of(Some(hex.as_str()), 16),
                None => c.get(2).map_or("", |m| m.as_str()).to_owned(),
            })
            .into_owned();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// The character with code `digits` in `radix` (U+FFFD when there is none).
fn char_of(digits: Option<&str>, radix: u32) -> String {
    digits
        .and_then(|d| u32::from_str_radix(d, radix).ok())
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}')
        .to_string()
}

fn named_reference(name: &str) -> Option<String> {
    let c = match name.to_ascii_lowercase().as_str() {
        "colon" => ':',
        "tilde" => '~',
        "commat" => '@',
        "quot" => '"',
        "apos" => '\'',
        "amp" => '&',
        "equals" => '=',
        "sol" => '/',
        "period" => '.',
        "lt" => '<',
        "gt" => '>',
        "nbsp" => ' ',
        _ => return None,
    };
    Some(c.to_string())
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "leak_props.rs"]
mod leak_props;
