//! The rest of the current page, as a pipeline that keeps Atlassian busy: the fetch side asks
//! for the page's batches [`FETCHES_AHEAD`] at a time, in order, ahead of the writes, then for
//! the next page's search and its first batch; the write side ([`super::flow`]) writes items with
//! bounded concurrency across batch boundaries and lands batches in page order.
//!
//! Saves are batched: the page's progress is saved when the next page's search is recorded
//! (one job write per page, the page's state object in S3 written before it), and within a
//! page only every [`Exporter::checkpoint_every`]. A crash redoes what was not saved; item
//! keys are deterministic and unchanged items are not rewritten, so the redo ends with the
//! same bucket content.

use std::collections::VecDeque;

use futures::channel::mpsc;
use futures::future::Either;
use futures::{FutureExt, SinkExt, StreamExt};

use super::flow::{Fetched, Flow, Landed, Writes};
use super::*;

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
    /// Export the current page from `done_in_page` to its end (or until the deadline). On
    /// [`Flow::Drained`] the page is closed (its state object written) and `ahead` holds what
    /// was fetched for the next page.
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
        let cp = &frozen.checkpoint;
        let page_len = cp.page_ids.len();
        let next = cp
            .next_page
            .as_deref()
            .filter(|_| !cp.search_done)
            .map(|cursor| (query, cursor));
        // After a search restart the next page's ids are filtered first: its first batch is
        // not known in advance.
        let first_of_next = cp.restarts == 0 && cp.widened == 0;
        let (tx, rx) = mpsc::channel(0);
        let feed = self.feed(
            source,
            &frozen,
            run,
            std::mem::take(&mut ahead.batches),
            next,
            first_of_next,
            tx,
        );
        let write = async {
            let mut rx = rx;
            let mut last_save = Instant::now();
            let mut writes = Writes::new(self.item_concurrency);
            let write = |item| self.export_item::<S>(&frozen, run, item);
            while let Some(landed) = writes.next(&mut rx, &write).await {
                self.land(job, run, landed, page_len, &mut last_save)
                    .await?;
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

    /// The fetch side: the page's batches from `done_in_page` on, [`FETCHES_AHEAD`] fetched at
    /// once and sent to the writes in order (the channel holds one), each taken from `ready`
    /// when fetched ahead for exactly its ids; then, if `next` (query, cursor), the next page's
    /// search and its first batches.
    #[allow(clippy::too_many_arguments)]
    async fn feed<S: Source>(
        &self,
        source: &S,
        job: &Job,
        run: &Run<'_>,
        mut ready: VecDeque<(Vec<String>, Result<Batch, ExportError>)>,
        next: Option<(&str, &str)>,
        first_of_next: bool,
        mut tx: mpsc::Sender<Result<Fetched, ExportError>>,
    ) -> Ahead {
        let (ctx, session, deadline) = (run.ctx, run.session, run.deadline);
        let all_comments = run.connector.options.all_comments;
        let batch_size = self.batch_size_for::<S>();
        let ids = &job.checkpoint.page_ids;
        let first = job.checkpoint.done_in_page.min(ids.len());
        // At least one batch, even an empty one: its landing closes the page.
        let starts = (first..ids.len().max(first + 1)).step_by(batch_size);
        // Asked before each fetch starts, so every fetched batch is written: the page stops
        // short (the writes end without closing it) and the continuation goes on from there.
        let in_time = move |at: &usize| {
            futures::future::ready(*at == first || Instant::now() + self.deadline_margin < deadline)
        };
        let mut fetches = futures::stream::iter(starts)
            .take_while(in_time)
            .map(|at| {
                let end = (at + batch_size).min(ids.len());
                let chunk = &ids[at..end];
                let fetched = match ready.pop_front() {
                    _ if chunk.is_empty() => {
                        Either::Left(futures::future::ready(Ok(Batch::default())))
                    }
                    Some((for_ids, fetched)) if for_ids == chunk => {
                        Either::Left(futures::future::ready(fetched))
                    }
                    _ => {
                        // Not fetched for these ids: nothing after it is either.
                        ready.clear();
                        Either::Right(self.fetch_batch(
                            source,
                            job,
                            ctx,
                            session,
                            chunk,
                            all_comments,
                        ))
                    }
                };
                fetched.map(move |fetched| fetched.map(|batch| Fetched { end, batch }))
            })
            .buffered(FETCHES_AHEAD);
        // The next page's search goes out with the page's first fetches, not after its last:
        // its cursor is known now, so at the page's end its ids are already here (one round
        // trip less on the chain at every page's end). Its answer is used only if the page
        // ends and the job then asks for exactly this page.
        let search = async move {
            let (query, cursor) = next?;
            let result = self
                .authed(job, session, |t| async move {
                    source.page(ctx, &t, query, Some(cursor)).await
                })
                .await;
            Some((query, cursor, result))
        };
        // Sends the page's batches; true when the page's last was sent. The channel closes
        // when this ends, so the writes finish the page while the search is still out.
        let send = async move {
            let mut sent_end = first;
            while let Some(fetched) = fetches.next().await {
                let failed = fetched.is_err();
                if let Ok(f) = &fetched {
                    sent_end = f.end;
                }
                // A closed channel: the writes stopped (deadline, failure); nothing more is
                // needed.
                if tx.send(fetched).await.is_err() || failed {
                    return false;
                }
            }
            // Short of the page's end: stopped at the deadline.
            sent_end >= ids.len()
        };
        let (page_sent, searched) = futures::join!(send, search);
        let (true, Some((query, cursor, result))) = (page_sent, searched) else {
            return Ahead::default();
        };
        let batches = match &result {
            Ok(page) if first_of_next => {
                let firsts = page.ids.chunks(batch_size).take(FETCHES_AHEAD);
                futures::future::join_all(firsts.map(|ids| async move {
                    let fetched = self
                        .fetch_batch(source, job, ctx, session, ids, all_comments)
                        .await;
                    (ids.to_vec(), fetched)
                }))
                .await
                .into()
            }
            _ => VecDeque::new(),
        };
        Ahead {
            page: Some(AheadPage {
                query: query.to_owned(),
                cursor: Some(cursor.to_owned()),
                result,
            }),
            batches,
        }
    }

    /// Items per batch: the exporter's setting, at most the product's own limit.
    pub(super) fn batch_size_for<S: Source>(&self) -> usize {
        S::BATCH.min(self.batch_size.max(1))
    }

    /// A batch landed: count it into the job's progress; at the page's end close the page;
    /// save when the page is the search's last, or when the last save is older than
    /// [`Exporter::checkpoint_every`]. Otherwise the page's end is saved with the next page's
    /// search (already fetched ahead), and between saves only this process's knowledge of a
    /// site-wide wait is checked (no AWS request).
    async fn land(
        &self,
        job: &mut Job,
        run: &Run<'_>,
        landed: Landed,
        page_len: usize,
        last_save: &mut Instant,
    ) -> Result<(), ExportError> {
        let (owner, layout, cloud) = (run.owner, run.layout, run.ctx.cloud_id);
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
