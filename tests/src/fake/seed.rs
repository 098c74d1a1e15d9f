//! What to seed: sizes of the deterministic data set, presets, and the word lists, hostile file
//! names and size plan the generators draw from.

use serde::{Deserialize, Serialize};

use super::rng::SeedRng;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Sizes of one site's seeded data. Everything else (names, timestamps, texts, bytes) follows
/// from these and `FakeConfig::seed`, so the same spec and seed give the same site every time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSpec {
    /// Jira projects as (key, number of issues).
    pub jira_projects: Vec<(String, usize)>,
    /// Ordinary Jira attachments (0 B to 512 KiB). The first ones carry the hostile file names
    /// (see [`HOSTILE_FILENAMES`]); the first one is empty.
    pub jira_attachments: usize,
    /// Extra Jira attachments of exactly these sizes in bytes (e.g. one of 200 MiB).
    pub jira_large_attachments: Vec<u64>,
    /// How many issues get more than 20 comments (and 25 changelog entries).
    pub jira_comment_heavy_issues: usize,
    /// Confluence spaces as (key, number of pages and blog posts; every tenth is a blog post).
    pub confluence_spaces: Vec<(String, usize)>,
    /// Ordinary Confluence attachments (on pages, unique titles per page).
    pub confluence_attachments: usize,
    /// Extra Confluence attachments of exactly these sizes in bytes.
    pub confluence_large_attachments: Vec<u64>,
    /// Every n-th issue is one the user may not see (0 = none); see the Jira module docs.
    pub forbidden_issue_every: usize,
    /// Every n-th page answers 403 on direct reads (0 = none).
    pub forbidden_page_every: usize,
    /// Every n-th ordinary attachment answers 403 on download (0 = none).
    pub forbidden_attachment_every: usize,
    /// How many issues answer with an `issueErrors` entry (a retriable error) the first time a
    /// bulk fetch asks for them, and normally afterwards.
    pub flaky_bulkfetch_issues: usize,
    /// Every n-th Confluence page or blog post carries comments (0 = none): two footer comments,
    /// a reply, an inline comment on a passage of the body and its reply, each mentioning a user.
    #[serde(default)]
    pub confluence_comment_every: usize,
    /// Every n-th Confluence page has a heavy body (0 = none): a search that expands the bodies
    /// of several of them at once answers 504, and of one in four of them even alone (see
    /// `HEAVY_BODY_BYTES`).
    #[serde(default)]
    pub confluence_heavy_every: usize,
    /// Adds the crafted attachments of `crafted.rs` (a Markdown file, a zip bomb, a truncated
    /// PDF) to each product.
    #[serde(default)]
    pub crafted_attachments: bool,
}

impl SeedSpec {
    /// Two Jira projects (55 issues, 3 with more than 20 comments, 21 attachments: an empty one,
    /// every hostile name, one forbidden, one of 3 MiB) and two Confluence spaces (50 pages and
    /// posts nested several levels deep, 20 attachments). Generates in about a millisecond.
    pub fn small() -> Self {
        Self {
            jira_projects: vec![("ALPHA".into(), 30), ("BETA".into(), 25)],
            jira_attachments: 20,
            jira_large_attachments: vec![3 * MIB],
            jira_comment_heavy_issues: 3,
            confluence_spaces: vec![("DOCS".into(), 30), ("ENG".into(), 20)],
            confluence_attachments: 19,
            confluence_large_attachments: vec![MIB + 123],
            forbidden_issue_every: 20,
            forbidden_page_every: 17,
            forbidden_attachment_every: 11,
            flaky_bulkfetch_issues: 0,
            confluence_comment_every: 3,
            confluence_heavy_every: 0,
            crafted_attachments: false,
        }
    }

    /// The benchmark set: Jira ALPHA 1,500 + BETA 500 issues with 300 attachments (0 B to
    /// 200 MiB); Confluence 3 spaces with 1,200 pages and 150 attachments (one of 200 MiB).
    /// ENG (400 pages) comes first: it holds the hostile names, the 20 and the 200 MiB file,
    /// and about a third of the ordinary attachments; DOCS and OPS hold the rest.
    pub fn large() -> Self {
        Self {
            jira_projects: vec![("ALPHA".into(), 1500), ("BETA".into(), 500)],
            jira_attachments: 296,
            jira_large_attachments: vec![5 * MIB, 20 * MIB, 50 * MIB, 200 * MIB],
            jira_comment_heavy_issues: 40,
            confluence_spaces: vec![
                ("ENG".into(), 400),
                ("DOCS".into(), 600),
                ("OPS".into(), 200),
            ],
            confluence_attachments: 148,
            confluence_large_attachments: vec![20 * MIB, 200 * MIB],
            forbidden_issue_every: 97,
            forbidden_page_every: 89,
            forbidden_attachment_every: 37,
            flaky_bulkfetch_issues: 0,
            confluence_comment_every: 3,
            confluence_heavy_every: 0,
            crafted_attachments: false,
        }
    }

    /// Nothing at all (useful for OAuth-only tests).
    pub fn empty() -> Self {
        Self {
            jira_projects: Vec::new(),
            jira_attachments: 0,
            jira_large_attachments: Vec::new(),
            jira_comment_heavy_issues: 0,
            confluence_spaces: Vec::new(),
            confluence_attachments: 0,
            confluence_large_attachments: Vec::new(),
            forbidden_issue_every: 0,
            forbidden_page_every: 0,
            forbidden_attachment_every: 0,
            flaky_bulkfetch_issues: 0,
            confluence_comment_every: 0,
            confluence_heavy_every: 0,
            crafted_attachments: false,
        }
    }

    /// Adds one Jira attachment of exactly `bytes` (e.g. 2 GiB for a memory benchmark).
    pub fn with_jira_attachment_of(mut self, bytes: u64) -> Self {
        self.jira_large_attachments.push(bytes);
        self
    }

    /// Adds one Confluence attachment of exactly `bytes`.
    pub fn with_confluence_attachment_of(mut self, bytes: u64) -> Self {
        self.confluence_large_attachments.push(bytes);
        self
    }

    /// Adds the crafted attachments (see `crafted.rs`) to each product.
    pub fn with_crafted_attachments(mut self) -> Self {
        self.crafted_attachments = true;
        self
    }

    /// No forbidden issues, pages or attachments (every item exports cleanly).
    pub fn without_forbidden(mut self) -> Self {
        self.forbidden_issue_every = 0;
        self.forbidden_page_every = 0;
        self.forbidden_attachment_every = 0;
        self
    }
}

impl Default for SeedSpec {
    fn default() -> Self {
        Self::small()
    }
}

/// File names that break naive exporters: path traversal, control characters, reserved Windows
/// names, percent-encoded slashes, very long and unicode names, duplicates.
pub const HOSTILE_FILENAMES: &[&str] = &[
    "empty.txt",
    "../../etc/passwd",
    "nul\u{0}byte.txt",
    "line\nbreak.txt",
    "carriage\rreturn.txt",
    "tab\tseparated.txt",
    "résumé 履歴書.pdf",
    "con",
    "NUL.txt",
    "a%2Fb%2F..%2Fc.txt",
    "  spaces  around  .txt",
    ".hidden",
    "..leading-dots.txt",
    "back\\slash.txt",
    "report.pdf",
    "report.pdf",
    "emoji 🚀 ✓.png",
];

/// A 300+ character file name, added after [`HOSTILE_FILENAMES`].
pub(crate) fn long_filename() -> String {
    format!("long-{}.txt", "ø".repeat(150) + &"a".repeat(160))
}

/// The file name of ordinary attachment `index` (hostile ones first, duplicates only when
/// `allow_duplicates`).
pub(crate) fn attachment_filename(index: usize, allow_duplicates: bool) -> String {
    let hostile: Vec<&str> = if allow_duplicates {
        HOSTILE_FILENAMES.to_vec()
    } else {
        let mut seen = Vec::new();
        for name in HOSTILE_FILENAMES {
            if !seen.contains(name) {
                seen.push(*name);
            }
        }
        seen
    };
    if let Some(name) = hostile.get(index) {
        return (*name).to_owned();
    }
    if index == hostile.len() {
        return long_filename();
    }
    let (ext, _) = EXTENSIONS[index % EXTENSIONS.len()];
    format!("attachment-{index:04}.{ext}")
}

const EXTENSIONS: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("png", "image/png"),
    ("pdf", "application/pdf"),
    ("json", "application/json"),
    ("zip", "application/zip"),
    ("csv", "text/csv"),
    ("bin", "application/octet-stream"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
];

/// The MIME type a product would report for a file name.
pub(crate) fn mime_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, m)| *m)
        .unwrap_or("application/octet-stream")
}

/// Size of ordinary attachment `index`: the first is empty, the rest log-uniform in 1 B..512 KiB.
pub(crate) fn ordinary_attachment_size(rng: &mut SeedRng, index: usize) -> u64 {
    if index == 0 {
        return 0;
    }
    let exp = rng.unit() * (512.0 * KIB as f64).ln();
    (exp.exp() as u64).clamp(1, 512 * KIB)
}

/// Words for summaries and titles (some non-ASCII on purpose).
pub(crate) const WORDS: &[&str] = &[
    "export",
    "login",
    "Überprüfung",
    "cache",
    "timeout",
    "résumé",
    "dashboard",
    "ログイン",
    "billing",
    "migration",
    "señal",
    "report",
    "search",
    "ошибка",
    "latency",
    "webhook",
    "α-test",
    "onboarding",
    "quota",
    "naïve",
    "backup",
    "emoji 🎉",
    "permissions",
    "token",
    "crash",
    "upload",
    "Zürich",
    "schema",
    "retry",
    "façade",
];

/// Sentences for descriptions, comments and page bodies.
pub(crate) const SENTENCES: &[&str] = &[
    "The export stops after the first page of results.",
    "Customers in Zürich report intermittent timeouts.",
    "Steps to reproduce are attached; see the screenshot.",
    "Die Überprüfung ergab keine weiteren Fehler.",
    "ログインに失敗しました。再試行してください。",
    "Please check whether the retry honours Retry-After.",
    "This blocks the quarterly report — high priority.",
    "Ошибка воспроизводится только в Safari.",
    "Tested on staging with <angle brackets> & ampersands.",
    "Closing as duplicate once the fix is deployed. 🚀",
];

/// One of [`SENTENCES`].
pub(crate) fn sentence(rng: &mut SeedRng) -> &'static str {
    SENTENCES[rng.index(SENTENCES.len())]
}

/// A summary or title made of 2–4 words.
pub(crate) fn phrase(rng: &mut SeedRng) -> String {
    let n = rng.range(2, 4);
    let words: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
    let mut s = words.join(" ");
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_come_first_and_the_long_one_is_over_300_chars() {
        assert_eq!(attachment_filename(1, true), "../../etc/passwd");
        let long = attachment_filename(HOSTILE_FILENAMES.len(), true);
        assert!(long.chars().count() > 300);
        assert_eq!(attachment_filename(15, true), "report.pdf");
        assert_ne!(attachment_filename(15, false), "report.pdf");
    }

    #[test]
    fn ordinary_sizes_stay_small_and_the_first_is_empty() {
        let mut rng = SeedRng::new(3);
        assert_eq!(ordinary_attachment_size(&mut rng, 0), 0);
        for i in 1..200 {
            let s = ordinary_attachment_size(&mut rng, i);
            assert!((1..=512 * KIB).contains(&s));
        }
    }
}
