//! Keep grants alive under rotating refresh tokens, and handle revocation (issues 4 and 13).
//! One token family per grant; the time comes from a clock the tests move together with the
//! fake site's.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use integration_tests::fake;
use lambda_http::http::StatusCode;
use shared::atlassian::http::AtlassianHttp;
use shared::atlassian::outbound::Outbound;
use shared::clock::Clock;
use shared::ids::{GrantId, TenantId};
use shared::secret::ExposeSecret;
use shared::store::grants::{Due, KEEPALIVE};
use shared::store::schema;
use shared::store::{Connection, ConnectionStatus, Grant, GrantStatus};
use shared::vault::refresh::{MAX_CONSECUTIVE_FAILURES, Obtained, TokenError, TokenKeeper};
use time::Duration;
use token_refresh::{Refresher, RunReport};

use crate::connect::{World, dump, tenant};
use crate::support::fast_policy;

const RETURN_URL: &str = "https://platform.example.com/connect/done";

/// A keeper over `w` with quick retries and a clock the test moves (see [`advance`]).
pub(crate) async fn keeper(w: &World) -> TokenKeeper {
    let mut keeper = TokenKeeper::from_config(&w.config, &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    keeper.http = AtlassianHttp::new(fast_policy(), 8, Outbound::loopback())
        .unwrap_or_else(|e| panic!("{e}"));
    keeper.clock = Clock::adjustable();
    keeper.persist_window = std::time::Duration::from_secs(3);
    keeper
}

/// Move the fake site's clock and the keeper's clock forward together.
pub(crate) fn advance(w: &World, keeper: &TokenKeeper, by: Duration) {
    w.site
        .advance_clock(std::time::Duration::try_from(by).unwrap_or_default());
    keeper.clock.advance(by);
}

/// Move both clocks to just past `t` (if they are not there yet).
pub(crate) fn advance_to(w: &World, keeper: &TokenKeeper, t: time::OffsetDateTime) {
    let by = t - keeper.now() + Duration::seconds(1);
    if by > Duration::ZERO {
        advance(w, keeper, by);
    }
}

/// A world with one connected Jira site, and a keeper over it.
async fn connected() -> (World, TokenKeeper, Connection) {
    let w = World::new(1).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, true)
        .await;
    assert_eq!(w.callback(&back).await.status(), StatusCode::FOUND);
    let keeper = keeper(&w).await;
    let conn = current(&w).await;
    (w, keeper, conn)
}

pub(crate) async fn current(w: &World) -> Connection {
    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conns
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no connection"))
}

pub(crate) async fn grant_of(w: &World, conn: &Connection) -> Grant {
    let id = conn
        .grant_id
        .clone()
        .unwrap_or_else(|| panic!("connection {} has no grant", conn.id));
    w.store()
        .get_grant(&conn.tenant, &id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("grant {id} gone"))
}

/// Move both clocks to just inside the access token's refresh margin.
async fn make_expiring(w: &World, keeper: &TokenKeeper, grant: &Grant) {
    let exp = grant
        .access_expires_at
        .unwrap_or_else(|| panic!("no expiry"));
    let by = exp - keeper.now() - Duration::minutes(1);
    if by > Duration::ZERO {
        advance(w, keeper, by);
    }
}

async fn works(w: &World, token: &shared::secret::Secret) -> bool {
    shared::atlassian::oauth::accessible_resources(&w.callback.http, &w.callback.urls, token)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshers_refresh_a_grant_exactly_once_per_round() {
    let (w, keeper, conn) = connected().await;
    let keeper = Arc::new(keeper);
    let grant_id = conn.grant_id.clone().unwrap_or_else(|| panic!("no grant"));
    for round in 0..20 {
        let grant = grant_of(&w, &conn).await;
        // Each round the access token is about to expire (exporters refresh) and the
        // keep-alive is due (the schedule refreshes): both kinds race for the same lease.
        make_expiring(&w, &keeper, &grant).await;
        let due = grant
            .refresh_due_at
            .unwrap_or_else(|| panic!("not scheduled"));
        advance_to(&w, &keeper, due);
        let served_before = w.site.refresh_grants_served();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let keeper = keeper.clone();
                let (t, id, g) = (conn.tenant.clone(), conn.id.clone(), grant_id.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        keeper
                            .for_connection(&t, &id)
                            .await
                            .map(|(_, token, o)| (Some(token.token), o))
                    } else {
                        keeper
                            .keep_alive(&Due::Grant(t, g))
                            .await
                            .map(|o| (None, o))
                    }
                })
            })
            .collect();
        let mut tokens = Vec::new();
        let mut refreshed = 0;
        for task in tasks {
            let (token, obtained) = task
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            refreshed += usize::from(obtained == Obtained::Refreshed);
            tokens.extend(token.map(|t| t.expose_secret().to_owned()));
        }
        assert_eq!(
            w.site.refresh_grants_served(),
            served_before + 1,
            "round {round}: refreshes reaching Atlassian"
        );
        assert_eq!(refreshed, 1, "round {round}: callers that refreshed");
        tokens.sort();
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: every exporter got the winner's token"
        );
        assert!(
            works(&w, &shared::secret::secret(tokens[0].clone())).await,
            "round {round}: the token works"
        );
    }
    assert_eq!(w.site.token_families_killed(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_whose_write_fails_recovers_the_family_within_the_leeway() {
    let (w, keeper, conn) = connected().await;
    let before = grant_of(&w, &conn).await;
    make_expiring(&w, &keeper, &before).await;
    keeper.store.fail_next_refreshed_writes(1000);

    let lost = keeper.for_connection(&conn.tenant, &conn.id).await;

    assert!(matches!(lost, Err(TokenError::Transient(_))), "{lost:?}");
    assert_eq!(w.site.refresh_grants_served(), 1, "Atlassian answered");
    let after = grant_of(&w, &conn).await;
    assert_eq!(
        after.envelope, before.envelope,
        "the old (rotated-out) pair is still stored"
    );
    assert!(
        after.refresh_due_at.is_some_and(|d| d <= keeper.now()),
        "the grant was made due at once"
    );
    assert!(
        after.access_expires_at.is_some_and(|d| d <= keeper.now()),
        "its access token counts as expired"
    );

    // Minutes later (Atlassian's 10-minute leeway has not passed), the next caller reuses the
    // rotated-out refresh token, which Atlassian still honours.
    keeper.store.fail_next_refreshed_writes(0);
    advance(&w, &keeper, Duration::minutes(2));
    let (_, token, obtained) = keeper
        .for_connection(&conn.tenant, &conn.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(obtained, Obtained::Refreshed);
    assert!(works(&w, &token.token).await);
    assert_eq!(
        w.site.token_families_killed(),
        0,
        "the token family survived"
    );
    assert_eq!(grant_of(&w, &conn).await.status, GrantStatus::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_grant_deletes_the_tokens_revokes_every_connection_and_announces_each_once() {
    let w = World::new(2).await;
    let authorize = w.authorize("jira", Some(RETURN_URL)).await;
    let back = w.consent(&authorize, true).await;
    let chosen = w.choose_all(&back).await;
    assert_eq!(chosen.len(), 2);
    let keeper = keeper(&w).await;
    let conn = current(&w).await;
    let grant_id = conn.grant_id.clone().unwrap_or_else(|| panic!("no grant"));
    let events = w.aws.capture_events().await;
    w.site.revoke_grants(fake::JIRA_CLIENT_ID);
    advance(&w, &keeper, KEEPALIVE + Duration::minutes(1));
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };

    let report = refresher
        .run(far_deadline())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        report,
        RunReport {
            due: 1,
            revoked: 1,
            ..RunReport::default()
        },
        "one grant, refreshed once"
    );
    let items = w.aws.scan_table().await;
    let grant_item = items
        .iter()
        .find(|i| i.contains_key("grant_id") && !i.contains_key("connection_id"))
        .unwrap_or_else(|| panic!("grant item gone"));
    for attr in [
        "token_ciphertext",
        "token_key",
        schema::REFRESH_DUE_AT,
        schema::REFRESH_BUCKET,
    ] {
        assert!(!grant_item.contains_key(attr), "{attr} survived revocation");
    }
    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 2);
    assert!(conns.iter().all(|c| c.status == ConnectionStatus::Revoked));
    let bytes = dump(&items);
    assert!(!crate::connect::contains(&bytes, fake::ACCESS_TOKEN_PREFIX));

    let published = events.drain().await;
    let mut revoked: Vec<String> = published
        .iter()
        .filter(|(t, _)| t == "ConnectionRevoked")
        .map(|(_, d)| {
            assert_eq!(d["reason"], "invalid_grant");
            d["connection_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    revoked.sort();
    let mut ids: Vec<String> = conns.iter().map(|c| c.id.to_string()).collect();
    ids.sort();
    assert_eq!(revoked, ids, "one event per connection: {published:?}");

    // A second run finds nothing due; a late second revoker changes and announces nothing.
    advance(&w, &refresher.keeper, Duration::days(30));
    assert_eq!(
        refresher.run(far_deadline()).await.map(|r| r.due).ok(),
        Some(0)
    );
    refresher
        .keeper
        .revoke_grant(
            &tenant(),
            &grant_id,
            shared::events::RevocationReason::InvalidGrant,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(events.drain().await.is_empty());
    let token = refresher
        .keeper
        .for_connection(&conn.tenant, &conn.id)
        .await;
    assert!(matches!(token, Err(TokenError::Revoked)), "{token:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_keep_the_tokens_and_end_in_error_status() {
    let (w, keeper, conn) = connected().await;
    w.site.inject(fake::Fault::status("/oauth/token", 503));
    let before = grant_of(&w, &conn).await;
    make_expiring(&w, &keeper, &before).await;

    for attempt in 1..=MAX_CONSECUTIVE_FAILURES {
        let r = keeper.for_connection(&conn.tenant, &conn.id).await;
        assert!(
            matches!(r, Err(TokenError::Transient(_))),
            "attempt {attempt}: {r:?}"
        );
        let after = grant_of(&w, &conn).await;
        assert_eq!(after.envelope, before.envelope, "tokens untouched");
        assert_eq!(after.consecutive_failures, attempt);
    }
    let after = grant_of(&w, &conn).await;
    assert_eq!(after.status, GrantStatus::Error);
    assert!(
        after
            .status_reason
            .as_deref()
            .is_some_and(|r| r.contains("503")),
        "{:?}",
        after.status_reason
    );
    assert_eq!(current(&w).await.status, ConnectionStatus::Active);

    // Atlassian recovers: the next refresh succeeds and clears the error.
    w.site.clear_faults();
    let ok = keeper.for_connection(&conn.tenant, &conn.id).await;
    assert!(ok.is_ok(), "{ok:?}");
    let healed = grant_of(&w, &conn).await;
    assert_eq!(
        (
            healed.status,
            healed.consecutive_failures,
            healed.status_reason
        ),
        (GrantStatus::Active, 0, None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn due_selection_reads_exactly_the_due_grants() {
    let w = World::new(1).await;
    let now = time::OffsetDateTime::now_utc();
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for i in 0..1000 {
        let due = if i % 100 == 7 {
            now - Duration::minutes(i64::from(i % 13))
        } else {
            now + Duration::minutes(1 + i64::from(i))
        };
        let id = format!("grant-synthetic-{i:04}");
        if due <= now {
            expected.push(id.clone());
        }
        let item = [
            (schema::PK, AttributeValue::S("TENANT#bulk".into())),
            (schema::SK, AttributeValue::S(format!("GRANT#{id}"))),
            (schema::REFRESH_BUCKET, AttributeValue::S("active".into())),
            (
                schema::REFRESH_DUE_AT,
                AttributeValue::N(due.unix_timestamp().to_string()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        requests.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .unwrap_or_else(|e| panic!("{e}")),
                )
                .build(),
        );
    }
    for chunk in requests.chunks(25) {
        w.aws
            .clients
            .dynamodb
            .batch_write_item()
            .request_items(&w.aws.names.table, chunk.to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    let due = w
        .store()
        .due_for_refresh(now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let bulk = TenantId::parse("bulk").unwrap_or_else(|e| panic!("{e}"));
    let mut got: Vec<String> = due
        .iter()
        .map(|d| match d {
            Due::Grant(t, id) if *t == bulk => id.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(expected.len(), 10);
    assert_eq!(got, expected);
    let _ = GrantId::parse("x");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_one_write_lease_is_taken_only_when_due_unleased_and_not_revoked() {
    let (w, keeper, conn) = connected().await;
    let store = w.store();
    let grant = grant_of(&w, &conn).await;
    let due_at = grant
        .refresh_due_at
        .unwrap_or_else(|| panic!("not scheduled"));
    let ttl = Duration::minutes(2);
    let lease = |owner: &'static str, now: time::OffsetDateTime| {
        let (store, grant) = (&store, &grant);
        async move {
            store
                .lease_grant_if_due(&grant.tenant, &grant.id, owner, now, ttl)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };

    assert!(
        lease("aaaa1111", due_at - Duration::seconds(1))
            .await
            .is_none(),
        "not due yet"
    );
    let leased = lease("aaaa1111", due_at)
        .await
        .unwrap_or_else(|| panic!("due and unleased: the lease is granted"));
    assert_eq!(leased.version, grant.version, "returned as stored");
    assert!(
        lease("bbbb2222", due_at).await.is_none(),
        "another holder's lease is respected"
    );
    assert!(
        lease("bbbb2222", due_at + ttl + Duration::seconds(1))
            .await
            .is_some(),
        "an expired lease is taken over"
    );
    keeper
        .revoke_grant(
            &grant.tenant,
            &grant.id,
            shared::events::RevocationReason::InvalidGrant,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lease("cccc3333", due_at + Duration::days(1))
            .await
            .is_none(),
        "a revoked grant is off the schedule"
    );
    assert_eq!(w.site.refresh_grants_served(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_keeps_grants_alive_weekly_and_skips_the_rest() {
    let (w, keeper, conn) = connected().await;
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };
    let grant = grant_of(&w, &conn).await;

    let early = refresher
        .run(far_deadline())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        early,
        RunReport::default(),
        "nothing is due right after consent"
    );
    // An expiring access token alone does not make the schedule rotate the family.
    advance(&w, &refresher.keeper, Duration::hours(6));
    assert_eq!(
        refresher.run(far_deadline()).await.ok(),
        Some(RunReport::default())
    );

    let due_at = grant
        .refresh_due_at
        .unwrap_or_else(|| panic!("not scheduled"));
    assert_eq!(
        due_at,
        grant.last_refreshed_at.unwrap_or(due_at) + KEEPALIVE
    );
    advance_to(&w, &refresher.keeper, due_at);
    let report = refresher
        .run(far_deadline())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report,
        RunReport {
            due: 1,
            refreshed: 1,
            ..RunReport::default()
        }
    );
    let after = grant_of(&w, &conn).await;
    assert!(after.version > grant.version && after.refresh_due_at > grant.refresh_due_at);
    assert_eq!(w.site.refresh_grants_served(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn near_the_deadline_no_new_refresh_starts() {
    let (w, keeper, conn) = connected().await;
    let grant = grant_of(&w, &conn).await;
    advance(&w, &keeper, KEEPALIVE + Duration::minutes(1));
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };

    let report = refresher
        .run(tokio::time::Instant::now() + std::time::Duration::from_secs(5))
        .await;

    assert_eq!(
        report.ok(),
        Some(RunReport {
            due: 1,
            deferred: 1,
            ..RunReport::default()
        })
    );
    assert_eq!(w.site.refresh_grants_served(), 0);
    let _ = grant;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_shows_when_reconsent_is_needed() {
    let (w, _keeper, conn) = connected().await;
    let grant = grant_of(&w, &conn).await;
    assert_eq!(
        grant.reconsent_due_at(),
        grant.consented_at + Duration::days(365)
    );
}

fn far_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(600)
}
