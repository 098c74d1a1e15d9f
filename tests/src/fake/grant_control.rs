//! The Rust API tests use to drive OAuth on the fake: consent (all sites or chosen ones),
//! minting grants without HTTP, revoking, removing a site from a grant, changing an app's
//! scopes, and counters of token families. The behaviours are documented (with sources) in
//! `grants.rs`, `gateway.rs` and `consent.rs`.

use url::Url;

use super::error::FakeError;
use super::oauth::{self, Decision};
use super::params::Params;
use super::state::lock;
use super::{FakeAtlassian, MintedGrant};

impl FakeAtlassian {
    /// The user removed the app: the grant ends (its sites with it), every token family of
    /// `client_id` dies (refresh answers `invalid_grant`, API calls 401) and its pending codes
    /// with them. A later consent starts a new grant.
    pub fn revoke_grants(&self, client_id: &str) {
        lock(&self.app.grants).revoke_client(client_id);
    }

    /// Token families killed because a rotated refresh token was reused after the leeway.
    pub fn token_families_killed(&self) -> usize {
        lock(&self.app.grants).families_killed_by_reuse()
    }

    /// Rotated refresh tokens presented again within the leeway (answered with a fresh pair,
    /// as Atlassian does; a client that persists every rotation never does this).
    pub fn refresh_tokens_reused(&self) -> usize {
        lock(&self.app.grants).reused_within_leeway()
    }

    /// Successful `refresh_token` grants answered.
    pub fn refresh_grants_served(&self) -> usize {
        lock(&self.app.grants).refresh_grants_served()
    }

    /// Token families of `client_id`'s grant that could still refresh now (not killed or
    /// revoked, not expired, holding an unrotated refresh token or one rotated within the
    /// leeway). A product that keeps one family per grant sees 1 here however many sites it
    /// connected.
    pub fn live_token_families(&self, client_id: &str) -> usize {
        lock(&self.app.grants).live_families(client_id, self.app.clock.now())
    }

    /// Cloud ids in `client_id`'s grant (every site consented to and not removed), in the order
    /// they were first granted.
    pub fn grant_sites(&self, client_id: &str) -> Vec<String> {
        lock(&self.app.grants).sites(client_id)
    }

    /// The site leaves `client_id`'s grant while the grant lives: its API calls answer 401
    /// `Unauthorized`, accessible-resources stops listing it, refreshes keep working. False if
    /// the site was not in the grant.
    pub fn remove_site_from_grant(&self, client_id: &str, cloud_id: &str) -> bool {
        lock(&self.app.grants).remove_site(client_id, cloud_id)
    }

    /// The app's scopes in the developer console: `Some(list)` restricts every token of the app
    /// to its consented scopes that are in `list` (missing ones answer "scope does not match"),
    /// `None` lifts the restriction (the default). Takes effect on the next API call of every
    /// existing token, without a new consent.
    pub fn set_app_scopes(&self, client_id: &str, scopes: Option<Vec<String>>) {
        lock(&self.app.grants).set_app_scopes(client_id, scopes);
    }

    /// A consent for every configured site and code exchange without the HTTP round trips (for
    /// set-ups that need thousands of token families, e.g. the refresh benchmark): a new family
    /// in `client_id`'s grant with `scopes`, exactly as `/authorize` + `/oauth/token` would
    /// issue it.
    pub fn mint_grant(&self, client_id: &str, scopes: &[&str]) -> Result<MintedGrant, FakeError> {
        let sites = self.cloud_ids();
        let sites: Vec<&str> = sites.iter().map(String::as_str).collect();
        self.mint_grant_for_sites(client_id, scopes, &sites)
    }

    /// [`FakeAtlassian::mint_grant`] for the given sites only (they join the grant).
    pub fn mint_grant_for_sites(
        &self,
        client_id: &str,
        scopes: &[&str],
        cloud_ids: &[&str],
    ) -> Result<MintedGrant, FakeError> {
        let sites = self.checked_sites(cloud_ids)?;
        let now = self.app.clock.now();
        let redirect = "urn:fake:minted";
        let mut grants = lock(&self.app.grants);
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let code = grants.issue_code(client_id, redirect, scopes, &sites, now);
        let issued = grants
            .exchange_code(client_id, &code, redirect, now)
            .map_err(|e| FakeError::InvalidAuthorizeRequest(e.0.to_owned()))?;
        Ok(MintedGrant {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_in: issued.expires_in,
            scope: issued.scope,
        })
    }

    /// An authorize URL on this fake, as the code under test should build it.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
    ) -> Url {
        let mut url = self
            .app
            .base_url
            .join("authorize")
            .unwrap_or_else(|_| self.app.base_url.clone());
        url.query_pairs_mut()
            .append_pair("audience", oauth::AUDIENCE)
            .append_pair("client_id", client_id)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("prompt", "consent");
        url
    }

    /// The user's click on Accept (`accept`, with every site checked, as the page offers them)
    /// or Deny: validates `authorize_url` like `GET /authorize` and returns where the browser
    /// would be redirected.
    pub async fn consent(&self, authorize_url: &Url, accept: bool) -> Result<Url, FakeError> {
        let decision = if accept {
            Decision::Accept(self.cloud_ids())
        } else {
            Decision::Deny
        };
        self.decide(authorize_url, &decision)
    }

    /// Accept with only `cloud_ids` checked (at least one, each a configured site): they join
    /// the app's grant.
    pub async fn consent_sites(
        &self,
        authorize_url: &Url,
        cloud_ids: &[&str],
    ) -> Result<Url, FakeError> {
        let sites = self.checked_sites(cloud_ids)?;
        self.decide(authorize_url, &Decision::Accept(sites))
    }

    fn checked_sites(&self, cloud_ids: &[&str]) -> Result<Vec<String>, FakeError> {
        if let Some(unknown) = cloud_ids.iter().find(|id| self.app.site(id).is_none()) {
            return Err(FakeError::UnknownSite((*unknown).to_owned()));
        }
        oauth::chosen_sites(&self.app, cloud_ids).map_err(FakeError::InvalidAuthorizeRequest)
    }

    fn decide(&self, authorize_url: &Url, decision: &Decision) -> Result<Url, FakeError> {
        if !authorize_url.path().ends_with("/authorize") {
            return Err(FakeError::InvalidAuthorizeRequest(format!(
                "{} is not an authorize URL",
                authorize_url.path()
            )));
        }
        let params = Params::parse(authorize_url.query());
        let req =
            oauth::validate(&self.app, &params).map_err(FakeError::InvalidAuthorizeRequest)?;
        Ok(oauth::decide(&self.app, &req, decision))
    }
}
