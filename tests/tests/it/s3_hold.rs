//! A hold on one S3 request (a test seam): an S3 client whose requests go through a small
//! forwarding proxy in front of the emulator. The first request the test's predicate picks is
//! never forwarded nor answered: the proxy signals that it got there and keeps it pending, so
//! the caller is stopped at that exact await, as by a network that stops answering. Dropping
//! the caller's future there is a crash at a known point, with no timing involved.
//!
//! The emulator does not check SigV4 signatures, so forwarding under another Host is fine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use integration_tests::emulator::TestAws;
use tokio::sync::Notify;

/// Which requests to hold: method and path-and-query.
pub(crate) type Pick = fn(&http::Method, &str) -> bool;

/// S3's DeleteObjects: `POST /{bucket}?delete` (path-style, as the emulator's clients use).
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html>
pub(crate) fn delete_objects(method: &http::Method, path_and_query: &str) -> bool {
    method == http::Method::POST
        && path_and_query
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p == "delete" || p == "delete="))
}

pub(crate) struct S3Hold {
    shared: Arc<Shared>,
    client: aws_sdk_s3::Client,
}

struct Shared {
    upstream: String,
    pick: Pick,
    caught: AtomicBool,
    reached: Notify,
    http: reqwest::Client,
}

impl S3Hold {
    /// A proxy in front of `aws`'s emulator holding the first request `pick` chooses.
    pub(crate) async fn start(aws: &TestAws, pick: Pick) -> S3Hold {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let shared = Arc::new(Shared {
            upstream: aws.endpoint.as_str().trim_end_matches('/').to_owned(),
            pick,
            caught: AtomicBool::new(false),
            reached: Notify::new(),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let config = aws
            .clients
            .s3
            .config()
            .to_builder()
            .endpoint_url(format!("http://{addr}"))
            .build();
        S3Hold {
            shared,
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// An S3 client whose requests go through the proxy.
    pub(crate) fn client(&self) -> aws_sdk_s3::Client {
        self.client.clone()
    }

    /// Resolves once a request is held (it stays held for good).
    pub(crate) async fn reached(&self) {
        self.shared.reached.notified().await;
    }
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if (shared.pick)(&parts.method, &path)
        && shared
            .caught
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        // `notify_one` stores a permit, so a test that starts waiting later still wakes.
        shared.reached.notify_one();
        std::future::pending::<()>().await;
    }
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let mut headers = parts.headers;
    strip_framing(&mut headers);
    headers.remove(header::HOST);
    let sent = shared
        .http
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let code = answer.status();
    let mut headers = answer.headers().clone();
    strip_framing(&mut headers);
    let Ok(bytes) = answer.bytes().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = code;
    *out.headers_mut() = headers;
    out
}

/// The body is re-framed on each hop.
fn strip_framing(headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONNECTION);
}

fn status(code: StatusCode) -> Response {
    let mut out = Response::new(Body::empty());
    *out.status_mut() = code;
    out
}
