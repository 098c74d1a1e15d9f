//! Work taken off the task that asked for it. An export invocation is one task: its fetches,
//! item writes and checkpoints are futures polled together on one thread, so everything they
//! compute there is serial. CPU work (decoding large JSON answers; an item's redaction,
//! rendering, serializing and hashing) runs on the blocking pool, one job per core, and an
//! item's S3 requests (signing, the SDK's orchestration) on the runtime's workers; the task
//! only coordinates. (A Lambda function with more than one vCPU, 1,769 MB and up, and the
//! benchmark's two cores use them all.)

use std::sync::LazyLock;

use tokio::sync::Semaphore;

/// CPU work at once: one per core. More would only add threads (each with its allocator's
/// memory) without finishing sooner.
static CPU_SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
});

/// Run `f` on the blocking pool, at most one such task per core at once. A panic in it is a
/// panic here, as if it had run inline.
///
/// The slot is waited for on a task of its own and given back by the work itself, never by
/// the future that asked: that future may not be polled again for a long time (a batch fetch
/// whose answer was parsed waits, unpolled, while the fetch side blocks on handing the batch
/// before it to the writes; an invocation frozen at a test's gate), and a slot it held until
/// then would starve every other user of the pool. Two such fetches held both slots of a
/// 2-core machine while the writes they waited on needed one: a deadlock (seen in the
/// integration suite, where the slots are shared by every test in the process).
pub(crate) async fn cpu<T, F>(f: F) -> Result<T, RuntimeGone>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // On a worker, so dropping this future stops the wait for a slot; work already on the
    // pool finishes.
    on_worker(async move {
        let slot = CPU_SLOTS.acquire().await.map_err(|_| RuntimeGone)?;
        let done = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f()
        });
        match done.await {
            Ok(out) => Ok(out),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(RuntimeGone),
        }
    })
    .await?
}

/// Run `f` on a runtime worker; dropping the returned future aborts it, so nothing it does
/// outlives what asked for it (an export invocation that stops, or is stopped, leaves no
/// request running behind it: see export/runner/erased.rs).
pub(crate) async fn on_worker<T, F>(f: F) -> Result<T, RuntimeGone>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut task = AbortOnDrop(tokio::spawn(f));
    match (&mut task.0).await {
        Ok(out) => Ok(out),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(RuntimeGone),
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime shut down before the work finished (its task was cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RuntimeGone;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn dropping_a_worker_future_stops_its_task() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let pending = on_worker(async move {
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
            flag.store(true, Ordering::SeqCst);
        });
        let waiting = tokio::spawn(pending);
        let _ = started_rx.await;
        waiting.abort();
        let _ = waiting.await;
        // The aborted task's future was dropped: a weak count shows nothing holds the flag.
        for _ in 0..1000 {
            if Arc::strong_count(&finished) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            Arc::strong_count(&finished),
            1,
            "the worker task was dropped"
        );
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slot_comes_back_when_its_work_ends_even_if_the_asker_is_never_polled_again() {
        // Every slot taken by work that ends at once, each asked for by a future polled once
        // and then left alone (not dropped). A slot held by its asker until polled again would
        // leave none for the last call, which would then never end.
        let slots = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut frozen = Vec::new();
        for n in 0..slots {
            let mut ask = Box::pin(cpu(move || n));
            assert!(futures::poll!(&mut ask).is_pending());
            frozen.push(ask);
        }
        // Only a guard against a hang: a pass never waits on it.
        let last = tokio::time::timeout(std::time::Duration::from_secs(60), cpu(|| 7)).await;
        assert_eq!(
            last.ok().and_then(Result::ok),
            Some(7),
            "a slot stayed with an asker that was not polled"
        );
        drop(frozen);
    }

    #[tokio::test]
    async fn results_come_back() {
        assert_eq!(cpu(|| 2 + 2).await.ok(), Some(4));
        assert_eq!(on_worker(async { 5 }).await.ok(), Some(5));
    }
}
