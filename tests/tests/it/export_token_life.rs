//! An export that outlives its access tokens: Atlassian's access tokens last one hour and every
//! refresh rotates the refresh token (ATLASSIAN.md; the fake's `grants.rs` cites the sources).
//! A crashing export whose redeliveries (Lambda's +1 min, +2 min retries and the sweeper, on
//! the clock the test moves) span several token lifetimes refreshes before each expiry, keeps
//! one token family alive, never presents a rotated refresh token again, and delivers the same
//! content as an uninterrupted run.

use std::time::Duration;

use integration_tests::fake::{self, FakeConfig, SeedSpec};
use shared::ids::Product;
use shared::store::ConnectionStatus;
use shared::store::grants::GrantStatus;

use crate::connect::tenant;
use crate::export_harness::{Export, MIB};

/// Atlassian's access-token lifetime ("expires after 1 hour", ATLASSIAN.md).
const ACCESS_TOKEN_LIFE: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_export_spanning_several_token_lifetimes_refreshes_before_each_expiry() {
    // 80 issues, one per batch: room for 46 crashes; each costs about three minutes of the
    // test's clock (Lambda's retries), so the job spans two hours: two token lifetimes.
    let seed = SeedSpec {
        jira_projects: vec![("ALPHA".into(), 80), ("BETA".into(), 10)],
        ..SeedSpec::small()
    };
    let mut config = FakeConfig::default().with_sites(1, seed.with_jira_attachment_of(6 * MIB));
    config.access_token_ttl = ACCESS_TOKEN_LIFE;
    let x = Export::for_product_with(config, Product::Jira)
        .await
        .with_batch_size(1);
    let query = format!("project = {}", x.project);
    let clean = x.connector("jira-clean", &query).await;
    let effort = x.measured_run(&clean).await;
    let crashy = x.connector("jira-crashy", &query).await;
    let started = x.w.site.now();
    let refreshes_before = x.w.site.refresh_grants_served();
    let calls_before = x.w.site.requests().len();

    let crashed = x.run_crashing(&crashy, 46, &effort).await;

    let spanned = (x.w.site.now() - started).unsigned_abs();
    assert!(
        spanned >= 2 * ACCESS_TOKEN_LIFE,
        "the job spanned only {spanned:?} of the test's clock ({crashed:?})"
    );
    let refreshes = x.w.site.refresh_grants_served() - refreshes_before;
    let lifetimes = (spanned.as_secs() / ACCESS_TOKEN_LIFE.as_secs()) as usize;
    assert!(
        refreshes >= lifetimes,
        "{refreshes} refreshes over {spanned:?}: a token outlived its hour"
    );
    // Refreshed ahead of expiry, never after a refusal: no API call was answered 401.
    let refused: Vec<_> = x.w.site.requests()[calls_before..]
        .iter()
        .filter(|r| r.status == Some(401))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        refused.is_empty(),
        "calls made with an expired access token: {refused:?}"
    );
    // Every rotation was kept: no rotated refresh token was presented again (not even within
    // the leeway, which Atlassian would still answer), no token family was killed.
    assert_eq!(
        x.w.site.refresh_tokens_reused(),
        0,
        "a rotated refresh token was reused"
    );
    assert_eq!(
        x.w.site.token_families_killed(),
        0,
        "a token family was killed"
    );
    assert_eq!(
        x.w.site.live_token_families(fake::JIRA_CLIENT_ID),
        1,
        "one token family, alive"
    );
    let connection =
        x.w.store()
            .get_connection(&tenant(), &crashy.connection_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the connection is gone"));
    assert_eq!(
        connection.status,
        ConnectionStatus::Active,
        "never revoked nor lost"
    );
    let grant = crate::refresh::grant_of(&x.w, &connection).await;
    assert_eq!(grant.status, GrantStatus::Active, "the grant never broke");
    assert_eq!(grant.consecutive_failures, 0, "no refresh failed");
    assert_eq!(x.content(&crashy).await, x.content(&clean).await);
}
