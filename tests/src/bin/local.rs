//! `make local`: the whole system on one machine.
//!
//! Starts the AWS emulator (moto) and provisions it like the SAM template, serves the two HTTP
//! functions (`oauth-callback`, `connectors-api`) on a loopback port through their real
//! handlers, delivers the bus's events to the `export` function's real handler (an EventBridge
//! rule → SQS queue → handler, as Lambda would), and walks connect → export → refresh, printing
//! where the data landed. Everything it started stops when it ends or on Ctrl-C (the emulator
//! exits with this process).
//!
//! Two modes, one walkthrough:
//! - **fake** (default): starts the fake Atlassian Cloud and clicks Accept on its consent page
//!   itself; exports the first Jira project and Confluence space.
//! - **real**: with `ATLASSIAN_JIRA_CLIENT_ID` + `ATLASSIAN_JIRA_CLIENT_SECRET` and/or
//!   `ATLASSIAN_CONFLUENCE_CLIENT_ID` + `ATLASSIAN_CONFLUENCE_CLIENT_SECRET` set, talks to
//!   auth.atlassian.com / api.atlassian.com, serves the callback on
//!   `http://localhost:$LOCAL_CALLBACK_PORT/callback` (default 8080), prints an authorize URL
//!   per app, waits up to `LOCAL_CONSENT_TIMEOUT_SECS` (default 600) for a person to consent,
//!   then exports `LOCAL_JQL` / `LOCAL_CQL`. `JIRA_SCOPES` / `CONFLUENCE_SCOPES` are passed on
//!   to the functions. `ATLASSIAN_AUTH_URL` / `ATLASSIAN_API_URL` redirect it (validated like
//!   the functions' own settings: Atlassian hosts or loopback), which is how the integration
//!   test runs this mode against a fake site.
//!
//! Client secrets go through the emulator's Secrets Manager, as in production; neither they
//! nor tokens nor codes are ever printed (the authorize URLs carry only a single-use state).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use integration_tests::emulator::{
    Emulator, EventQueue, ResourceNames, provision, provision_resume_queue,
};
use integration_tests::fake::{self, FakeAtlassian, FakeConfig};
use integration_tests::http_functions::{CallbackAnswer, HttpFunctions, Serving};
use serde_json::{Value, json};
use shared::blob::BlobStore;
use shared::config::Config;
use shared::connect::ConnectService;
use shared::erase::Eraser;
use shared::events::EventBus;
use shared::export::runner::Exporter;
use shared::ids::Product;
use shared::secret::{ExposeSecret, Secret, secret};
use shared::store::Store;
use shared::vault::refresh::TokenKeeper;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Fail = Box<dyn std::error::Error + Send + Sync>;

const TENANT: &str = "demo";
const DEFAULT_CALLBACK_PORT: u16 = 8080;
const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_JQL: &str = "updated >= -30d order by updated desc";
const DEFAULT_CQL: &str = r#"type = page and lastmodified >= now("-30d")"#;
/// How often the wait for consent reminds the person what it waits for.
const REMINDER_EVERY: Duration = Duration::from_secs(30);

/// One OAuth app the walkthrough connects.
struct App {
    product: Product,
    client_id: String,
    client_secret: Secret,
}

/// Where the consent happens.
enum Mode {
    /// The fake Atlassian Cloud, started here; the walkthrough clicks Accept itself.
    Fake,
    /// Real Atlassian apps: print the authorize URLs and wait for a person.
    Real(RealSettings),
}

struct RealSettings {
    apps: Vec<App>,
    auth_url: Option<String>,
    api_url: Option<String>,
    /// The apps' scopes, when they differ from the functions' defaults.
    jira_scopes: Option<String>,
    confluence_scopes: Option<String>,
    callback_port: u16,
    consent_timeout: Duration,
}

/// What `make local` reads from its environment.
struct Settings {
    mode: Mode,
    jql: Option<String>,
    cql: Option<String>,
    export_timeout: Option<Duration>,
}

impl Settings {
    /// Read the settings through `var` (the process environment in `main`).
    fn read(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut apps = Vec::new();
        for (product, id_var, secret_var) in [
            (
                Product::Jira,
                "ATLASSIAN_JIRA_CLIENT_ID",
                "ATLASSIAN_JIRA_CLIENT_SECRET",
            ),
            (
                Product::Confluence,
                "ATLASSIAN_CONFLUENCE_CLIENT_ID",
                "ATLASSIAN_CONFLUENCE_CLIENT_SECRET",
            ),
        ] {
            match (var(id_var), var(secret_var)) {
                (Some(client_id), Some(client_secret)) => apps.push(App {
                    product,
                    client_id,
                    client_secret: secret(client_secret),
                }),
                (Some(_), None) => {
                    return Err(format!(
                        "{id_var} is set but {secret_var} is not: set both (the {product} app's \
                         OAuth client id and secret from the Atlassian developer console)"
                    ));
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "{secret_var} is set but {id_var} is not: set both (the {product} app's \
                         OAuth client id and secret from the Atlassian developer console)"
                    ));
                }
                (None, None) => {}
            }
        }
        let seconds = |name: &str, default: Option<Duration>| -> Result<Option<Duration>, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
                    _ => Err(format!("{name} must be a whole number of seconds above 0")),
                },
            }
        };
        let mode = if apps.is_empty() {
            Mode::Fake
        } else {
            let callback_port = match var("LOCAL_CALLBACK_PORT") {
                None => DEFAULT_CALLBACK_PORT,
                Some(v) => v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or("LOCAL_CALLBACK_PORT must be a port number (1-65535)")?,
            };
            Mode::Real(RealSettings {
                apps,
                auth_url: var("ATLASSIAN_AUTH_URL"),
                api_url: var("ATLASSIAN_API_URL"),
                jira_scopes: var("JIRA_SCOPES"),
                confluence_scopes: var("CONFLUENCE_SCOPES"),
                callback_port,
                consent_timeout: seconds("LOCAL_CONSENT_TIMEOUT_SECS", None)?
                    .unwrap_or(DEFAULT_CONSENT_TIMEOUT),
            })
        };
        Ok(Settings {
            mode,
            jql: var("LOCAL_JQL"),
            cql: var("LOCAL_CQL"),
            export_timeout: seconds("LOCAL_EXPORT_TIMEOUT_SECS", None)?,
        })
    }
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
        println!("\nmake local failed: {e}");
        std::process::exit(1);
    }
}

/// Bind the functions' port. Real mode: the fixed callback port on 127.0.0.1 and, when the
/// machine has IPv6, on ::1 too (a browser may resolve `localhost` to either).
async fn bind(mode: &Mode) -> Result<Vec<TcpListener>, Fail> {
    let Mode::Real(real) = mode else {
        return Ok(vec![TcpListener::bind("127.0.0.1:0").await?]);
    };
    let port = real.callback_port;
    let taken = |e: std::io::Error| -> Fail {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "port {port} is already in use, so the callback cannot be served at \
                 http://localhost:{port}/callback. Stop what uses it, or set LOCAL_CALLBACK_PORT \
                 to a free port and register http://localhost:<that port>/callback in the \
                 Atlassian developer console"
            )
            .into()
        } else {
            format!("binding the callback port {port}: {e}").into()
        }
    };
    let mut listeners = vec![
        TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(taken)?,
    ];
    match TcpListener::bind(("::1", port)).await {
        Ok(l) => listeners.push(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(taken(e)),
        Err(_) => {} // no IPv6 loopback here; browsers then use 127.0.0.1
    }
    Ok(listeners)
}

async fn run() -> Result<(), Fail> {
    let started = Instant::now();
    let settings = Settings::read(|name| std::env::var(name).ok())?;
    // The functions' JSON logs go to stderr; stdout is the walkthrough.
    let _ = tracing::subscriber::set_global_default(shared::telemetry::subscriber(std::io::stderr));

    // The port first: a taken port fails before anything starts.
    let listeners = bind(&settings.mode).await?;
    let port = listeners
        .first()
        .ok_or("no listener for the functions")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let callback_url = match settings.mode {
        Mode::Fake => format!("{base}/callback"),
        Mode::Real(_) => format!("http://localhost:{port}/callback"),
    };
    let fake_apps;
    let apps: &[App] = match &settings.mode {
        Mode::Fake => {
            fake_apps = [
                (
                    Product::Jira,
                    fake::JIRA_CLIENT_ID,
                    fake::JIRA_CLIENT_SECRET,
                ),
                (
                    Product::Confluence,
                    fake::CONFLUENCE_CLIENT_ID,
                    fake::CONFLUENCE_CLIENT_SECRET,
                ),
            ]
            .map(|(product, id, value)| App {
                product,
                client_id: id.to_owned(),
                client_secret: secret(value),
            });
            &fake_apps
        }
        Mode::Real(real) => {
            println!("real Atlassian mode:");
            for app in &real.apps {
                println!("    {} app: client id {}", app.product, app.client_id);
            }
            println!(
                "    callback URL: {callback_url}\n    \
                 It must be registered, exactly, as a callback URL of every app above: Atlassian \
                 developer console → your app → Authorization → OAuth 2.0 (3LO) → Callback URL."
            );
            &real.apps
        }
    };

    step(
        1,
        "starting the AWS emulator (moto) and creating the table, key, bucket and bus",
    );
    let emulator = Emulator::start(0)?;
    let clients = emulator.clients().await;
    let names = ResourceNames::unique("local");
    let key = provision(&clients, &names).await?;
    let resume_queue = provision_resume_queue(&clients, &names).await?;
    let mut vars = vec![
        ("AWS_ENDPOINT_URL", emulator.endpoint().to_string()),
        ("TABLE_NAME", names.table.clone()),
        ("BUCKET_NAME", names.bucket.clone()),
        ("KMS_KEY_ID", key.clone()),
        ("EVENT_BUS_NAME", names.event_bus.clone()),
        ("RESUME_QUEUE_URL", resume_queue.clone()),
        ("OAUTH_REDIRECT_URL", callback_url.clone()),
    ];
    for app in apps {
        let name = format!("{}-{}-client-secret", names.table, app.product);
        clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(app.client_secret.expose_secret())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "storing the {} client secret in the emulator: {}",
                    app.product,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let (id_var, secret_var) = match app.product {
            Product::Jira => ("JIRA_CLIENT_ID", "JIRA_CLIENT_SECRET_NAME"),
            Product::Confluence => ("CONFLUENCE_CLIENT_ID", "CONFLUENCE_CLIENT_SECRET_NAME"),
        };
        vars.push((id_var, app.client_id.clone()));
        vars.push((secret_var, name));
    }
    println!("    emulator at {}", emulator.endpoint());

    let site = match &settings.mode {
        Mode::Fake => {
            step(
                2,
                "starting the fake Atlassian Cloud and the HTTP functions",
            );
            let site = FakeAtlassian::start(FakeConfig::default().with_redirect_uri(&callback_url))
                .await?;
            vars.push(("ATLASSIAN_AUTH_URL", site.base_url().to_string()));
            vars.push(("ATLASSIAN_API_URL", site.base_url().to_string()));
            println!("    fake Atlassian at {}", site.base_url());
            Some(site)
        }
        Mode::Real(real) => {
            step(2, "starting the HTTP functions for real Atlassian");
            if let Some(url) = &real.auth_url {
                vars.push(("ATLASSIAN_AUTH_URL", url.clone()));
            }
            if let Some(url) = &real.api_url {
                vars.push(("ATLASSIAN_API_URL", url.clone()));
            }
            for (var, scopes) in [
                ("JIRA_SCOPES", &real.jira_scopes),
                ("CONFLUENCE_SCOPES", &real.confluence_scopes),
            ] {
                if let Some(scopes) = scopes {
                    vars.push((var, scopes.clone()));
                }
            }
            None
        }
    };
    let config = Config::from_vars(vars)?;
    if site.is_none() {
        println!(
            "    Atlassian at {} (OAuth) and {} (API)",
            config.atlassian.auth_url, config.atlassian.api_url
        );
    }
    let blobs = BlobStore::new(clients.s3.clone(), names.bucket.clone(), key.clone());
    let mut functions = HttpFunctions::new(
        ConnectService::from_config(config.clone(), &clients).await?,
        Some(connectors_api::Api {
            connect: shared::connect::Authorizer::from_config(config.clone(), &clients),
            events: EventBus::new(clients.eventbridge.clone(), names.event_bus.clone()),
            eraser: Eraser {
                store: Store::new(clients.dynamodb.clone(), names.table.clone()),
                blobs: blobs.clone(),
                // The worker below delivers the queue's messages to the export function (the
                // tenant erase, and the re-sweep 15 minutes after each erase).
                queue: shared::export::resume::Resumer::new(
                    clients.sqs.clone(),
                    Some(resume_queue.clone()),
                ),
                clock: shared::clock::Clock::system(),
            },
        }),
    );
    let answers = functions.watch_callbacks();
    let _serving: Serving = functions.serve(listeners);
    println!("    functions at {base} (callback {callback_url})");

    // The export function: events from the bus, through a queue, into its real handler.
    let exporter = Arc::new(Exporter::from_config(&config, &clients).await?);
    let queue = EventQueue::create(&clients, &emulator, &names).await?;
    let delivered = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (exporter, delivered) = (exporter.clone(), delivered.clone());
        let sqs = clients.sqs.clone();
        tokio::spawn(async move {
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                // The resume queue's event source mapping: due messages (SQS applies their
                // delay, in real time) go to the same handler, as one SQS event.
                deliver_resumes(&sqs, &resume_queue, &exporter).await;
                // The sweeper's schedule (every 5 minutes in the stack; every minute here).
                if last_sweep.elapsed() >= Duration::from_secs(60) {
                    last_sweep = tokio::time::Instant::now();
                    let tick = json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    if let Err(e) = export::handle(&exporter, tick, deadline).await {
                        println!("    export sweeper failed (would run again): {e}");
                    }
                }
                for (detail_type, detail) in queue.drain().await {
                    if detail_type == "ExportRequested" || detail_type == "ExportContinued" {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        let event = json!({ "detail-type": detail_type, "detail": detail });
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                        if let Err(e) = export::handle(&exporter, event, deadline).await {
                            println!("    export invocation failed (would be retried): {e}");
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let local = Local::new(base)?;
    let products: Vec<Product> = apps.iter().map(|a| a.product).collect();
    let conns = match (&settings.mode, &site) {
        (Mode::Fake, Some(site)) => {
            step(
                3,
                "connecting both apps: authorization → consent page (Accept) → callback",
            );
            for product in &products {
                let authorize = local.authorize(*product).await?;
                let status = local.click_accept(site, &authorize).await?;
                println!("    {product}: consent accepted, callback answered {status}");
            }
            local
                .wait_for_connections(&products, answers, Duration::from_secs(30))
                .await?
        }
        (Mode::Real(real), _) => {
            step(
                3,
                "connecting: open each link in a browser signed in to Atlassian, pick the site and Accept",
            );
            for product in &products {
                let authorize = local.authorize(*product).await?;
                println!("    {product}: {authorize}");
            }
            println!(
                "    Each link works once and expires in 10 minutes. After Accept, Atlassian \
                 sends the browser to {callback_url}, which must show \"… connected\"."
            );
            local
                .wait_for_connections(&products, answers, real.consent_timeout)
                .await?
        }
        (Mode::Fake, None) => return Err("the fake site did not start".into()),
    };
    for c in &conns {
        println!(
            "    connection {} ({}, {}) status {}",
            c["id"], c["product"], c["site_url"], c["status"]
        );
    }

    step(4, "creating connectors and triggering their exports");
    let mut queries = HashMap::new();
    for product in &products {
        let query = match (product, &settings, &site) {
            (Product::Jira, Settings { jql: Some(q), .. }, _)
            | (Product::Confluence, Settings { cql: Some(q), .. }, _) => q.clone(),
            (product, _, Some(site)) => fake_query(site, *product)?,
            (Product::Jira, _, None) => DEFAULT_JQL.to_owned(),
            (Product::Confluence, _, None) => DEFAULT_CQL.to_owned(),
        };
        queries.insert(*product, query);
    }
    let mut jobs = Vec::new();
    for product in &products {
        let of_product = conns.iter().filter(|c| c["product"] == product.as_str());
        for (n, conn) in of_product.enumerate() {
            let prefix = match product {
                Product::Jira => "jira-demo",
                Product::Confluence => "wiki-demo",
            };
            let id = match n {
                0 => prefix.to_owned(),
                n => format!("{prefix}-{}", n + 1),
            };
            let query = &queries[product];
            let job = local.export(&id, *product, conn, query).await?;
            println!("    {id}: {query:?} on {} → job {job}", conn["site_url"]);
            jobs.push((id, job));
        }
    }

    step(5, "waiting for the exports (progress from GET /jobs/{id})");
    let export_timeout = settings.export_timeout.unwrap_or(match settings.mode {
        Mode::Fake => Duration::from_secs(240),
        Mode::Real(_) => Duration::from_secs(1800),
    });
    let mut totals = Progress::default();
    for (connector, job) in &jobs {
        let done = local.wait_for_job(connector, job, export_timeout).await?;
        totals.items += done.items;
        totals.attachments += done.attachments;
        totals.bytes += done.bytes;
    }

    step(
        6,
        "running the keep-alive refresh (as the 10-minute schedule would, a week later when the grants are due)",
    );
    let mut keeper = TokenKeeper::from_config(&config, &clients).await?;
    keeper.clock = shared::clock::Clock::adjustable();
    keeper
        .clock
        .advance(shared::store::grants::KEEPALIVE + time::Duration::minutes(1));
    let refresher = token_refresh::Refresher {
        keeper,
        concurrency: 16,
    };
    let report = refresher
        .run(tokio::time::Instant::now() + Duration::from_secs(300))
        .await?;
    println!("    {report:?}");

    let keys = blobs.list_keys(&format!("{TENANT}/")).await?;
    println!("\n== summary ==");
    println!("connections: {}", conns.len());
    println!(
        "exports:     {} jobs, {} items, {} attachments, {:.1} MiB",
        jobs.len(),
        totals.items,
        totals.attachments,
        totals.bytes as f64 / 1048576.0
    );
    println!(
        "events delivered to the export function: {}",
        delivered.load(Ordering::Relaxed)
    );
    println!(
        "bucket {} holds {} objects under {TENANT}/, e.g.:",
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
    worker.abort();
    if let Some(site) = site {
        site.shutdown().await;
    }
    emulator.stop();
    Ok(())
}

/// The fake mode's query: the first project (Jira) or space (Confluence) of the first site.
fn fake_query(site: &FakeAtlassian, product: Product) -> Result<String, Fail> {
    let cloud = site.cloud_ids().first().cloned().ok_or("no fake site")?;
    Ok(match product {
        Product::Jira => {
            let project = site
                .jira(&cloud)
                .and_then(|j| j.projects().first().map(|p| p.key.clone()))
                .ok_or("the fake site has no Jira project")?;
            format!("project = {project}")
        }
        Product::Confluence => {
            let space = site
                .confluence(&cloud)
                .and_then(|c| c.spaces().first().map(|s| s.key.clone()))
                .ok_or("the fake site has no Confluence space")?;
            format!("space = {space}")
        }
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Progress {
    items: u64,
    attachments: u64,
    bytes: u64,
}

/// The walkthrough's client of the connectors API on the local server.
struct Local {
    base: String,
    http: reqwest::Client,
}

impl Local {
    fn new(base: String) -> Result<Local, Fail> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Local { base, http })
    }

    /// One API call: its status and JSON body (`null` when there is none).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, Value), Fail> {
        let route = format!("{method} {}", route_of(path));
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| format!("{route}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{route}: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// One API call; a non-2xx answer is an error naming the route and the API's message.
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Fail> {
        let route = format!("{method} {}", route_of(path));
        let (status, json) = self.call(method, path, body).await?;
        if !status.is_success() {
            let message = json["message"].as_str().unwrap_or("no message");
            return Err(format!("{route} answered {status}: {message}").into());
        }
        Ok(json)
    }

    /// `POST /authorizations`: the consent URL for `product`.
    async fn authorize(&self, product: Product) -> Result<url::Url, Fail> {
        let auth = self
            .api(
                reqwest::Method::POST,
                "/authorizations",
                Some(json!({ "tenant": TENANT, "product": product })),
            )
            .await?;
        let url = auth["authorize_url"]
            .as_str()
            .ok_or("POST /authorizations: no authorize_url in the answer")?;
        Ok(url::Url::parse(url)?)
    }

    /// The fake mode's consent: load the consent page, submit its form with Accept, follow the
    /// redirect to the callback. Returns the callback's status.
    async fn click_accept(
        &self,
        site: &FakeAtlassian,
        authorize: &url::Url,
    ) -> Result<reqwest::StatusCode, Fail> {
        let page = self
            .http
            .get(authorize.clone())
            .send()
            .await?
            .text()
            .await?;
        let mut form = hidden_fields(&page);
        form.push(("decision".into(), "accept".into()));
        let decision = self
            .http
            .post(site.base_url().join("authorize/decision")?)
            .form(&form)
            .send()
            .await?;
        let to = decision
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or("the consent page did not redirect")?
            .to_owned();
        Ok(self.http.get(&to).send().await?.status())
    }

    async fn connections(&self) -> Result<Vec<Value>, Fail> {
        let conns = self
            .api(
                reqwest::Method::GET,
                &format!("/connections?tenant={TENANT}"),
                None,
            )
            .await?;
        Ok(conns["connections"].as_array().cloned().unwrap_or_default())
    }

    /// Wait until every product has a connection. Fails when the callback shows the browser a
    /// page that stored nothing (denied, expired, refused), or at `timeout`.
    async fn wait_for_connections(
        &self,
        products: &[Product],
        mut answers: mpsc::UnboundedReceiver<CallbackAnswer>,
        timeout: Duration,
    ) -> Result<Vec<Value>, Fail> {
        let started = Instant::now();
        let mut reminded = Instant::now();
        let mut announced = Vec::new();
        loop {
            let conns = self.connections().await?;
            let missing: Vec<Product> = products
                .iter()
                .copied()
                .filter(|p| !conns.iter().any(|c| c["product"] == p.as_str()))
                .collect();
            for product in products.iter().filter(|p| !missing.contains(p)) {
                if !announced.contains(product) {
                    announced.push(*product);
                    if started.elapsed() > Duration::from_secs(1) {
                        println!("    {product}: connected");
                    }
                }
            }
            if missing.is_empty() {
                return Ok(conns);
            }
            let names = missing
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                return Err(format!(
                    "consent timed out: after {}s there is still no connection for {names}. Open \
                     the link(s) above, sign in, pick the site and Accept (set \
                     LOCAL_CONSENT_TIMEOUT_SECS to wait longer)",
                    timeout.as_secs()
                )
                .into());
            }
            if reminded.elapsed() >= REMINDER_EVERY {
                reminded = Instant::now();
                println!(
                    "    still waiting for consent for {names} ({}s left)",
                    (timeout - elapsed).as_secs()
                );
            }
            let poll = Duration::from_millis(500).min(timeout - elapsed);
            match tokio::time::timeout(poll, answers.recv()).await {
                Ok(Some(answer)) if !answer.connected() => {
                    return Err(format!(
                        "the consent did not complete: the callback showed \"{}\" (HTTP {}). \
                         Run make local again for fresh links",
                        answer.title,
                        answer.status.as_u16()
                    )
                    .into());
                }
                _ => {}
            }
        }
    }

    /// `PUT /connectors/{id}` on `conn` with `query`, then `POST …/exports`: the job id.
    async fn export(
        &self,
        id: &str,
        product: Product,
        conn: &Value,
        query: &str,
    ) -> Result<String, Fail> {
        let body = json!({ "tenant": TENANT, "connection_id": conn["id"], "product": product, "query": query });
        self.api(
            reqwest::Method::PUT,
            &format!("/connectors/{id}"),
            Some(body),
        )
        .await?;
        let job = self
            .api(
                reqwest::Method::POST,
                &format!("/connectors/{id}/exports?tenant={TENANT}"),
                None,
            )
            .await?;
        Ok(job["job_id"]
            .as_str()
            .ok_or("POST /connectors/{id}/exports: no job_id in the answer")?
            .to_owned())
    }

    /// Poll `GET /jobs/{id}` until the job completes (its totals) or fails (its reason).
    async fn wait_for_job(
        &self,
        connector: &str,
        job: &str,
        timeout: Duration,
    ) -> Result<Progress, Fail> {
        let until = Instant::now() + timeout;
        let mut shown = None;
        let mut shown_at = Instant::now();
        loop {
            let (code, view) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/jobs/{job}?tenant={TENANT}"),
                    None,
                )
                .await?;
            // 404 until the export function has picked the request up.
            if !code.is_success() && code != reqwest::StatusCode::NOT_FOUND {
                let message = view["message"].as_str().unwrap_or("no message");
                return Err(format!("GET /jobs/{job} answered {code}: {message}").into());
            }
            let status = view["status"].as_str().unwrap_or("pending").to_owned();
            let progress = Progress {
                items: view["items_done"].as_u64().unwrap_or(0),
                attachments: view["attachments_done"].as_u64().unwrap_or(0),
                bytes: view["bytes_done"].as_u64().unwrap_or(0),
            };
            // Print changes, and a sign of life every 10 s.
            if shown != Some((status.clone(), progress))
                || shown_at.elapsed() >= Duration::from_secs(10)
            {
                println!(
                    "    {job}: {status} {} items, {} attachments, {} bytes",
                    progress.items, progress.attachments, progress.bytes
                );
                shown = Some((status.clone(), progress));
                shown_at = Instant::now();
            }
            match status.as_str() {
                "completed" => return Ok(progress),
                "failed" => {
                    let reason = view["failure_reason"].as_str().unwrap_or("no reason given");
                    return Err(
                        format!("the export of {connector} (job {job}) failed: {reason}").into(),
                    );
                }
                _ => {}
            }
            if Instant::now() > until {
                return Err(format!(
                    "the export of {connector} (job {job}) did not finish within {}s (set \
                     LOCAL_EXPORT_TIMEOUT_SECS to wait longer)",
                    timeout.as_secs()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A path without its query (which may name a tenant), for messages.
fn route_of(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// What a browser submits of a page's form: `<input type="hidden" name="k" value="v">` pairs and
/// checked checkboxes (the fake's consent page offers its sites as checked `site` boxes),
/// unescaped.
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
        .filter(|t| {
            t.contains("type=\"hidden\"")
                || (t.contains("type=\"checkbox\"") && t.contains(" checked"))
        })
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value")?)))
        .collect()
}

/// What Lambda's event source mapping does with the resume queue: receive what is visible,
/// hand it to the export function as an SQS event, delete what it did not report as failed.
async fn deliver_resumes(sqs: &aws_sdk_sqs::Client, queue: &str, exporter: &Exporter) {
    let Ok(out) = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .send()
        .await
    else {
        return;
    };
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return;
    }
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| json!({ "messageId": m.message_id(), "body": m.body(), "eventSource": "aws:sqs" }))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let failed: Vec<String> =
        match export::handle(exporter, json!({ "Records": records }), deadline).await {
            Ok(answer) => answer["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect(),
            Err(e) => {
                println!("    resume delivery failed (would be retried): {e}");
                return;
            }
        };
    for m in &messages {
        if failed.iter().any(|id| Some(id.as_str()) == m.message_id()) {
            continue;
        }
        if let Some(handle) = m.receipt_handle() {
            let _ = sqs
                .delete_message()
                .queue_url(queue)
                .receipt_handle(handle)
                .send()
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::read(|k| vars.get(k).cloned())
    }

    #[test]
    fn without_app_credentials_the_fake_site_is_used() {
        let s = read(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(s.mode, Mode::Fake));
        let s = read(&[("ATLASSIAN_JIRA_CLIENT_ID", "  ")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(s.mode, Mode::Fake), "blank counts as unset");
    }

    #[test]
    fn either_pair_alone_selects_the_real_mode_with_defaults() {
        let s = read(&[
            ("ATLASSIAN_CONFLUENCE_CLIENT_ID", "c-id"),
            ("ATLASSIAN_CONFLUENCE_CLIENT_SECRET", "c-secret"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Mode::Real(real) = s.mode else {
            panic!("expected the real mode")
        };
        assert_eq!(real.apps.len(), 1);
        assert_eq!(real.apps[0].product, Product::Confluence);
        assert_eq!(real.callback_port, DEFAULT_CALLBACK_PORT);
        assert_eq!(real.consent_timeout, DEFAULT_CONSENT_TIMEOUT);
        assert!(real.auth_url.is_none() && real.api_url.is_none());
    }

    #[test]
    fn half_a_pair_is_refused_naming_the_missing_variable() {
        let err = read(&[("ATLASSIAN_JIRA_CLIENT_SECRET", "s3cr3t-value")])
            .err()
            .unwrap_or_default();
        assert!(err.contains("ATLASSIAN_JIRA_CLIENT_ID is not"), "{err}");
        assert!(!err.contains("s3cr3t-value"), "the secret is echoed: {err}");
        let err = read(&[("ATLASSIAN_CONFLUENCE_CLIENT_ID", "c-id")])
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("ATLASSIAN_CONFLUENCE_CLIENT_SECRET is not"),
            "{err}"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        let pair = [
            ("ATLASSIAN_JIRA_CLIENT_ID", "j-id"),
            ("ATLASSIAN_JIRA_CLIENT_SECRET", "j-secret"),
        ];
        for (var, value) in [
            ("LOCAL_CALLBACK_PORT", "0"),
            ("LOCAL_CALLBACK_PORT", "70000"),
            ("LOCAL_CONSENT_TIMEOUT_SECS", "soon"),
            ("LOCAL_EXPORT_TIMEOUT_SECS", "0"),
        ] {
            let mut vars = pair.to_vec();
            vars.push((var, value));
            let err = read(&vars).err().unwrap_or_default();
            assert!(err.contains(var), "{var}={value}: {err}");
        }
    }
}
