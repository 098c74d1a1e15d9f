//! Set-up shared by the benchmarks: a deployment's resources in the emulator, connections made
//! through a real consent at a fake site (in this process or another), connectors, and the
//! child process that runs a function's code so its memory is measured alone.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use integration_tests::emulator::{Emulator, ResourceNames, provision};
use integration_tests::fake;
use serde_json::Value;
use shared::atlassian::AtlassianUrls;
use shared::atlassian::http::{AtlassianHttp, RetryPolicy};
use shared::atlassian::oauth::{self, AppCredentials};
use shared::aws::AwsClients;
use shared::blob::BlobStore;
use shared::config::{AppSettings, AtlassianSettings};
use shared::ids::{CloudId, ConnectionId, ConnectorId, Product, TenantId};
use shared::secret::secret;
use shared::store::connectors::{Connector, ConnectorOptions};
use shared::store::{Connection, NewConnection, Store, connection_id};
use shared::vault::Vault;
use time::OffsetDateTime;
use url::Url;

use crate::procfs;

/// Scopes the bench's apps ask for: what the endpoints the exports call document (the fake
/// checks them per endpoint, `tests/src/fake/scopes.rs`; v1 content and attachment listing
/// need `read:confluence-content.summary`, attachment download
/// `readonly:content.attachment:confluence`).
const JIRA_SCOPES: &str = "read:jira-work read:jira-user offline_access";
const CONFLUENCE_SCOPES: &str = "read:confluence-content.all read:confluence-content.summary \
     readonly:content.attachment:confluence read:confluence-space.summary search:confluence \
     offline_access";

/// The fake's app for `product`: client id, secret and scopes.
fn app_of(product: Product) -> (&'static str, &'static str, &'static str) {
    match product {
        Product::Jira => (fake::JIRA_CLIENT_ID, fake::JIRA_CLIENT_SECRET, JIRA_SCOPES),
        Product::Confluence => (
            fake::CONFLUENCE_CLIENT_ID,
            fake::CONFLUENCE_CLIENT_SECRET,
            CONFLUENCE_SCOPES,
        ),
    }
}

/// Where S3 requests go during this bench run when not to the emulator (`--s3-server`): set
/// once at start, before any deployment is made.
static S3_ENDPOINT: OnceLock<Url> = OnceLock::new();

/// Send every deployment's S3 requests (the bench's and the functions') to `endpoint`.
pub fn use_s3_endpoint(endpoint: Url) {
    let _ = S3_ENDPOINT.set(endpoint);
}

/// The S3 endpoint of this run, if not the emulator.
pub fn s3_endpoint() -> Option<&'static Url> {
    S3_ENDPOINT.get()
}

/// One deployment's resources in the emulator: table, bucket, KMS key, bus and the two apps'
/// client secrets. With an S3 server in use ([`use_s3_endpoint`]) the bucket lives there
/// instead (created plainly: the server implements no bucket settings), and the functions get
/// `AWS_ENDPOINT_URL_S3`.
pub struct Deployment {
    pub endpoint: Url,
    pub s3_endpoint: Option<Url>,
    pub clients: AwsClients,
    pub names: ResourceNames,
    pub kms_key_id: String,
    pub jira_secret_name: String,
    pub confluence_secret_name: String,
}

impl Deployment {
    pub async fn new(emulator: &Emulator, label: &str) -> Deployment {
        let mut clients = emulator.clients().await;
        let names = ResourceNames::unique(label);
        let kms_key_id = provision(&clients, &names)
            .await
            .unwrap_or_else(|e| panic!("bench set-up: {e}"));
        let s3_endpoint = s3_endpoint().cloned();
        if let Some(s3) = &s3_endpoint {
            let sdk = emulator.sdk_config().await;
            clients.s3 =
                aws_sdk_s3::Client::from_conf(shared::aws::s3_config(&sdk, true, Some(s3)).build());
            clients
                .s3
                .create_bucket()
                .bucket(&names.bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("bench set-up: bucket on the S3 server: {e:?}"));
        }
        let mut secret_names = Vec::new();
        for product in [Product::Jira, Product::Confluence] {
            let name = format!("{}-{}", names.table, product.as_str());
            clients
                .secrets
                .create_secret()
                .name(&name)
                .secret_string(app_of(product).1)
                .send()
                .await
                .unwrap_or_else(|e| panic!("bench set-up: create secret: {e:?}"));
            secret_names.push(name);
        }
        let confluence_secret_name = secret_names.pop().unwrap_or_default();
        let jira_secret_name = secret_names.pop().unwrap_or_default();
        Deployment {
            endpoint: emulator.endpoint().clone(),
            s3_endpoint,
            clients,
            names,
            kms_key_id,
            jira_secret_name,
            confluence_secret_name,
        }
    }

    pub fn store(&self) -> Store {
        Store::new(self.clients.dynamodb.clone(), self.names.table.clone())
    }

    pub fn vault(&self) -> Vault {
        Vault::new(self.clients.kms.clone(), self.kms_key_id.clone())
    }

    pub fn blobs(&self) -> BlobStore {
        BlobStore::new(
            self.clients.s3.clone(),
            self.names.bucket.clone(),
            self.kms_key_id.clone(),
        )
    }

    /// The environment a function of this deployment gets (AWS credentials for the emulator
    /// included), talking to the fake site at `site`.
    pub fn function_env(&self, site: &Url) -> Vec<(String, String)> {
        let s3 = self.s3_endpoint.as_ref().map(|u| u.as_str().to_owned());
        s3.iter()
            .map(|u| ("AWS_ENDPOINT_URL_S3", u.as_str()))
            .chain([
                ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("TABLE_NAME", &self.names.table),
                ("BUCKET_NAME", &self.names.bucket),
                ("KMS_KEY_ID", &self.kms_key_id),
                ("EVENT_BUS_NAME", &self.names.event_bus),
                ("ATLASSIAN_AUTH_URL", site.as_str()),
                ("ATLASSIAN_API_URL", site.as_str()),
                ("JIRA_CLIENT_ID", fake::JIRA_CLIENT_ID),
                ("JIRA_CLIENT_SECRET_NAME", &self.jira_secret_name),
                ("JIRA_SCOPES", JIRA_SCOPES),
                ("CONFLUENCE_CLIENT_ID", fake::CONFLUENCE_CLIENT_ID),
                (
                    "CONFLUENCE_CLIENT_SECRET_NAME",
                    &self.confluence_secret_name,
                ),
                ("CONFLUENCE_SCOPES", CONFLUENCE_SCOPES),
                ("RUST_LOG", "warn"),
            ])
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// A fake site as the consenting user sees it.
#[derive(Debug, Clone)]
pub struct Site {
    pub base: Url,
    pub cloud_id: String,
    pub url: String,
}

/// Makes connections by consenting at a fake site over HTTP (its consent form and token
/// endpoint), so it works for a fake in this process and for the `fake-atlassian` process.
pub struct Consenter {
    site: Site,
    product: Product,
    browser: reqwest::Client,
    http: AtlassianHttp,
    urls: AtlassianUrls,
    app: AppCredentials,
    redirect: Url,
}

impl Consenter {
    pub fn new(site: Site, product: Product) -> Consenter {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("bench set-up: http client: {e}"));
        let http = AtlassianHttp::new(
            RetryPolicy::default(),
            32,
            shared::atlassian::outbound::Outbound::loopback(),
        )
        .unwrap_or_else(|e| panic!("bench set-up: http client: {e}"));
        let urls = AtlassianUrls::new(&AtlassianSettings {
            auth_url: site.base.clone(),
            api_url: site.base.clone(),
            max_concurrency_per_site: 32,
        });
        let (client_id, client_secret, scopes) = app_of(product);
        let app = AppCredentials {
            settings: AppSettings {
                product,
                client_id: client_id.into(),
                client_secret_name: "unused".into(),
                scopes: scopes.into(),
            },
            client_secret: secret(client_secret),
        };
        let redirect = Url::parse(fake::DEFAULT_REDIRECT_URI)
            .unwrap_or_else(|e| panic!("bench set-up: redirect URI: {e}"));
        Consenter {
            site,
            product,
            browser,
            http,
            urls,
            app,
            redirect,
        }
    }

    /// Accept the consent form and return the authorization code.
    async fn consent(&self) -> String {
        let (client_id, _, scopes) = app_of(self.product);
        let form = [
            ("audience", "api.atlassian.com"),
            ("client_id", client_id),
            ("scope", scopes),
            ("redirect_uri", fake::DEFAULT_REDIRECT_URI),
            ("response_type", "code"),
            ("state", "bench"),
            ("prompt", "consent"),
            ("site", self.site.cloud_id.as_str()),
            ("decision", "accept"),
        ];
        let url = self
            .site
            .base
            .join("authorize/decision")
            .unwrap_or_else(|e| panic!("bench set-up: {e}"));
        let resp = self
            .browser
            .post(url)
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("bench set-up: consent: {e}"));
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok())
            .unwrap_or_else(|| panic!("bench set-up: consent answered {}", resp.status()));
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("bench set-up: consent gave no code"))
    }

    /// One consent → one new token family; its access token (for the peer benchmark's clients,
    /// which take a bearer token as they are given one).
    pub async fn access_token(&self) -> String {
        use shared::secret::ExposeSecret as _;
        let grant = self.consented_grant().await;
        grant.tokens.access_token.expose_secret().to_owned()
    }

    /// One consent → one new token family → one stored, sealed connection for `tenant`.
    pub async fn connect(&self, dep: &Deployment, tenant: &TenantId) -> Connection {
        let grant = self.consented_grant().await;
        store_connection(dep, &self.site, self.product, tenant, grant).await
    }

    /// One consent, its code exchanged over HTTP.
    async fn consented_grant(&self) -> oauth::TokenGrant {
        let code = self.consent().await;
        oauth::exchange_code(
            &self.http,
            &self.urls,
            &self.app,
            &secret(code),
            &self.redirect,
        )
        .await
        .unwrap_or_else(|e| panic!("bench set-up: code exchange: {e}"))
    }
}

/// One new token family minted inside the in-process `fake` (no HTTP round trips: for set-ups
/// of thousands of connections) → one stored, sealed Jira connection for `tenant`.
pub async fn connect_minted(
    fake: &fake::FakeAtlassian,
    site: &Site,
    dep: &Deployment,
    tenant: &TenantId,
) -> Connection {
    let (client_id, _, scopes) = app_of(Product::Jira);
    let scopes: Vec<&str> = scopes.split(' ').collect();
    let minted = fake
        .mint_grant(client_id, &scopes)
        .unwrap_or_else(|e| panic!("bench set-up: mint a grant: {e}"));
    let grant = oauth::TokenGrant {
        tokens: shared::vault::TokenPair {
            access_token: secret(minted.access_token),
            refresh_token: minted.refresh_token.map(secret),
        },
        expires_in: minted.expires_in,
        scope: minted.scope,
        token_type: "Bearer".into(),
    };
    store_connection(dep, site, Product::Jira, tenant, grant).await
}

/// Seal `grant` into a grant item and connect `tenant` to `site` through it, as the callback
/// does.
async fn store_connection(
    dep: &Deployment,
    site: &Site,
    product: Product,
    tenant: &TenantId,
    grant: oauth::TokenGrant,
) -> Connection {
    let cloud_id = CloudId::parse(site.cloud_id.clone())
        .unwrap_or_else(|e| panic!("bench set-up: cloud id: {e}"));
    let id = connection_id(tenant, product, &cloud_id);
    let now = OffsetDateTime::now_utc();
    let grant_id = shared::store::grants::new_grant_id();
    let ctx = shared::vault::EnvelopeContext::grant(tenant, &grant_id, product);
    let envelope = dep
        .vault()
        .seal(&ctx, &grant.tokens)
        .await
        .unwrap_or_else(|e| panic!("bench set-up: seal: {e}"));
    dep.store()
        .create_grant(&shared::store::NewGrant {
            tenant: tenant.clone(),
            id: grant_id.clone(),
            product,
            scope: grant.scope.clone(),
            token_type: grant.token_type.clone(),
            access_expires_at: now
                + time::Duration::seconds(i64::try_from(grant.expires_in).unwrap_or(3600)),
            envelope,
            consented_at: now,
            last_refreshed_at: now,
            unattached_until: None,
        })
        .await
        .unwrap_or_else(|e| panic!("bench set-up: store grant: {e}"));
    let site_url = Url::parse(&site.url).unwrap_or_else(|e| panic!("bench set-up: site URL: {e}"));
    dep.store()
        .upsert_connection(&NewConnection {
            tenant: tenant.clone(),
            id,
            product,
            cloud_id,
            site_url,
            site_name: None,
            grant_id,
            now,
        })
        .await
        .unwrap_or_else(|e| panic!("bench set-up: store connection: {e}"))
        .connection
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap_or_else(|e| panic!("bench set-up: tenant {name}: {e}"))
}

/// A `product` connector over `connection` selecting `query`, never exported before (so its
/// first export is a full one).
pub async fn put_connector(
    dep: &Deployment,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &str,
    product: Product,
    query: &str,
    options: ConnectorOptions,
) -> Connector {
    let now = OffsetDateTime::now_utc();
    let c = Connector {
        tenant: tenant.clone(),
        id: ConnectorId::parse(id).unwrap_or_else(|e| panic!("bench set-up: connector id: {e}")),
        connection_id: connection.clone(),
        product,
        query: query.to_owned(),
        options,
        watermark: None,
        active_job: None,
        active_job_at: None,
        last_job: None,
        last_full_job: None,
        created_at: now,
        updated_at: now,
    };
    dep.store()
        .put_connector(&c)
        .await
        .unwrap_or_else(|e| panic!("bench set-up: store connector: {e}"))
}

/// What a child run reported, and the emulator's CPU time meanwhile.
pub struct ChildRun {
    pub result: Value,
    /// CPU seconds moto used while the child ran (`None` if its process was not found).
    pub moto_cpu_secs: Option<f64>,
    pub wall: Duration,
}

/// The prefix of the line a child prints its result on.
pub const RESULT_PREFIX: &str = "BENCH_RESULT ";

/// Run this binary again as `bench <args>` with exactly `env` (plus PATH), wait for it without
/// blocking the runtime (the fake site in this process keeps serving), and parse its result.
pub async fn run_child(args: Vec<String>, env: Vec<(String, String)>) -> ChildRun {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("bench: own path: {e}"));
    let ticks = procfs::clock_ticks();
    let moto = procfs::moto_pid();
    let cpu_before = moto.and_then(|p| procfs::cpu_secs(p, ticks));
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(exe);
        cmd.args(&args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        // The export's write concurrency, passed through to try other values than the default
        // (`EXPORT_ITEM_CONCURRENCY=64 bench --only export`; artifacts/bench.json records the value
        // used).
        if let Some(n) = std::env::var_os("EXPORT_ITEM_CONCURRENCY") {
            cmd.env("EXPORT_ITEM_CONCURRENCY", n);
        }
        // The child's log filter, to see an export's timeline (`BENCH_CHILD_LOG=debug`: one
        // line per batch landed, with its time, on stderr).
        if let Some(filter) = std::env::var_os("BENCH_CHILD_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.output()
    })
    .await
    .unwrap_or_else(|e| panic!("bench: child task: {e}"))
    .unwrap_or_else(|e| panic!("bench: spawning a child run: {e}"));
    let wall = started.elapsed();
    let cpu_after = moto.and_then(|p| procfs::cpu_secs(p, ticks));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "bench: the child run ({}) printed no result; its stdout:\n{stdout}",
                output.status
            )
        });
    ChildRun {
        result,
        moto_cpu_secs: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
        wall,
    }
}

/// Progress for the person waiting (stderr; stdout carries the table).
pub fn say(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

impl Site {
    /// The first site of a fake (what `GET /__admin/info` and the binary's first line say).
    pub fn first_of(info: &fake::AdminInfo) -> Site {
        let site = info
            .sites
            .first()
            .unwrap_or_else(|| panic!("bench set-up: the fake site has no sites"));
        Site {
            base: Url::parse(&info.base_url)
                .unwrap_or_else(|e| panic!("bench set-up: fake base URL: {e}")),
            cloud_id: site.cloud_id.clone(),
            url: site.url.clone(),
        }
    }
}

/// Returns once stdin is closed: how a helper process the bench started learns that the bench
/// is gone (the bench holds the pipe open while it needs the helper).
pub fn wait_for_stdin_to_close() {
    use std::io::Read as _;
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while stdin.read(&mut sink).is_ok_and(|n| n > 0) {}
}
