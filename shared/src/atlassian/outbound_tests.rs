//! The outbound policy through the client (`AtlassianHttp::send`), against scripted HTTP/1.1
//! servers on 127.0.0.1 that record each request's head.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::http::{
    AtlassianHttp, HttpError, Idempotency, MAX_RETRY_AFTER, RetryPolicy, Throttle, TransportKind,
    retry_after,
};
use super::outbound::Outbound;

/// A server answering its connections with `answers` in turn (the last one again after).
struct Scripted {
    url: Url,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(answers: Vec<String>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut conn, _)) = listener.accept().await {
                let answer = answers[n.min(answers.len() - 1)].clone();
                n += 1;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Scripted {
            url: Url::parse(&format!("http://{addr}/")).unwrap_or_else(|e| panic!("{e}")),
            heads,
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    s
}

fn redirect_to(status: &str, location: &str) -> String {
    answer(status, &[("location", location)], "")
}

fn client(outbound: Outbound) -> AtlassianHttp {
    let policy = RetryPolicy {
        max_attempts: 1,
        ..Default::default()
    };
    AtlassianHttp::new(policy, 4, outbound).unwrap_or_else(|e| panic!("{e}"))
}

async fn get(http: &AtlassianHttp, url: Url) -> Result<super::http::AtlassianResponse, HttpError> {
    let req = http
        .request(Method::GET, url)
        .bearer_auth("the-bearer-token")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    http.send("test", "site", Idempotency::Safe, req).await
}

fn refused(r: Result<super::http::AtlassianResponse, HttpError>) -> bool {
    matches!(
        r,
        Err(HttpError::Transport {
            kind: TransportKind::Redirect,
            ..
        })
    )
}

#[tokio::test]
async fn a_redirect_carries_neither_the_token_nor_a_referer_even_to_the_same_origin() {
    let media = Scripted::start(vec![answer("200 OK", &[], "bytes")]).await;
    let other = media
        .url
        .join("file/x?token=signed")
        .unwrap_or_else(|e| panic!("{e}"));
    let api = Scripted::start(vec![
        redirect_to("302 Found", "/second"),
        redirect_to("303 See Other", other.as_str()),
    ])
    .await;

    let resp = get(
        &client(Outbound::loopback()),
        api.url.join("first").unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(resp.status().as_u16(), 200);
    let api_heads = api.heads();
    assert_eq!(api_heads.len(), 2);
    assert!(api_heads[0].contains("authorization: bearer the-bearer-token"));
    assert!(!api_heads[1].contains("authorization"), "{}", api_heads[1]);
    let all: Vec<String> = api_heads.into_iter().chain(media.heads()).collect();
    assert!(all[1..].iter().all(|h| !h.contains("authorization")));
    assert!(all.iter().all(|h| !h.contains("referer")));
}

#[tokio::test]
async fn a_redirect_outside_atlassian_is_refused_and_never_requested() {
    for target in [
        "https://evil.example/steal",
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
        "http://api.media.atlassian.com/file/x",
    ] {
        let api = Scripted::start(vec![redirect_to("302 Found", target)]).await;
        let r = get(&client(Outbound::atlassian()), api.url.clone()).await;
        assert!(refused(r), "{target}");
        assert_eq!(api.heads().len(), 1, "{target}");
    }
    // Loopback targets only when the configured URLs are loopback.
    let loopback = Scripted::start(vec![answer("200 OK", &[], "ok")]).await;
    let api = Scripted::start(vec![redirect_to(
        "307 Temporary Redirect",
        loopback.url.as_str(),
    )])
    .await;
    let r = get(&client(Outbound::atlassian()), api.url.clone()).await;
    assert!(refused(r));
    assert!(loopback.heads().is_empty());
}

#[tokio::test]
async fn a_3xx_not_followed_is_an_error_not_a_success() {
    for status in ["304 Not Modified", "300 Multiple Choices"] {
        let api = Scripted::start(vec![answer(status, &[], "")]).await;
        assert!(
            refused(get(&client(Outbound::loopback()), api.url.clone()).await),
            "{status}"
        );
    }
    let api = Scripted::start(vec![answer("302 Found", &[], "")]).await;
    assert!(
        refused(get(&client(Outbound::loopback()), api.url.clone()).await),
        "no Location"
    );
    let looping = Scripted::start(vec![redirect_to("302 Found", "/again")]).await;
    assert!(refused(
        get(&client(Outbound::loopback()), looping.url.clone()).await
    ));
    assert_eq!(looping.heads().len(), 1 + super::outbound::MAX_REDIRECTS);
    // A POST is never replayed elsewhere.
    let target = Scripted::start(vec![answer("200 OK", &[], "{}")]).await;
    let api = Scripted::start(vec![redirect_to(
        "307 Temporary Redirect",
        target.url.as_str(),
    )])
    .await;
    let http = client(Outbound::loopback());
    let req = http
        .request(Method::POST, api.url.clone())
        .body("grant_type=x")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(refused(
        http.send("test", "auth", Idempotency::Once, req).await
    ));
    assert!(target.heads().is_empty());
}

#[tokio::test]
async fn a_json_body_over_the_cap_is_refused() {
    let big = "[".to_owned() + &"1,".repeat(600) + "1]";
    let api = Scripted::start(vec![answer("200 OK", &[], &big)]).await;
    let http = client(Outbound::loopback());
    let announced = get(&http, api.url.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = announced.json_within::<serde_json::Value>(1000).await;
    assert!(
        matches!(r, Err(HttpError::TooLarge { limit: 1000, .. })),
        "{r:?}"
    );
    // Without a length announced (chunked), the cap holds while reading.
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let api = Scripted::start(vec![chunked]).await;
    let streamed = get(&http, api.url.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = streamed.json_within::<serde_json::Value>(1000).await;
    assert!(matches!(r, Err(HttpError::TooLarge { .. })), "{r:?}");
    let small = Scripted::start(vec![answer("200 OK", &[], "[1,2]")]).await;
    let ok = get(&http, small.url.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok.json_within::<serde_json::Value>(1000).await.ok(),
        Some(serde_json::json!([1, 2]))
    );
}

#[test]
fn a_huge_retry_after_saturates_instead_of_overflowing() {
    for raw in [
        "18446744073709551615",
        "99999999999999999999999999999",
        "86401",
    ] {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static(raw));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "{raw}");
        h.insert(
            "RateLimit-Reason",
            HeaderValue::from_static("jira-quota-tenant-based"),
        );
        let throttle = Throttle::of(reqwest::StatusCode::TOO_MANY_REQUESTS, &h)
            .unwrap_or_else(|| panic!("a 429 is a throttle"));
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(throttle.not_before(now), now + MAX_RETRY_AFTER);
    }
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static("-5"));
    assert_eq!(retry_after(&h), None);
    h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
}
