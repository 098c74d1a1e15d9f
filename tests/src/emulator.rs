//! The AWS emulator (moto server) for tests and `make local`.
//!
//! [`Emulator::start`] runs `tests/emulator/moto_launcher.py` with the project's venv Python on
//! a free loopback port. The launcher exits when its stdin closes, and we hold that pipe, so
//! the emulator dies with the process that started it, even on a crash or `kill -9`.
//! [`TestAws::new`] gives each test its own freshly provisioned table, bucket, KMS key and
//! event bus inside one emulator per test process, so tests run in parallel without sharing
//! state. Nothing here skips: if the emulator cannot start, the test fails with the reason.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, SseSpecification,
    TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    BucketVersioningStatus, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use shared::aws::AwsClients;
use shared::store::schema;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "the AWS emulator could not start: {0}. Run `make venv` (creates .venv with the pinned moto), \
         or set MOTO_PYTHON to a Python that has moto[server]"
    )]
    Start(String),
    #[error("provisioning {what} in the emulator failed: {detail}")]
    Provision { what: &'static str, detail: String },
}

fn provision_err(what: &'static str) -> impl FnOnce(String) -> EmulatorError {
    move |detail| EmulatorError::Provision { what, detail }
}

fn build<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, EmulatorError> {
    r.map_err(|e| EmulatorError::Provision {
        what: "table schema",
        detail: e.to_string(),
    })
}

fn sdk_detail<E: std::error::Error>(e: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}

/// A running moto server. Stops when dropped, or when this process exits.
pub struct Emulator {
    endpoint: Url,
    child: Mutex<Option<(Child, ChildStdin)>>,
}

/// How long moto may take to import and bind (it imports every service's backend lazily; the
/// first start in a fresh venv compiles bytecode).
const START_TIMEOUT: Duration = Duration::from_secs(90);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

impl Emulator {
    /// Start a new emulator on a free loopback port (or `port`, if non-zero).
    pub fn start(port: u16) -> Result<Emulator, EmulatorError> {
        let python = python();
        if !python.exists() {
            return Err(EmulatorError::Start(format!(
                "{} does not exist",
                python.display()
            )));
        }
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("emulator/moto_launcher.py");
        let mut child = Command::new(&python)
            .arg(&launcher)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EmulatorError::Start(format!("spawning {}: {e}", python.display())))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| EmulatorError::Start("no stdin pipe".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EmulatorError::Start("no stdout pipe".into()))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| EmulatorError::Start("no stderr pipe".into()))?;

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.strip_prefix("READY ")
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            let _ = tx.send(ready);
            // Keep draining so moto never blocks on a full pipe.
            for _ in lines {}
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => port,
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                let why = if outcome.is_err() {
                    "timed out"
                } else {
                    "exited"
                };
                let tail: String = err
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(EmulatorError::Start(format!(
                    "moto {why} before it was ready; its stderr ends with:\n{tail}"
                )));
            }
        };
        // moto logs every request to stderr; drain it so the pipe never fills.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        });
        let endpoint = Url::parse(&format!("http://127.0.0.1:{port}"))
            .map_err(|e| EmulatorError::Start(format!("bad endpoint: {e}")))?;
        Ok(Emulator {
            endpoint,
            child: Mutex::new(Some((child, stdin))),
        })
    }

    /// One emulator for the whole test process, started on first use.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| Emulator::start(0).unwrap_or_else(|e| panic!("{e}")))
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// An SDK config pointed at this emulator with fixed test credentials; reads nothing from
    /// the environment, so tests never depend on the developer's AWS profile.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "emulator",
            ))
            .endpoint_url(self.endpoint.as_str().trim_end_matches('/'))
            .load()
            .await
    }

    pub async fn clients(&self) -> AwsClients {
        AwsClients::new(&self.sdk_config().await, true)
    }

    /// Stop the server now (it also stops by itself when this process exits).
    pub fn stop(&self) {
        let taken = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            if matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Names of the resources one deployment (or one test) uses.
#[derive(Debug, Clone)]
pub struct ResourceNames {
    pub table: String,
    pub bucket: String,
    pub key_alias: String,
    pub event_bus: String,
}

impl ResourceNames {
    /// Unique names, so parallel tests never share a resource.
    pub fn unique(prefix: &str) -> ResourceNames {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{prefix}-{}-{n}", std::process::id());
        ResourceNames {
            table: format!("{id}-table"),
            bucket: format!("{id}-bucket"),
            key_alias: format!("alias/{id}-key"),
            event_bus: format!("{id}-bus"),
        }
    }
}

/// Create the table (TTL, the refresh-due GSI, SSE), the KMS key, the bucket (SSE-KMS by
/// default, versioned, public access blocked) and the event bus. The same shapes as
/// infra/template.yaml. Returns the KMS key id.
pub async fn provision(
    clients: &AwsClients,
    names: &ResourceNames,
) -> Result<String, EmulatorError> {
    let key = clients
        .kms
        .create_key()
        .description("connectors: token envelopes and S3 SSE-KMS")
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("KMS key"))?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| EmulatorError::Provision {
            what: "KMS key",
            detail: "no key metadata".into(),
        })?;
    clients
        .kms
        .create_alias()
        .alias_name(&names.key_alias)
        .target_key_id(&key_id)
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("KMS alias"))?;

    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
    };
    let key_el = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(schema::REFRESH_DUE_INDEX)
        .key_schema(build(key_el(schema::REFRESH_BUCKET, KeyType::Hash))?)
        .key_schema(build(key_el(schema::REFRESH_DUE_AT, KeyType::Range))?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build();
    let jobs_gsi = GlobalSecondaryIndex::builder()
        .index_name(schema::JOB_DUE_INDEX)
        .key_schema(build(key_el(schema::JOB_DUE_BUCKET, KeyType::Hash))?)
        .key_schema(build(key_el(schema::JOB_DUE_AT, KeyType::Range))?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build();
    clients
        .dynamodb
        .create_table()
        .table_name(&names.table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(build(attr(schema::PK, ScalarAttributeType::S))?)
        .attribute_definitions(build(attr(schema::SK, ScalarAttributeType::S))?)
        .attribute_definitions(build(attr(schema::REFRESH_BUCKET, ScalarAttributeType::S))?)
        .attribute_definitions(build(attr(schema::REFRESH_DUE_AT, ScalarAttributeType::N))?)
        .attribute_definitions(build(attr(schema::JOB_DUE_BUCKET, ScalarAttributeType::S))?)
        .attribute_definitions(build(attr(schema::JOB_DUE_AT, ScalarAttributeType::N))?)
        .key_schema(build(key_el(schema::PK, KeyType::Hash))?)
        .key_schema(build(key_el(schema::SK, KeyType::Range))?)
        .global_secondary_indexes(build(gsi)?)
        .global_secondary_indexes(build(jobs_gsi)?)
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .sse_type(aws_sdk_dynamodb::types::SseType::Kms)
                .kms_master_key_id(&key_id)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("table"))?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(&names.table)
        .time_to_live_specification(build(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(schema::TTL)
                .build(),
        )?)
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("table TTL"))?;

    clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("bucket"))?;
    let sse_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(&key_id)
        .build()
        .map_err(|e| e.to_string())
        .map_err(provision_err("bucket encryption"))?;
    let sse = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(sse_default)
                .bucket_key_enabled(true)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())
        .map_err(provision_err("bucket encryption"))?;
    clients
        .s3
        .put_bucket_encryption()
        .bucket(&names.bucket)
        .server_side_encryption_configuration(sse)
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("bucket encryption"))?;
    clients
        .s3
        .put_bucket_versioning()
        .bucket(&names.bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("bucket versioning"))?;
    clients
        .s3
        .put_public_access_block()
        .bucket(&names.bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("bucket public access block"))?;

    clients
        .eventbridge
        .create_event_bus()
        .name(&names.event_bus)
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("event bus"))?;
    Ok(key_id)
}

/// The export's resume queue (delayed deliveries after a wait), as infra/template.yaml's
/// `ResumeQueue`. Returns its URL. (The emulator keeps the messages; it runs no event source
/// mapping: tests and `make local` deliver due resumes themselves.)
pub async fn provision_resume_queue(
    clients: &AwsClients,
    names: &ResourceNames,
) -> Result<String, EmulatorError> {
    clients
        .sqs
        .create_queue()
        .queue_name(format!("{}-resume", names.table))
        .send()
        .await
        .map_err(sdk_detail)
        .map_err(provision_err("resume queue"))?
        .queue_url
        .ok_or_else(|| EmulatorError::Provision {
            what: "resume queue",
            detail: "no queue url".into(),
        })
}

/// One test's private AWS: its own resources in the process-wide emulator.
pub struct TestAws {
    pub endpoint: Url,
    pub clients: AwsClients,
    pub names: ResourceNames,
    pub kms_key_id: String,
    pub resume_queue_url: String,
}

impl TestAws {
    /// Fresh resources in the shared emulator. Panics with the reason if anything fails: a
    /// test without its emulator must fail, never pass vacuously.
    pub async fn new() -> TestAws {
        let emulator = Emulator::shared();
        let clients = emulator.clients().await;
        let names = ResourceNames::unique("t");
        let kms_key_id = provision(&clients, &names)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let resume_queue_url = provision_resume_queue(&clients, &names)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        TestAws {
            endpoint: emulator.endpoint().clone(),
            clients,
            names,
            kms_key_id,
            resume_queue_url,
        }
    }

    /// The environment a function would get, for `Config::from_vars`.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.to_string()),
            ("TABLE_NAME".into(), self.names.table.clone()),
            ("BUCKET_NAME".into(), self.names.bucket.clone()),
            ("KMS_KEY_ID".into(), self.kms_key_id.clone()),
            ("EVENT_BUS_NAME".into(), self.names.event_bus.clone()),
            ("RESUME_QUEUE_URL".into(), self.resume_queue_url.clone()),
        ]
    }

    /// Every item in the table (a full scan: for assertions only, never production code).
    pub async fn scan_table(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .clients
                .dynamodb
                .scan()
                .table_name(&self.names.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scan: {}", sdk_detail(e)));
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return items,
            }
        }
    }

    /// Every object version key in the bucket.
    pub async fn list_object_versions(&self) -> Vec<String> {
        let out = self
            .clients
            .s3
            .list_object_versions()
            .bucket(&self.names.bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list versions: {}", sdk_detail(e)));
        out.versions()
            .iter()
            .filter_map(|v| v.key().map(str::to_owned))
            .collect()
    }
}

impl TestAws {
    /// Store a secret (an app's client secret) in the emulator's Secrets Manager under a name
    /// unique to this test; returns the name.
    pub async fn put_secret(&self, label: &str, value: &str) -> String {
        let name = format!("{}-{label}", self.names.table);
        self.clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create secret: {}", sdk_detail(e)));
        name
    }
}

/// The events published on a test's bus, captured the way a real consumer would: an
/// EventBridge rule routing everything from our source to an SQS queue.
pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl TestAws {
    pub async fn capture_events(&self) -> EventQueue {
        EventQueue::create(&self.clients, Emulator::shared(), &self.names)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl EventQueue {
    /// A queue receiving every event of our source on the resources' bus.
    pub async fn create(
        clients: &AwsClients,
        emulator: &Emulator,
        names: &ResourceNames,
    ) -> Result<EventQueue, EmulatorError> {
        let sdk = emulator.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let name = format!("{}-events", names.table);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .map_err(sdk_detail)
            .map_err(provision_err("event queue"))?
            .queue_url
            .ok_or_else(|| EmulatorError::Provision {
                what: "event queue",
                detail: "no queue url".into(),
            })?;
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
        clients
            .eventbridge
            .put_rule()
            .name(&name)
            .event_bus_name(&names.event_bus)
            .event_pattern(serde_json::json!({ "source": [shared::events::SOURCE] }).to_string())
            .send()
            .await
            .map_err(sdk_detail)
            .map_err(provision_err("event rule"))?;
        clients
            .eventbridge
            .put_targets()
            .rule(&name)
            .event_bus_name(&names.event_bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .map_err(|e| EmulatorError::Provision {
                        what: "event target",
                        detail: e.to_string(),
                    })?,
            )
            .send()
            .await
            .map_err(sdk_detail)
            .map_err(provision_err("event target"))?;
        Ok(EventQueue { sqs, url })
    }
}

impl EventQueue {
    /// Every event delivered so far, as (detail-type, detail).
    pub async fn drain(&self) -> Vec<(String, serde_json::Value)> {
        let mut events = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive: {}", sdk_detail(e)));
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for m in messages {
                let body: serde_json::Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
                let detail_type = body["detail-type"].as_str().unwrap_or_default().to_owned();
                events.push((detail_type, body["detail"].clone()));
                if let Some(handle) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }
}
