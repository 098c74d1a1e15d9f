//! The grant state machine, driven directly with a clock the test controls.

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
    consent_sites(g, &["A"], now)
}

fn consent_sites(g: &mut Grants, sites: &[&str], now: OffsetDateTime) -> Issued {
    let sites: Vec<String> = sites.iter().map(|s| (*s).to_owned()).collect();
    let code = g.issue_code(
        "c",
        "http://cb",
        vec!["read:jira-work".into(), "offline_access".into()],
        &sites,
        now,
    );
    g.exchange_code("c", &code, "http://cb", now).unwrap()
}

#[test]
fn code_is_single_use_and_bound_to_redirect_uri() {
    let mut g = grants();
    let code = g.issue_code("c", "http://cb", vec![], &[], t0());
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
    assert_eq!(g.reused_within_leeway(), 0, "a first use is no reuse");
    // Within the leeway the old token still works (and the reuse is counted).
    assert!(g.refresh("c", &rt0, t0() + 5 * MIN).is_ok());
    assert_eq!(g.reused_within_leeway(), 1);
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
    let code = g.issue_code("c", "http://cb", vec!["read:jira-work".into()], &[], t0());
    let issued = g.exchange_code("c", &code, "http://cb", t0()).unwrap();
    assert!(issued.refresh_token.is_none());
    assert!(issued.access_token.starts_with(ACCESS_TOKEN_PREFIX));
    assert!(issued.access_token.len() >= 50);
}

fn sites_of(g: &Grants, token: &str, now: OffsetDateTime) -> Vec<String> {
    g.check_access(token, now)
        .map(|a| a.sites)
        .unwrap_or_default()
}

fn rt(issued: &Issued) -> &str {
    issued.refresh_token.as_deref().unwrap()
}

#[test]
fn consents_add_sites_to_one_grant_and_each_starts_a_family() {
    let mut g = grants();
    let first = consent_sites(&mut g, &["A"], t0());
    assert_eq!(sites_of(&g, &first.access_token, t0()), ["A"]);
    assert_eq!(g.live_families("c", t0()), 1);
    let second = consent_sites(&mut g, &["B"], t0() + MIN);
    // One grant: both families reach both sites, and the first family lives on.
    assert_eq!(g.sites("c"), ["A", "B"]);
    assert_eq!(sites_of(&g, &first.access_token, t0() + MIN), ["A", "B"]);
    assert_eq!(sites_of(&g, &second.access_token, t0() + MIN), ["A", "B"]);
    assert_eq!(g.live_families("c", t0() + MIN), 2);
    assert!(g.refresh("c", rt(&first), t0() + 2 * MIN).is_ok());
    assert!(g.refresh("c", rt(&second), t0() + 2 * MIN).is_ok());
    // Consenting again to a site already granted adds nothing.
    consent_sites(&mut g, &["B", "A"], t0() + 3 * MIN);
    assert_eq!(g.sites("c"), ["A", "B"]);
    assert_eq!(g.live_families("c", t0() + 3 * MIN), 3);
    assert_eq!(g.sites("other-client"), Vec::<String>::new());
}

#[test]
fn a_removed_site_leaves_the_grant_but_the_family_lives() {
    let mut g = grants();
    let first = consent_sites(&mut g, &["A", "B"], t0());
    assert!(g.remove_site("c", "A"));
    assert!(!g.remove_site("c", "A"), "already gone");
    assert!(!g.remove_site("nobody", "B"));
    assert_eq!(sites_of(&g, &first.access_token, t0()), ["B"]);
    let next = g.refresh("c", rt(&first), t0() + MIN).unwrap();
    assert_eq!(sites_of(&g, &next.access_token, t0() + MIN), ["B"]);
    assert_eq!(g.live_families("c", t0() + MIN), 1);
    // A later consent for A brings it back into the same grant.
    consent_sites(&mut g, &["A"], t0() + 2 * MIN);
    assert_eq!(sites_of(&g, &next.access_token, t0() + 2 * MIN), ["B", "A"]);
}

#[test]
fn effective_scopes_follow_the_apps_scopes_and_come_back() {
    let mut g = grants();
    let issued = consent(&mut g, t0());
    let scopes = |g: &Grants| g.check_access(&issued.access_token, t0()).unwrap().scopes;
    assert_eq!(scopes(&g), ["read:jira-work", "offline_access"]);
    g.set_app_scopes("c", Some(vec!["read:jira-user".into()]));
    assert_eq!(scopes(&g), ["offline_access"]);
    // Refresh is unaffected: the family is intact.
    let next = g.refresh("c", rt(&issued), t0() + MIN).unwrap();
    g.set_app_scopes("c", None);
    assert_eq!(scopes(&g), ["read:jira-work", "offline_access"]);
    assert!(g.check_access(&next.access_token, t0() + MIN).is_some());
    assert_eq!(next.scope, "read:jira-work offline_access");
}

#[test]
fn live_families_count_only_refreshable_families() {
    let mut g = grants();
    let first = consent(&mut g, t0());
    let second = g.refresh("c", rt(&first), t0() + MIN).unwrap();
    assert_eq!(
        g.live_families("c", t0() + MIN),
        1,
        "rotation keeps one family"
    );
    // Reuse after the leeway kills the family.
    assert!(g.refresh("c", rt(&first), t0() + 20 * MIN).is_err());
    assert_eq!(g.live_families("c", t0() + 20 * MIN), 0);
    assert!(g.refresh("c", rt(&second), t0() + 20 * MIN).is_err());
    // Idle past 90 days.
    let idle = consent(&mut g, t0());
    assert_eq!(g.live_families("c", t0() + 89 * DAY), 1);
    assert_eq!(g.live_families("c", t0() + 91 * DAY), 0);
    assert!(g.refresh("c", rt(&idle), t0() + 91 * DAY).is_err());
    // Without offline_access there is nothing to refresh with.
    let mut g = grants();
    let code = g.issue_code(
        "c",
        "http://cb",
        vec!["read:jira-work".into()],
        &["A".to_owned()],
        t0(),
    );
    g.exchange_code("c", &code, "http://cb", t0()).unwrap();
    assert_eq!(g.live_families("c", t0()), 0);
}

#[test]
fn revocation_ends_the_grant_and_a_new_consent_starts_afresh() {
    let mut g = grants();
    let old = consent_sites(&mut g, &["A", "B"], t0());
    assert_eq!(g.revoke_client("c"), 1);
    assert_eq!(g.live_families("c", t0()), 0);
    assert!(g.sites("c").is_empty());
    let new = consent_sites(&mut g, &["B"], t0() + MIN);
    assert_eq!(g.sites("c"), ["B"]);
    assert!(g.check_access(&old.access_token, t0() + MIN).is_none());
    assert!(g.refresh("c", rt(&old), t0() + MIN).is_err());
    assert_eq!(sites_of(&g, &new.access_token, t0() + MIN), ["B"]);
    assert_eq!(g.live_families("c", t0() + MIN), 1);
}

#[test]
fn every_dead_refresh_token_gets_the_documented_description() {
    let mut g = grants();
    let unknown = g.refresh("c", "fake_rt_nope", t0()).unwrap_err();
    let idle = consent(&mut g, t0());
    let idle = g.refresh("c", rt(&idle), t0() + 91 * DAY).unwrap_err();
    let reused = consent(&mut g, t0());
    g.refresh("c", rt(&reused), t0()).unwrap();
    let reused = g.refresh("c", rt(&reused), t0() + 11 * MIN).unwrap_err();
    for e in [unknown, idle, reused] {
        assert_eq!(e.0, "Unknown or invalid refresh token.");
    }
}
