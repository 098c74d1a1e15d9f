//! The OAuth 2.0 (3LO) grant state machine, independent of HTTP: authorization codes, token
//! families with rotating refresh tokens (reuse leeway, reuse detection, 90-day inactivity and
//! 365-day absolute expiry), access tokens and revocation. Time is always passed in.

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
    /// A rotated refresh token's companion access token dies when the leeway ends (Atlassian
    /// announced this in 2024: "the old access token will be revoked during the refresh token
    /// exchange").
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

/// Who an access token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
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
    codes: HashMap<String, PendingCode>,
    families: Vec<Family>,
    refresh: HashMap<String, RefreshEntry>,
    access: HashMap<String, AccessEntry>,
    killed_by_reuse: usize,
    refresh_served: usize,
}

impl Grants {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            codes: HashMap::new(),
            families: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            killed_by_reuse: 0,
            refresh_served: 0,
        }
    }

    pub(crate) fn families_killed_by_reuse(&self) -> usize {
        self.killed_by_reuse
    }

    pub(crate) fn refresh_grants_served(&self) -> usize {
        self.refresh_served
    }

    /// The user consented: a single-use code bound to the client and redirect URI.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
        now: OffsetDateTime,
    ) -> String {
        self.codes.retain(|_, c| c.expires_at > now);
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
        let family = self.families.len();
        self.families.push(Family {
            client_id: client_id.to_owned(),
            scopes: pending.scopes,
            consented_at: now,
            dead: false,
        });
        Ok(self.issue_pair(family, now))
    }

    /// `grant_type=refresh_token` (client already authenticated).
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
        if family.client_id != client_id || family.dead {
            return Err(UNKNOWN);
        }
        if now >= family.consented_at + self.policy.refresh_absolute {
            return Err(InvalidGrant(
                "The refresh token has expired (absolute lifetime).",
            ));
        }
        match entry.rotated_at {
            Some(rotated) if now > rotated + leeway => {
                // Reuse outside the leeway: assume theft, kill the whole family.
                family.dead = true;
                self.killed_by_reuse += 1;
                return Err(UNKNOWN);
            }
            Some(_) => {}
            None => {
                if now >= entry.issued_at + self.policy.refresh_inactivity {
                    return Err(InvalidGrant("The refresh token has expired (inactivity)."));
                }
                entry.rotated_at = Some(now);
            }
        }
        let family = entry.family;
        self.refresh_served += 1;
        Ok(self.issue_pair(family, now))
    }

    /// The grant behind a bearer token, if it is still good.
    pub(crate) fn check_access(&self, token: &str, now: OffsetDateTime) -> Option<AccessGrant> {
        let entry = self.access.get(token)?;
        let family = self.families.get(entry.family)?;
        if family.dead || now >= entry.expires_at {
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
        Some(AccessGrant {
            client_id: family.client_id.clone(),
            scopes: family.scopes.clone(),
        })
    }

    /// The user removed the app: every family of the client dies, pending codes too.
    pub(crate) fn revoke_client(&mut self, client_id: &str) -> usize {
        self.codes.retain(|_, c| c.client_id != client_id);
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
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const DAY: Duration = Duration::from_secs(86_400);

    fn grants() -> Grants {
        Grants::new(Policy {
            access_token_ttl: Duration::from_secs(3600),
            rotation_leeway: 10 * MIN,
            code_ttl: 10 * MIN,
            refresh_inactivity: 90 * DAY,
            refresh_absolute: 365 * DAY,
            revoke_companion_access_token: true,
        })
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn consent(g: &mut Grants, now: OffsetDateTime) -> Issued {
        let code = g.issue_code(
            "c",
            "http://cb",
            vec!["read:jira-work".into(), "offline_access".into()],
            now,
        );
        g.exchange_code("c", &code, "http://cb", now).unwrap()
    }

    #[test]
    fn code_is_single_use_and_bound_to_redirect_uri() {
        let mut g = grants();
        let code = g.issue_code("c", "http://cb", vec![], t0());
        assert!(g.exchange_code("c", &code, "http://other", t0()).is_err());
        assert!(g.exchange_code("c", &code, "http://cb", t0()).is_err());
    }

    #[test]
    fn refresh_rotates_and_leeway_then_reuse_kills() {
        let mut g = grants();
        let first = consent(&mut g, t0());
        let rt0 = first.refresh_token.unwrap();
        let second = g.refresh("c", &rt0, t0() + MIN).unwrap();
        assert_ne!(second.refresh_token.as_deref(), Some(rt0.as_str()));
        // Within the leeway the old token still works.
        assert!(g.refresh("c", &rt0, t0() + 5 * MIN).is_ok());
        // The companion access token of rt0 dies once the leeway is over.
        assert!(
            g.check_access(&first.access_token, t0() + 5 * MIN)
                .is_some()
        );
        assert!(
            g.check_access(&first.access_token, t0() + 12 * MIN)
                .is_none()
        );
        assert!(
            g.check_access(&second.access_token, t0() + 12 * MIN)
                .is_some()
        );
        // After it, reuse kills the family, including the newest tokens.
        assert!(g.refresh("c", &rt0, t0() + 12 * MIN).is_err());
        assert_eq!(g.families_killed_by_reuse(), 1);
        assert!(
            g.check_access(&second.access_token, t0() + 12 * MIN)
                .is_none()
        );
        assert!(
            g.refresh(
                "c",
                second.refresh_token.as_deref().unwrap(),
                t0() + 12 * MIN
            )
            .is_err()
        );
    }

    #[test]
    fn inactivity_and_absolute_expiry() {
        let mut g = grants();
        let rt = consent(&mut g, t0()).refresh_token.unwrap();
        assert!(g.refresh("c", &rt, t0() + 91 * DAY).is_err());
        let mut g = grants();
        let mut rt = consent(&mut g, t0()).refresh_token.unwrap();
        let mut now = t0();
        for _ in 0..4 {
            now += 80 * DAY;
            rt = g.refresh("c", &rt, now).unwrap().refresh_token.unwrap();
        }
        assert!(
            g.refresh("c", &rt, now + 50 * DAY).is_err(),
            "past 365 days since consent"
        );
        assert_eq!(g.families_killed_by_reuse(), 0);
    }

    #[test]
    fn no_refresh_token_without_offline_access() {
        let mut g = grants();
        let code = g.issue_code("c", "http://cb", vec!["read:jira-work".into()], t0());
        let issued = g.exchange_code("c", &code, "http://cb", t0()).unwrap();
        assert!(issued.refresh_token.is_none());
        assert!(issued.access_token.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(issued.access_token.len() >= 50);
    }
}
