//! The rest of the search, as a pipeline that keeps Atlassian busy: the fetch side
//! ([`super::fetches`]) asks for a page's batches a few at a time, in order, ahead of the
//! writes, with the next page's search beside them, and goes on into the next page without
//! waiting for this one's last items; the write side ([`super::flow`]) writes items with
//! bounded concurrency across batch and page boundaries and lands batches in page order.
//!
//! Saves are batched: a page's progress is saved when the next page is opened (one job write
//! per page, the page's state object in S3 written before it), and within a page only every
//! [`Exporter::checkpoint_every`]. A crash redoes what was not saved; item keys are
//! deterministic and unchanged items are not rewritten, so the redo ends with the same bucket
//! content.

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::Either;

use super::flow::{Flow, Landed, Writes};
use super::page::{guard_paging, open_page};
use super::*;

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
