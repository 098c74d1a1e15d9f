//! The HTTP side of Atlassian: one client ([`http`]) and the one place that knows Atlassian's
//! URL shapes ([`AtlassianUrls`]).

pub mod http;
pub mod oauth;
pub mod outbound;
#[cfg(test)]
mod outbound_tests;
pub mod scopes;

use url::Url;

use crate::config::AtlassianSettings;
use crate::ids::CloudId;

/// Builds every Atlassian URL we call, from the configured auth and API base URLs (real
/// Atlassian in production, the fake site locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtlassianUrls {
    auth: Url,
    api: Url,
}

impl AtlassianUrls {
    pub fn new(settings: &AtlassianSettings) -> AtlassianUrls {
        AtlassianUrls {
            auth: with_trailing_slash(&settings.auth_url),
            api: with_trailing_slash(&settings.api_url),
        }
    }

    /// `https://auth.atlassian.com/authorize` (query added by the caller).
    pub fn authorize(&self) -> Url {
        join(&self.auth, "authorize")
    }

    /// `https://auth.atlassian.com/oauth/token`.
    pub fn token(&self) -> Url {
        join(&self.auth, "oauth/token")
    }

    /// `https://api.atlassian.com/oauth/token/accessible-resources`.
    pub fn accessible_resources(&self) -> Url {
        join(&self.api, "oauth/token/accessible-resources")
    }

    /// `https://api.atlassian.com/ex/jira/{cloudId}/rest/api/3/{path}`.
    pub fn jira(&self, cloud_id: &CloudId, path: &str) -> Url {
        join(
            &self.api,
            &format!(
                "ex/jira/{cloud_id}/rest/api/3/{}",
                path.trim_start_matches('/')
            ),
        )
    }

    /// `https://api.atlassian.com/ex/confluence/{cloudId}/wiki/{path}`; `path` as Confluence
    /// gives it in `_links` (relative to `/wiki`) or as documented (`rest/api/...`).
    pub fn confluence(&self, cloud_id: &CloudId, path: &str) -> Url {
        let path = path.trim_start_matches('/');
        let path = path.strip_prefix("wiki/").unwrap_or(path);
        join(&self.api, &format!("ex/confluence/{cloud_id}/wiki/{path}"))
    }
}

fn with_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Join a relative path (which may carry its own query) onto a base ending in '/'.
fn join(base: &Url, relative: &str) -> Url {
    // `relative` is built by us from validated ids and fixed strings, or is a `_links` path
    // from Atlassian; `Url::join` cannot fail for such input on an http(s) base, but if it
    // ever does we fall back to the base rather than panic, and the call fails visibly.
    base.join(relative).unwrap_or_else(|_| base.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(auth: &str, api: &str) -> AtlassianUrls {
        let settings = AtlassianSettings {
            auth_url: Url::parse(auth).unwrap_or_else(|e| panic!("{e}")),
            api_url: Url::parse(api).unwrap_or_else(|e| panic!("{e}")),
            max_concurrency_per_site: 4,
        };
        AtlassianUrls::new(&settings)
    }

    #[test]
    fn production_shapes() {
        let u = urls("https://auth.atlassian.com", "https://api.atlassian.com");
        let cloud = CloudId::parse("11111111-2222-3333-4444-555555555555")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.authorize().as_str(),
            "https://auth.atlassian.com/authorize"
        );
        assert_eq!(u.token().as_str(), "https://auth.atlassian.com/oauth/token");
        assert_eq!(
            u.accessible_resources().as_str(),
            "https://api.atlassian.com/oauth/token/accessible-resources"
        );
        assert_eq!(
            u.jira(&cloud, "search/jql").as_str(),
            "https://api.atlassian.com/ex/jira/11111111-2222-3333-4444-555555555555/rest/api/3/search/jql"
        );
        assert_eq!(
            u.confluence(&cloud, "/rest/api/content/search?cql=x&cursor=abc")
                .as_str(),
            "https://api.atlassian.com/ex/confluence/11111111-2222-3333-4444-555555555555/wiki/rest/api/content/search?cql=x&cursor=abc"
        );
    }

    #[test]
    fn base_paths_are_kept_for_local_fakes() {
        let u = urls("http://127.0.0.1:9999/fake", "http://127.0.0.1:9999/fake/");
        assert_eq!(u.token().as_str(), "http://127.0.0.1:9999/fake/oauth/token");
        let cloud = CloudId::parse("c1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.confluence(&cloud, "/wiki/api/v2/pages/1").as_str(),
            "http://127.0.0.1:9999/fake/ex/confluence/c1/wiki/api/v2/pages/1"
        );
    }
}
