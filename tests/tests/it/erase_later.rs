//! Issue 16 (PRIVACY.md P11): an export invocation killed (Lambda timeout, out of memory)
//! after writing under an erased prefix and before its own clean-up
//! (shared/src/export/runner/erased.rs) leaves objects that nothing in the table leads back
//! to. Two things remove them (shared/src/erase/later.rs): the retry of the killed
//! invocation's event, and the erase's delayed re-sweep on the resume queue. And the tenant
//! erase runs asynchronously, through the same queue.
//!
//! The kill is deterministic: the writer's S3 client goes through a proxy (s3_hold.rs) that
//! never answers the first request of its clean-up (ListMultipartUploads on the connector's
//! root); the invocation is dropped there, after every write and before any delete.

use std::future::Future;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use shared::blob::BlobStore;
use shared::events::{ExportContinued, ExportRequested};
use shared::export::runner::{Exporter, Outcome};
use shared::ids::TenantId;

use crate::api::{put_connector, run_requested, start_export, two_tenants};
use crate::connect::World;
use crate::export_harness::{MIB, exporter_for, far};
use crate::s3_hold::S3Hold;

/// The clean-up's first request: ListMultipartUploads (`GET /{bucket}?uploads&prefix=…`) on
/// the connector's root (`…/jira-main/`); the runner's own listings are under
/// `…/jira-main/attachments/`.
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html>
fn root_uploads_listing(method: &http::Method, path_and_query: &str) -> bool {
    let Some((_, query)) = path_and_query.split_once('?') else {
        return false;
    };
    let params: Vec<&str> = query.split('&').collect();
    method == http::Method::GET
        && params.iter().any(|p| *p == "uploads" || *p == "uploads=")
        && params.iter().any(|p| {
            p.strip_prefix("prefix=").is_some_and(|v| {
                v.replace("%2F", "/")
                    .replace("%2f", "/")
                    .ends_with("/jira-main/")
            })
        })
}

/// Every object version and delete marker under `prefix`.
pub(crate) async fn versions_under(w: &World, prefix: &str) -> Vec<String> {
    let out = w
        .aws
        .clients
        .s3
        .list_object_versions()
        .bucket(&w.aws.names.bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let versions = out.versions().iter().filter_map(|v| v.key());
    let markers = out.delete_markers().iter().filter_map(|m| m.key());
    versions.chain(markers).map(str::to_owned).collect()
}

/// The other tenant's connection is still there.
async fn acme_untouched(w: &World) {
    let (status, json) = w.api(Method::GET, "/connections?tenant=acme", None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["connections"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
}

/// What Lambda's event source mapping takes from the resume queue: every visible message
/// (removed from the queue), as bodies.
pub(crate) async fn take_queue(w: &World) -> Vec<String> {
    let sqs = &w.aws.clients.sqs;
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&w.aws.resume_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.extend(m.body().map(str::to_owned));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&w.aws.resume_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"));
            }
        }
    }
}

/// Hand `bodies` to the export function as one SQS event; none may fail.
pub(crate) async fn deliver(exporter: &Exporter, bodies: &[String]) {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| serde_json::json!({ "messageId": format!("m{i}"), "body": b, "eventSource": "aws:sqs" }))
        .collect();
    // Boxed: the handler's future is large (debug builds, test threads' stacks).
    let answer = Box::pin(export::handle(
        exporter,
        serde_json::json!({ "Records": records }),
        far(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
}

/// `DELETE /tenants/{tenant}` (202), then the queued erase delivered to the export function.
/// Returns `GET /tenants/{tenant}/erasure` after it.
pub(crate) async fn erase_tenant(w: &World, tenant: &str) -> serde_json::Value {
    let (status, json) = w
        .api(Method::DELETE, &format!("/tenants/{tenant}"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["state"], "running", "{json}");
    let status_url = format!("/tenants/{tenant}/erasure");
    assert_eq!(json["status"], status_url.as_str(), "{json}");
    let (status, running) = w.api(Method::GET, &status_url, None).await;
    assert_eq!(status, StatusCode::OK, "{running}");
    assert_eq!(running["state"], "running", "{running}");
    let bodies = take_queue(w).await;
    assert!(
        bodies.iter().any(|b| b.starts_with(r#"{"erase_tenant":"#)),
        "{bodies:?}"
    );
    // The export function's own sends (the erase's re-sweep) visible at once too: the test
    // takes them from the queue instead of waiting 15 minutes.
    let mut exporter = exporter_for(w).await;
    exporter.resumer = exporter.resumer.clone().with_delay_cap(0);
    Box::pin(deliver(&exporter, &bodies)).await;
    let (status, done) = w.api(Method::GET, &status_url, None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "done", "{done}");
    done
}

/// globex's export of `jira-main` is held on its first attachment download; `erase` runs;
/// the download goes on, the batch writes after the erase's sweeps, and the invocation is
/// killed at the first request of its clean-up. Returns the job id.
async fn killed_after_writing<F: Future<Output = ()>>(w: &World, globex: &str, erase: F) -> String {
    put_connector(w, "globex", globex, "jira-main").await;
    let job = start_export(w, "globex", "jira-main").await;
    let mut exporter = exporter_for(w).await;
    // No lease heartbeat during the test: the batch goes on writing after the erase, as it
    // does in production between two beats.
    exporter.lease_ttl = time::Duration::hours(1);
    let s3 = S3Hold::start(&w.aws, root_uploads_listing).await;
    exporter.blobs = BlobStore::new(
        s3.client(),
        w.aws.names.bucket.clone(),
        w.aws.kms_key_id.clone(),
    )
    .with_part_size(5 * MIB as usize);
    // The media host serves the downloads (tests/src/fake/media.rs).
    let download = w.site.hold("/file/");
    let ev = ExportRequested {
        tenant: TenantId::parse("globex").unwrap_or_else(|e| panic!("{e}")),
        connector_id: "jira-main".parse().unwrap_or_else(|e| panic!("{e:?}")),
        job_id: Some(job.parse().unwrap_or_else(|e| panic!("{e:?}"))),
        full: false,
    };
    let invocation = Box::pin(exporter.requested(&ev, far()));
    let erase = Box::pin(erase);
    let script = async {
        download.reached().await;
        erase.await;
        download.release();
        s3.reached().await;
    };
    tokio::select! {
        ended = invocation => panic!("the invocation ended instead of being killed: {ended:?}"),
        () = script => {}
    }
    // The invocation is dropped here: killed.
    job
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_of_a_killed_writers_event_sweeps_what_it_left_after_a_connection_erase() {
    let (w, _, globex) = two_tenants().await;
    let erase = async {
        let (status, json) = w
            .api(
                Method::DELETE,
                &format!("/connections/{globex}?tenant=globex"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    };
    let job = killed_after_writing(&w, &globex, erase).await;
    let left = versions_under(&w, "globex/").await;
    assert!(
        !left.is_empty(),
        "the killed writer left nothing: the test does not reproduce the gap"
    );

    // An event from before issue 16 names no connector: it still parses and answers, and
    // cannot know what to sweep (the delayed re-sweep covers it).
    let tenant = TenantId::parse("globex").unwrap_or_else(|e| panic!("{e}"));
    let job = job.parse().unwrap_or_else(|e| panic!("{e:?}"));
    let old: ExportContinued =
        serde_json::from_value(serde_json::json!({ "tenant": "globex", "job_id": job }))
            .unwrap_or_else(|e| panic!("{e}"));
    let exporter = exporter_for(&w).await;
    let outcome = Box::pin(exporter.continued(&old, far())).await;
    assert_eq!(
        outcome.unwrap_or_else(|e| panic!("{e}")),
        Outcome::AlreadyFinished
    );

    // Lambda's retry of the killed invocation's event: the job is gone, a tombstone covers
    // its connector (its connection is gone too: the site is found by listing).
    let retry = ExportContinued {
        tenant,
        job_id: job,
        connector_id: Some("jira-main".parse().unwrap_or_else(|e| panic!("{e:?}"))),
    };
    let outcome = Box::pin(exporter.continued(&retry, far())).await;
    assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), Outcome::Erased);
    let left = versions_under(&w, "globex/").await;
    assert!(left.is_empty(), "the retry left objects: {left:?}");
    acme_untouched(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delayed_resweep_removes_what_a_killed_writer_left_after_a_tenant_erase() {
    let (w, _, globex) = two_tenants().await;
    let erase = async {
        let done = erase_tenant(&w, "globex").await;
        assert!(
            done["erased"]["objects"].as_u64().unwrap_or(0) > 0,
            "{done}"
        );
    };
    killed_after_writing(&w, &globex, erase).await;
    let left = versions_under(&w, "globex/").await;
    assert!(
        !left.is_empty(),
        "the killed writer left nothing: the test does not reproduce the gap"
    );

    // The erase sent one re-sweep, due 900 s after it (visible at once here: the test's
    // queue delays are capped, and the due time is on the clock the test moves).
    let bodies = take_queue(&w).await;
    let sweeps: Vec<&String> = bodies
        .iter()
        .filter(|b| b.starts_with(r#"{"sweep":"#))
        .collect();
    assert_eq!(sweeps.len(), 1, "{bodies:?}");
    let sweep = vec![sweeps[0].clone()];
    let exporter = exporter_for(&w).await;
    // Delivered early: sent on with the delay left, nothing swept yet.
    deliver(&exporter, &sweep).await;
    assert_eq!(versions_under(&w, "globex/").await, left);

    w.site.advance_clock(Duration::from_secs(901));
    deliver(&exporter, &sweep).await;
    let left = versions_under(&w, "globex/").await;
    assert!(left.is_empty(), "the re-sweep left objects: {left:?}");
    // Idempotent: once more removes nothing and fails nothing.
    deliver(&exporter, &sweep).await;
    acme_untouched(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delayed_resweep_spares_a_tenant_that_came_back() {
    let (w, _, globex) = two_tenants().await;
    put_connector(&w, "globex", &globex, "jira-main").await;
    let job = start_export(&w, "globex", "jira-main").await;
    run_requested(&w, "globex", "jira-main", &job).await;
    let before = versions_under(&w, "globex/").await;
    let site = before
        .first()
        .and_then(|k| k.split_once("/jira-main/"))
        .map(|(site, _)| site.to_owned())
        .unwrap_or_else(|| panic!("no export of globex: {before:?}"));
    erase_tenant(&w, "globex").await;
    let sweep: Vec<String> = take_queue(&w)
        .await
        .into_iter()
        .filter(|b| b.starts_with(r#"{"sweep":"#))
        .collect();
    assert_eq!(sweep.len(), 1, "{sweep:?}");

    // globex connects the same site again and exports the same connector again; an object of
    // a connector it did not create again is left over (as by a killed writer).
    let back = w
        .consent(&w.authorize_for("globex", "jira", None).await, true)
        .await;
    assert_eq!(w.callback(&back).await.status(), StatusCode::OK);
    put_connector(&w, "globex", &globex, "jira-main").await;
    let job = start_export(&w, "globex", "jira-main").await;
    run_requested(&w, "globex", "jira-main", &job).await;
    let leftover = format!("{site}/jira-old/items/1.json");
    w.aws
        .clients
        .s3
        .put_object()
        .bucket(&w.aws.names.bucket)
        .key(&leftover)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let live = versions_under(&w, &format!("{site}/jira-main/")).await;
    assert!(!live.is_empty());

    w.site.advance_clock(Duration::from_secs(901));
    deliver(&exporter_for(&w).await, &sweep).await;
    assert_eq!(
        versions_under(&w, &format!("{site}/jira-main/")).await,
        live,
        "the re-sweep removed the live connector's objects"
    );
    assert!(
        versions_under(&w, &format!("{site}/jira-old/"))
            .await
            .is_empty(),
        "the re-sweep left the erased connector's leftover"
    );
}
