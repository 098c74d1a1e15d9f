//! Where the Atlassian client may go (issue 16): the configured Atlassian URLs, and redirects
//! only to Atlassian's hosts over https. Redirects are followed here, not by reqwest, so that
//! the follow-up request is a fresh GET without `Authorization` or any other header of the
//! first request (the bearer token never crosses a redirect, not even a same-origin one), and
//! the client never sends `Referer`. A 3xx that is not followed is an error.
//!
//! Allowed redirect targets in production (https, port 443):
//! - the configured auth and API hosts (`auth.atlassian.com`, `api.atlassian.com`);
//! - `*.atlassian.net`, the sites themselves;
//! - `api.media.atlassian.com`, where Jira's `GET /rest/api/3/attachment/content/{id}` (303)
//!   and Confluence's attachment download (302) send the client with a signed URL
//!   (ATLASSIAN.md "Attachments"; the host as production clients observe it: e.g. the
//!   `api.media.atlassian.com/file/{uuid}/binary?token=…` links quoted by jira-ruby and
//!   mcp-atlassian users, and browser extensions that declare exactly this host permission
//!   for attachment downloads).
//!
//! Loopback (http or https) only when every configured Atlassian URL is loopback: the fake
//! site in tests and `make local`. Never in production, where 127.0.0.1:9001 is the Lambda
//! Runtime API.

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::config::{AtlassianSettings, is_loopback};

/// Most redirects followed for one request (Atlassian's attachment links redirect once).
pub const MAX_REDIRECTS: usize = 5;

/// Atlassian's media host (see the module comment).
const MEDIA_HOST: &str = "api.media.atlassian.com";

/// The hosts a redirect may lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The configured auth and API hosts (lower case).
    configured: Vec<String>,
    /// Loopback targets allowed (the configured URLs are loopback).
    loopback: bool,
}

impl Outbound {
    /// Production: Atlassian's own hosts only.
    pub fn atlassian() -> Outbound {
        Outbound {
            configured: vec!["auth.atlassian.com".into(), "api.atlassian.com".into()],
            loopback: false,
        }
    }

    /// For the configured URLs: their hosts, and loopback only if all of them are loopback.
    pub fn for_settings(settings: &AtlassianSettings) -> Outbound {
        let urls = [&settings.auth_url, &settings.api_url];
        Outbound {
            configured: urls
                .iter()
                .filter(|u| u.scheme() == "https")
                .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
                .collect(),
            loopback: urls.iter().all(|u| is_loopback(u)),
        }
    }

    /// Tests against a fake site on 127.0.0.1.
    pub fn loopback() -> Outbound {
        Outbound {
            loopback: true,
            ..Outbound::atlassian()
        }
    }

    /// Whether a redirect may lead to `url`.
    pub fn allows(&self, url: &Url) -> bool {
        if is_loopback(url) {
            return self.loopback && matches!(url.scheme(), "http" | "https");
        }
        if url.scheme() != "https" || url.port_or_known_default() != Some(443) {
            return false;
        }
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let Some(url::Host::Domain(host)) = url.host() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == MEDIA_HOST
            || self.configured.contains(&host)
            || host
                .strip_suffix(".atlassian.net")
                .is_some_and(|site| !site.is_empty())
    }
}

/// Why a redirect was not followed.
#[derive(Debug)]
pub(super) enum Refused {
    /// Not followed: not a GET, no usable `Location`, a host not allowed, too many hops, or a
    /// 3xx that is not a redirect (304, 300).
    Refused,
    Transport(reqwest::Error),
}

/// Where `resp` redirects to: its `Location`, resolved against its URL.
pub(super) fn location(resp: &reqwest::Response) -> Option<Url> {
    let raw = resp.headers().get(LOCATION)?.to_str().ok()?;
    resp.url().join(raw).ok()
}

/// Follow `resp`'s redirects under `outbound`, each hop a fresh GET with no header of the
/// original request. Anything but a followable redirect is returned as it is.
pub(super) async fn follow(
    client: &reqwest::Client,
    outbound: &Outbound,
    method: &Method,
    mut resp: reqwest::Response,
) -> Result<reqwest::Response, Refused> {
    let mut hops = 0;
    while resp.status().is_redirection() {
        let followable = matches!(
            resp.status(),
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        );
        // Only downloads are redirected; a POST (the token endpoint) never is, and is not
        // replayed elsewhere.
        if !followable || *method != Method::GET || hops >= MAX_REDIRECTS {
            return Err(Refused::Refused);
        }
        let Some(next) = location(&resp).filter(|u| outbound.allows(u)) else {
            tracing::warn!(
                http_status = resp.status().as_u16(),
                "redirect to a host outside Atlassian refused"
            );
            return Err(Refused::Refused);
        };
        resp = client.get(next).send().await.map_err(Refused::Transport)?;
        hops += 1;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn production_allows_only_atlassian_hosts_over_https() {
        let o = Outbound::atlassian();
        for ok in [
            "https://api.media.atlassian.com/file/x/binary?token=t",
            "https://api.atlassian.com/ex/jira/c/rest/api/3/x",
            "https://acme.atlassian.net/wiki/x",
            "https://ACME.Atlassian.NET./x",
        ] {
            assert!(o.allows(&url(ok)), "{ok}");
        }
        for refused in [
            "http://api.media.atlassian.com/file/x",
            "https://api.media.atlassian.com:8443/file/x",
            "https://evil.example/x",
            "https://atlassian.net/x",
            "https://acme.atlassian.net.evil.example/x",
            "https://evilatlassian.net/x",
            "https://media.atlassian.com.evil.example/x",
            "https://user:pw@acme.atlassian.net/x",
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://127.0.0.1/x",
            "http://localhost/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "ftp://api.atlassian.com/x",
        ] {
            assert!(!o.allows(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn loopback_only_when_every_configured_url_is_loopback() {
        let mut s = AtlassianSettings {
            auth_url: url("http://127.0.0.1:9000/"),
            api_url: url("http://127.0.0.1:9000/"),
            max_concurrency_per_site: 1,
        };
        let local = Outbound::for_settings(&s);
        assert!(local.allows(&url("http://127.0.0.1:9100/file/x")));
        assert!(local.allows(&url("https://api.media.atlassian.com/file/x")));
        s.api_url = url("https://api.atlassian.com/");
        let mixed = Outbound::for_settings(&s);
        assert!(!mixed.allows(&url("http://127.0.0.1:9100/file/x")));
        assert!(mixed.allows(&url("https://api.atlassian.com/x")));
    }
}
