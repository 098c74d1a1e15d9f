//! Issue 16 (PRIVACY.md P11): an erase while an export is writing leaves nothing. Measured
//! before the fix: `DELETE /tenants/globex` while a batch waited on an attachment answered
//! 200, then the batch wrote the attachment, its item and a state page under `globex/`.
//! Without the runner's own clean-up (shared/src/export/runner/erased.rs) these tests fail
//! with exactly those objects left.

use lambda_http::http::{Method, StatusCode};
use shared::events::ExportRequested;
use shared::export::runner::Outcome;
use shared::ids::TenantId;

use crate::api::{put_connector, start_export, two_tenants};
use crate::connect::{World, dump};
use crate::export_harness::{exporter_for, far};

/// Start globex's export of `jira-main`, hold its first attachment download, send `erase`
/// to the API while it is held, then let the batch go on. Returns the export's outcome.
async fn erase_mid_batch(w: &World, globex: &str, erase: &str) -> Outcome {
    put_connector(w, "globex", globex, "jira-main").await;
    let job = start_export(w, "globex", "jira-main").await;
    let mut exporter = exporter_for(w).await;
    // No lease heartbeat during the test: the batch must go on writing after the erase, as
    // it does in production between two beats.
    exporter.lease_ttl = time::Duration::hours(1);
    // The media host serves the downloads (tests/src/fake/media.rs).
    let hold = w.site.hold("/file/");
    let ev = ExportRequested {
        tenant: TenantId::parse("globex").unwrap_or_else(|e| panic!("{e}")),
        connector_id: "jira-main".parse().unwrap_or_else(|e| panic!("{e:?}")),
        job_id: Some(job.parse().unwrap_or_else(|e| panic!("{e:?}"))),
        full: false,
    };
    let erase = async {
        hold.reached().await;
        if erase == "/tenants/globex" {
            // Asynchronous: run by the export function from the resume queue.
            crate::erase_later::erase_tenant(w, "globex").await;
        } else {
            let (status, json) = w.api(Method::DELETE, erase, None).await;
            assert_eq!(status, StatusCode::OK, "{json}");
        }
        hold.release();
    };
    let (outcome, ()) = tokio::join!(exporter.requested(&ev, far()), erase);
    outcome.unwrap_or_else(|e| panic!("{e}"))
}

async fn objects_under(w: &World, prefix: &str) -> Vec<String> {
    w.aws
        .list_object_versions()
        .await
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_tenant_while_a_batch_waits_on_an_attachment_leaves_nothing() {
    let (w, _, globex) = two_tenants().await;

    let outcome = erase_mid_batch(&w, &globex, "/tenants/globex").await;

    let left = objects_under(&w, "globex/").await;
    assert!(
        left.is_empty(),
        "objects of the erased tenant remain: {left:?}"
    );
    let table = String::from_utf8_lossy(&dump(&w.aws.scan_table().await)).into_owned();
    assert!(
        !table.contains("globex") && !table.contains(&globex),
        "the table still holds something of the erased tenant"
    );
    assert_eq!(outcome, Outcome::Erased);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_connector_while_a_batch_waits_on_an_attachment_leaves_nothing_of_it() {
    let (w, _, globex) = two_tenants().await;

    let outcome = erase_mid_batch(&w, &globex, "/connectors/jira-main?tenant=globex").await;

    let left: Vec<String> = objects_under(&w, "globex/")
        .await
        .into_iter()
        .filter(|k| k.contains("/jira-main/"))
        .collect();
    assert!(
        left.is_empty(),
        "objects of the deleted connector remain: {left:?}"
    );
    let table = String::from_utf8_lossy(&dump(&w.aws.scan_table().await)).into_owned();
    assert!(
        !table.contains("jira-main"),
        "the table still holds the deleted connector or its job"
    );
    // The connection itself stays.
    let (status, _) = w
        .api(
            Method::GET,
            &format!("/connections/{globex}?tenant=globex"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome, Outcome::Erased);
}
