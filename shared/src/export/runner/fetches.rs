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
    /// `ready` when fetched ahead for exactly their ids), with the next page's search beside
    /// them. Then, if the job may go on into that page here (see [`Exporter::may_cross`]), its
    /// start is sent and its batches follow, and so on; otherwise the next page's search and
    /// its first batches are returned for the caller.
    pub(super) async fn feed<S: Source>(
        &self,
        source: &S,
        job: &Job,
        run: &Run<'_>,
        query: &str,
        mut ready: VecDeque<(Vec<String>, Result<Batch, ExportError>)>,
        mut tx: mpsc::Sender<Result<Fetched, ExportError>>,
    ) -> Ahead {
        let (ctx, session) = (run.ctx, run.session);
        let all_comments = run.connector.options.all_comments;
        let cp = &job.checkpoint;
        let (mut ids, mut first) = (cp.page_ids.clone(), cp.done_in_page);
        let mut next = cp.next_page.clone().filter(|_| !cp.search_done);
        // The paging guard's view of the pages crossed into, as `land` will see them.
        let mut guard = cp.clone();
        // The page crossed into, sent ahead of its batches.
        let mut opens = None;
        loop {
            // The next page's search goes out with the page's first fetches, not after its
            // last: its cursor is known now, so at the page's end its ids are already here
            // (one round trip less on the chain at every page's end).
            let search = async {
                let cursor = next.as_deref()?;
                let result = self
                    .authed(job, session, |t| async move {
                        source.page(ctx, &t, query, Some(cursor)).await
                    })
                    .await;
                Some(result)
            };
            let send = self.send_page(source, job, run, opens.take(), &ids, first, ready, &mut tx);
            let (page_sent, searched) = futures::join!(send, search);
            let (true, Some(cursor), Some(result)) = (page_sent, next.take(), searched) else {
                return Ahead::default();
            };
            let page = match result {
                Ok(page) if self.may_cross(job, run, &mut guard, &page) => page,
                result => {
                    // Not when the caller is about to stop for the deadline.
                    let in_time = Instant::now() + self.deadline_margin < run.deadline;
                    let batches = match &result {
                        Ok(page) if first_of_next(job) && in_time => {
                            self.fetch_ahead(source, job, run, &page.ids, all_comments)
                                .await
                        }
                        _ => VecDeque::new(),
                    };
                    return Ahead {
                        page: Some(AheadPage {
                            query: query.to_owned(),
                            cursor: Some(cursor),
                            result,
                        }),
                        batches,
                    };
                }
            };
            (ids, first, next, ready) = (page.ids.clone(), 0, page.next.clone(), VecDeque::new());
            opens = Some(page);
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

    /// Sends the batches of one page (`ids` from `first` on) to the writes, [`FETCHES_AHEAD`]
    /// fetched at once, in order, after the page's start when it `opens` (its fetches go out
    /// while the writes have yet to take it); true when the page's last was sent. Stops early at the
    /// deadline (asked before each fetch starts, so every fetched batch is written), at a
    /// failed fetch (sent on, for the writes to end with) or when the writes stopped.
    #[allow(clippy::too_many_arguments)]
    async fn send_page<S: Source>(
        &self,
        source: &S,
        job: &Job,
        run: &Run<'_>,
        opens: Option<Page>,
        ids: &[String],
        first: usize,
        mut ready: VecDeque<(Vec<String>, Result<Batch, ExportError>)>,
        tx: &mut mpsc::Sender<Result<Fetched, ExportError>>,
    ) -> bool {
        let (ctx, session, deadline) = (run.ctx, run.session, run.deadline);
        let all_comments = run.connector.options.all_comments;
        let batch_size = self.batch_size_for::<S>();
        let first = first.min(ids.len());
        // At least one batch, even an empty one: its landing closes the page.
        let starts = (first..ids.len().max(first + 1)).step_by(batch_size);
        let in_time = |at: &usize| *at == first || Instant::now() + self.deadline_margin < deadline;
        let mut to_fetch = starts.take_while(in_time).map(|at| {
            let end = (at + batch_size).min(ids.len());
            let chunk = &ids[at..end];
            let fetched = match ready.pop_front() {
                _ if chunk.is_empty() => Either::Left(futures::future::ready(Ok(Batch::default()))),
                Some((for_ids, fetched)) if for_ids == chunk => {
                    Either::Left(futures::future::ready(fetched))
                }
                _ => {
                    // Not fetched for these ids: nothing after it is either.
                    ready.clear();
                    Either::Right(self.fetch_batch(source, job, ctx, session, chunk, all_comments))
                }
            };
            fetched.map(move |fetched| {
                fetched.map(|batch| Fetched {
                    end,
                    batch,
                    opens: None,
                })
            })
        });
        // The fetches under way are polled all the time, also while a fetched batch waits for
        // the writes to take it. A fetch left unpolled keeps what it holds: its site slot,
        // until its answer is read. With few slots per site, the downloads of the items being
        // written would then wait on it while it waits on them.
        let mut fetching = FuturesOrdered::new();
        let mut fetched: VecDeque<Result<Fetched, ExportError>> = VecDeque::new();
        if let Some(page) = opens {
            let batch = Batch::default();
            fetched.push_back(Ok(Fetched {
                end: first,
                batch,
                opens: Some(page),
            }));
        }
        let mut sent_end = first;
        loop {
            while fetching.len() < FETCHES_AHEAD
                && fetching.len() + fetched.len() <= FETCHES_AHEAD
                && let Some(fetch) = to_fetch.next()
            {
                fetching.push_back(fetch);
            }
            if fetching.is_empty() && fetched.is_empty() {
                break;
            }
            tokio::select! {
                ready = futures::future::poll_fn(|cx| tx.poll_ready(cx)), if !fetched.is_empty() => {
                    let Some(batch) = fetched.pop_front() else { continue };
                    let failed = batch.is_err();
                    if let Ok(f) = &batch {
                        sent_end = f.end;
                    }
                    // A closed channel: the writes stopped (deadline, failure); nothing more is
                    // needed.
                    if ready.is_err() || tx.start_send(batch).is_err() || failed {
                        return false;
                    }
                }
                Some(batch) = fetching.next(), if !fetching.is_empty() => fetched.push_back(batch),
            }
        }
        // Short of the page's end: stopped at the deadline.
        sent_end >= ids.len()
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
