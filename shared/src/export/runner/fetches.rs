//! The fetch side of the export pipeline ([`super::batches`]): a page's batches fetched
//! [`FETCHES_AHEAD`] at a time and sent to the writes in order, the next page's search beside
//! them, and the crossing into the next page when the job needs nothing between pages.

use std::collections::VecDeque;

use futures::channel::mpsc;
use futures::future::Either;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};

use super::flow::Fetched;
use super::page::guard_paging;
use super::*;
use crate::export::source::Page;

/// What the fetch side got ahead of the writes: the next page's search, and that page's first
/// [`FETCHES_AHEAD`] batches (so the next page's writes start as fast as a page's middle ones).
/// Used only if the job then asks for exactly these (same query and cursor, same ids, in
/// order); dropped otherwise.
#[derive(Default)]
pub(super) struct Ahead {
    pub(super) page: Option<AheadPage>,
    pub(super) batches: VecDeque<(Vec<String>, Result<Batch, ExportError>)>,
}

pub(super) struct AheadPage {
    pub(super) query: String,
    pub(super) cursor: Option<String>,
    pub(super) result: Result<crate::export::source::Page, ExportError>,
}

impl Ahead {
    /// The search result for `query` at `cursor`, if it was fetched ahead.
    pub(super) fn take_page(
        &mut self,
        query: &str,
        cursor: Option<&str>,
    ) -> Option<Result<crate::export::source::Page, ExportError>> {
        match self.page.take() {
            Some(p) if p.query == query && p.cursor.as_deref() == cursor => Some(p.result),
            _ => None,
        }
    }
}

/// Batches the fetch side fetches at once, in page order (each a bulk fetch and its comment
/// pages). Their requests queue for the site's slots behind the attachment downloads of the
/// items being written (the slots are first come, first served), so one batch's fetch takes
/// several round trips: with too few under way the writes run dry (`make bench`: 2 left the
/// Jira export waiting on its fetches). With the one in the channel and the ones being
/// written, at most this many + 2 batches of documents are in memory (a few MiB each).
const FETCHES_AHEAD: usize = 4;

impl<P: Sources> Exporter<P> {
    /// The fetch side: the current page's batches from `done_in_page` on (the first ones from
    /// `ready` when fetched ahead for exactly their ids), [`FETCHES_AHEAD`] fetched at once and
    /// sent to the writes in order, with the next page's search beside them. When the page's
    /// fetches have all been answered and so has the search, if the job may go on into that page
    /// here (see [`Exporter::may_cross`]) its start is queued behind the page's last batch and
    /// its fetches go out while the page's last batches wait for the writes, and so
    /// on; otherwise the next page's search and its first batches are returned for the caller.
    ///
    /// Stops early at the deadline (asked before each fetch starts, so every fetched batch is
    /// written), at a failed fetch (sent on, for the writes to end with) or when the writes
    /// stopped.
    pub(super) async fn feed<S: Source>(
        &self,
        source: &S,
        job: &Job,
        run: &Run<'_>,
        query: &str,
        mut ready: VecDeque<(Vec<String>, Result<Batch, ExportError>)>,
        mut tx: mpsc::Sender<Result<Fetched, ExportError>>,
    ) -> Ahead {
        let (ctx, session, deadline) = (run.ctx, run.session, run.deadline);
        let all_comments = run.connector.options.all_comments;
        let cp = &job.checkpoint;
        let batch_size = self.batch_size_for::<S>();
        let mut page = PageFetch::new(cp.page_ids.clone(), cp.done_in_page, batch_size);
        // The paging guard's view of the pages crossed into, as `land` will see them.
        let mut guard = cp.clone();
        // The next page's search goes out with the page's first fetches, not after its last:
        // its cursor is known now, so at the page's end its ids are already here (one round
        // trip less on the chain at every page's end).
        let search = |cursor: String| {
            async move {
                let result = self
                    .authed(job, session, |t| {
                        let cursor = cursor.clone();
                        async move { source.page(ctx, &t, query, Some(&cursor)).await }
                    })
                    .await;
                (cursor, result)
            }
            .boxed()
        };
        let mut searching = cp.next_page.clone().filter(|_| !cp.search_done).map(search);
        let mut searched = None;
        // Fetches under way, in order, and fetched batches waiting for the writes. The fetches
        // are polled all the time, also while a fetched batch waits to be taken: a fetch left
        // unpolled keeps what it holds (its site slot, until its answer is read), and with few
        // slots per site the downloads of the items being written would wait on it while it
        // waits on them.
        let mut fetching = FuturesOrdered::new();
        let mut fetched: VecDeque<Result<Fetched, ExportError>> = VecDeque::new();
        // The search answer the caller gets, when the fetch side does not go on into its page.
        let mut for_caller = None;
        loop {
            while fetching.len() < FETCHES_AHEAD
                && fetching.len() + fetched.len() <= FETCHES_AHEAD
                && let Some((end, chunk)) =
                    page.next_chunk(|| Instant::now() + self.deadline_margin < deadline)
            {
                let fetch = match ready.pop_front() {
                    _ if chunk.is_empty() => {
                        Either::Left(futures::future::ready(Ok(Batch::default())))
                    }
                    Some((for_ids, fetched)) if for_ids == chunk => {
                        Either::Left(futures::future::ready(fetched))
                    }
                    _ => {
                        // Not fetched for these ids: nothing after it is either.
                        ready.clear();
                        Either::Right(async move {
                            self.fetch_batch(source, job, ctx, session, &chunk, all_comments)
                                .await
                        })
                    }
                };
                fetching.push_back(
                    fetch
                        .map(move |f| {
                            f.map(|batch| Fetched {
                                end,
                                batch,
                                opens: None,
                            })
                        })
                        .boxed(),
                );
            }
            // The page's fetches have all been answered, none failed, and the next page's ids
            // are here. Not sooner: a fetch of the next page sent while one of this page's is
            // still out could be answered with the same quota 429 (Atlassian answers a call
            // made before the Retry-After "with the same or longer" one), and a failed fetch
            // ends the invocation anyway.
            if page.all_started()
                && fetching.is_empty()
                && fetched.iter().all(Result::is_ok)
                && let Some((cursor, result)) = searched.take()
            {
                match result {
                    Ok(next) if self.may_cross(job, run, &mut guard, &next) => {
                        searching = next.next.clone().map(search);
                        page = PageFetch::new(next.ids.clone(), 0, batch_size);
                        ready.clear();
                        // Its start lands right after the last batch of the page before.
                        let start = Fetched {
                            end: 0,
                            batch: Batch::default(),
                            opens: Some(next),
                        };
                        fetching.push_back(futures::future::ready(Ok(start)).boxed());
                        continue;
                    }
                    result => for_caller = Some((cursor, result)),
                }
            }
            let waiting_search = searching.is_some() && page.all_started();
            if fetching.is_empty() && fetched.is_empty() && !waiting_search {
                break;
            }
            tokio::select! {
                ready = futures::future::poll_fn(|cx| tx.poll_ready(cx)), if !fetched.is_empty() => {
                    let Some(batch) = fetched.pop_front() else { continue };
                    let failed = batch.is_err();
                    // A closed channel: the writes stopped (deadline, failure); nothing more is
                    // needed.
                    if ready.is_err() || tx.start_send(batch).is_err() || failed {
                        return Ahead::default();
                    }
                }
                Some(batch) = fetching.next(), if !fetching.is_empty() => fetched.push_back(batch),
                answer = async { Some(searching.as_mut()?.await) }, if searching.is_some() => {
                    searching = None;
                    searched = answer;
                }
            }
        }
        // Short of the page's end (stopped at the deadline), or the search's last page: the
        // caller stops or completes.
        let (true, Some((cursor, result))) = (page.all_started() && !page.short, for_caller) else {
            return Ahead::default();
        };
        // Not when the caller is about to stop for the deadline.
        let in_time = Instant::now() + self.deadline_margin < deadline;
        let batches = match &result {
            Ok(next) if first_of_next(job) && in_time => {
                self.fetch_ahead(source, job, run, &next.ids, all_comments)
                    .await
            }
            _ => VecDeque::new(),
        };
        Ahead {
            page: Some(AheadPage {
                query: query.to_owned(),
                cursor: Some(cursor),
                result,
            }),
            batches,
        }
    }

    /// Whether the fetch side goes on into the search's next `page` without the caller: only
    /// when the page needs none of what the caller does between pages (no ids to filter after
    /// a restart, no wider slack due, the paging guard passes: `guard` takes the page as the
    /// checkpoint will) and there is time left to start it.
    fn may_cross(
        &self,
        job: &Job,
        run: &Run<'_>,
        guard: &mut crate::store::jobs::Checkpoint,
        page: &Page,
    ) -> bool {
        first_of_next(job)
            && Instant::now() + self.deadline_margin < run.deadline
            && self.slack_outlived(job).is_none()
            && guard_paging(guard, page).is_ok()
    }

    /// The first [`FETCHES_AHEAD`] batches of a page the caller will open.
    async fn fetch_ahead<S: Source>(
        &self,
        source: &S,
        job: &Job,
        run: &Run<'_>,
        ids: &[String],
        all_comments: bool,
    ) -> VecDeque<(Vec<String>, Result<Batch, ExportError>)> {
        let firsts = ids.chunks(self.batch_size_for::<S>()).take(FETCHES_AHEAD);
        futures::future::join_all(firsts.map(|ids| async move {
            let fetched = self
                .fetch_batch(source, job, run.ctx, run.session, ids, all_comments)
                .await;
            (ids.to_vec(), fetched)
        }))
        .await
        .into()
    }

    /// Items per batch: the exporter's setting, at most the product's own limit.
    pub(super) fn batch_size_for<S: Source>(&self) -> usize {
        S::BATCH.min(self.batch_size.max(1))
    }
}

/// Whether the next page's ids are used as the search gives them: not after a restart or a
/// widening, when the ids this job exported already are filtered out first (by the caller).
fn first_of_next(job: &Job) -> bool {
    job.checkpoint.restarts == 0 && job.checkpoint.widened == 0
}

/// The batches of one search page still to fetch: `ids` from `first` on, in chunks of `batch`
/// (at least one, even an empty one: its landing closes the page).
struct PageFetch {
    ids: Vec<String>,
    at: usize,
    first: usize,
    batch: usize,
    started: bool,
    /// Stopped before the page's end, at the deadline.
    short: bool,
}

impl PageFetch {
    fn new(ids: Vec<String>, first: usize, batch: usize) -> Self {
        let first = first.min(ids.len());
        PageFetch {
            ids,
            at: first,
            first,
            batch,
            started: false,
            short: false,
        }
    }

    /// The next chunk's end and ids; none when the page's fetches have all started, or when
    /// not `in_time` (asked before every chunk but the page's first).
    fn next_chunk(&mut self, in_time: impl FnOnce() -> bool) -> Option<(usize, Vec<String>)> {
        if self.all_started() || self.short {
            return None;
        }
        if self.at != self.first && !in_time() {
            self.short = true;
            return None;
        }
        let end = (self.at + self.batch).min(self.ids.len());
        let chunk = self.ids[self.at..end].to_vec();
        (self.at, self.started) = (end, true);
        Some((end, chunk))
    }

    /// Whether every chunk of the page has been handed out.
    fn all_started(&self) -> bool {
        self.started && self.at >= self.ids.len()
    }
}
