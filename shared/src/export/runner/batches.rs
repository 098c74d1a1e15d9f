//! The rest of the search, as a pipeline that keeps Atlassian busy: the fetch side asks for a
//! page's batches [`FETCHES_AHEAD`] at a time, in order, ahead of the writes, with the next
//! page's search beside them, and then goes on into the next page without waiting for this
//! one's last items; the write side ([`super::flow`]) writes items with bounded concurrency
//! across batch and page boundaries and lands batches in page order.
//!
//! Saves are batched: a page's progress is saved when the next page is opened (one job write
//! per page, the page's state object in S3 written before it), and within a page only every
//! [`Exporter::checkpoint_every`]. A crash redoes what was not saved; item keys are
//! deterministic and unchanged items are not rewritten, so the redo ends with the same bucket
//! content.

use std::collections::VecDeque;

use futures::channel::mpsc;
use futures::future::Either;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};

use super::flow::{Fetched, Flow, Landed, Writes};
use super::page::{guard_paging, open_page};
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
    /// Export the current page from `done_in_page` to its end, and the pages after it while the
    /// fetch side may go on into them (until the deadline). On [`Flow::Drained`] the last page
    /// is closed (its state object written); if the search has more, `ahead` holds what was
    /// fetched of the next page and the caller opens it.
    pub(super) async fn run_page<S: Source>(
        &self,
        source: &S,
        job: &mut Job,
        run: &Run<'_>,
        query: &str,
        ahead: &mut Ahead,
    ) -> Result<Flow, ExportError> {
        // What the fetches and writes read; `job` itself takes the progress as batches land.
        let frozen = job.clone();
        let (tx, rx) = mpsc::channel(0);
        let feed = self.feed(
            source,
            &frozen,
            run,
            query,
            std::mem::take(&mut ahead.batches),
            tx,
        );
        let write = async {
            let mut rx = rx;
            let mut last_save = Instant::now();
            let mut writes = Writes::new(self.item_concurrency);
            let write = |item| {
                let started = Instant::now();
                self.export_item::<S>(&frozen, run, item).inspect(move |r| {
                    if let Ok(r) = r {
                        tracing::debug!(
                            attachments = r.attachments,
                            bytes = r.bytes,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "item written"
                        );
                    }
                })
            };
            while let Some(landed) = writes.next(&mut rx, &write).await {
                self.land(job, run, landed, &mut last_save).await?;
            }
            writes.finish()
        };
        // Boxed: both are large futures (debug builds copy them on the stack otherwise).
        let (write, feed) = (Box::pin(write), Box::pin(feed));
        let (flow, got) = match futures::future::select(write, feed).await {
            Either::Left((flow, feed)) => (flow?, feed.await),
            Either::Right((got, write)) => (write.await?, got),
        };
        if !job.checkpoint.page_ids.is_empty() {
            // The fetch side stopped at the deadline before the page's end.
            return Ok(Flow::OutOfTime);
        }
        *ahead = got;
        Ok(flow)
    }

    /// The fetch side: the current page's batches from `done_in_page` on (the first ones from
    /// `ready` when fetched ahead for exactly their ids), with the next page's search beside
    /// them. Then, if the job may go on into that page here (see [`Exporter::may_cross`]), its
    /// start is sent and its batches follow, and so on; otherwise the next page's search and
    /// its first batches are returned for the caller.
    async fn feed<S: Source>(
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

    /// A batch landed: count it into the job's progress; at the page's end close the page;
    /// save when the page is the search's last, or when the last save is older than
    /// [`Exporter::checkpoint_every`]. Otherwise the page's end is saved when the next page is
    /// opened (its start lands next, or the caller opens it), and between saves only this
    /// process's knowledge of a site-wide wait is checked (no AWS request). A page's start
    /// opens it in the checkpoint.
    async fn land(
        &self,
        job: &mut Job,
        run: &Run<'_>,
        landed: Landed,
        last_save: &mut Instant,
    ) -> Result<(), ExportError> {
        let (owner, layout, cloud) = (run.owner, run.layout, run.ctx.cloud_id);
        if let Some(page) = landed.opens {
            // Every batch of the page before has landed and that page is closed: this one is
            // opened and saved as the caller opens a page (the page before's end with it).
            guard_paging(&mut job.checkpoint, &page)?;
            open_page(job, page.ids, page.next);
            self.checkpoint(job, owner, cloud).await?;
            *last_save = Instant::now();
            return Ok(());
        }
        let page_len = job.checkpoint.page_ids.len();
        let mut skipped = landed.skipped;
        let mut unchanged = 0u64;
        for r in landed.results {
            unchanged += u64::from(r.unchanged);
            job.items_done += 1;
            job.attachments_done += r.attachments;
            job.bytes_done += r.bytes;
            skipped.extend(r.skipped);
            job.checkpoint.page_texts.extend(r.texts);
        }
        job.skipped_count += skipped.len() as u64;
        for s in &skipped {
            if job.skipped.len() < SKIPPED_INLINE {
                job.skipped.push(s.clone());
            }
        }
        job.checkpoint.page_skipped.extend(skipped);
        job.checkpoint.done_in_page = landed.end;
        job.checkpoint.errors_in_a_row = 0;
        tracing::debug!(
            items = job.items_done,
            bytes = job.bytes_done,
            unchanged,
            "batch exported"
        );
        if landed.end >= page_len {
            let ids = std::mem::take(&mut job.checkpoint.page_ids);
            self.close_page(job, layout, &ids).await?;
            job.checkpoint.done_in_page = 0;
            job.checkpoint.page_skipped.clear();
            job.checkpoint.page_texts.clear();
            if !job.checkpoint.search_done {
                return Ok(());
            }
        } else if last_save.elapsed() < self.checkpoint_every {
            return match self.keeper.http.site_held_until(cloud.as_str()) {
                Some(until) => Err(site_waiting(until)),
                None => Ok(()),
            };
        }
        self.checkpoint(job, owner, cloud).await?;
        *last_save = Instant::now();
        self.step(PROGRESS_SAVED).await;
        Ok(())
    }
}

/// Whether the next page's ids are used as the search gives them: not after a restart or a
/// widening, when the ids this job exported already are filtered out first (by the caller).
fn first_of_next(job: &Job) -> bool {
    job.checkpoint.restarts == 0 && job.checkpoint.widened == 0
}
