//! Issue 9: cold start of each function binary: process start to first response under a local
//! Lambda runtime.
//!
//! For each of the four release binaries (`<target>/release/<name>`), every run starts a fresh
//! loopback Lambda Runtime API (the 2018-06-01 API that `lambda_runtime` speaks: `GET
//! /runtime/invocation/next`, `POST /runtime/invocation/{id}/response` and `/error`, `POST
//! /runtime/init/error`) holding one event, spawns the binary with a clean environment (the
//! deployment's variables from infra/template.yaml against the AWS emulator and a fake site, plus
//! the variables Lambda itself sets), and measures from just before the spawn to the moment the
//! runtime API has received the whole first response. The split is reported too: spawn → first
//! `/next` (the function's init: runtime, config, AWS clients, the app secrets read from Secrets
//! Manager) and `/next` → response (the first invocation, which makes one DynamoDB call in each
//! function). The child's peak RSS (`VmHWM`) is read before it is killed (it is then waiting on
//! `/next` again, where real Lambda would freeze it). Each function gets one warm-up run that is
//! not counted (the first exec of a binary pays page-cache costs), then `runs` counted runs; the
//! figure is their median. The response must be the expected success (status and body shape),
//! or the row fails instead of timing an error.
//!
//! How faithful it is: the binaries and the runtime protocol are the real ones, and so are the
//! environment and the AWS calls (to moto). What it leaves out: Firecracker micro-VM and
//! sandbox set-up, downloading and unpacking the code package, the Lambda extensions phase, the
//! arm64 Graviton CPU and MemorySize-proportional CPU share (this is the x86_64 host binary on
//! whatever cores are free), and network latency to AWS (moto answers on loopback; it is not
//! AWS's latency either way). A real cold start adds the platform's own sandbox and init
//! overhead to what is measured here.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use integration_tests::emulator::Emulator;
use integration_tests::fake::{self, FakeAtlassian, FakeConfig, SeedSpec};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::report::{Row, Verdict, median, num};
use crate::world::{Deployment, Site, say};

/// The target for process start → first response.
const TARGET_MS: f64 = 500.0;
/// Longest wait for a run's first response before it is called failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body the runtime API accepts (Lambda's synchronous payload limit).
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TENANT: &str = "bench";
/// Lines of a child's output kept for error messages.
const TAIL_LINES: usize = 20;
/// The command that builds the binaries measured here.
const BUILD: &str =
    "cargo build --release -p oauth-callback -p connectors-api -p token-refresh -p export";

/// What a function's first invocation is given and must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Function URL (payload 2.0), `GET /callback?error=access_denied&state=…`.
    Callback,
    /// Function URL (payload 2.0, IAM auth), `GET /connections?tenant=bench`.
    Api,
    /// The EventBridge schedule rule's "Scheduled Event".
    Refresh,
    /// EventBridge `ExportContinued` for a job that does not exist.
    Export,
}

/// One function as infra/template.yaml deploys it.
struct Function {
    name: &'static str,
    kind: Kind,
    memory_mib: u32,
    timeout_secs: u64,
    /// Whether its environment has `BUCKET_NAME`.
    bucket: bool,
    /// Whether its environment has `OAUTH_REDIRECT_URL`, `ALLOWED_RETURN_URLS` and
    /// `JOB_RETENTION_DAYS`: the two HTTP functions (the export has the last only).
    http: bool,
    first_invocation: &'static str,
}

const FUNCTIONS: [Function; 4] = [
    Function {
        name: "oauth-callback",
        kind: Kind::Callback,
        memory_mib: 256,
        timeout_secs: 15,
        bucket: false,
        http: true,
        first_invocation: "function URL GET /callback?error=access_denied&state=<unknown>: one \
                           DynamoDB state consume (not found), then the 200 'Connection not \
                           authorized' page",
    },
    Function {
        name: "connectors-api",
        kind: Kind::Api,
        memory_mib: 256,
        timeout_secs: 30,
        bucket: true,
        http: true,
        first_invocation: "function URL GET /connections?tenant=bench: one DynamoDB query, 200 \
                           with an empty list",
    },
    Function {
        name: "token-refresh",
        kind: Kind::Refresh,
        memory_mib: 256,
        timeout_secs: 300,
        bucket: false,
        http: false,
        first_invocation: "EventBridge Scheduled Event: one DynamoDB query of the refresh-due \
                           index, nothing due",
    },
    Function {
        name: "export",
        kind: Kind::Export,
        memory_mib: 1024,
        timeout_secs: 900,
        bucket: true,
        http: false,
        first_invocation: "EventBridge ExportContinued for a job that does not exist: one \
                           DynamoDB read, answered already_finished",
    },
];

impl Function {
    fn lambda_name(&self) -> String {
        format!("bench-coldstart-{}", self.name)
    }

    fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            self.lambda_name()
        )
    }

    /// The event of run `run` (a new request id, state or job id each time).
    fn event(&self, run: &str) -> Value {
        match self.kind {
            Kind::Callback => url_event(
                "callback0000000000000000000000",
                "/callback",
                &format!("error=access_denied&state=bench-coldstart-{run}"),
                false,
            ),
            Kind::Api => url_event(
                "api00000000000000000000000000",
                "/connections",
                &format!("tenant={TENANT}"),
                true,
            ),
            Kind::Refresh => eventbridge(
                "aws.events",
                "Scheduled Event",
                vec![json!(format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:rule/bench-coldstart-refresh"
                ))],
                json!({}),
            ),
            Kind::Export => eventbridge(
                shared::events::SOURCE,
                "ExportContinued",
                Vec::new(),
                json!({ "tenant": TENANT, "job_id": format!("job-coldstart-{run}") }),
            ),
        }
    }

    /// Whether `response` (the body the function posted) is the success expected of the first
    /// invocation; a short description of it when it is.
    fn check(&self, response: &Value) -> Result<String, String> {
        match self.kind {
            Kind::Callback => {
                let (status, content_type, body) = http_response(response)?;
                let title = "Connection not authorized";
                if status == 200 && content_type.starts_with("text/html") && body.contains(title) {
                    Ok(format!("{status} {content_type}, the '{title}' page"))
                } else {
                    Err(format!(
                        "expected 200 text/html '{title}', got {status} {content_type}: {}",
                        clip(&body)
                    ))
                }
            }
            Kind::Api => {
                let (status, content_type, body) = http_response(response)?;
                let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                match parsed["connections"].as_array() {
                    Some(list) if status == 200 => Ok(format!(
                        "{status} {content_type}, {} connections",
                        list.len()
                    )),
                    _ => Err(format!(
                        "expected 200 with a connections list, got {status}: {}",
                        clip(&body)
                    )),
                }
            }
            Kind::Refresh => {
                if response["due"].is_u64() && response["failed"] == 0 {
                    Ok(format!("run report {response}"))
                } else {
                    Err(format!(
                        "expected a run report with nothing failed, got {response}"
                    ))
                }
            }
            Kind::Export => {
                if response["outcome"] == "already_finished" {
                    Ok(format!("{response}"))
                } else {
                    Err(format!("expected outcome already_finished, got {response}"))
                }
            }
        }
    }

    /// The process environment: the deployment's variables as infra/template.yaml sets them
    /// for this function (no `RUST_LOG`: the deployed functions log at their default level),
    /// then what Lambda sets for a `provided.al2023` function.
    fn env(
        &self,
        deployment: &[(String, String)],
        runtime_api: &str,
        binary: &Path,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = deployment
            .iter()
            .filter(|(k, _)| k != "RUST_LOG" && (self.bucket || k != "BUCKET_NAME"))
            .cloned()
            .collect();
        let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
        if self.http {
            set("OAUTH_REDIRECT_URL", fake::DEFAULT_REDIRECT_URI.to_owned());
            set("ALLOWED_RETURN_URLS", "http://localhost:3000".to_owned());
        }
        if self.http || self.kind == Kind::Export {
            set("JOB_RETENTION_DAYS", "30".to_owned());
        }
        let today = OffsetDateTime::now_utc().date();
        set("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned());
        set("AWS_LAMBDA_FUNCTION_NAME", self.lambda_name());
        set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned());
        set(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            self.memory_mib.to_string(),
        );
        set(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", self.lambda_name()),
        );
        set(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!(
                "{}/{:02}/{:02}/[$LATEST]{:032x}",
                today.year(),
                u8::from(today.month()),
                today.day(),
                rand::random::<u128>()
            ),
        );
        set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned());
        set("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned());
        set("AWS_DEFAULT_REGION", REGION.to_owned());
        set("_HANDLER", "bootstrap".to_owned());
        set(
            "LAMBDA_TASK_ROOT",
            binary
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        );
        set("TZ", ":UTC".to_owned());
        set("LANG", "en_US.UTF-8".to_owned());
        if let Some(path) = std::env::var_os("PATH") {
            set("PATH", path.to_string_lossy().into_owned());
        }
        env
    }
}

/// A Lambda function URL event (payload format 2.0) for `GET path?query`; `iam` adds the IAM
/// authorizer context an `AWS_IAM` function URL passes.
fn url_event(url_id: &str, path: &str, query: &str, iam: bool) -> Value {
    let now = OffsetDateTime::now_utc();
    let domain = format!("{url_id}.lambda-url.{REGION}.on.aws");
    let mut params = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let trace = trace_id();
    let mut context = json!({
        "accountId": "anonymous",
        "apiId": url_id,
        "domainName": domain,
        "domainPrefix": url_id,
        "http": {
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "bench-coldstart",
        },
        "requestId": request_id(),
        "routeKey": "$default",
        "stage": "$default",
        "time": now
            .format(time::macros::format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
            ))
            .unwrap_or_default(),
        "timeEpoch": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
    });
    if iam {
        context["accountId"] = json!(ACCOUNT);
        context["authorizer"] = json!({
            "iam": {
                "accessKey": "ASIABENCHCOLDSTART00",
                "accountId": ACCOUNT,
                "callerId": "AROABENCHCOLDSTART:platform",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/platform/bench"),
                "userId": "AROABENCHCOLDSTART:platform",
            }
        });
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "text/html,application/json",
            "host": domain,
            "user-agent": "bench-coldstart",
            "x-amzn-trace-id": trace,
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "queryStringParameters": params,
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

/// An EventBridge event as a rule or schedule target receives it.
fn eventbridge(source: &str, detail_type: &str, resources: Vec<Value>, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": request_id(),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    })
}

/// The status, content type and (decoded) body of a `lambda_http` function URL response.
fn http_response(v: &Value) -> Result<(u64, String, String), String> {
    let status = v["statusCode"]
        .as_u64()
        .ok_or_else(|| format!("not a function URL response: {}", clip(&v.to_string())))?;
    let content_type = v["headers"]["content-type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let raw = v["body"].as_str().unwrap_or_default();
    let body = if v["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| format!("body is not base64: {e}"))?;
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        raw.to_owned()
    };
    Ok((status, content_type, body))
}

fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

/// A request id shaped like Lambda's (a UUID).
fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An X-Ray trace header like the one Lambda passes.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r: u128 = rand::random();
    let p: u64 = rand::random();
    format!(
        "Root=1-{secs:08x}-{:024x};Parent={p:016x};Sampled=0",
        r & ((1u128 << 96) - 1)
    )
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------ the local runtime API

/// What the function posted back.
#[derive(Debug)]
enum Answer {
    Response(Bytes),
    /// `/invocation/{id}/error` or `/init/error` (or a response for another request id).
    Error {
        path: String,
        error_type: Option<String>,
        body: Bytes,
    },
}

struct Posted {
    at: Instant,
    answer: Answer,
}

/// One run's runtime API: a single invocation to hand out.
struct Runtime {
    request_id: String,
    event: Bytes,
    function_arn: String,
    timeout: Duration,
    handed_out: AtomicBool,
    next_at: Mutex<Option<Instant>>,
    posted: mpsc::UnboundedSender<Posted>,
    /// Set once the process is killed: releases a `/next` waiting for a second event.
    done: watch::Receiver<bool>,
    /// Requests outside the API (method and path).
    unexpected: Mutex<Vec<String>>,
}

const API: &str = "/2018-06-01/runtime";

fn runtime_router(state: Arc<Runtime>) -> Router {
    Router::new()
        .route(&format!("{API}/invocation/next"), get(next))
        .route(
            &format!("{API}/invocation/{{id}}/response"),
            post(invocation_response),
        )
        .route(
            &format!("{API}/invocation/{{id}}/error"),
            post(invocation_error),
        )
        .route(&format!("{API}/init/error"), post(init_error))
        .fallback(unexpected)
        .with_state(state)
}

/// `GET /runtime/invocation/next`: the one event, then (as Lambda freezes the sandbox after a
/// response) nothing until the process is killed.
async fn next(State(rt): State<Arc<Runtime>>) -> Response {
    let at = Instant::now();
    if !rt.handed_out.swap(true, Ordering::SeqCst) {
        *lock(&rt.next_at) = Some(at);
        let deadline = unix_ms() + rt.timeout.as_millis() as u64;
        return (
            StatusCode::OK,
            [
                ("lambda-runtime-aws-request-id", rt.request_id.clone()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    rt.function_arn.clone(),
                ),
                ("lambda-runtime-trace-id", trace_id()),
                ("content-type", "application/json".to_owned()),
            ],
            rt.event.clone(),
        )
            .into_response();
    }
    let mut done = rt.done.clone();
    let _ = done.wait_for(|d| *d).await;
    StatusCode::GONE.into_response()
}

async fn read_body(req: Request) -> Result<Bytes, Response> {
    axum::body::to_bytes(req.into_body(), MAX_PAYLOAD)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /runtime/invocation/{id}/response`.
async fn invocation_response(
    State(rt): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> Response {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let at = Instant::now();
    if id != rt.request_id {
        let _ = rt.posted.send(Posted {
            at,
            answer: Answer::Error {
                path: format!("response for unknown request id {id}"),
                error_type: None,
                body,
            },
        });
        return (StatusCode::BAD_REQUEST, "InvalidRequestID").into_response();
    }
    let _ = rt.posted.send(Posted {
        at,
        answer: Answer::Response(body),
    });
    accepted()
}

/// `POST /runtime/invocation/{id}/error`.
async fn invocation_error(
    State(rt): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> Response {
    let error_type = error_type(req.headers());
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let _ = rt.posted.send(Posted {
        at: Instant::now(),
        answer: Answer::Error {
            path: format!("invocation/{id}/error"),
            error_type,
            body,
        },
    });
    accepted()
}

/// `POST /runtime/init/error`.
async fn init_error(State(rt): State<Arc<Runtime>>, req: Request) -> Response {
    let error_type = error_type(req.headers());
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let _ = rt.posted.send(Posted {
        at: Instant::now(),
        answer: Answer::Error {
            path: "init/error".into(),
            error_type,
            body,
        },
    });
    accepted()
}

async fn unexpected(State(rt): State<Arc<Runtime>>, req: Request) -> Response {
    lock(&rt.unexpected).push(format!("{} {}", req.method(), req.uri()));
    StatusCode::NOT_FOUND.into_response()
}

// ------------------------------------------------------------------ the measured process

/// What a child printed (its log lines go to Lambda's log pipe; here, to this).
#[derive(Default)]
struct Output {
    lines: usize,
    tail: VecDeque<String>,
}

fn drain(pipe: impl Read + Send + 'static, out: Arc<Mutex<Output>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut o = lock(&out);
            o.lines += 1;
            if o.tail.len() == TAIL_LINES {
                o.tail.pop_front();
            }
            o.tail.push_back(line);
        }
    })
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// One measured cold start.
struct Sample {
    total_ms: f64,
    /// Spawn → first `GET /next`.
    init_ms: Option<f64>,
    /// First `GET /next` → the response received.
    invoke_ms: Option<f64>,
    peak_rss_kib: Option<u64>,
    /// The response, as checked.
    answered: String,
    log_lines: usize,
}

impl Sample {
    fn json(&self) -> Value {
        json!({
            "total_ms": self.total_ms,
            "init_ms": self.init_ms,
            "first_invocation_ms": self.invoke_ms,
            "peak_rss_kib": self.peak_rss_kib,
            "answered": self.answered,
            "log_lines": self.log_lines,
        })
    }
}

enum Ended {
    Posted(Posted),
    Exited(ExitStatus),
    TimedOut,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Start `binary` under a fresh runtime API holding `f`'s event, wait for its first answer,
/// kill it. `Err` says why the run does not count (an error answer, an exit, a timeout).
async fn one_run(
    f: &Function,
    binary: &Path,
    deployment: &[(String, String)],
    run: &str,
) -> Result<Sample, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("bench cold start: runtime API listener: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bench cold start: runtime API address: {e}"));
    let (posted_tx, mut posted) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = watch::channel(false);
    let rt = Arc::new(Runtime {
        request_id: request_id(),
        event: Bytes::from(f.event(run).to_string()),
        function_arn: f.arn(),
        timeout: Duration::from_secs(f.timeout_secs),
        handed_out: AtomicBool::new(false),
        next_at: Mutex::new(None),
        posted: posted_tx,
        done: done_rx,
        unexpected: Mutex::new(Vec::new()),
    });
    let server = tokio::spawn({
        let router = runtime_router(rt.clone());
        async move {
            let _ = axum::serve(listener, router).await;
        }
    });

    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .envs(f.env(deployment, &addr.to_string(), binary))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("bench cold start: spawning {}: {e}", binary.display()));
    let pid = child.id();
    let output = Arc::new(Mutex::new(Output::default()));
    let drains: Vec<JoinHandle<()>> = [
        child.stdout.take().map(|p| drain(p, output.clone())),
        child.stderr.take().map(|p| drain(p, output.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();

    let give_up = tokio::time::Instant::now() + RESPONSE_TIMEOUT;
    let ended = loop {
        tokio::select! {
            p = posted.recv() => match p {
                Some(p) => break Ended::Posted(p),
                None => break Ended::TimedOut,
            },
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if let Ok(Some(status)) = child.try_wait() {
                    break Ended::Exited(status);
                }
                if tokio::time::Instant::now() >= give_up {
                    break Ended::TimedOut;
                }
            }
        }
    };
    // Still running (waiting on `/next`, where Lambda would freeze it): its peak so far.
    let peak_rss_kib = status_kib(pid, "VmHWM");
    let _ = child.kill();
    let _ = child.wait();
    let _ = done_tx.send(true);
    for d in drains {
        let _ = d.join();
    }
    server.abort();
    let next_at = *lock(&rt.next_at);
    let unexpected = lock(&rt.unexpected).clone();
    let out = lock(&output);
    let tail = || out.tail.iter().cloned().collect::<Vec<_>>().join("\n");
    if !unexpected.is_empty() {
        return Err(format!(
            "requests outside the runtime API: {unexpected:?}\nits last output:\n{}",
            tail()
        ));
    }
    let posted = match ended {
        Ended::Posted(p) => p,
        Ended::Exited(status) => {
            return Err(format!(
                "exited ({status}) before answering\nits last output:\n{}",
                tail()
            ));
        }
        Ended::TimedOut => {
            return Err(format!(
                "no answer within {} s\nits last output:\n{}",
                RESPONSE_TIMEOUT.as_secs(),
                tail()
            ));
        }
    };
    let body = match posted.answer {
        Answer::Response(body) => body,
        Answer::Error {
            path,
            error_type,
            body,
        } => {
            return Err(format!(
                "posted {path} ({}): {}\nits last output:\n{}",
                error_type.as_deref().unwrap_or("no error type"),
                clip(&String::from_utf8_lossy(&body)),
                tail()
            ));
        }
    };
    let response: Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "the response is not JSON ({e}): {}",
            clip(&String::from_utf8_lossy(&body))
        )
    })?;
    let answered = f.check(&response)?;
    Ok(Sample {
        total_ms: ms(posted.at - started),
        init_ms: next_at.map(|n| ms(n - started)),
        invoke_ms: next_at.map(|n| ms(posted.at - n)),
        peak_rss_kib,
        answered,
        log_lines: out.lines,
    })
}

// ------------------------------------------------------------------ the benchmark

fn workspace_root() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests
        .parent()
        .map_or_else(|| tests.join(".."), PathBuf::from)
}

/// `<target>/release/<name>`, where target is `CARGO_TARGET_DIR` or the workspace's `target`.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("release").join(name);
    if !path.is_file() {
        panic!(
            "bench cold start: {} is missing: `make bench` builds the function binaries \
             (`{BUILD}`)",
            path.display()
        );
    }
    path
}

fn median_of(samples: &[Sample], pick: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(&samples.iter().filter_map(pick).collect::<Vec<_>>())
}

async fn bench_function(
    f: &Function,
    binary: &Path,
    deployment: &[(String, String)],
    runs: usize,
) -> Row {
    let bound = format!(
        "target ≤ {TARGET_MS:.0} ms (process start → first response, against the local \
         emulator; includes the init's Secrets Manager reads and the first invocation's AWS call)"
    );
    let id = format!("cold_start.{}", f.name);
    let benchmark = format!("Cold start: {} (MemorySize {} MiB)", f.name, f.memory_mib);
    let binary_bytes = std::fs::metadata(binary).map(|m| m.len()).ok();
    let mut details = json!({
        "binary": binary.display().to_string(),
        "binary_bytes": binary_bytes,
        "memory_size_mib": f.memory_mib,
        "timeout_secs": f.timeout_secs,
        "first_invocation": f.first_invocation,
        "event": f.event("<run>"),
        "measured": "spawn → the runtime API has the whole first response; init = spawn → first \
                     GET /next; peak RSS = VmHWM just before the kill",
    });
    let fail = |note: String, samples: &[Sample], details: Value| Row {
        id: id.clone(),
        benchmark: benchmark.clone(),
        value: None,
        unit: "ms".into(),
        samples: samples.iter().map(|s| s.total_ms).collect(),
        figure: "—".into(),
        bound: bound.clone(),
        verdict: Verdict::Fail,
        note,
        details,
    };

    let warm_up = match one_run(f, binary, deployment, "warm-up").await {
        Ok(s) => s,
        Err(e) => {
            say(format!(
                "cold start {}: the warm-up run failed: {e}",
                f.name
            ));
            details["error"] = json!(e);
            return fail(
                format!("the warm-up run failed: {}", first_line(&e)),
                &[],
                details,
            );
        }
    };
    say(format!(
        "cold start {} warm-up: {:.0} ms ({})",
        f.name, warm_up.total_ms, warm_up.answered
    ));
    details["warm_up"] = warm_up.json();
    let mut samples = Vec::with_capacity(runs);
    for run in 1..=runs {
        match one_run(f, binary, deployment, &run.to_string()).await {
            Ok(s) => {
                say(format!(
                    "cold start {} run {run}/{runs}: {:.1} ms (init {:.1} + first invocation {:.1}), peak RSS {:.1} MiB",
                    f.name,
                    s.total_ms,
                    s.init_ms.unwrap_or(f64::NAN),
                    s.invoke_ms.unwrap_or(f64::NAN),
                    s.peak_rss_kib.map_or(f64::NAN, |k| k as f64 / 1024.0),
                ));
                samples.push(s);
            }
            Err(e) => {
                say(format!(
                    "cold start {} run {run}/{runs} failed: {e}",
                    f.name
                ));
                details["runs"] = samples.iter().map(Sample::json).collect();
                details["error"] = json!(e);
                return fail(
                    format!("run {run} failed: {}", first_line(&e)),
                    &samples,
                    details,
                );
            }
        }
    }
    let total = median_of(&samples, |s| Some(s.total_ms));
    let init = median_of(&samples, |s| s.init_ms);
    let invoke = median_of(&samples, |s| s.invoke_ms);
    let peak_mib = median_of(&samples, |s| s.peak_rss_kib.map(|k| k as f64 / 1024.0));
    let slowest = samples.iter().map(|s| s.total_ms).fold(f64::NAN, f64::max);
    details["median_init_ms"] = json!(init);
    details["median_first_invocation_ms"] = json!(invoke);
    details["median_peak_rss_mib"] = json!(peak_mib);
    details["runs"] = samples.iter().map(Sample::json).collect();
    let opt = |x: Option<f64>, digits: usize| x.map_or("?".into(), |x| num(x, digits));
    Row {
        id,
        benchmark,
        value: total,
        unit: "ms".into(),
        samples: samples.iter().map(|s| s.total_ms).collect(),
        figure: total.map_or("—".into(), |t| {
            format!(
                "{} ms (init {} + first invocation {}; peak RSS {} MiB)",
                num(t, 0),
                opt(init, 0),
                opt(invoke, 0),
                opt(peak_mib, 1)
            )
        }),
        bound,
        verdict: total.map_or(Verdict::Fail, |t| Verdict::of(t <= TARGET_MS)),
        note: total.map_or("no run finished".into(), |t| {
            format!(
                "{} vs ≤ {TARGET_MS:.0}; slowest run {} ms",
                num(t, 0),
                num(slowest, 0)
            )
        }),
        details,
    }
}

fn first_line(s: &str) -> String {
    clip(s.lines().next().unwrap_or_default())
}

/// Cold start of the four function binaries: `runs` measured runs each (after one warm-up run),
/// one row per function (`cold_start.<name>`).
pub async fn bench(emulator: &Emulator, runs: usize) -> Vec<Row> {
    let binaries: Vec<PathBuf> = FUNCTIONS.iter().map(|f| binary(f.name)).collect();
    let fake = FakeAtlassian::start(FakeConfig::default().with_sites(1, SeedSpec::empty()))
        .await
        .unwrap_or_else(|e| panic!("bench set-up: fake site: {e}"));
    let site = Site::first_of(&fake.info());
    let dep = Deployment::new(emulator, "bench-coldstart").await;
    let deployment = dep.function_env(&site.base);
    say(format!(
        "cold start: {} functions, {runs} runs each after a warm-up run",
        FUNCTIONS.len()
    ));
    let mut rows = Vec::with_capacity(FUNCTIONS.len());
    for (f, binary) in FUNCTIONS.iter().zip(&binaries) {
        let before = fake.requests().len();
        let mut row = bench_function(f, binary, &deployment, runs).await;
        if let Value::Object(d) = &mut row.details {
            d.insert(
                "atlassian_requests".into(),
                json!(fake.requests().len() - before),
            );
        }
        rows.push(row);
    }
    fake.shutdown().await;
    rows
}
