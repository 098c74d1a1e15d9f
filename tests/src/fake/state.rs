//! The state every handler shares: clock, registered apps, grants, sites, faults, the request
//! log and media links.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use url::Url;

use super::clock::FakeClock;
use super::config::ClientApp;
use super::faults::FaultRules;
use super::grants::Grants;
use super::media::MediaLinks;
use super::quota::Quotas;
use super::recorder::Recorder;
use super::site::Site;
use super::users::Users;

#[derive(Debug)]
pub(crate) struct AppState {
    pub clock: FakeClock,
    pub base_url: Url,
    pub media_url: Url,
    pub clients: RwLock<Vec<ClientApp>>,
    pub grants: Mutex<Grants>,
    pub sites: Vec<Site>,
    pub users: Arc<Users>,
    pub faults: Mutex<FaultRules>,
    pub quotas: Mutex<Quotas>,
    pub recorder: Recorder,
    pub media: Mutex<MediaLinks>,
    pub media_link_ttl: Duration,
    pub holds: Mutex<Vec<Arc<super::hold::Hold>>>,
}

/// Locks a mutex, carrying on after a panic elsewhere poisoned it (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AppState {
    pub(crate) fn site(&self, cloud_id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.ctx.cloud_id == cloud_id)
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<ClientApp> {
        let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
        clients.iter().find(|c| c.client_id == client_id).cloned()
    }

    pub(crate) fn client_ids(&self) -> Vec<String> {
        let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
        clients.iter().map(|c| c.client_id.clone()).collect()
    }

    pub(crate) fn add_redirect_uri(&self, client_id: &str, uri: &str) -> bool {
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        match clients.iter_mut().find(|c| c.client_id == client_id) {
            Some(c) => {
                if !c.redirect_uris.iter().any(|u| u == uri) {
                    c.redirect_uris.push(uri.to_owned());
                }
                true
            }
            None => false,
        }
    }
}
