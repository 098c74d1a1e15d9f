//! A scripted, in-memory [`Source`] for the export runner's own tests
//! (tests/tests/it/runner_scripted.rs): `N` items made up in memory, pages of a chosen size,
//! and per-call behaviours a test scripts — a repeated cursor, endless empty pages, an expired
//! cursor, ids the fetch does not return, transient errors, and a hold at one call where the
//! test drops the invocation (a crash at a deterministic point, with no polling).
//!
//! Only Atlassian is replaced. The runner still writes to real DynamoDB and S3 (moto, through
//! the export harness): its exactly-once guarantees rest on DynamoDB conditional writes (the
//! job lease, checkpoints, the connector's running-job slot) and on S3 semantics (object
//! versions, metadata, multipart uploads). An in-memory double of AWS would be written from
//! our own understanding of those semantics and would share any misunderstanding of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shared::atlassian::http::{HttpError, TransportKind};
use shared::export::ExportError;
use shared::export::redact::NameBook;
use shared::export::runner::StepGate;
use shared::export::source::{Batch, Ctx, Item, Page, Source, Sources};
use shared::secret::Secret;
use shared::store::jobs::Skipped;

/// Why a scripted fetch left an id out (what the job and the manifest must record).
pub const MISSING_REASON: &str = "not returned by the scripted source";

/// What the source does at which call. Calls are counted from 1, separately for `page` and
/// `fetch`, over the source's whole life (every invocation of the job).
#[derive(Debug, Default, Clone)]
pub struct Script {
    /// From this page call on, each page's next cursor is the first page's (a paging loop).
    pub repeat_cursor_from: Option<usize>,
    /// From this page call on, every page is empty and promises more, with a new cursor.
    pub empty_pages_from: Option<usize>,
    /// Page calls answered [`ExportError::CursorExpired`].
    pub expired_pages: BTreeSet<usize>,
    /// Ids the fetch does not return.
    pub missing: BTreeSet<String>,
    /// Batches (by their first id) whose fetch fails with a transient error (a broken
    /// connection), and how many more times.
    pub failing_batches: BTreeMap<String, usize>,
}

/// Which call a [`Scripted`] source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Page(usize),
    Fetch(usize),
}

/// Page calls after which the source answers a terminal error, so that a runner whose paging
/// guards are disabled ends (with another reason) instead of paging forever.
pub const MAX_PAGE_CALLS: usize = 100;

pub struct Scripted {
    ids: Vec<String>,
    page_size: usize,
    script: Mutex<Script>,
    gate: StepGate<Call>,
    pages: AtomicUsize,
    fetches: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Scripted {
    /// `items` items (`S-1` … `S-{items}`), `page_size` ids per page, nothing scripted.
    pub fn new(items: usize, page_size: usize) -> Scripted {
        Scripted {
            ids: (1..=items).map(|n| format!("S-{n}")).collect(),
            page_size: page_size.max(1),
            script: Mutex::new(Script::default()),
            gate: StepGate::default(),
            pages: AtomicUsize::new(0),
            fetches: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    pub fn with_script(self, script: Script) -> Scripted {
        *self.script.lock().unwrap_or_else(|p| p.into_inner()) = script;
        self
    }

    /// Fail the fetch of the batch that starts at `first_id` the next `times` times.
    pub fn fail_batch(&self, first_id: &str, times: usize) {
        let mut script = self.script.lock().unwrap_or_else(|p| p.into_inner());
        *script
            .failing_batches
            .entry(first_id.to_owned())
            .or_default() += times;
    }

    /// Every item id, in search order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Hold the invocation that makes `call`: it signals [`Scripted::held`] and never goes on.
    pub fn hold_at(&self, call: Call) {
        self.gate.arm(call);
    }

    /// Resolves once an invocation is held at the armed call.
    pub async fn held(&self) {
        self.gate.reached().await;
    }

    /// Page calls so far.
    pub fn page_calls(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }

    /// Fetch calls so far.
    pub fn fetch_calls(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The most fetches that were ever in flight at once.
    pub fn max_fetches_at_once(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn script(&self) -> Script {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn next_page(&self, call: usize, cursor: Option<&str>) -> Result<Page, ExportError> {
        let script = self.script();
        if call > MAX_PAGE_CALLS {
            return Err(ExportError::Terminal(
                "the scripted source ran out of pages".into(),
            ));
        }
        if script.expired_pages.contains(&call) {
            return Err(ExportError::CursorExpired);
        }
        if script.empty_pages_from.is_some_and(|from| call >= from) {
            return Ok(Page {
                ids: Vec::new(),
                next: Some(format!("empty-{call}")),
            });
        }
        let at = match cursor {
            None => 0,
            Some(c) => c
                .strip_prefix("at-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ExportError::Terminal("not a scripted cursor".into()))?,
        };
        let end = (at + self.page_size).min(self.ids.len());
        let mut next = (end < self.ids.len()).then(|| format!("at-{end}"));
        if script.repeat_cursor_from.is_some_and(|from| call >= from) {
            next = Some(format!("at-{}", self.page_size));
        }
        Ok(Page {
            ids: self.ids[at.min(end)..end].to_vec(),
            next,
        })
    }

    fn batch(&self, ids: &[String]) -> Result<Batch, ExportError> {
        let failing = {
            let mut script = self.script.lock().unwrap_or_else(|p| p.into_inner());
            let left = ids
                .first()
                .and_then(|first| script.failing_batches.get_mut(first))
                .filter(|left| **left > 0);
            left.map(|left| *left -= 1).is_some()
        };
        if failing {
            return Err(ExportError::Http(HttpError::Transport {
                endpoint: "scripted.fetch",
                kind: TransportKind::Broken,
            }));
        }
        let script = self.script();
        let mut batch = Batch::default();
        for id in ids {
            if script.missing.contains(id) {
                batch.skipped.push(Skipped {
                    id: id.clone(),
                    reason: MISSING_REASON.into(),
                });
            } else {
                batch.items.push(Item {
                    id: id.clone(),
                    doc: document(id),
                    attachments: Vec::new(),
                });
            }
        }
        Ok(batch)
    }
}

/// A small Jira-shaped issue, the same for an id every time it is fetched.
pub fn document(id: &str) -> Value {
    json!({
        "id": id,
        "key": id,
        "fields": { "summary": format!("scripted item {id}"), "comment": { "comments": [] } },
    })
}

/// Counts fetches in flight while it lives.
struct InFlight<'a>(&'a Scripted);

impl<'a> InFlight<'a> {
    fn start(s: &'a Scripted) -> InFlight<'a> {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Source for Scripted {
    fn effective_query(&self, query: &str, _since_minutes: Option<i64>) -> String {
        query.to_owned()
    }

    async fn page(
        &self,
        _ctx: &Ctx<'_>,
        _token: &Secret,
        _query: &str,
        cursor: Option<&str>,
    ) -> Result<Page, ExportError> {
        let call = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
        self.gate.pass(Call::Page(call)).await;
        self.next_page(call, cursor)
    }

    async fn fetch(
        &self,
        _ctx: &Ctx<'_>,
        _token: &Secret,
        ids: &[String],
        _all_comments: bool,
    ) -> Result<Batch, ExportError> {
        let call = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let _in_flight = InFlight::start(self);
        self.gate.pass(Call::Fetch(call)).await;
        // A yield, as a real call would: other work of the invocation runs meanwhile.
        tokio::task::yield_now().await;
        self.batch(ids)
    }

    /// Nothing to redact: the scripted documents hold no personal data.
    fn redact(_doc: &mut Value, _names: &mut NameBook) {}

    /// Large, so the exporter's `batch_size` alone decides the batches.
    const BATCH: usize = 1000;
    /// Not used by the runner; the scripted page size is the source's own.
    const PAGE_SIZE: usize = 100;
}

/// Both products read from the same script.
impl Sources for Scripted {
    type Jira = Scripted;
    type Confluence = Scripted;

    fn jira(&self) -> &Scripted {
        self
    }

    fn confluence(&self) -> &Scripted {
        self
    }
}
