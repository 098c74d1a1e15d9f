//! The write side of a page: the items of consecutive batches written with at most `bound` in
//! flight (across batch boundaries, so one slow item never idles the other slots), while the
//! fetch side (`page.rs`) keeps Atlassian busy with the next batch, the next page's search and
//! its first batch.
//!
//! A batch *lands* when every one of its items has been written and every batch before it has
//! landed: landings are reported in page order, so the checkpoint (`done_in_page`) only ever
//! moves over items that are all in S3. The batches may span several search pages: a page's
//! start is an empty batch that lands after the last of the page before, and the next page's
//! items are written while that page's last ones finish. A crash redoes the batches after the last saved
//! landing; their keys are deterministic, so the redo writes the same objects.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::{Join, Ready, join, ready};
use futures::stream::FuturesUnordered;

use super::ExportError;
use super::item::ItemResult;
use crate::export::source::{Batch, Item, Page};
use crate::store::jobs::Skipped;

/// A fetched batch of a page, ending at index `end` of the page's ids; or, with `opens`, the
/// start of the next page (no items: it lands right after the last batch of the page before).
pub(super) struct Fetched {
    pub(super) end: usize,
    pub(super) batch: Batch,
    pub(super) opens: Option<Page>,
}

/// A batch whose items are all written (and every batch before it).
pub(super) struct Landed {
    /// The page index after the batch's last id: the new `done_in_page`.
    pub(super) end: usize,
    pub(super) results: Vec<ItemResult>,
    /// Ids the fetch could not return.
    pub(super) skipped: Vec<Skipped>,
    /// The search page that starts here (every batch of the page before it has landed).
    pub(super) opens: Option<Page>,
}

/// How the write side ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Every batch sent was written and landed.
    Drained,
    /// The deadline came: the fetch side stopped before the page's end; what was fetched
    /// landed (or not, and is redone by the continuation).
    OutOfTime,
}

/// A batch being written.
struct Open {
    end: usize,
    /// Items not yet written.
    pending: usize,
    results: Vec<ItemResult>,
    skipped: Vec<Skipped>,
    opens: Option<Page>,
}

/// The write side of one page: items of the batches received on a channel, written at most
/// `bound` at once; [`Writes::next`] yields each landed batch in page order (the caller saves
/// progress), [`Writes::finish`] says how it ended.
///
/// A batch is taken only when every item received before it has started (the fetch side asks
/// about the deadline before each fetch, so a fetched batch is always written). A failed fetch or write stops the feeding; the writes in flight finish
/// (no upload is cut off for nothing), the batches before the failure land, then `finish`
/// returns the error.
pub(super) struct Writes<Fut: Future> {
    bound: usize,
    in_flight: FuturesUnordered<Join<Ready<usize>, Fut>>,
    /// Items received and not yet started, tagged with their batch's sequence number.
    queued: VecDeque<(usize, Item)>,
    /// Batches received and not yet landed, in page order; `open[0]` has number `first`.
    open: VecDeque<Open>,
    first: usize,
    received: usize,
    feeding: bool,
    failure: Option<ExportError>,
}

impl<Fut> Writes<Fut>
where
    Fut: Future<Output = Result<ItemResult, ExportError>>,
{
    pub(super) fn new(bound: usize) -> Writes<Fut> {
        Writes {
            bound: bound.max(1),
            in_flight: FuturesUnordered::new(),
            queued: VecDeque::new(),
            open: VecDeque::new(),
            first: 0,
            received: 0,
            feeding: true,
            failure: None,
        }
    }

    /// Write on until the next batch lands (`Some`) or nothing is left to write (`None`).
    pub(super) async fn next(
        &mut self,
        batches: &mut mpsc::Receiver<Result<Fetched, ExportError>>,
        write: &impl Fn(Item) -> Fut,
    ) -> Option<Landed> {
        loop {
            while self.in_flight.len() < self.bound
                && let Some((seq, item)) = self.queued.pop_front()
            {
                self.in_flight.push(join(ready(seq), write(item)));
            }
            if self.open.front().is_some_and(|b| b.pending == 0)
                && let Some(b) = self.open.pop_front()
            {
                self.first += 1;
                return Some(Landed {
                    end: b.end,
                    results: b.results,
                    skipped: b.skipped,
                    opens: b.opens,
                });
            }
            let take_batch = self.feeding && self.failure.is_none() && self.queued.is_empty();
            if !take_batch && self.in_flight.is_empty() {
                return None;
            }
            tokio::select! {
                Some((seq, written)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    match written {
                        Ok(result) => {
                            if let Some(b) = self.open.get_mut(seq - self.first) {
                                b.pending -= 1;
                                b.results.push(result);
                            }
                        }
                        Err(e) => {
                            self.failure.get_or_insert(e);
                            self.queued.clear();
                        }
                    }
                }
                next = batches.next(), if take_batch => match next {
                    None => self.feeding = false,
                    Some(Err(e)) => self.failure = Some(e),
                    Some(Ok(f)) => {
                        let seq = self.received;
                        self.received += 1;
                        self.open.push_back(Open {
                            end: f.end,
                            pending: f.batch.items.len(),
                            results: Vec::with_capacity(f.batch.items.len()),
                            skipped: f.batch.skipped,
                            opens: f.opens,
                        });
                        self.queued
                            .extend(f.batch.items.into_iter().map(|item| (seq, item)));
                    }
                },
                else => return None,
            }
        }
    }

    /// How the writes ended, once [`Writes::next`] returned `None`.
    pub(super) fn finish(self) -> Result<Flow, ExportError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(Flow::Drained),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    fn batch(end: usize, ids: std::ops::Range<usize>) -> Result<Fetched, ExportError> {
        Ok(Fetched {
            end,
            batch: Batch {
                items: ids
                    .map(|n| Item {
                        id: n.to_string(),
                        doc: serde_json::Value::Null,
                        attachments: Vec::new(),
                    })
                    .collect(),
                skipped: Vec::new(),
            },
            opens: None,
        })
    }

    /// Batches of these sizes, all sent up front.
    fn channel(sizes: &[usize]) -> mpsc::Receiver<Result<Fetched, ExportError>> {
        let (mut tx, rx) = mpsc::channel(sizes.len());
        let mut at = 0;
        for size in sizes {
            tx.try_send(batch(at + size, at..at + size))
                .unwrap_or_else(|e| panic!("{e}"));
            at += size;
        }
        rx
    }

    /// A fake write that counts the writes in flight and keeps each one pending for a few
    /// polls (more for some ids: they finish out of order).
    struct Counter {
        now: Cell<usize>,
        most: Cell<usize>,
        written: RefCell<Vec<String>>,
    }

    impl Counter {
        fn new() -> Counter {
            Counter {
                now: Cell::new(0),
                most: Cell::new(0),
                written: RefCell::new(Vec::new()),
            }
        }

        async fn write(&self, item: Item, fail: Option<&str>) -> Result<ItemResult, ExportError> {
            self.now.set(self.now.get() + 1);
            self.most.set(self.most.get().max(self.now.get()));
            let polls = item.id.parse::<usize>().unwrap_or(0) % 5 + 1;
            for _ in 0..polls {
                tokio::task::yield_now().await;
            }
            self.now.set(self.now.get() - 1);
            if fail == Some(item.id.as_str()) {
                return Err(ExportError::Terminal("write failed".into()));
            }
            self.written.borrow_mut().push(item.id);
            Ok(ItemResult::default())
        }
    }

    async fn run(
        sizes: &[usize],
        bound: usize,
        fail: Option<&str>,
    ) -> (Counter, Vec<usize>, Result<Flow, ExportError>) {
        let counter = Counter::new();
        let mut ends = Vec::new();
        let mut batches = channel(sizes);
        let write = |item| counter.write(item, fail);
        let mut writes = Writes::new(bound);
        while let Some(l) = writes.next(&mut batches, &write).await {
            let before = ends.last().copied().unwrap_or(0);
            assert_eq!(l.results.len() + l.skipped.len(), l.end - before);
            ends.push(l.end);
        }
        let flow = writes.finish();
        (counter, ends, flow)
    }

    #[tokio::test]
    async fn never_more_than_the_bound_in_flight_and_the_bound_is_reached_across_batches() {
        // Batches of 5 with a bound of 8: 8 at once only if the next batch starts before the
        // previous one has finished.
        let sizes = [5, 5, 5, 5, 5, 5];
        let (counter, ends, flow) = run(&sizes, 8, None).await;
        assert_eq!(flow.ok(), Some(Flow::Drained));
        assert_eq!(
            counter.most.get(),
            8,
            "the bound is used, across batch boundaries"
        );
        assert_eq!(ends, [5, 10, 15, 20, 25, 30], "landed in page order");
        let mut written = counter.written.take();
        assert_eq!(written.len(), 30, "every item written once");
        written.sort_unstable_by_key(|id| id.parse::<usize>().unwrap_or(usize::MAX));
        written.dedup();
        assert_eq!(written.len(), 30);
    }

    #[tokio::test]
    async fn uneven_batches_and_small_bounds_stay_within_the_bound() {
        for bound in [1, 2, 3, 7] {
            let (counter, ends, flow) = run(&[9, 0, 1, 13, 4], bound, None).await;
            assert_eq!(flow.ok(), Some(Flow::Drained));
            assert_eq!(counter.most.get(), bound, "bound {bound}");
            assert_eq!(ends, [9, 9, 10, 23, 27]);
            assert_eq!(counter.written.borrow().len(), 27);
        }
    }

    #[tokio::test]
    async fn a_failed_write_lands_only_the_batches_before_it() {
        // Item 12 is in the third batch (10..15).
        let (counter, ends, flow) = run(&[5, 5, 5, 5], 3, Some("12")).await;
        assert!(matches!(flow, Err(ExportError::Terminal(_))), "{flow:?}");
        assert_eq!(ends, [5, 10]);
        assert_eq!(counter.now.get(), 0, "the writes in flight finished");
        assert!(counter.most.get() <= 3);
    }
}
