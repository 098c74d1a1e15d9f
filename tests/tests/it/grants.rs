//! Issue 13: one token family per grant in practice — connections written before grants
//! existed migrate, idempotently, into a grant and connections pointing to it.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::fake::{FakeConfig, SeedSpec};
use shared::ids::{CloudId, Product};
use shared::secret::ExposeSecret;
use shared::store::connection_id;
use shared::store::connections::{CONNECTION_ATTRIBUTES, LEGACY_TOKEN_ATTRIBUTES};
use shared::store::grants::Due;
use shared::vault::{EnvelopeContext, EnvelopeOwner};
use time::OffsetDateTime;

use crate::connect::{World, tenant};
use crate::refresh::keeper;
use crate::support::{fast_policy, http, jira_tokens};

/// Write a connection item exactly as the code before grants did: its own sealed copy of the
/// consent's tokens, under an encryption context naming the connection, on the refresh index.
async fn write_legacy_connection(w: &World, cloud: &str, tokens: &shared::vault::TokenPair) {
    let cloud_id = CloudId::parse(cloud).unwrap_or_else(|e| panic!("{e}"));
    let id = connection_id(&tenant(), Product::Jira, &cloud_id);
    let ctx = EnvelopeContext {
        tenant: tenant(),
        owner: EnvelopeOwner::LegacyConnection(id.clone()),
        product: Product::Jira,
    };
    let envelope = w
        .vault()
        .seal(&ctx, tokens)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    let item = [
        ("pk", s(&format!("TENANT#{}", tenant()))),
        ("sk", s(&format!("CONN#{id}"))),
        ("tenant", s(tenant().as_str())),
        ("connection_id", s(id.as_str())),
        ("product", s("jira")),
        ("cloud_id", s(cloud)),
        (
            "site_url",
            s(&format!("https://{cloud}.example.atlassian.net")),
        ),
        ("status", s("active")),
        ("scope", s("read:jira-work read:jira-user offline_access")),
        ("token_type", s("Bearer")),
        ("access_expires_at", n(now + 3600)),
        (
            "token_ciphertext",
            AttributeValue::B(envelope.ciphertext.into()),
        ),
        (
            "token_key",
            AttributeValue::B(envelope.encrypted_key.into()),
        ),
        ("envelope_version", n(i64::from(envelope.version))),
        ("version", n(3)),
        ("created_at", n(now - 86_400)),
        ("updated_at", n(now - 60)),
        ("consented_at", n(now - 86_400)),
        ("last_refreshed_at", n(now - 60)),
        ("consecutive_failures", n(0)),
        ("refresh_bucket", s("active")),
        ("refresh_due_at", n(now - 1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    w.aws
        .clients
        .dynamodb
        .put_item()
        .table_name(&w.aws.names.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_connections_sharing_one_consent_migrate_into_one_grant_idempotently() {
    let w = World::with_fake(FakeConfig::default().with_sites(2, SeedSpec::small())).await;
    // One consent whose tokens the old code copied onto one connection per site.
    let issued = jira_tokens(&w.site, &http(fast_policy())).await;
    crate::support::remember_secret(issued.tokens.access_token.expose_secret());
    let clouds = w.site.cloud_ids();
    for cloud in &clouds {
        write_legacy_connection(&w, cloud, &issued.tokens).await;
    }
    let keeper = keeper(&w).await;
    let first = connection_id(
        &tenant(),
        Product::Jira,
        &CloudId::parse(clouds[0].clone()).unwrap_or_else(|e| panic!("{e}")),
    );

    // The schedule finds the legacy items on the refresh index and migrates them; an export
    // reading the connection migrates too. Both at once, and twice over: one grant results.
    let due = keeper
        .store
        .due_for_refresh(keeper.now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        due.iter()
            .filter(|d| matches!(d, Due::LegacyConnection(..)))
            .count(),
        2
    );
    let acme = tenant();
    let (a, b) = tokio::join!(
        keeper.keep_alive(&due[0]),
        keeper.for_connection(&acme, &first)
    );
    a.unwrap_or_else(|e| panic!("{e}"));
    let (_, token, _) = b.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        token.token.expose_secret(),
        issued.tokens.access_token.expose_secret(),
        "the consent's own token, moved, not refreshed"
    );
    keeper
        .keep_alive(&due[1])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let conns = w
        .store()
        .list_connections(&tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 2);
    assert!(conns[0].grant_id.is_some());
    assert_eq!(
        conns[0].grant_id, conns[1].grant_id,
        "one grant for one consent"
    );
    let items = w.aws.scan_table().await;
    for item in items.iter().filter(|i| i.contains_key("connection_id")) {
        for name in item.keys() {
            assert!(
                CONNECTION_ATTRIBUTES.contains(&name.as_str()),
                "{name} left on a migrated connection"
            );
            assert!(!LEGACY_TOKEN_ATTRIBUTES.contains(&name.as_str()));
        }
    }
    assert_eq!(
        items
            .iter()
            .filter(|i| i.contains_key("token_ciphertext"))
            .count(),
        1,
        "one sealed token family"
    );
    assert_eq!(
        w.site.refresh_grants_served(),
        0,
        "migration spends no refresh"
    );
    // The migrated grant works for both sites and is kept alive weekly from now on.
    for c in &conns {
        let (_, t, _) = keeper
            .for_connection(&c.tenant, &c.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.token.expose_secret(),
            issued.tokens.access_token.expose_secret()
        );
    }
}
