//! The OAuth 2.0 (3LO) grant state machine, independent of HTTP: the grant (one per app for the
//! fake's one signed-in user, with the cumulative set of sites consented to), authorization
//! codes, token families with rotating refresh tokens (reuse leeway, reuse detection, 90-day
//! inactivity and 365-day absolute expiry), access tokens, the app's scopes as set in the
//! developer console, and revocation. Time is always passed in.
//!
//! Grant model. "Only one grant exists per app for a given Atlassian account. If a user grants
//! access to more than one Atlassian site for this app, then the additional sites are added to
//! the same grant. This means that existing access tokens will give you access to all sites and
//! scopes that a user has granted your app access to."
//! (https://developer.atlassian.com/cloud/oauth/getting-started/faq). So: one [`Grant`] per
//! client id holding a SET of sites that only grows with consents (until a site is removed or
//! the app is revoked); every consent adds its chosen sites to it and, once its code is
//! exchanged, starts a NEW token family; every live family of the grant reaches every site of
//! the grant. A new consent leaves the grant's earlier families alive: an Atlassian engineer in
//! community.developer.atlassian.com/t/50348/50 ("if you are getting two seperate refresh
//! tokens, because you have seperate authorization flow for the two products then, refreshing a
//! refresh token for one product shouldn't affect another token"); no documentation page says
//! so, and our product must be right either way.
//!
//! Scopes stay per family (what that consent asked for) rather than accumulating across
//! consents as the FAQ's "and scopes" suggests: each of our apps always asks for the same
//! scopes, so the difference does not show.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use time::OffsetDateTime;

/// Prefixes make the fake's secrets easy to scan for in logs and stored data.
pub const ACCESS_TOKEN_PREFIX: &str = "fake_at_";
pub const REFRESH_TOKEN_PREFIX: &str = "fake_rt_";
pub const CODE_PREFIX: &str = "fake_code_";

#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub access_token_ttl: Duration,
    pub rotation_leeway: Duration,
    pub code_ttl: Duration,
    pub refresh_inactivity: Duration,
    pub refresh_absolute: Duration,
    /// A rotated refresh token's companion access token dies when the leeway ends, i.e. 10
    /// minutes after the rotation that replaced it (Atlassian announced this in 2024: "the old
    /// access token will be revoked during the refresh token exchange",
    /// community.developer.atlassian.com/t/83103; the 10-minute reuse interval is on
    /// https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens). On by
    /// default ([`super::FakeConfig::revoke_companion_access_token`]).
    pub revoke_companion_access_token: bool,
}

/// What the token endpoint hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: String,
}

/// Why a grant failed (always `invalid_grant` on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidGrant(pub &'static str);

/// Who an access token speaks for, and what it may reach now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessGrant {
    pub client_id: String,
    /// Effective scopes: the family's consented scopes that the app still has (see
    /// [`Grants::set_app_scopes`]).
    pub scopes: Vec<String>,
    /// Cloud ids of every site in the grant, in the order they were first granted.
    pub sites: Vec<String>,
}

/// The user's grant to one app: the sites it covers. `id` changes when the app is revoked and
/// consented again, so families of the old grant never come back to life.
#[derive(Debug)]
struct Grant {
    id: u64,
    sites: Vec<String>,
}

#[derive(Debug)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires_at: OffsetDateTime,
}

#[derive(Debug)]
struct Family {
    client_id: String,
    grant: u64,
    scopes: Vec<String>,
    consented_at: OffsetDateTime,
    dead: bool,
}

#[derive(Debug)]
struct RefreshEntry {
    family: usize,
    issued_at: OffsetDateTime,
    rotated_at: Option<OffsetDateTime>,
}

#[derive(Debug)]
struct AccessEntry {
    family: usize,
    expires_at: OffsetDateTime,
    companion_refresh: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Grants {
    policy: Policy,
    /// By client id (the fake has one user, so one grant per app).
    grants: HashMap<String, Grant>,
    next_grant: u64,
    /// The app's scopes as configured in the developer console, by client id; absent =
    /// unrestricted.
    app_scopes: HashMap<String, Vec<String>>,
    codes: HashMap<String, PendingCode>,
    families: Vec<Family>,
    refresh: HashMap<String, RefreshEntry>,
    access: HashMap<String, AccessEntry>,
    killed_by_reuse: usize,
    /// Rotated refresh tokens used again within the leeway (answered, see `refresh`).
    reused_in_leeway: usize,
    refresh_served: usize,
}

impl Grants {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            grants: HashMap::new(),
            next_grant: 1,
            app_scopes: HashMap::new(),
            codes: HashMap::new(),
            families: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            killed_by_reuse: 0,
            reused_in_leeway: 0,
            refresh_served: 0,
        }
    }

    /// Cloud ids in `client_id`'s grant, in the order they were first granted.
    pub(crate) fn sites(&self, client_id: &str) -> Vec<String> {
        self.grants
            .get(client_id)
            .map(|g| g.sites.clone())
            .unwrap_or_default()
    }

    /// A site leaves the grant (an admin removed the app from that site, or the user lost
    /// access to it) while the grant and its token families live on: refresh keeps working,
    /// accessible-resources stops listing the site, and its API calls answer 401. The one-grant
    /// model makes this per-site removal a partial change of the grant (jira.atlassian.com
    /// ECO-256 asks for a per-site revocation the user cannot do themselves). False if the
    /// site was not in the grant.
    pub(crate) fn remove_site(&mut self, client_id: &str, cloud_id: &str) -> bool {
        let Some(grant) = self.grants.get_mut(client_id) else {
            return false;
        };
        let before = grant.sites.len();
        grant.sites.retain(|s| s != cloud_id);
        grant.sites.len() != before
    }

    /// The scopes the app has in the developer console ("Permissions"), `None` = unrestricted.
    /// ASSUMPTION (undocumented): a token's effective scopes are its consented scopes that the
    /// app still has, evaluated at each call, so removing a scope makes the gateway answer
    /// "scope does not match" and restoring it makes the same tokens work again without a new
    /// consent. `offline_access` is not an API permission of the console and is never removed.
    pub(crate) fn set_app_scopes(&mut self, client_id: &str, scopes: Option<Vec<String>>) {
        match scopes {
            Some(s) => {
                self.app_scopes.insert(client_id.to_owned(), s);
            }
            None => {
                self.app_scopes.remove(client_id);
            }
        }
    }

    /// Families of `client_id` that could still refresh now: not dead, of the current grant,
    /// inside the absolute lifetime, and holding a refresh token that is either unrotated and
    /// not idle-expired, or rotated within the leeway.
    pub(crate) fn live_families(&self, client_id: &str, now: OffsetDateTime) -> usize {
        let Some(grant) = self.grants.get(client_id) else {
            return 0;
        };
        let mut live = vec![false; self.families.len()];
        for entry in self.refresh.values() {
            let usable = match entry.rotated_at {
                None => now < entry.issued_at + self.policy.refresh_inactivity,
                Some(rotated) => now <= rotated + self.policy.rotation_leeway,
            };
            if let (true, Some(slot)) = (usable, live.get_mut(entry.family)) {
                *slot = true;
            }
        }
        self.families
            .iter()
            .zip(live)
            .filter(|(f, usable)| {
                *usable
                    && !f.dead
                    && f.client_id == client_id
                    && f.grant == grant.id
                    && now < f.consented_at + self.policy.refresh_absolute
            })
            .count()
    }

    pub(crate) fn families_killed_by_reuse(&self) -> usize {
        self.killed_by_reuse
    }

    pub(crate) fn reused_within_leeway(&self) -> usize {
        self.reused_in_leeway
    }

    pub(crate) fn refresh_grants_served(&self) -> usize {
        self.refresh_served
    }

    /// The user consented for `sites`: they join the app's grant (consenting is granting; the
    /// code only hands out tokens), and a single-use code bound to the client and redirect URI
    /// is issued (RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than
    /// once ... bound to the client identifier and redirection URI"). ASSUMPTION
    /// (undocumented): the code lives `code_ttl` (10 minutes, RFC 6749 §4.1.2's recommended
    /// maximum); Atlassian states no lifetime. Safe: our callback exchanges the code at once.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
        sites: &[String],
        now: OffsetDateTime,
    ) -> String {
        self.codes.retain(|_, c| c.expires_at > now);
        let next = &mut self.next_grant;
        let grant = self.grants.entry(client_id.to_owned()).or_insert_with(|| {
            *next += 1;
            Grant {
                id: *next,
                sites: Vec::new(),
            }
        });
        for site in sites {
            if !grant.sites.contains(site) {
                grant.sites.push(site.clone());
            }
        }
        let code = random_token(CODE_PREFIX);
        self.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                expires_at: now + self.policy.code_ttl,
            },
        );
        code
    }

    /// `grant_type=authorization_code` (client already authenticated).
    pub(crate) fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        now: OffsetDateTime,
    ) -> Result<Issued, InvalidGrant> {
        // Removed on any attempt: a code is good for one try.
        let pending = self
            .codes
            .remove(code)
            .ok_or(InvalidGrant("Invalid authorization code"))?;
        if now >= pending.expires_at {
            return Err(InvalidGrant("Authorization code has expired"));
        }
        if pending.client_id != client_id {
            return Err(InvalidGrant("Invalid authorization code"));
        }
        if pending.redirect_uri != redirect_uri {
            return Err(InvalidGrant(
                "redirect_uri does not match the one used for authorization",
            ));
        }
        // Revoked between consent and exchange: the code died with the grant (revoke_client
        // drops codes too), so this is only a guard.
        let grant = self
            .grants
            .get(client_id)
            .map(|g| g.id)
            .ok_or(InvalidGrant("Invalid authorization code"))?;
        let family = self.families.len();
        self.families.push(Family {
            client_id: client_id.to_owned(),
            grant,
            scopes: pending.scopes,
            consented_at: now,
            dead: false,
        });
        Ok(self.issue_pair(family, now))
    }

    /// `grant_type=refresh_token` (client already authenticated). Rules, from the announcement
    /// community.developer.atlassian.com/t/54172 (see also .../getting-started/refresh-tokens):
    /// each refresh rotates ("the refresh token value is rotated and previous token is
    /// invalidated"); "Rotating refresh tokens expire after 90 days of user inactivity. Each time
    /// a new rotating refresh token is used, the inactive expiry time is reset"; "Reuse of old
    /// tokens outside the leeway interval invalidates all refresh tokens, and requires the user
    /// to re-consent. The leeway interval is 10 minutes"; "All tokens have an absolute expiry
    /// time of 365 days ... The absolute expiry time persists between token refreshes" (counted
    /// from consent: community.developer.atlassian.com/t/60806/2). A reuse WITHIN the leeway
    /// answers a fresh pair of the same family (the leeway exists "to allow multiple retries",
    /// t/83103). Every way a refresh token can
    /// be dead (unknown, revoked, reused after the leeway, idle 90 days, past 365 days) answers
    /// the same documented body, `403 {"error":"invalid_grant","error_description":"Unknown or
    /// invalid refresh token."}`: https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens
    /// (Atlassian's token endpoint is Auth0's, whose support article "Troubleshoot Refresh Token
    /// Unknown or Invalid Before Expiry" gives that status and body for absolute expiry and
    /// reuse alike).
    pub(crate) fn refresh(
        &mut self,
        client_id: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Issued, InvalidGrant> {
        const UNKNOWN: InvalidGrant = InvalidGrant("Unknown or invalid refresh token.");
        let leeway = self.policy.rotation_leeway;
        let entry = self.refresh.get_mut(token).ok_or(UNKNOWN)?;
        let family = self.families.get_mut(entry.family).ok_or(UNKNOWN)?;
        let current = self.grants.get(client_id).map(|g| g.id);
        if family.client_id != client_id || family.dead || current != Some(family.grant) {
            return Err(UNKNOWN);
        }
        if now >= family.consented_at + self.policy.refresh_absolute {
            return Err(UNKNOWN);
        }
        match entry.rotated_at {
            Some(rotated) if now > rotated + leeway => {
                // Reuse outside the leeway: assume theft, kill the whole family.
                family.dead = true;
                self.killed_by_reuse += 1;
                return Err(UNKNOWN);
            }
            Some(_) => self.reused_in_leeway += 1,
            None => {
                if now >= entry.issued_at + self.policy.refresh_inactivity {
                    return Err(UNKNOWN);
                }
                entry.rotated_at = Some(now);
            }
        }
        let family = entry.family;
        self.refresh_served += 1;
        Ok(self.issue_pair(family, now))
    }

    /// The grant behind a bearer token, if it is still good: not past `expires_in` (an access
    /// token "expires after 1 hour", community.developer.atlassian.com/t/60806/2), its family
    /// alive, and (with `revoke_companion_access_token`) not outliving its companion refresh
    /// token's rotation by more than the leeway (t/83103: "the old access and refresh tokens
    /// will enter a 10-minutes grace period (leeway window) before they are marked as revoked").
    pub(crate) fn check_access(&self, token: &str, now: OffsetDateTime) -> Option<AccessGrant> {
        let entry = self.access.get(token)?;
        let family = self.families.get(entry.family)?;
        let grant = self.grants.get(&family.client_id)?;
        if family.dead || grant.id != family.grant || now >= entry.expires_at {
            return None;
        }
        if self.policy.revoke_companion_access_token
            && let Some(rotated) = entry
                .companion_refresh
                .as_ref()
                .and_then(|rt| self.refresh.get(rt))
                .and_then(|r| r.rotated_at)
            && now > rotated + self.policy.rotation_leeway
        {
            return None;
        }
        let scopes = match self.app_scopes.get(&family.client_id) {
            None => family.scopes.clone(),
            Some(app) => family
                .scopes
                .iter()
                .filter(|s| *s == "offline_access" || app.contains(s))
                .cloned()
                .collect(),
        };
        Some(AccessGrant {
            client_id: family.client_id.clone(),
            scopes,
            sites: grant.sites.clone(),
        })
    }

    /// The user removed the app: the grant ends (its sites with it), every family of the
    /// client dies, pending codes too. A later consent starts a new grant. A removed app's
    /// refresh answers `invalid_grant` (ATLASSIAN.md, OAuth section). ASSUMPTION
    /// (undocumented): its live access tokens die at once rather than at `expires_in`; our
    /// client treats a 401 (ask accessible-resources, then refresh) the same either way.
    pub(crate) fn revoke_client(&mut self, client_id: &str) -> usize {
        self.codes.retain(|_, c| c.client_id != client_id);
        self.grants.remove(client_id);
        let mut n = 0;
        for family in self
            .families
            .iter_mut()
            .filter(|f| f.client_id == client_id && !f.dead)
        {
            family.dead = true;
            n += 1;
        }
        n
    }

    fn issue_pair(&mut self, family: usize, now: OffsetDateTime) -> Issued {
        let scopes = self
            .families
            .get(family)
            .map(|f| f.scopes.clone())
            .unwrap_or_default();
        let refresh_token = scopes.iter().any(|s| s == "offline_access").then(|| {
            let rt = random_token(REFRESH_TOKEN_PREFIX);
            self.refresh.insert(
                rt.clone(),
                RefreshEntry {
                    family,
                    issued_at: now,
                    rotated_at: None,
                },
            );
            rt
        });
        let access_token = random_token(ACCESS_TOKEN_PREFIX);
        self.access.insert(
            access_token.clone(),
            AccessEntry {
                family,
                expires_at: now + self.policy.access_token_ttl,
                companion_refresh: refresh_token.clone(),
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: self.policy.access_token_ttl.as_secs(),
            scope: scopes.join(" "),
        }
    }
}

/// `prefix` + 43 characters of base64url (32 random bytes from the OS generator).
pub(crate) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests;
