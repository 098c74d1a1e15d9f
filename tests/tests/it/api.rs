//! Issue 7: the connectors API — routes, validation, tenant isolation, exports through the
//! API, and erase (PRIVACY.md P11).

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use shared::blob::BlobStore;
use shared::events::ExportRequested;
use shared::export::runner::Outcome;
use shared::ids::TenantId;

use crate::connect::{World, dump};
use crate::export_harness::{exporter_for, far};
use crate::s3_hold::{S3Hold, delete_objects};

/// A world with two tenants, each with a Jira connection.
pub(crate) async fn two_tenants() -> (World, String, String) {
    let w = World::new(1).await;
    let mut ids = Vec::new();
    for tenant in ["acme", "globex"] {
        let back = w
            .consent(&w.authorize_for(tenant, "jira", None).await, true)
            .await;
        assert_eq!(w.callback(&back).await.status(), StatusCode::OK);
        let (status, json) = w
            .api(Method::GET, &format!("/connections?tenant={tenant}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        ids.push(
            json["connections"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let globex = ids.pop().unwrap_or_default();
    let acme = ids.pop().unwrap_or_default();
    (w, acme, globex)
}

pub(crate) async fn put_connector(w: &World, tenant: &str, conn: &str, id: &str) {
    let body = serde_json::json!({ "tenant": tenant, "connection_id": conn, "product": "jira", "query": "project = ALPHA" });
    let (status, json) = w
        .api(
            Method::PUT,
            &format!("/connectors/{id}"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
}

/// Run the export the API requested, as the bus would deliver it.
pub(crate) async fn run_requested(w: &World, tenant: &str, connector: &str, job: &str) {
    let exporter = exporter_for(w).await;
    let ev = ExportRequested {
        tenant: TenantId::parse(tenant).unwrap_or_else(|e| panic!("{e}")),
        connector_id: connector.parse().unwrap_or_else(|e| panic!("{e:?}")),
        job_id: Some(job.parse().unwrap_or_else(|e| panic!("{e:?}"))),
        full: false,
    };
    let mut outcome = exporter
        .requested(&ev, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while outcome == Outcome::Continued {
        let cont = shared::events::ExportContinued {
            tenant: ev.tenant.clone(),
            job_id: ev.job_id.clone().unwrap_or_else(|| panic!()),
            connector_id: Some(ev.connector_id.clone()),
        };
        outcome = exporter
            .continued(&cont, far())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
}

pub(crate) async fn start_export(w: &World, tenant: &str, connector: &str) -> String {
    let (status, json) = w
        .api(
            Method::POST,
            &format!("/connectors/{connector}/exports?tenant={tenant}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    json["job_id"].as_str().unwrap_or_default().to_owned()
}

/// Everything stored for `tenant`: its table items and its objects (all versions) with hashes.
async fn footprint(w: &World, tenant: &str) -> (Vec<u8>, BTreeMap<String, String>) {
    let items: Vec<_> = w
        .aws
        .scan_table()
        .await
        .into_iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk == &format!("TENANT#{tenant}"))
        })
        .collect();
    let mut objects = BTreeMap::new();
    let versions = w.aws.list_object_versions().await;
    for key in versions
        .into_iter()
        .filter(|k| k.starts_with(&format!("{tenant}/")))
    {
        let out = w
            .aws
            .clients
            .s3
            .get_object()
            .bucket(&w.aws.names.bucket)
            .key(&key)
            .send()
            .await;
        let hash = match out {
            Ok(o) => {
                let body = o
                    .body
                    .collect()
                    .await
                    .map(|b| b.into_bytes())
                    .unwrap_or_default();
                hex::encode(Sha256::digest(&body))
            }
            Err(_) => "deleted".to_owned(),
        };
        objects.insert(key, hash);
    }
    (dump(&items), objects)
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_tenant_removes_everything_of_it_and_nothing_else() {
    let (w, acme, globex) = two_tenants().await;
    for (tenant, conn) in [("acme", &acme), ("globex", &globex)] {
        put_connector(&w, tenant, conn, "jira-main").await;
        let job = start_export(&w, tenant, "jira-main").await;
        run_requested(&w, tenant, "jira-main", &job).await;
    }
    let globex_before = footprint(&w, "globex").await;
    assert!(!globex_before.1.is_empty() && !footprint(&w, "acme").await.1.is_empty());

    // Asynchronous: 202, then the export function runs it from the resume queue.
    let json = crate::erase_later::erase_tenant(&w, "acme").await;

    assert!(json["erased"]["items"].as_u64().unwrap_or(0) >= 3, "{json}");
    assert!(
        json["erased"]["objects"].as_u64().unwrap_or(0) > 0,
        "{json}"
    );
    let table = String::from_utf8_lossy(&dump(&w.aws.scan_table().await)).into_owned();
    assert!(
        !table.contains("acme"),
        "the table still holds something of the erased tenant"
    );
    let versions = w.aws.list_object_versions().await;
    assert!(
        versions.iter().all(|k| !k.starts_with("acme/")),
        "objects of the erased tenant remain"
    );
    let markers = w
        .aws
        .clients
        .s3
        .list_object_versions()
        .bucket(&w.aws.names.bucket)
        .prefix("acme/")
        .send()
        .await;
    assert!(markers.is_ok_and(|m| m.delete_markers().is_empty() && m.versions().is_empty()));
    assert_eq!(
        footprint(&w, "globex").await,
        globex_before,
        "the other tenant changed"
    );

    let again = crate::erase_later::erase_tenant(&w, "acme").await;
    assert_eq!(
        again["erased"],
        serde_json::json!({ "items": 0, "objects": 0 }),
        "a second erase is a no-op"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_erase_completes_when_run_again() {
    let (w, acme, _) = two_tenants().await;
    put_connector(&w, "acme", &acme, "jira-main").await;
    let job = start_export(&w, "acme", "jira-main").await;
    run_requested(&w, "acme", "jira-main", &job).await;
    let id = acme.parse().unwrap_or_else(|e| panic!("{e:?}"));
    let tenant = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"));

    // The erase is stopped at a known await: its first S3 DeleteObjects (the connection's
    // prefix sweep) is held by a proxy and never answered; the erase is then dropped there
    // (a crash mid-erase: tombstone written, tokens gone, the objects still there).
    let hold = S3Hold::start(&w.aws, delete_objects).await;
    let interrupted = shared::erase::Eraser {
        store: w.api.eraser.store.clone(),
        blobs: BlobStore::new(
            hold.client(),
            w.aws.names.bucket.clone(),
            w.aws.kms_key_id.clone(),
        ),
        queue: w.api.eraser.queue.clone(),
        clock: w.api.eraser.clock.clone(),
    };
    tokio::select! {
        done = interrupted.erase_connection(&tenant, &id) => {
            panic!("the erase finished although its first DeleteObjects was held: {done:?}")
        }
        () = hold.reached() => {}
    }
    let (_, objects) = footprint(&w, "acme").await;
    assert!(
        !objects.is_empty(),
        "the erase was held before it deleted any object, yet nothing is left to delete"
    );
    assert_eq!(
        w.api(
            Method::GET,
            &format!("/connections/{acme}?tenant=acme"),
            None
        )
        .await
        .0,
        StatusCode::OK,
        "the connection record is deleted last, so the interrupted erase left it"
    );
    let (status, json) = w
        .api(
            Method::DELETE,
            &format!("/connections/{acme}?tenant=acme"),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{json}");
    let (items, objects) = footprint(&w, "acme").await;
    assert!(
        String::from_utf8_lossy(&items).is_empty(),
        "items of the erased connection remain"
    );
    assert!(
        objects.is_empty(),
        "objects of the erased connection remain: {objects:?}"
    );
    assert_eq!(
        w.api(
            Method::GET,
            &format!("/connections/{acme}?tenant=acme"),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_through_the_api_shows_progress_then_completion() {
    let (w, acme, _) = two_tenants().await;
    let events = w.aws.capture_events().await;
    put_connector(&w, "acme", &acme, "jira-main").await;

    let job = start_export(&w, "acme", "jira-main").await;

    let delivered = events.drain().await;
    let requested: Vec<_> = delivered
        .iter()
        .filter(|(t, _)| t == "ExportRequested")
        .collect();
    assert_eq!(requested.len(), 1, "{delivered:?}");
    assert_eq!(requested[0].1["job_id"], job.as_str());
    let ev: ExportRequested =
        serde_json::from_value(requested[0].1.clone()).unwrap_or_else(|e| panic!("{e}"));
    let exporter = exporter_for(&w).await;
    // The job stops mid-way at a point that does not depend on timing: the site's quota is
    // spent after a few calls, so the job makes progress, then waits (Retry-After: 1800).
    let cloud = w.site.cloud_ids()[0].clone();
    w.site
        .exhaust_quota_after(&format!("/ex/jira/{cloud}/"), 16, 1800);
    let outcome = exporter
        .requested(&ev, far())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(outcome, Outcome::Waiting { .. }), "{outcome:?}");
    let running = w
        .api(Method::GET, &format!("/jobs/{job}?tenant=acme"), None)
        .await
        .1;
    assert_eq!(running["status"], "waiting", "{running}");
    assert!(running["resume_at"].is_string(), "{running}");
    assert!(running["items_done"].as_u64().unwrap_or(0) > 0, "{running}");
    let (status, busy) = w
        .api(
            Method::POST,
            "/connectors/jira-main/exports?tenant=acme",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");

    w.site.advance_clock(Duration::from_secs(1900));
    run_requested(&w, "acme", "jira-main", &job).await;
    let (_, done) = w
        .api(Method::GET, &format!("/jobs/{job}?tenant=acme"), None)
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, connector) = w
        .api(Method::GET, "/connectors/jira-main?tenant=acme", None)
        .await;
    assert_eq!(connector["last_job"]["id"], job.as_str());
    assert!(connector["watermark"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_validate_input_and_never_reveal_another_tenants_data() {
    let (w, acme, globex) = two_tenants().await;
    put_connector(&w, "acme", &acme, "jira-main").await;
    let long = "x".repeat(5000);
    let too_big = format!(
        "{{\"tenant\":\"acme\",\"pad\":\"{}\"}}",
        "y".repeat(70 * 1024)
    );
    let bad_puts: Vec<(String, &str)> = vec![
        ("not json".into(), "not valid JSON"),
        (too_big, "larger than"),
        (serde_json::json!({"tenant":"acme","connection_id":acme,"product":"jira","query":""}).to_string(), "query"),
        (serde_json::json!({"tenant":"acme","connection_id":acme,"product":"jira","query":long}).to_string(), "query"),
        (serde_json::json!({"tenant":"acme","connection_id":acme,"product":"jira","query":5}).to_string(), "wrong type"),
        (serde_json::json!({"tenant":"acme","connection_id":acme,"product":"confluence","query":"space = A"}).to_string(), "product"),
        (serde_json::json!({"tenant":"acme","connection_id":globex,"product":"jira","query":"project = A"}).to_string(), "connection_id"),
        (serde_json::json!({"tenant":"acme","connection_id":acme,"product":"jira","query":"project = A","password":"p"}).to_string(), "unknown field"),
    ];
    for (body, expected) in bad_puts {
        let (status, json) = w.api(Method::PUT, "/connectors/c2", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.80} -> {json}");
        assert!(
            json["message"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{body:.80} -> {json}"
        );
    }
    let cases = [
        (
            Method::GET,
            "/connections".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/connections?tenant=../x".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/connections/{acme}?tenant=globex"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            format!("/connections/{acme}?tenant=acme"),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/connectors/jira-main?tenant=globex".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/connectors/jira-main?tenant=acme".to_owned(),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/connectors/nope/exports?tenant=acme".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/connectors/jira-main/exports?tenant=globex".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/jobs/job-unknown?tenant=acme".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/jobs/..%2F..?tenant=acme".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PATCH,
            "/connectors/jira-main".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/connections".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/tenants/acme".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/nothing/here".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            format!("/connections/{acme}?tenant=globex"),
            StatusCode::OK,
        ),
    ];
    for (method, path, expected) in cases {
        let (status, json) = w.api(method.clone(), &path, None).await;
        assert_eq!(status, expected, "{method} {path} -> {json}");
        assert!(
            json["error"].is_string() || status.is_success(),
            "{method} {path}: errors carry a code"
        );
    }
    // The DELETE above named acme's connection under globex: it must not have touched acme.
    assert_eq!(
        w.api(
            Method::GET,
            &format!("/connections/{acme}?tenant=acme"),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, view) = w
        .api(
            Method::GET,
            &format!("/connections/{acme}?tenant=acme"),
            None,
        )
        .await;
    let text = view.to_string();
    assert!(
        !text.contains("token_ciphertext")
            && !text.contains("fake_at_")
            && !text.contains("fake_rt_"),
        "{text}"
    );
    assert_eq!(view["status"], "active");
    for field in [
        "reconsent_due_at",
        "keepalive_due_at",
        "access_expires_at",
        "last_refreshed_at",
    ] {
        assert!(view["grant"][field].is_string(), "grant.{field} in {text}");
    }
    assert!(
        view["site_url"].is_string() && view["cloud_id"].is_string(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_quick_export_requests_start_one_job_and_the_connector_is_not_changed_under_it() {
    let (w, acme, _) = two_tenants().await;
    let events = w.aws.capture_events().await;
    put_connector(&w, "acme", &acme, "jira-main").await;
    let path = "/connectors/jira-main/exports?tenant=acme";
    // Both before the export function has picked anything up.
    let (first, second) = futures::join!(
        w.api(Method::POST, path, None),
        w.api(Method::POST, path, None)
    );
    let mut statuses = vec![first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    let requested: Vec<_> = events
        .drain()
        .await
        .into_iter()
        .filter(|(t, _)| t == "ExportRequested")
        .collect();
    assert_eq!(requested.len(), 1, "{requested:?}");

    let changed = serde_json::json!({ "tenant": "acme", "connection_id": acme, "product": "jira", "query": "project = BETA" });
    let (status, body) = w
        .api(
            Method::PUT,
            "/connectors/jira-main",
            Some(&changed.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let job = requested[0].1["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    run_requested(&w, "acme", "jira-main", &job).await;
    let (status, body) = w
        .api(
            Method::PUT,
            "/connectors/jira-main",
            Some(&changed.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "after the job: {body}");
}
