//! Issue 4: keep connections alive under rotating refresh tokens, and handle revocation.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use integration_tests::fake;
use lambda_http::http::StatusCode;
use shared::atlassian::http::AtlassianHttp;
use shared::ids::{ConnectionId, TenantId};
use shared::secret::ExposeSecret;
use shared::store::schema;
use shared::store::{Connection, ConnectionStatus};
use shared::vault::refresh::{MAX_CONSECUTIVE_FAILURES, Need, Obtained, TokenError, TokenKeeper};
use time::{Duration, OffsetDateTime};
use token_refresh::{Refresher, RunReport};

use crate::connect::{World, dump, tenant};
use crate::support::fast_policy;

const RETURN_URL: &str = "https://platform.example.com/connect/done";

/// A world with one connected Jira site, and a keeper over it with quick retries.
async fn connected() -> (World, TokenKeeper, Connection) {
    let w = World::new(1).await;
    let back = w
        .consent(&w.authorize("jira", Some(RETURN_URL)).await, true)
        .await;
    assert_eq!(w.callback(&back).await.status(), StatusCode::FOUND);
    let mut keeper = TokenKeeper::from_config(&w.config, &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    keeper.http = AtlassianHttp::new(fast_policy(), 8).unwrap_or_else(|e| panic!("{e}"));
    let conn = current(&w).await;
    (w, keeper, conn)
}

async fn current(w: &World) -> Connection {
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

/// A `now` at which the stored access token counts as expiring.
fn expiring(conn: &Connection) -> OffsetDateTime {
    conn.access_expires_at
        .unwrap_or_else(|| panic!("no expiry"))
}

async fn works(w: &World, token: &shared::secret::Secret) -> bool {
    shared::atlassian::oauth::accessible_resources(&w.callback.http, &w.callback.urls, token)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshers_refresh_exactly_once_per_round() {
    let (w, keeper, _) = connected().await;
    let keeper = Arc::new(keeper);
    for round in 0..20 {
        let conn = current(&w).await;
        let now = expiring(&conn);
        let served_before = w.site.refresh_grants_served();
        // Half are exporters needing a token, half the schedule (which takes its lease in
        // one conditional write): both kinds race for the same lease.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let keeper = keeper.clone();
                let (t, id) = (conn.tenant.clone(), conn.id.clone());
                let need = if i % 2 == 0 {
                    Need::AccessToken
                } else {
                    Need::ScheduledRefresh
                };
                tokio::spawn(async move { keeper.access_token(&t, &id, need, now).await })
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
            tokens.push(token.token.expose_secret().to_owned());
        }
        assert_eq!(
            w.site.refresh_grants_served(),
            served_before + 1,
            "round {round}: refreshes reaching Atlassian"
        );
        assert_eq!(refreshed, 1, "round {round}: callers that refreshed");
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: every caller got the winner's token"
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
    let now = expiring(&conn);
    keeper.store.fail_next_refreshed_writes(6);

    let lost = keeper
        .access_token(&conn.tenant, &conn.id, Need::AccessToken, now)
        .await;

    assert!(matches!(lost, Err(TokenError::Transient(_))), "{lost:?}");
    assert_eq!(w.site.refresh_grants_served(), 1, "Atlassian answered");
    let after = current(&w).await;
    assert_eq!(
        after.envelope, conn.envelope,
        "the old (rotated-out) pair is still stored"
    );
    assert_eq!(
        after.refresh_due_at,
        Some(now),
        "the connection was made due at once"
    );

    // Five minutes later (the lease has lapsed; Atlassian's leeway has not), the next attempt
    // reuses the rotated-out refresh token, which Atlassian still honours.
    w.site.advance_clock(std::time::Duration::from_secs(300));
    let later = now + Duration::minutes(5);
    let (token, obtained) = keeper
        .access_token(&conn.tenant, &conn.id, Need::AccessToken, later)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(obtained, Obtained::Refreshed);
    assert!(works(&w, &token.token).await);
    assert_eq!(
        w.site.token_families_killed(),
        0,
        "the token family survived"
    );
    assert_eq!(current(&w).await.status, ConnectionStatus::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_at_atlassian_deletes_the_tokens_and_announces_it_once() {
    let (w, keeper, conn) = connected().await;
    let events = w.aws.capture_events().await;
    w.site.revoke_grants(fake::JIRA_CLIENT_ID);
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };

    let report = refresher
        .run(
            conn.refresh_due_at
                .unwrap_or_else(|| panic!("not scheduled")),
            far_deadline(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        report,
        RunReport {
            due: 1,
            revoked: 1,
            ..RunReport::default()
        }
    );
    let items = w.aws.scan_table().await;
    let item = items
        .iter()
        .find(|i| i.contains_key("connection_id"))
        .unwrap_or_else(|| panic!("connection gone"));
    for attr in [
        "token_ciphertext",
        "token_key",
        schema::REFRESH_DUE_AT,
        schema::REFRESH_BUCKET,
    ] {
        assert!(!item.contains_key(attr), "{attr} survived revocation");
    }
    assert_eq!(
        item.get("status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("revoked")
    );
    let bytes = dump(&items);
    assert!(!crate::connect::contains(&bytes, fake::ACCESS_TOKEN_PREFIX));

    let published = events.drain().await;
    let revoked: Vec<_> = published
        .iter()
        .filter(|(t, _)| t == "ConnectionRevoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{published:?}");
    assert_eq!(revoked[0].1["connection_id"], conn.id.as_str());
    assert_eq!(revoked[0].1["reason"], "invalid_grant");

    // A second run finds nothing due and publishes nothing more.
    let again = refresher
        .run(
            OffsetDateTime::now_utc() + Duration::days(30),
            far_deadline(),
        )
        .await;
    assert_eq!(again.map(|r| r.due).ok(), Some(0));
    assert!(events.drain().await.is_empty());
    let token = refresher
        .keeper
        .access_token(
            &conn.tenant,
            &conn.id,
            Need::AccessToken,
            OffsetDateTime::now_utc(),
        )
        .await;
    assert!(matches!(token, Err(TokenError::Revoked)));

    // A late second revoker (an export that saw a 401 with the connection as it was before)
    // changes nothing and announces nothing: the event is published once.
    refresher
        .keeper
        .revoke(
            &conn,
            shared::events::RevocationReason::Unauthorized,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(events.drain().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_keep_the_tokens_and_end_in_error_status() {
    let (w, keeper, conn) = connected().await;
    w.site.inject(fake::Fault::status("/oauth/token", 503));
    let now = expiring(&conn);

    for attempt in 1..=MAX_CONSECUTIVE_FAILURES {
        let r = keeper
            .access_token(&conn.tenant, &conn.id, Need::AccessToken, now)
            .await;
        assert!(
            matches!(r, Err(TokenError::Transient(_))),
            "attempt {attempt}: {r:?}"
        );
        let after = current(&w).await;
        assert_eq!(after.envelope, conn.envelope, "tokens untouched");
        assert_eq!(after.consecutive_failures, attempt);
    }
    let after = current(&w).await;
    assert_eq!(after.status, ConnectionStatus::Error);
    assert!(
        after
            .status_reason
            .as_deref()
            .is_some_and(|r| r.contains("503")),
        "{:?}",
        after.status_reason
    );

    // Atlassian recovers: the next refresh succeeds and clears the error.
    w.site.clear_faults();
    let ok = keeper
        .access_token(&conn.tenant, &conn.id, Need::AccessToken, now)
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let healed = current(&w).await;
    assert_eq!(
        (
            healed.status,
            healed.consecutive_failures,
            healed.status_reason
        ),
        (ConnectionStatus::Active, 0, None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn due_selection_reads_exactly_the_due_connections() {
    let w = World::new(1).await;
    let now = OffsetDateTime::now_utc();
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for i in 0..1000 {
        let due = if i % 100 == 7 {
            now - Duration::minutes(i64::from(i % 13))
        } else {
            now + Duration::minutes(1 + i64::from(i))
        };
        let id = format!("conn-synthetic-{i:04}");
        if due <= now {
            expected.push(id.clone());
        }
        let item = [
            (schema::PK, AttributeValue::S("TENANT#bulk".into())),
            (schema::SK, AttributeValue::S(format!("CONN#{id}"))),
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
        .due_connections(now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut got: Vec<String> = due.iter().map(|(_, id)| id.to_string()).collect();
    got.sort();
    expected.sort();
    assert_eq!(expected.len(), 10);
    assert_eq!(got, expected);
    assert!(
        due.iter()
            .all(|(t, _)| *t == TenantId::parse("bulk").unwrap_or_else(|e| panic!("{e}")))
    );
    let _ = ConnectionId::parse("x");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_one_write_lease_is_taken_only_when_due_unleased_and_not_revoked() {
    let (w, keeper, conn) = connected().await;
    let store = w.store();
    let due_at = conn
        .refresh_due_at
        .unwrap_or_else(|| panic!("not scheduled"));
    let ttl = Duration::minutes(2);
    let lease = |owner: &'static str, now: OffsetDateTime| {
        let (store, conn) = (&store, &conn);
        async move {
            store
                .lease_if_due(&conn.tenant, &conn.id, owner, now, ttl)
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
    assert_eq!(leased.version, conn.version, "returned as stored");
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
        .revoke(
            &current(&w).await,
            shared::events::RevocationReason::InvalidGrant,
            due_at,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lease("cccc3333", due_at + Duration::days(1))
            .await
            .is_none(),
        "a revoked connection is off the schedule"
    );
    assert_eq!(w.site.refresh_grants_served(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_refreshes_due_connections_and_skips_the_rest() {
    let (w, keeper, conn) = connected().await;
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };

    let early = refresher
        .run(OffsetDateTime::now_utc(), far_deadline())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        early,
        RunReport::default(),
        "nothing is due right after consent"
    );

    let due_at = conn
        .refresh_due_at
        .unwrap_or_else(|| panic!("not scheduled"));
    let report = refresher
        .run(due_at, far_deadline())
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
    let after = current(&w).await;
    assert!(after.version > conn.version && after.refresh_due_at > conn.refresh_due_at);
    assert_eq!(w.site.refresh_grants_served(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn near_the_deadline_no_new_refresh_starts() {
    let (w, keeper, conn) = connected().await;
    let refresher = Refresher {
        keeper,
        concurrency: 4,
    };
    let due_at = conn
        .refresh_due_at
        .unwrap_or_else(|| panic!("not scheduled"));

    let report = refresher
        .run(
            due_at,
            tokio::time::Instant::now() + std::time::Duration::from_secs(5),
        )
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_shows_when_reconsent_is_needed() {
    let (_w, _keeper, conn) = connected().await;
    assert_eq!(
        conn.reconsent_due_at(),
        conn.consented_at + Duration::days(365)
    );
}

fn far_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(600)
}
