//! Every request the fake received (admin calls excepted), with the status it answered, so
//! tests can assert on traffic: hits per path prefix, whether a bearer was sent, and so on.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Auth and API (the base URL).
    Main,
    /// The media host.
    Media,
}

/// One request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub origin: Origin,
    pub method: String,
    pub path: String,
    /// The raw (still encoded) query string, if any.
    pub query: Option<String>,
    pub had_authorization: bool,
    /// The status answered; `None` while in flight or when a fault dropped the connection.
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an arriving request and returns its slot for [`Recorder::finish`].
    pub(crate) fn begin(&self, request: RecordedRequest) -> usize {
        let mut all = self.lock();
        all.push(request);
        all.len() - 1
    }

    pub(crate) fn finish(&self, slot: usize, status: Option<u16>) {
        if let Some(r) = self.lock().get_mut(slot) {
            r.status = status;
        }
    }

    pub(crate) fn hits(&self, prefix: &str) -> usize {
        self.lock()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }
}
