//! Issue 5: Jira export. JQL → issues, comments and attachments in S3, redacted, resumable.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::fake::{self, FakeConfig, SeedSpec};
use lambda_http::http::StatusCode;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use shared::atlassian::http::AtlassianHttp;
use shared::blob::BlobStore;
use shared::events::{ExportContinued, ExportRequested};
use shared::export::redact::find_account_ids;
use shared::export::runner::{Exporter, Outcome, new_job_id};
use shared::ids::{ConnectorId, JobId, Product};
use shared::store::connectors::{Connector, ConnectorOptions};
use shared::store::jobs::JobStatus;
use shared::vault::refresh::TokenKeeper;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::connect::{World, tenant};
use crate::support::{LogCapture, fast_policy};

const MIB: u64 = 1024 * 1024;

pub(crate) struct Export {
    pub(crate) w: World,
    pub(crate) exporter: Exporter,
    pub(crate) cloud: String,
    pub(crate) project: String,
    pub(crate) product: Product,
}

impl Export {
    async fn new(seed: SeedSpec) -> Export {
        Export::for_product(seed, Product::Jira).await
    }

    pub(crate) async fn for_product(seed: SeedSpec, product: Product) -> Export {
        let w = World::with_fake(FakeConfig::default().with_sites(1, seed)).await;
        let back = w
            .consent(&w.authorize(product.as_str(), None).await, true)
            .await;
        assert_eq!(w.callback(&back).await.status(), StatusCode::OK);
        let exporter = exporter_for(&w).await;
        let cloud = w.site.cloud_ids()[0].clone();
        let project = match product {
            Product::Jira => w
                .site
                .jira(&cloud)
                .map(|j| j.projects()[0].key.clone())
                .unwrap_or_default(),
            Product::Confluence => w
                .site
                .confluence(&cloud)
                .map(|c| c.spaces()[0].key.clone())
                .unwrap_or_default(),
        };
        Export {
            w,
            exporter,
            cloud,
            project,
            product,
        }
    }

    pub(crate) async fn connector(&self, id: &str, query: &str) -> Connector {
        let conn = self
            .w
            .store()
            .list_connections(&tenant())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let now = OffsetDateTime::now_utc();
        let c = Connector {
            tenant: tenant(),
            id: ConnectorId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            connection_id: conn[0].id.clone(),
            product: self.product,
            query: query.to_owned(),
            options: ConnectorOptions::default(),
            watermark: None,
            active_job: None,
            last_job: None,
            last_full_job: None,
            created_at: now,
            updated_at: now,
        };
        self.w
            .store()
            .put_connector(&c)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn request(&self, connector: &Connector, job: &JobId) -> ExportRequested {
        ExportRequested {
            tenant: tenant(),
            connector_id: connector.id.clone(),
            job_id: Some(job.clone()),
            full: false,
        }
    }

    /// Run a job to its end with a generous deadline.
    pub(crate) async fn run(&self, connector: &Connector) -> (JobId, Outcome) {
        let job = new_job_id();
        let mut outcome = self
            .exporter
            .requested(&self.request(connector, &job), far())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        while outcome == Outcome::Continued {
            outcome = self.continued(&job, far()).await;
        }
        (job, outcome)
    }

    pub(crate) async fn continued(&self, job: &JobId, deadline: Instant) -> Outcome {
        self.exporter
            .continued(
                &ExportContinued {
                    tenant: tenant(),
                    job_id: job.clone(),
                },
                deadline,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every object under a connector's prefix: relative key → sha256 of its content (with the
    /// connector id normalised, since items record their attachments' keys).
    pub(crate) async fn content(&self, connector: &Connector) -> BTreeMap<String, String> {
        let prefix = format!(
            "{}/{}/{}/{}/",
            tenant(),
            self.product,
            self.cloud,
            connector.id
        );
        let keys = self
            .exporter
            .blobs
            .list_keys(&prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = BTreeMap::new();
        for key in keys {
            let rel = key[prefix.len()..].to_owned();
            if rel.starts_with("manifests/") {
                continue;
            }
            let body = self
                .exporter
                .blobs
                .get_bytes(&key)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default();
            let body = String::from_utf8(body.to_vec())
                .map(|s| s.replace(connector.id.as_str(), "CONNECTOR").into_bytes())
                .unwrap_or_else(|e| e.into_bytes());
            out.insert(rel, hex::encode(Sha256::digest(&body)));
        }
        out
    }

    pub(crate) async fn orphaned_uploads(&self) -> usize {
        let out = self
            .w
            .aws
            .clients
            .s3
            .list_multipart_uploads()
            .bucket(&self.w.aws.names.bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        out.uploads().len()
    }
}

/// An exporter over a world, tuned for tests: quick retries, 5-item batches, 2 s job leases.
pub(crate) async fn exporter_for(w: &World) -> Exporter {
    let mut keeper = TokenKeeper::from_config(&w.config, &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    keeper.http = AtlassianHttp::new(fast_policy(), 8).unwrap_or_else(|e| panic!("{e}"));
    Exporter {
        keeper,
        blobs: BlobStore::new(
            w.aws.clients.s3.clone(),
            w.aws.names.bucket.clone(),
            w.aws.kms_key_id.clone(),
        )
        .with_part_size(5 * MIB as usize),
        job_retention: Duration::from_secs(86400),
        lease_ttl: time::Duration::seconds(2),
        deadline_margin: Duration::from_millis(0),
        item_concurrency: 4,
        batch_size: 5,
        incremental_slack: time::Duration::ZERO,
    }
}

pub(crate) fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[tokio::test(flavor = "multi_thread")]
async fn export_delivers_exactly_the_selected_issues_with_all_comments_and_attachments() {
    let x = Export::new(SeedSpec::small().with_jira_attachment_of(12 * MIB)).await;
    let query = format!("project = {}", x.project);
    let connector = x.connector("jira-main", &query).await;

    let (job, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let jira = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    let selected = jira.search(&query).unwrap_or_else(|e| panic!("{e}"));
    let other_project = jira
        .issues()
        .into_iter()
        .filter(|i| i.project_key != x.project)
        .count();
    assert!(
        other_project > 0,
        "the fake must hold issues outside the query"
    );
    let content = x.content(&connector).await;
    let prefix = format!("{}/jira/{}/{}/", tenant(), x.cloud, connector.id);
    for issue in &selected {
        let key = format!("items/{}.json", issue.id);
        if issue.forbidden {
            assert!(
                !content.contains_key(&key),
                "forbidden issue {} exported",
                issue.key
            );
            continue;
        }
        assert!(content.contains_key(&key), "issue {} missing", issue.key);
        let body = x
            .exporter
            .blobs
            .get_bytes(&format!("{prefix}{key}"))
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let comments = doc["fields"]["comment"]["comments"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(comments, issue.comment_count, "comments of {}", issue.key);
        for att_id in &issue.attachment_ids {
            let att = jira
                .attachment(att_id)
                .unwrap_or_else(|| panic!("no attachment {att_id}"));
            let listed = doc["fields"]["attachment"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["id"] == att.id.as_str());
            let exported_key = listed
                .and_then(|a| a["exportedKey"].as_str())
                .map(str::to_owned);
            if att.forbidden {
                assert!(
                    exported_key.is_none(),
                    "forbidden attachment {att_id} exported"
                );
                continue;
            }
            let exported_key = exported_key
                .unwrap_or_else(|| panic!("attachment {att_id} of {} not exported", issue.key));
            let bytes = x
                .exporter
                .blobs
                .get_bytes(&exported_key)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            assert_eq!(bytes.len() as u64, att.size, "size of {att_id}");
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                att.sha256_hex(),
                "content of {att_id}"
            );
        }
    }
    let exported_items = content.keys().filter(|k| k.starts_with("items/")).count();
    assert_eq!(
        exported_items,
        selected.iter().filter(|i| !i.forbidden).count(),
        "nothing outside the query"
    );
    assert!(
        selected.iter().any(|i| i.comment_count > 20),
        "the seed must have an issue with more than 20 comments"
    );
    assert!(
        content.keys().all(|k| !k.starts_with("state/")),
        "job state was left behind"
    );
    assert_eq!(x.orphaned_uploads().await, 0);

    let record =
        x.w.store()
            .get_job(&tenant(), &job)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no job"));
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.items_done as usize, exported_items);
    assert!(
        record.skipped_count > 0,
        "forbidden items are recorded as skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_account_id_remains_in_the_bucket_the_table_or_the_logs() {
    let x = Export::new(SeedSpec::small()).await;
    let connector = x
        .connector("jira-scan", &format!("project = {}", x.project))
        .await;
    let (_, outcome) = x.run(&connector).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");

    let account_ids = x.w.site.account_ids();
    assert!(!account_ids.is_empty());
    let mut corpus = String::new();
    let keys = x
        .exporter
        .blobs
        .list_keys(&format!("{}/", tenant()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for key in &keys {
        let body = x
            .exporter
            .blobs
            .get_bytes(key)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if key.ends_with(".json") {
            corpus.push_str(&String::from_utf8_lossy(&body));
        }
    }
    corpus.push_str(&String::from_utf8_lossy(&crate::connect::dump(
        &x.w.aws.scan_table().await,
    )));
    corpus.push_str(&LogCapture::global().text());
    for id in &account_ids {
        assert!(!corpus.contains(id.as_str()), "account id {id} leaked");
    }
    assert_eq!(find_account_ids(&corpus), Vec::<String>::new());
    let names: Vec<String> =
        x.w.site
            .users()
            .into_iter()
            .map(|u| u.display_name)
            .collect();
    assert!(
        names.iter().any(|n| corpus.contains(n.as_str())),
        "display names must remain"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tiny_deadlines_force_continuations_and_give_the_same_content() {
    let x = Export::new(SeedSpec::small().with_jira_attachment_of(12 * MIB)).await;
    let query = format!("project = {}", x.project);
    let clean = x.connector("jira-clean", &query).await;
    let (_, done) = x.run(&clean).await;
    assert!(matches!(done, Outcome::Completed { .. }));

    let paused = x.connector("jira-paused", &query).await;
    let job = new_job_id();
    let mut outcome = x
        .exporter
        .requested(
            &x.request(&paused, &job),
            Instant::now() + Duration::from_millis(300),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut invocations = 1;
    while outcome == Outcome::Continued {
        let record =
            x.w.store()
                .get_job(&tenant(), &job)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no job"));
        assert_eq!(
            record.status,
            JobStatus::Running,
            "progress is visible while running"
        );
        outcome = x
            .continued(&job, Instant::now() + Duration::from_millis(300))
            .await;
        invocations += 1;
        assert!(invocations < 500, "the export never finished");
    }
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(
        invocations >= 3,
        "only {invocations} invocations: the deadline did not bite"
    );
    assert_eq!(x.content(&paused).await, x.content(&clean).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn crashes_at_random_points_then_redelivery_give_the_same_content() {
    let x = Export::new(SeedSpec::small().with_jira_attachment_of(12 * MIB)).await;
    let query = format!("project = {}", x.project);
    let clean = x.connector("jira-clean", &query).await;
    x.run(&clean).await;

    let crashy = x.connector("jira-crashy", &query).await;
    let job = new_job_id();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut first = true;
    let mut crashes = 0;
    loop {
        let budget = Duration::from_millis(rng.random_range(30..400));
        let attempt = async {
            if first {
                x.exporter.requested(&x.request(&crashy, &job), far()).await
            } else {
                x.exporter
                    .continued(
                        &ExportContinued {
                            tenant: tenant(),
                            job_id: job.clone(),
                        },
                        far(),
                    )
                    .await
            }
        };
        match tokio::time::timeout(budget, attempt).await {
            Err(_) if crashes < 20 => {
                crashes += 1;
                first = false;
                // The crashed invocation's lease must lapse before the re-delivery can run.
                tokio::time::sleep(Duration::from_millis(2100)).await;
            }
            Err(_) => {
                let o = x.continued(&job, far()).await;
                if matches!(o, Outcome::Completed { .. }) {
                    break;
                }
            }
            Ok(Ok(Outcome::Completed { .. })) => break,
            Ok(Ok(_)) => first = false,
            Ok(Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(crashes, 20);
    assert_eq!(x.content(&crashy).await, x.content(&clean).await);
    assert_eq!(
        x.orphaned_uploads().await,
        0,
        "a multipart upload was orphaned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_429_and_5xx_give_the_same_content() {
    let x = Export::new(SeedSpec::small()).await;
    let query = format!("project = {}", x.project);
    let clean = x.connector("jira-clean", &query).await;
    x.run(&clean).await;

    x.w.site.inject(
        fake::Fault::status("/ex/jira/", 429)
            .retry_after(0)
            .probability(0.1),
    );
    x.w.site
        .inject(fake::Fault::status("/ex/jira/", 503).probability(0.1));
    let faulty = x.connector("jira-faulty", &query).await;
    let (_, outcome) = x.run(&faulty).await;
    x.w.site.clear_faults();

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(x.content(&faulty).await, x.content(&clean).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_jql_fails_the_job_with_atlassians_message() {
    let x = Export::new(SeedSpec::small()).await;
    let events = x.w.aws.capture_events().await;
    let connector = x.connector("jira-bad", "project = ").await;

    let (job, outcome) = x.run(&connector).await;

    let Outcome::Failed { reason } = outcome else {
        panic!("expected a failure, got {outcome:?}")
    };
    assert!(reason.contains("rejected the query"), "{reason}");
    let record =
        x.w.store()
            .get_job(&tenant(), &job)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no job"));
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(
        x.w.site.hits("/ex/jira/"),
        1,
        "an invalid query is not retried"
    );
    let failed: Vec<_> = events
        .drain()
        .await
        .into_iter()
        .filter(|(t, _)| t == "ExportFailed")
        .collect();
    assert_eq!(failed.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_run_exports_only_what_changed_and_a_full_run_lists_removed_issues() {
    let x = Export::new(SeedSpec::small()).await;
    let query = format!("project = {}", x.project);
    let connector = x.connector("jira-incr", &query).await;
    let (first, _) = x.run(&connector).await;
    let jira = x.w.site.jira(&x.cloud).unwrap_or_else(|| panic!("no jira"));
    let visible: Vec<_> = jira
        .search(&query)
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.forbidden)
        .collect();
    x.w.site
        .touch_issue(&x.cloud, &visible[0].key)
        .unwrap_or_else(|e| panic!("{e}"));
    x.w.site
        .touch_issue(&x.cloud, &visible[1].key)
        .unwrap_or_else(|e| panic!("{e}"));

    let (second, outcome) = x.run(&connector).await;

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let record =
        x.w.store()
            .get_job(&tenant(), &second)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no job"));
    assert!(!record.full_run);
    assert_eq!(
        record.items_done, 2,
        "only the two changed issues are exported again"
    );

    x.w.site
        .delete_issue(&x.cloud, &visible[2].key)
        .unwrap_or_else(|e| panic!("{e}"));
    let full = ExportRequested {
        tenant: tenant(),
        connector_id: connector.id.clone(),
        job_id: Some(new_job_id()),
        full: true,
    };
    let outcome = x
        .exporter
        .requested(&full, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Outcome::Completed { manifest } = outcome else {
        panic!("{outcome:?}")
    };
    let body = x
        .exporter
        .blobs
        .get_bytes(&manifest)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(manifest["removed"], serde_json::json!([visible[2].id]));
    assert_eq!(manifest["full_run"], true);
    let _ = first;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_connection_fails_the_export_as_revoked() {
    let x = Export::new(SeedSpec::small()).await;
    let connector = x
        .connector("jira-revoked", &format!("project = {}", x.project))
        .await;
    x.w.site.revoke_grants(fake::JIRA_CLIENT_ID);

    let (_, outcome) = x.run(&connector).await;

    let Outcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("revoked"), "{reason}");
}
