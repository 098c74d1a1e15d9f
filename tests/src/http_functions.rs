//! The two HTTP functions served through their real handlers on loopback listeners, as their
//! function URLs would serve them: `/callback` goes to `oauth-callback`, every other path to
//! `connectors-api` (404 when no API is served). `make local` and the browser test use it.

use std::sync::Arc;

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::Response as AxumResponse;
use http::{HeaderValue, StatusCode, header};
use shared::connect::ConnectService;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Largest request body passed on to a handler (the API's own limit is lower).
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What the callback showed the browser: the status and the page's title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub status: StatusCode,
    pub title: String,
}

impl CallbackAnswer {
    /// Whether the callback stored a connection: a redirect to the return URL, or the success
    /// page ("Jira connected", "Confluence connected"). Every other page (denied, expired,
    /// already used, upstream failure) stored nothing.
    pub fn connected(&self) -> bool {
        self.status.is_redirection()
            || (self.status == StatusCode::OK && self.title.ends_with(" connected"))
    }
}

/// The functions behind one local server.
pub struct HttpFunctions {
    pub callback: ConnectService,
    pub api: Option<connectors_api::Api>,
    answers: Option<mpsc::UnboundedSender<CallbackAnswer>>,
}

/// The running server; dropping it stops serving.
pub struct Serving {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl HttpFunctions {
    pub fn new(callback: ConnectService, api: Option<connectors_api::Api>) -> HttpFunctions {
        HttpFunctions {
            callback,
            api,
            answers: None,
        }
    }

    /// Report every answer of the callback on the returned channel.
    pub fn watch_callbacks(&mut self) -> mpsc::UnboundedReceiver<CallbackAnswer> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.answers = Some(tx);
        rx
    }

    /// Serve on every listener until the returned handle is dropped.
    pub fn serve(self, listeners: Vec<TcpListener>) -> Serving {
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::new(self));
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                let router = router.clone();
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        eprintln!("local HTTP server stopped: {e}");
                    }
                })
            })
            .collect();
        Serving { tasks }
    }
}

fn plain(status: StatusCode, text: &'static str) -> AxumResponse {
    let mut resp = AxumResponse::new(AxumBody::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Adapt an axum request to a function's `lambda_http` handler and back.
async fn handle(State(f): State<Arc<HttpFunctions>>, req: axum::extract::Request) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    };
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
        let resp = oauth_callback::handle(&f.callback, req).await;
        if let Some(answers) = &f.answers {
            let title = match resp.body() {
                lambda_http::Body::Text(html) => page_title(html),
                _ => String::new(),
            };
            let _ = answers.send(CallbackAnswer {
                status: resp.status(),
                title,
            });
        }
        resp
    } else if let Some(api) = &f.api {
        connectors_api::handle(api, req).await
    } else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
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

/// The text of an HTML page's `<title>`, unescaped.
pub fn page_title(html: &str) -> String {
    let Some(start) = html.find("<title>").map(|i| i + "<title>".len()) else {
        return String::new();
    };
    let end = html[start..]
        .find("</title>")
        .map_or(html.len(), |i| start + i);
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_of_a_page_is_unescaped() {
        assert_eq!(
            page_title("<html><head><title>A &amp; B</title></head></html>"),
            "A & B"
        );
        assert_eq!(page_title("<p>no title</p>"), "");
    }

    #[test]
    fn only_the_success_page_and_a_redirect_count_as_connected() {
        let answer = |status, title: &str| CallbackAnswer {
            status,
            title: title.to_owned(),
        };
        assert!(answer(StatusCode::OK, "Jira connected").connected());
        assert!(answer(StatusCode::FOUND, "").connected());
        assert!(!answer(StatusCode::OK, "Connection not authorized").connected());
        assert!(!answer(StatusCode::BAD_REQUEST, "This authorization expired").connected());
    }
}
