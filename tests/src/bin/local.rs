//! `make local`: the whole system on one machine.
//!
//! Starts the AWS emulator (moto) and provisions it like the SAM template, starts the fake
//! Atlassian Cloud, serves the two HTTP functions (`oauth-callback`, `connectors-api`) on a
//! loopback port through their real handlers, delivers the bus's events to the `export`
//! function's real handler (an EventBridge rule → SQS queue → handler, as Lambda would), and
//! walks connect → export → refresh, printing where the data landed. Everything it started
//! stops when it ends or on Ctrl-C (the emulator exits with this process).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::Response as AxumResponse;
use integration_tests::emulator::{Emulator, ResourceNames, provision};
use integration_tests::fake::{self, FakeAtlassian, FakeConfig};
use serde_json::{Value, json};
use shared::blob::BlobStore;
use shared::config::Config;
use shared::connect::ConnectService;
use shared::erase::Eraser;
use shared::events::EventBus;
use shared::export::runner::Exporter;
use shared::store::Store;
use shared::vault::refresh::TokenKeeper;

type Fail = Box<dyn std::error::Error + Send + Sync>;

struct Functions {
    callback: ConnectService,
    api: connectors_api::Api,
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

#[tokio::main]
async fn main() {
    if let Err(e) = tokio::select! {
        r = run() => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    } {
        eprintln!("\nmake local failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Fail> {
    let started = Instant::now();
    if std::env::var_os("ATLASSIAN_JIRA_CLIENT_ID").is_some() {
        return Err("real Atlassian apps are not wired into make local yet; unset ATLASSIAN_JIRA_CLIENT_ID to use the fake site".into());
    }
    // The functions' JSON logs go to stderr; stdout is the walkthrough.
    let _ = tracing::subscriber::set_global_default(shared::telemetry::subscriber(std::io::stderr));

    step(
        1,
        "starting the AWS emulator (moto) and creating the table, key, bucket and bus",
    );
    let emulator = Emulator::start(0)?;
    let clients = emulator.clients().await;
    let names = ResourceNames::unique("local");
    let key = provision(&clients, &names).await?;
    let mut secrets = HashMap::new();
    for (label, value) in [
        ("jira", fake::JIRA_CLIENT_SECRET),
        ("confluence", fake::CONFLUENCE_CLIENT_SECRET),
    ] {
        let name = format!("{}-{label}-client-secret", names.table);
        clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        secrets.insert(label, name);
    }
    println!("    emulator at {}", emulator.endpoint());

    step(
        2,
        "starting the fake Atlassian Cloud and the HTTP functions",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let callback_url = format!("{base}/callback");
    let site = FakeAtlassian::start(FakeConfig::default().with_redirect_uri(&callback_url)).await?;
    let vars = vec![
        (
            "AWS_ENDPOINT_URL".to_owned(),
            emulator.endpoint().to_string(),
        ),
        ("TABLE_NAME".to_owned(), names.table.clone()),
        ("BUCKET_NAME".to_owned(), names.bucket.clone()),
        ("KMS_KEY_ID".to_owned(), key.clone()),
        ("EVENT_BUS_NAME".to_owned(), names.event_bus.clone()),
        ("ATLASSIAN_AUTH_URL".to_owned(), site.base_url().to_string()),
        ("ATLASSIAN_API_URL".to_owned(), site.base_url().to_string()),
        ("JIRA_CLIENT_ID".to_owned(), fake::JIRA_CLIENT_ID.to_owned()),
        (
            "JIRA_CLIENT_SECRET_NAME".to_owned(),
            secrets["jira"].clone(),
        ),
        (
            "CONFLUENCE_CLIENT_ID".to_owned(),
            fake::CONFLUENCE_CLIENT_ID.to_owned(),
        ),
        (
            "CONFLUENCE_CLIENT_SECRET_NAME".to_owned(),
            secrets["confluence"].clone(),
        ),
        ("OAUTH_REDIRECT_URL".to_owned(), callback_url.clone()),
    ];
    let config = Config::from_vars(vars)?;
    let blobs = BlobStore::new(clients.s3.clone(), names.bucket.clone(), key.clone());
    let functions = Arc::new(Functions {
        callback: ConnectService::from_config(config.clone(), &clients).await?,
        api: connectors_api::Api {
            connect: ConnectService::from_config(config.clone(), &clients).await?,
            events: EventBus::new(clients.eventbridge.clone(), names.event_bus.clone()),
            eraser: Eraser {
                store: Store::new(clients.dynamodb.clone(), names.table.clone()),
                blobs: blobs.clone(),
            },
        },
    });
    let router = axum::Router::new()
        .fallback(serve)
        .with_state(functions.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    println!(
        "    fake Atlassian at {}, functions at {base}",
        site.base_url()
    );

    // The export function: events from the bus, through a queue, into its real handler.
    let exporter = Arc::new(Exporter::from_config(&config, &clients).await?);
    let queue =
        integration_tests::emulator::EventQueue::create(&clients, &emulator, &names).await?;
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (exporter, delivered) = (exporter.clone(), delivered.clone());
        tokio::spawn(async move {
            loop {
                for (detail_type, detail) in queue.drain().await {
                    if detail_type == "ExportRequested" || detail_type == "ExportContinued" {
                        delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let event = json!({ "detail-type": detail_type, "detail": detail });
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                        if let Err(e) = export::handle(&exporter, event, deadline).await {
                            eprintln!("    export invocation failed (would be retried): {e}");
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    step(
        3,
        "connecting both apps: authorization → consent page (Accept) → callback",
    );
    for product in ["jira", "confluence"] {
        let auth: Value = http
            .post(format!("{base}/authorizations"))
            .json(&json!({ "tenant": "demo", "product": product }))
            .send()
            .await?
            .json()
            .await?;
        let authorize = auth["authorize_url"].as_str().ok_or("no authorize_url")?;
        let page = http.get(authorize).send().await?.text().await?;
        let mut form = hidden_fields(&page);
        form.push(("decision".into(), "accept".into()));
        let decision = http
            .post(site.base_url().join("authorize/decision")?)
            .form(&form)
            .send()
            .await?;
        let to = decision
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or("consent did not redirect")?
            .to_owned();
        let done = http.get(&to).send().await?;
        println!(
            "    {product}: consent accepted, callback answered {}",
            done.status()
        );
    }
    let conns: Value = http
        .get(format!("{base}/connections?tenant=demo"))
        .send()
        .await?
        .json()
        .await?;
    let conns = conns["connections"].as_array().cloned().unwrap_or_default();
    for c in &conns {
        println!(
            "    connection {} ({}, {}) status {}",
            c["id"], c["product"], c["site_url"], c["status"]
        );
    }

    step(
        4,
        "creating a Jira and a Confluence connector and triggering both exports",
    );
    let cloud = site.cloud_ids().first().cloned().ok_or("no site")?;
    let project = site
        .jira(&cloud)
        .and_then(|j| j.projects().first().map(|p| p.key.clone()))
        .ok_or("no project")?;
    let space = site
        .confluence(&cloud)
        .and_then(|c| c.spaces().first().map(|s| s.key.clone()))
        .ok_or("no space")?;
    let mut jobs = Vec::new();
    for (id, product, query) in [
        ("jira-demo", "jira", format!("project = {project}")),
        ("wiki-demo", "confluence", format!("space = {space}")),
    ] {
        let conn = conns
            .iter()
            .find(|c| c["product"] == product)
            .ok_or("connection missing")?;
        let body = json!({ "tenant": "demo", "connection_id": conn["id"], "product": product, "query": query });
        let put = http
            .put(format!("{base}/connectors/{id}"))
            .json(&body)
            .send()
            .await?;
        if !put.status().is_success() {
            return Err(format!("PUT /connectors/{id}: {}", put.text().await?).into());
        }
        let job: Value = http
            .post(format!("{base}/connectors/{id}/exports?tenant=demo"))
            .send()
            .await?
            .json()
            .await?;
        let job = job["job_id"].as_str().ok_or("no job id")?.to_owned();
        println!("    {id}: {query:?} → job {job}");
        jobs.push(job);
    }

    step(5, "waiting for the exports (progress from GET /jobs/{id})");
    let mut totals = (0u64, 0u64, 0u64);
    for job in &jobs {
        let until = Instant::now() + Duration::from_secs(240);
        loop {
            let view: Value = http
                .get(format!("{base}/jobs/{job}?tenant=demo"))
                .send()
                .await?
                .json()
                .await?;
            let status = view["status"].as_str().unwrap_or("pending").to_owned();
            println!(
                "    {job}: {status} {} items, {} attachments, {} bytes",
                view["items_done"], view["attachments_done"], view["bytes_done"]
            );
            if status == "completed" {
                totals.0 += view["items_done"].as_u64().unwrap_or(0);
                totals.1 += view["attachments_done"].as_u64().unwrap_or(0);
                totals.2 += view["bytes_done"].as_u64().unwrap_or(0);
                break;
            }
            if status == "failed" {
                return Err(format!("job {job} failed: {}", view["failure_reason"]).into());
            }
            if Instant::now() > until {
                return Err(format!("job {job} did not finish in time").into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    step(
        6,
        "running the token refresh (as the 10-minute schedule would, at the connections' due time)",
    );
    let refresher = token_refresh::Refresher {
        keeper: TokenKeeper::from_config(&config, &clients).await?,
        concurrency: 16,
    };
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let report = refresher
        .run(due, tokio::time::Instant::now() + Duration::from_secs(300))
        .await?;
    println!("    {report:?}");

    let keys = blobs.list_keys("demo/").await?;
    println!("\n== summary ==");
    println!("connections: {}", conns.len());
    println!(
        "exports:     {} jobs, {} items, {} attachments, {:.1} MiB",
        jobs.len(),
        totals.0,
        totals.1,
        totals.2 as f64 / 1048576.0
    );
    println!(
        "events delivered to the export function: {}",
        delivered.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "bucket {} holds {} objects under demo/, e.g.:",
        names.bucket,
        keys.len()
    );
    for k in keys
        .iter()
        .filter(|k| k.contains("/items/"))
        .take(3)
        .chain(keys.iter().filter(|k| k.contains("/attachments/")).take(2))
        .chain(keys.iter().filter(|k| k.contains("/manifests/")))
    {
        println!("  s3://{}/{k}", names.bucket);
    }
    println!(
        "refresh:     {} refreshed, {} failed",
        report.refreshed, report.failed
    );
    println!("elapsed:     {:.1}s", started.elapsed().as_secs_f64());
    emulator.stop();
    Ok(())
}

/// `<input type="hidden" name="k" value="v">` pairs of an HTML page, unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| {
        let needle = format!("{name}=\"");
        tag.find(&needle)
            .map(|i| &tag[i + needle.len()..])
            .and_then(|rest| rest.find('"').map(|j| unescape(&rest[..j])))
    };
    html.split("<input")
        .skip(1)
        .filter_map(|t| t.split('>').next())
        .filter(|t| t.contains("type=\"hidden\""))
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value")?)))
        .collect()
}

/// Adapt an axum request to a function's `lambda_http` handler and back.
async fn serve(State(f): State<Arc<Functions>>, req: axum::extract::Request) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(t) => lambda_http::Body::Text(t),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    let req = lambda_http::Request::from_parts(parts, body);
    let resp = if req.uri().path() == "/callback" {
        oauth_callback::handle(&f.callback, req).await
    } else {
        connectors_api::handle(&f.api, req).await
    };
    let (parts, body) = resp.into_parts();
    let body = match body {
        lambda_http::Body::Empty => AxumBody::empty(),
        lambda_http::Body::Text(t) => AxumBody::from(t),
        lambda_http::Body::Binary(b) => AxumBody::from(b),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}
