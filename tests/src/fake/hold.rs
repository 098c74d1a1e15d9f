//! Holding a request (a test seam, not an Atlassian behaviour): the first request under a
//! held path prefix waits, before it is answered, until the test releases it. A download that
//! stalls exactly where a test needs it (an erase while an export waits on an attachment)
//! without racing a sleep. It models only what any network can do: take long to answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, watch};

/// One hold: catches the first matching request.
#[derive(Debug)]
pub struct Hold {
    prefix: String,
    caught: AtomicBool,
    reached: Notify,
    release: watch::Sender<bool>,
}

impl Hold {
    pub(crate) fn new(prefix: &str) -> Arc<Hold> {
        Arc::new(Hold {
            prefix: prefix.to_owned(),
            caught: AtomicBool::new(false),
            reached: Notify::new(),
            release: watch::channel(false).0,
        })
    }

    /// Resolves once a request is held here.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Let the held request (and any later one) through.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    /// Whether this hold takes the request for `path` (the first match only).
    pub(crate) fn catches(&self, path: &str) -> bool {
        path.starts_with(&self.prefix)
            && self
                .caught
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Wait until released (at once if it already was).
    pub(crate) async fn wait(&self) {
        let mut released = self.release.subscribe();
        self.reached.notify_one();
        // An error means the sender is gone, i.e. the fake is shutting down: go on.
        let _ = released.wait_for(|r| *r).await;
    }
}
