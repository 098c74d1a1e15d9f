//! The listeners: a hand-rolled hyper accept loop (instead of `axum::serve`) so a fault can close
//! a connection without answering, every request is recorded, and shutdown is graceful.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::faults::Outcome;
use super::recorder::{Origin, RecordedRequest};
use super::respond;
use super::state::{AppState, lock};

/// Returned to hyper to make it close the connection without a response.
#[derive(Debug)]
struct InjectedDrop;

impl fmt::Display for InjectedDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for InjectedDrop {}

/// Serves `router` on `listener` until `shutdown` turns true (or its sender is dropped), then
/// lets open connections finish for up to five seconds.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    app: Arc<AppState>,
    origin: Origin,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let (router, app, mut stop) = (router.clone(), app.clone(), shutdown.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(app.clone(), router.clone(), origin, req));
                    // No header-read timeout: hyper's default (30 s) also closes idle keep-alive
                    // connections, racing clients that reuse them from their pools.
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(None)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopped(&mut stop) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once shutdown is requested (or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn handle(
    app: Arc<AppState>,
    router: Router,
    origin: Origin,
    req: Request<Incoming>,
) -> Result<Response, InjectedDrop> {
    let path = req.uri().path().to_owned();
    if origin == Origin::Main && path.starts_with("/__admin/") {
        return Ok(call(router, req).await);
    }
    let method = req.method().to_string();
    let slot = app.recorder.begin(RecordedRequest {
        origin,
        method: method.clone(),
        path: path.clone(),
        query: req.uri().query().map(str::to_owned),
        had_authorization: req.headers().contains_key(header::AUTHORIZATION),
        status: None,
    });
    let over_quota = if origin == Origin::Main {
        lock(&app.quotas).check(&path, app.clock.now())
    } else {
        None
    };
    if let Some(response) = over_quota {
        app.recorder.finish(slot, Some(response.status().as_u16()));
        tracing::info!(%method, path = %loggable(&path), status = 429, "request over quota");
        return Ok(response);
    }
    let held = lock(&app.holds).iter().find(|h| h.catches(&path)).cloned();
    if let Some(hold) = held {
        hold.wait().await;
    }
    let decision = lock(&app.faults).decide(&path);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let response = match decision.outcome {
        Some(Outcome::Drop) => {
            tracing::info!(%method, path = %loggable(&path), "fault: dropping the connection");
            return Err(InjectedDrop);
        }
        Some(Outcome::Status {
            status,
            retry_after_secs,
        }) => fault_response(status, retry_after_secs),
        None => call(router, req).await,
    };
    let response = match decision.bytes_per_sec {
        Some(rate) => response.map(|body| Body::new(super::throttle::Throttled::new(body, rate))),
        None => response,
    };
    let status = response.status().as_u16();
    app.recorder.finish(slot, Some(status));
    tracing::info!(%method, path = %loggable(&path), status, "request");
    Ok(response)
}

async fn call(router: Router, req: Request<Incoming>) -> Response {
    match router.oneshot(req.map(Body::new)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Paths are safe to log except media links, which act as bearer capabilities.
fn loggable(path: &str) -> String {
    if path.starts_with("/file/") {
        "/file/<redacted>".to_owned()
    } else {
        path.to_owned()
    }
}

/// An injected fault's answer. Tests choose the status; what the fake adds is sourced: "Some
/// transient 5XX errors are accompanied by a Retry-After header. For example, a 503 response may
/// be returned when a resource limit has been reached"
/// (developer.atlassian.com/cloud/jira/platform/rate-limiting). The body is the gateway's
/// `{code, message}` shape (ASSUMPTION; our client reads the status and headers only).
fn fault_response(status: u16, retry_after_secs: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Rate limit exceeded",
        s => s.canonical_reason().unwrap_or("Injected fault"),
    };
    let mut response = respond::gateway(status, message);
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        // An injected 429 is a burst limit of the endpoint it matched: "RateLimit-Reason:
        // jira-burst-based ... slow down requests to that endpoint only"
        // (developer.atlassian.com/cloud/jira/platform/build-an-app-that-respects-rate-limits).
        // Quota 429s come from tests/src/fake/quota.rs.
        response.headers_mut().insert(
            "ratelimit-reason",
            HeaderValue::from_static("jira-burst-based"),
        );
    }
    response
}
