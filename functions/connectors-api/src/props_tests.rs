//! Property test (issue 16): generated API requests (paths, methods, queries, JSON and
//! non-JSON bodies) through the whole handler. No panic; every answer is JSON with one of our
//! codes; never a 500. The one 5xx is 503 `unavailable`, the documented answer when AWS fails
//! (here: every AWS call, sent to a loopback port that refuses it), and only for a request that
//! passed validation.
//!
//! Cases: 30,000 by default (see oauth-callback's property test for the 100,000 in all);
//! `PROP_CASES_PERCENT` scales them.

use lambda_http::http::{Method, StatusCode, Uri};
use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use shared::blob::BlobStore;
use shared::config::Config;
use shared::connect::Authorizer;
use shared::erase::Eraser;
use shared::events::EventBus;
use shared::store::Store;

use crate::{Api, MAX_BODY_BYTES};

const DEFAULT_CASES: u32 = 30_000;

fn cases() -> u32 {
    shared::testing::cases(DEFAULT_CASES)
}

async fn api() -> Api {
    let endpoint =
        shared::testing::closed_loopback_url().unwrap_or_else(|e| panic!("closed port: {e}"));
    let config = Config::from_vars([
        ("TABLE_NAME", "connectors"),
        ("KMS_KEY_ID", "alias/connectors"),
        ("BUCKET_NAME", "exports"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("JIRA_CLIENT_ID", "jira-client"),
        ("JIRA_CLIENT_SECRET_NAME", "jira-secret"),
        (
            "OAUTH_REDIRECT_URL",
            "https://connect.example.com/oauth/callback",
        ),
        ("ALLOWED_RETURN_URLS", "https://platform.example.com/done"),
    ])
    .unwrap_or_else(|e| panic!("config: {e}"));
    let aws = shared::aws::AwsClients::unreachable(&endpoint).await;
    Api {
        eraser: Eraser {
            store: Store::new(aws.dynamodb.clone(), "connectors"),
            blobs: BlobStore::new(aws.s3.clone(), "exports", "alias/connectors"),
            queue: shared::export::resume::Resumer::new(aws.sqs.clone(), None),
            clock: shared::clock::Clock::system(),
        },
        events: EventBus::new(aws.eventbridge.clone(), "default"),
        connect: Authorizer::from_config(config, &aws),
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "authorizations", "connections", "tenants", "connectors", "jobs", "exports",
        ])
        .prop_map(str::to_owned),
        3 => "[a-z0-9-]{1,12}",
        1 => prop::sample::select(vec![
            "..", ".", "%2F", "%00", "%E2%80%AE", "acme%2F..%2Fglobex", "~x", "a b",
        ])
        .prop_map(str::to_owned),
        1 => (60usize..80).prop_map(|n| "i".repeat(n)),
        1 => "[!-~]{1,16}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segs, trailing, double)| {
            let sep = if double { "//" } else { "/" };
            let mut p = format!("/{}", segs.join(sep));
            if trailing {
                p.push('/');
            }
            p
        })
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        4 => Just(Some("tenant=acme".to_owned())),
        1 => Just(Some("tenant=acme&tenant=globex".to_owned())),
        1 => prop::sample::select(vec![
            "tenant=", "tenant=..%2Fx", "tenant=%FF", "tenant", "Tenant=acme", "tenant=a%00",
        ])
        .prop_map(|s| Some(s.to_owned())),
        1 => "[a-z=&%0-9]{0,40}".prop_map(Some),
    ]
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The API's own bodies, then mutated: a field dropped, replaced by anything, or one added.
fn near_valid() -> impl Strategy<Value = Value> {
    let samples = vec![
        json!({"tenant": "acme", "product": "jira"}),
        json!({"tenant": "acme", "product": "confluence", "return_url": "https://platform.example.com/done/x", "site": "https://acme.atlassian.net"}),
        json!({"tenant": "acme", "product": "jira", "site": "acme.atlassian.net"}),
        json!({"tenant": "acme", "connection_id": "c1", "product": "jira", "query": "project = X", "options": {"attachments": true, "all_comments": false}}),
        json!({"tenant": "acme", "connection_id": "c1", "product": "confluence", "query": "space = X"}),
        json!({"full": true}),
    ];
    (
        prop::sample::select(samples),
        prop::sample::select(vec![
            "tenant",
            "product",
            "return_url",
            "site",
            "connection_id",
            "query",
            "options",
            "full",
            "extra",
        ]),
        0u8..4,
        any_json(),
    )
        .prop_map(|(mut v, field, how, other)| {
            if let Value::Object(m) = &mut v {
                match how {
                    0 => {
                        m.remove(field);
                    }
                    1 | 2 => {
                        m.insert(field.to_owned(), other);
                    }
                    _ => {}
                }
            }
            v
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::Empty),
        5 => near_valid().prop_map(|v| Body::Text(v.to_string())),
        2 => any_json().prop_map(|v| Body::Text(v.to_string())),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Body::Binary),
        1 => ".{0,200}".prop_map(Body::Text),
        1 => (MAX_BODY_BYTES - 8..MAX_BODY_BYTES + 8)
            .prop_map(|n| Body::Text(format!("{{\"tenant\":\"{}\"}}", "a".repeat(n)))),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ])
}

#[derive(Debug)]
struct Case {
    method: Method,
    uri: Uri,
    body: Body,
}

fn case() -> impl Strategy<Value = Case> {
    (method(), path(), query(), body()).prop_filter_map("not a URI", |(method, path, q, body)| {
        let raw = match q {
            Some(q) => format!("https://api.example.com{path}?{q}"),
            None => format!("https://api.example.com{path}"),
        };
        let uri: Uri = raw.parse().ok()?;
        Some(Case { method, uri, body })
    })
}

fn check(resp: &lambda_http::Response<Body>) -> Result<(), TestCaseError> {
    let status = resp.status();
    prop_assert!(
        [
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::ACCEPTED,
            StatusCode::NO_CONTENT,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::CONFLICT,
            StatusCode::SERVICE_UNAVAILABLE,
        ]
        .contains(&status),
        "unexpected status {status}"
    );
    let Body::Text(text) = resp.body() else {
        return Err(TestCaseError::fail("the body is not JSON text"));
    };
    let v: Value =
        serde_json::from_str(text).map_err(|_| TestCaseError::fail("the body is not JSON"))?;
    if status.is_client_error() || status.is_server_error() {
        prop_assert!(v.get("error").is_some_and(Value::is_string));
        prop_assert!(v.get("correlation_id").is_some_and(Value::is_string));
    }
    Ok(())
}

#[test]
fn generated_requests_get_json_answers_and_no_500() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let api = rt.block_on(api());
    let mut runner = TestRunner::new(PropConfig {
        cases: cases(),
        failure_persistence: None,
        ..PropConfig::default()
    });
    let started = std::time::Instant::now();
    let reached_aws = std::cell::Cell::new(0u32);
    let result = runner.run(&case(), |c| {
        let req: Request = lambda_http::http::Request::builder()
            .method(c.method.clone())
            .uri(c.uri.clone())
            .body(c.body.clone())
            .unwrap_or_else(|e| panic!("request: {e}"));
        let resp = rt.block_on(crate::handle(&api, req));
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            reached_aws.set(reached_aws.get() + 1);
        }
        check(&resp)
    });
    eprintln!(
        "connectors-api: {} cases ({} reached AWS) in {:?}",
        cases(),
        reached_aws.get(),
        started.elapsed()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
