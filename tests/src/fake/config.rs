//! How a fake Atlassian Cloud is set up: registered OAuth apps, sites and their seeded data,
//! token lifetimes, the random seed and where to listen.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::seed::SeedSpec;

/// The default Jira app's client id.
pub const JIRA_CLIENT_ID: &str = "fake-jira-client";
/// The default Jira app's client secret (distinctive, so scanners can look for it).
pub const JIRA_CLIENT_SECRET: &str = "fake-jira-secret-4f1d2b8e9c7a6053e1d4c2b7a9f08e61";
/// The default Confluence app's client id.
pub const CONFLUENCE_CLIENT_ID: &str = "fake-confluence-client";
/// The default Confluence app's client secret.
pub const CONFLUENCE_CLIENT_SECRET: &str =
    "fake-confluence-secret-9b3e7c1a5d2f8064b7e2a9c1d3f5e870";
/// The callback both default apps have registered.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:9000/callback";

/// A registered OAuth 2.0 (3LO) app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientApp {
    pub client_id: String,
    pub client_secret: String,
    /// Callback URLs; `redirect_uri` must equal one of them exactly.
    pub redirect_uris: Vec<String>,
}

impl ClientApp {
    pub fn new(client_id: &str, client_secret: &str, redirect_uris: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// One Atlassian site (cloud id) with a Jira and a Confluence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteSpec {
    pub cloud_id: String,
    pub name: String,
    /// The site's own URL, e.g. `https://fake-site-1.atlassian.net` (Confluence's `_links.base`
    /// points here, not at the gateway, as the real API does).
    pub url: String,
    pub seed: SeedSpec,
}

impl SiteSpec {
    /// Site number `n` (1-based) with a stable cloud id, name and URL.
    pub fn numbered(n: usize, seed: SeedSpec) -> Self {
        Self {
            cloud_id: format!("0c1d2e3f-4a5b-4c6d-8e7f-{n:012x}"),
            name: format!("fake-site-{n}"),
            url: format!("https://fake-site-{n}.atlassian.net"),
            seed,
        }
    }
}

/// Everything about one fake Atlassian Cloud.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub clients: Vec<ClientApp>,
    pub sites: Vec<SiteSpec>,
    /// Access-token lifetime (`expires_in`); default 3600 s ("access_token which expires after 1
    /// hour", community.developer.atlassian.com/t/60806/2; jira.js `OAuth2TokenResponse`:
    /// "Typically 3600").
    pub access_token_ttl: Duration,
    /// How long a rotated refresh token may still be used; default 10 minutes ("The leeway
    /// interval is 10 minutes", community.developer.atlassian.com/t/54172).
    pub rotation_leeway: Duration,
    /// Authorization-code lifetime; default 10 minutes (ASSUMPTION: RFC 6749 §4.1.2's
    /// recommended maximum; Atlassian documents none).
    pub code_ttl: Duration,
    /// A refresh token unused this long expires; default 90 days (t/54172).
    pub refresh_inactivity: Duration,
    /// A token family expires this long after consent; default 365 days (t/54172; counted from
    /// the consent, t/60806/2).
    pub refresh_absolute: Duration,
    /// A rotated refresh token's companion access token dies when the leeway ends; default true.
    pub revoke_companion_access_token: bool,
    /// How long a media-host download link stays valid; default 5 minutes. ASSUMPTION
    /// (undocumented): Atlassian does not state how long the signed URL in a download redirect's
    /// `Location` lives; our client follows the redirect at once (reqwest's redirect policy in
    /// `shared/src/atlassian/http.rs`), so any lifetime of minutes works.
    pub media_link_ttl: Duration,
    /// Seed for the data set and for probabilistic faults.
    pub seed: u64,
    /// The fake clock's start (seeded timestamps lie in the two years before it). `None` = now,
    /// rounded down to the minute.
    pub start_time: Option<OffsetDateTime>,
    /// Address both listeners bind to; default 127.0.0.1.
    pub bind: IpAddr,
    /// Port of the main listener (auth + API); 0 = any free port.
    pub port: u16,
    /// Port of the media listener; 0 = any free port.
    pub media_port: u16,
}

impl Default for FakeConfig {
    /// One Jira app and one Confluence app (ids, secrets and redirect URI in the constants of this
    /// module) and one site seeded with [`SeedSpec::small`].
    fn default() -> Self {
        Self {
            clients: vec![
                ClientApp::new(JIRA_CLIENT_ID, JIRA_CLIENT_SECRET, &[DEFAULT_REDIRECT_URI]),
                ClientApp::new(
                    CONFLUENCE_CLIENT_ID,
                    CONFLUENCE_CLIENT_SECRET,
                    &[DEFAULT_REDIRECT_URI],
                ),
            ],
            sites: vec![SiteSpec::numbered(1, SeedSpec::small())],
            access_token_ttl: Duration::from_secs(3600),
            rotation_leeway: Duration::from_secs(600),
            code_ttl: Duration::from_secs(600),
            refresh_inactivity: Duration::from_secs(90 * 86_400),
            refresh_absolute: Duration::from_secs(365 * 86_400),
            revoke_companion_access_token: true,
            media_link_ttl: Duration::from_secs(300),
            seed: 0x5EED_A71A_551A_0001,
            start_time: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            media_port: 0,
        }
    }
}

impl FakeConfig {
    /// Registers one more callback URL on every client.
    pub fn with_redirect_uri(mut self, uri: &str) -> Self {
        for c in &mut self.clients {
            if !c.redirect_uris.iter().any(|u| u == uri) {
                c.redirect_uris.push(uri.to_owned());
            }
        }
        self
    }

    /// `n` sites, all seeded with `seed` (each site's data differs, being derived from its number).
    pub fn with_sites(mut self, n: usize, seed: SeedSpec) -> Self {
        self.sites = (1..=n)
            .map(|i| SiteSpec::numbered(i, seed.clone()))
            .collect();
        self
    }

    /// Every site seeded with `seed`.
    pub fn with_seed_spec(mut self, seed: SeedSpec) -> Self {
        for s in &mut self.sites {
            s.seed = seed.clone();
        }
        self
    }
}
