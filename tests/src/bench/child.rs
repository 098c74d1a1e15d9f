//! The measured side: `bench child-refresh …` and `bench child-export …` build a function's
//! state from the environment exactly as its `main.rs` does (config, AWS clients, keeper or
//! exporter), run one invocation's work, and print one result line with their own peak RSS
//! (`VmHWM`: this process holds nothing else, so it is the function's memory) and how many AWS
//! requests they sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{Value, json};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::events::{ExportContinued, ExportRequested};
use shared::export::runner::{Exporter, Outcome, new_job_id};
use shared::ids::{ConnectorId, TenantId};
use shared::vault::refresh::TokenKeeper;
use time::OffsetDateTime;
use token_refresh::{DEFAULT_CONCURRENCY, Refresher};
use tokio::time::Instant;

use crate::procfs;
use crate::world::RESULT_PREFIX;

/// Counts every AWS request attempt (retries included) sent by the clients it is installed on.
#[derive(Debug, Clone, Default)]
struct RequestCounter(Arc<AtomicU64>);

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "bench-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl RequestCounter {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `AwsClients::from_config`, with the request counter on every client.
async fn counted_clients(config: &Config, counter: &RequestCounter) -> AwsClients {
    let endpoint = config.aws_endpoint_url.as_ref();
    let sdk = shared::aws::sdk_config(endpoint).await;
    let c = || counter.clone();
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(c())
                .build(),
        ),
        kms: aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&sdk)
                .interceptor(c())
                .build(),
        ),
        s3: aws_sdk_s3::Client::from_conf(
            shared::aws::s3_config(
                &sdk,
                endpoint.is_some(),
                config.aws_endpoint_url_s3.as_ref(),
            )
            .interceptor(c())
            .build(),
        ),
        eventbridge: aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&sdk)
                .interceptor(c())
                .build(),
        ),
        secrets: aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .interceptor(c())
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(c())
                .build(),
        ),
    }
}

/// Config from the environment and counted clients, as a function's cold start builds them.
async fn cold_start() -> (Config, AwsClients, RequestCounter) {
    let _ = tracing::subscriber::set_global_default(shared::telemetry::subscriber(std::io::stderr));
    let config = Config::from_env().unwrap_or_else(|e| panic!("bench child: config: {e}"));
    let counter = RequestCounter::default();
    let aws = counted_clients(&config, &counter).await;
    (config, aws, counter)
}

pub fn emit(result: Value) {
    println!("{RESULT_PREFIX}{result}");
}

pub fn memory() -> Value {
    json!({
        "peak_rss_kib": procfs::own_peak_rss_kib(),
        "rss_end_kib": procfs::own_rss_kib(),
    })
}

/// One run of the refresh schedule at `now` (unix seconds), with the function's concurrency.
pub async fn refresh(now_unix: i64) {
    let (config, aws, counter) = cold_start().await;
    let mut keeper = TokenKeeper::from_config(&config, &aws)
        .await
        .unwrap_or_else(|e| panic!("bench child: token keeper: {e}"));
    let now = OffsetDateTime::from_unix_timestamp(now_unix)
        .unwrap_or_else(|e| panic!("bench child: now: {e}"));
    // The run happens at `now`: a clock shifted there (the fake site's clock is moved alike).
    keeper.clock = shared::clock::Clock::adjustable();
    keeper.clock.advance(now - OffsetDateTime::now_utc());
    let refresher = Refresher {
        keeper,
        concurrency: DEFAULT_CONCURRENCY,
    };
    let rss_start = procfs::own_rss_kib();
    let requests_before = counter.get();
    let started = Instant::now();
    let report = refresher
        .run(Instant::now() + Duration::from_secs(3600))
        .await
        .unwrap_or_else(|e| panic!("bench child: refresh run: {e}"));
    let secs = started.elapsed().as_secs_f64();
    emit(json!({
        "secs": secs,
        "report": report,
        "concurrency": DEFAULT_CONCURRENCY,
        "aws_requests": counter.get() - requests_before,
        "rss_start_kib": rss_start,
        "memory": memory(),
    }));
}

/// Set to `1` in a child's environment: export without documents and attachment text.
pub const DOCUMENTS_OFF: &str = "BENCH_DOCUMENTS_OFF";

/// One export job of `connector`, run to its end (continuations included) the way the
/// function's handler does, with `Exporter::from_config`'s settings.
pub async fn export(tenant: &str, connector: &str) {
    let (config, aws, counter) = cold_start().await;
    let mut exporter = Exporter::from_config(&config, &aws)
        .await
        .unwrap_or_else(|e| panic!("bench child: exporter: {e}"));
    // The documents' share of the export (issue 18): the bench runs some exports without them.
    if std::env::var(DOCUMENTS_OFF).is_ok_and(|v| v == "1") {
        exporter.documents.enabled = false;
    }
    let tenant = TenantId::parse(tenant).unwrap_or_else(|e| panic!("bench child: tenant: {e}"));
    let connector_id =
        ConnectorId::parse(connector).unwrap_or_else(|e| panic!("bench child: connector: {e}"));
    let job = new_job_id();
    let far = || Instant::now() + Duration::from_secs(3600);
    let rss_start = procfs::own_rss_kib();
    let requests_before = counter.get();
    let started = Instant::now();
    let mut outcome = exporter
        .requested(
            &ExportRequested {
                tenant: tenant.clone(),
                connector_id,
                job_id: Some(job.clone()),
                full: false,
            },
            far(),
        )
        .await
        .unwrap_or_else(|e| panic!("bench child: export: {e}"));
    let mut invocations = 1;
    while outcome == Outcome::Continued {
        outcome = exporter
            .continued(
                &ExportContinued {
                    tenant: tenant.clone(),
                    job_id: job.clone(),
                    connector_id: None,
                },
                far(),
            )
            .await
            .unwrap_or_else(|e| panic!("bench child: export: {e}"));
        invocations += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let requests = counter.get() - requests_before;
    let memory = memory();
    // This process's CPU time (user + system, /proc/self/stat): the whole job, cold start
    // included, since the process runs nothing else.
    let cpu_secs = procfs::cpu_secs(std::process::id(), procfs::clock_ticks());
    let record = exporter
        .keeper
        .store
        .get_job(&tenant, &job)
        .await
        .unwrap_or_else(|e| panic!("bench child: reading the job: {e}"))
        .unwrap_or_else(|| panic!("bench child: the job record is missing"));
    emit(json!({
        "secs": secs,
        "outcome": format!("{outcome:?}"),
        "completed": matches!(outcome, Outcome::Completed { .. }),
        "invocations": invocations,
        "items": record.items_done,
        "attachments": record.attachments_done,
        "bytes": record.bytes_done,
        "skipped": record.skipped_count,
        "item_concurrency": exporter.item_concurrency,
        "documents": exporter.documents.enabled,
        "batch_size": exporter.batch_size,
        "max_concurrency_per_site": config.atlassian.max_concurrency_per_site,
        "aws_requests": requests,
        "cpu_secs": cpu_secs,
        "rss_start_kib": rss_start,
        "memory": memory,
    }));
}
