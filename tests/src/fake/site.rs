//! One fake Atlassian site (a cloud id with a Jira and a Confluence) and the context its
//! renderers need: URLs, the seeded users and the clock.

use std::sync::Arc;

use super::clock::FakeClock;
use super::confluence::ConfluenceData;
use super::jira::JiraData;
use super::seed::SeedSpec;
use super::users::Users;

#[derive(Debug)]
pub(crate) struct SiteContext {
    pub cloud_id: String,
    pub name: String,
    /// The site's own URL without a trailing slash (`https://fake-site-1.atlassian.net`).
    pub url: String,
    /// The fake's base URL without a trailing slash (the API gateway).
    pub gateway: String,
    pub users: Arc<Users>,
    pub clock: FakeClock,
}

impl SiteContext {
    /// `{gateway}/ex/jira/{cloudId}`: prefix of Jira `self` links.
    pub(crate) fn jira_api(&self) -> String {
        format!("{}/ex/jira/{}", self.gateway, self.cloud_id)
    }

    /// `{site}/wiki`: Confluence's `_links.base` (the site, not the gateway, like the real API).
    pub(crate) fn wiki_base(&self) -> String {
        format!("{}/wiki", self.url)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Site {
    pub ctx: Arc<SiteContext>,
    pub jira: JiraData,
    pub confluence: ConfluenceData,
}

impl Site {
    pub(crate) fn generate(ctx: SiteContext, spec: &SeedSpec, seed: u64) -> Self {
        let ctx = Arc::new(ctx);
        let jira = JiraData::generate(ctx.clone(), spec, seed);
        let confluence = ConfluenceData::generate(ctx.clone(), spec, seed);
        Self {
            ctx,
            jira,
            confluence,
        }
    }
}
