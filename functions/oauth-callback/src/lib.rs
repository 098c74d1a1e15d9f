//! The OAuth callback: Atlassian redirects the browser here with `code` and `state` (or
//! `error`). Every path ends on a clear page or a redirect, never a raw 500; nothing the
//! browser sent (code, state) is logged or echoed.

mod page;
#[cfg(test)]
mod props_tests;

use std::collections::HashMap;
use std::time::Instant;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::connect::{CompleteError, Completed, ConnectService, Connected};
use shared::secret::{ExposeSecret, Secret, secret};
use tracing::Instrument;
use url::Url;

pub use page::Page;

/// Longest query string we read; Atlassian's codes and our states are far shorter.
pub const MAX_QUERY_LEN: usize = 8 * 1024;
/// Longest single parameter value we accept.
const MAX_PARAM_LEN: usize = 2048;
/// The most the callback spends on Atlassian and AWS for one request; inside the function's
/// 30 s timeout, so a slow upstream still ends on our page, never on Lambda's bare 502.
pub const CALLBACK_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Our states (and chooser selections) are 32 random bytes, base64url without padding: 43
/// characters. Anything else is refused before any lookup.
fn is_state_shaped(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The callback's parameters, validated.
#[derive(Debug)]
pub enum Callback {
    Consented {
        code: Secret,
        state: Secret,
    },
    Refused {
        state: Option<Secret>,
        error: String,
    },
}

/// Why the query string was refused; shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryProblem {
    TooLong,
    Missing(&'static str),
    Duplicated(&'static str),
    Malformed(&'static str),
}

impl QueryProblem {
    fn explain(self) -> String {
        match self {
            QueryProblem::TooLong => "The link is too long to be a real Atlassian callback.".into(),
            QueryProblem::Missing(p) => format!("The link is missing its \"{p}\" parameter."),
            QueryProblem::Duplicated(p) => format!("The link has more than one \"{p}\" parameter."),
            QueryProblem::Malformed(p) => format!("The link's \"{p}\" parameter is not valid."),
        }
    }
}

/// Parse the raw query string. Never panics: invalid UTF-8 and percent-escapes are decoded
/// lossily and then judged like any other bad value.
pub fn parse_query(raw: Option<&str>) -> Result<Callback, QueryProblem> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY_LEN {
        return Err(QueryProblem::TooLong);
    }
    let mut params: HashMap<&'static str, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let Some(name) = ["code", "state", "error", "error_description"]
            .into_iter()
            .find(|n| *n == k)
        else {
            continue;
        };
        if params.insert(name, v.into_owned()).is_some() {
            return Err(QueryProblem::Duplicated(name));
        }
    }
    let mut take = |name: &'static str| -> Result<Option<String>, QueryProblem> {
        match params.remove(name) {
            None => Ok(None),
            Some(v)
                if v.is_empty()
                    || v.len() > MAX_PARAM_LEN
                    || v.contains('\u{FFFD}')
                    || v.chars().any(char::is_control) =>
            {
                Err(QueryProblem::Malformed(name))
            }
            Some(v) => Ok(Some(v)),
        }
    };
    let state = take("state")?;
    if state.as_deref().is_some_and(|s| !is_state_shaped(s)) {
        return Err(QueryProblem::Malformed("state"));
    }
    if let Some(error) = take("error")? {
        return Ok(Callback::Refused {
            state: state.map(secret),
            error,
        });
    }
    let code = take("code")?.ok_or(QueryProblem::Missing("code"))?;
    let state = state.ok_or(QueryProblem::Missing("state"))?;
    Ok(Callback::Consented {
        code: secret(code),
        state: secret(state),
    })
}

fn correlation_id(req: &Request) -> String {
    shared::telemetry::correlation_id(req.lambda_context_ref().map(|c| c.request_id.as_str()))
}

/// Handle one browser request. Always returns a response.
pub async fn handle(service: &ConnectService, req: Request) -> Response<Body> {
    let started = Instant::now();
    let correlation_id = correlation_id(&req);
    let span = tracing::info_span!("request", function = "oauth-callback", correlation_id = %correlation_id);
    async {
        let (outcome, response) = route(service, &req, &correlation_id).await;
        tracing::info!(
            outcome,
            http_status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "callback handled"
        );
        response
    }
    .instrument(span)
    .await
}

async fn route(
    service: &ConnectService,
    req: &Request,
    correlation_id: &str,
) -> (&'static str, Response<Body>) {
    let now = time::OffsetDateTime::now_utc();
    if req.method() == Method::POST {
        return choose(service, req, correlation_id, now).await;
    }
    if req.method() != Method::GET {
        // HEAD too: a probe must not consume a state or spend a code.
        let mut resp = Page::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This address only answers a browser sent here by Atlassian.",
            correlation_id,
        )
        .into_response();
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
        return ("method_not_allowed", resp);
    }
    let callback = match parse_query(req.uri().query()) {
        Ok(c) => c,
        Err(problem) => return bad_link(problem, correlation_id),
    };
    match callback {
        Callback::Refused { state, error } => {
            let refused = service.refuse(state.as_ref(), &error, now).await;
            let (outcome, page) = if refused.access_denied {
                (
                    "denied",
                    Page::denied(refused.return_url.as_ref(), correlation_id),
                )
            } else {
                (
                    "atlassian_error",
                    Page::error(
                        StatusCode::BAD_REQUEST,
                        "Atlassian did not complete the authorization",
                        "Atlassian reported a problem with this authorization. Please start connecting again.",
                        correlation_id,
                    ),
                )
            };
            (outcome, page.into_response())
        }
        Callback::Consented { code, state } => {
            match tokio::time::timeout(CALLBACK_BUDGET, service.complete(&code, &state, now)).await
            {
                Err(_) => timed_out(correlation_id),
                Ok(Ok(Completed::Connected(connected))) => {
                    connected_response(connected, correlation_id)
                }
                Ok(Ok(Completed::Choose(choice))) => {
                    tracing::info!(
                        product = %choice.product,
                        site_count = choice.sites.len() as u64,
                        "site choice shown"
                    );
                    let action = service
                        .config
                        .redirect_url()
                        .map(|u| u.path().to_owned())
                        .unwrap_or_else(|_| "/".into());
                    (
                        "choose_site",
                        Page::chooser(
                            choice.product,
                            &choice.sites,
                            choice.selection.expose_secret(),
                            &action,
                            correlation_id,
                        )
                        .into_response(),
                    )
                }
                Ok(Err(e)) => failure(&e, correlation_id),
            }
        }
    }
}

fn timed_out(correlation_id: &str) -> (&'static str, Response<Body>) {
    tracing::error!(outcome = "upstream_timeout", "callback ran out of time");
    (
        "upstream_timeout",
        Page::error(
            StatusCode::BAD_GATEWAY,
            "Atlassian did not answer in time",
            "We could not complete the authorization in time. Please start connecting again in a few minutes.",
            correlation_id,
        )
        .into_response(),
    )
}

fn bad_link(problem: QueryProblem, correlation_id: &str) -> (&'static str, Response<Body>) {
    (
        "bad_request",
        Page::error(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            &problem.explain(),
            correlation_id,
        )
        .into_response(),
    )
}

/// The chooser page's form: the single-use selection and the chosen site ids.
async fn choose(
    service: &ConnectService,
    req: &Request,
    correlation_id: &str,
    now: time::OffsetDateTime,
) -> (&'static str, Response<Body>) {
    let body: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let form = match parse_choice(body) {
        Ok(f) => f,
        Err(problem) => return bad_link(problem, correlation_id),
    };
    match tokio::time::timeout(
        CALLBACK_BUDGET,
        service.choose(&form.selection, &form.sites, now),
    )
    .await
    {
        Err(_) => timed_out(correlation_id),
        Ok(Ok(connected)) => connected_response(connected, correlation_id),
        Ok(Err(e)) => failure(&e, correlation_id),
    }
}

/// The chooser's form, validated.
#[derive(Debug)]
pub struct ChoiceForm {
    pub selection: Secret,
    pub sites: Vec<String>,
}

/// Parse the chooser's form body. Never panics; at most 50 sites.
pub fn parse_choice(body: &[u8]) -> Result<ChoiceForm, QueryProblem> {
    if body.len() > MAX_QUERY_LEN {
        return Err(QueryProblem::TooLong);
    }
    let mut selection = None;
    let mut sites = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        let ok = !v.is_empty()
            && v.len() <= MAX_PARAM_LEN
            && !v.contains('\u{FFFD}')
            && !v.chars().any(char::is_control);
        match k.as_ref() {
            "selection" if !ok || !is_state_shaped(&v) => {
                return Err(QueryProblem::Malformed("selection"));
            }
            "selection" if selection.is_some() => {
                return Err(QueryProblem::Duplicated("selection"));
            }
            "selection" => selection = Some(secret(v.into_owned())),
            "site" if !ok => return Err(QueryProblem::Malformed("site")),
            "site" if sites.len() >= 50 => return Err(QueryProblem::TooLong),
            "site" => sites.push(v.into_owned()),
            _ => {}
        }
    }
    Ok(ChoiceForm {
        selection: selection.ok_or(QueryProblem::Missing("selection"))?,
        sites,
    })
}

fn connected_response(
    connected: Connected,
    correlation_id: &str,
) -> (&'static str, Response<Body>) {
    tracing::info!(
        tenant = %connected.tenant,
        product = %connected.product,
        site_count = connected.connections.len() as u64,
        "connections stored"
    );
    let ids: Vec<&str> = connected
        .connections
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    match &connected.return_url {
        Some(url) => ("connected", redirect(&connected_url(url.clone(), &ids))),
        None => {
            let sites: Vec<&str> = connected
                .connections
                .iter()
                .map(|c| c.site_url.as_str())
                .collect();
            (
                "connected",
                Page::connected(connected.product, &sites, correlation_id).into_response(),
            )
        }
    }
}

fn failure(e: &CompleteError, correlation_id: &str) -> (&'static str, Response<Body>) {
    let (outcome, status, title, text) = match e {
        CompleteError::UnknownState => (
            "unknown_state",
            StatusCode::BAD_REQUEST,
            "This link was already used or is not valid",
            "Each authorization link and site choice works once. Please start connecting again from the platform.",
        ),
        CompleteError::ExpiredState => (
            "expired_state",
            StatusCode::BAD_REQUEST,
            "This authorization expired",
            "Authorizations must be completed within 10 minutes. Please start connecting again.",
        ),
        CompleteError::NoSites => (
            "no_sites",
            StatusCode::BAD_REQUEST,
            "No Atlassian site was granted",
            "The authorization did not include any site for this app. Please connect again and choose a site.",
        ),
        CompleteError::SiteNotGranted => (
            "site_not_granted",
            StatusCode::BAD_REQUEST,
            "The requested site was not granted",
            "The platform asked to connect a site that this authorization does not cover. Please connect again and choose that site on Atlassian's consent screen.",
        ),
        CompleteError::SiteNotOffered | CompleteError::NothingChosen => (
            "bad_choice",
            StatusCode::BAD_REQUEST,
            "No valid site was chosen",
            "Please choose at least one of the listed sites. If the page is old, start connecting again.",
        ),
        CompleteError::Rejected(_) => (
            "rejected",
            StatusCode::BAD_REQUEST,
            "Atlassian refused the authorization",
            "Atlassian did not accept this authorization. Please start connecting again.",
        ),
        CompleteError::ProductNotConfigured(_) | CompleteError::Config(_) => (
            "misconfigured",
            StatusCode::BAD_GATEWAY,
            "This app is not available right now",
            "The service is not set up to complete this authorization. Please contact support with the reference below.",
        ),
        CompleteError::Upstream(_) | CompleteError::BadSite => (
            "upstream_failed",
            StatusCode::BAD_GATEWAY,
            "Atlassian could not be reached",
            "We could not complete the authorization with Atlassian. Please try again in a few minutes.",
        ),
        CompleteError::Vault(_) | CompleteError::Store(_) => (
            "storage_failed",
            StatusCode::BAD_GATEWAY,
            "We could not save the connection",
            "Your authorization could not be stored. Please try again in a few minutes.",
        ),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, outcome, "callback failed");
    } else {
        tracing::warn!(error = %e, outcome, "callback refused");
    }
    (
        outcome,
        Page::error(status, title, text, correlation_id).into_response(),
    )
}

fn connected_url(mut url: Url, ids: &[&str]) -> Url {
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("status", "connected");
        for id in ids {
            q.append_pair("connection", id);
        }
    }
    url
}

fn redirect(to: &Url) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = header::HeaderValue::from_str(to.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    page::secure_headers(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state of the right shape (43 base64url characters).
    const S: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";

    #[test]
    fn code_and_state_are_read() {
        let c = parse_query(Some(&format!("code=abc&state={S}")));
        assert!(matches!(c, Ok(Callback::Consented { .. })));
        assert_eq!(
            parse_query(Some("code=abc&state=short")).err(),
            Some(QueryProblem::Malformed("state"))
        );
    }

    #[test]
    fn access_denied_is_a_refusal_with_state() {
        let c = parse_query(Some(&format!(
            "error=access_denied&error_description=User+did+not+authorize&state={S}"
        )));
        assert!(
            matches!(c, Ok(Callback::Refused { state: Some(_), ref error }) if error == "access_denied")
        );
    }

    #[test]
    fn bad_queries_are_named_problems() {
        assert_eq!(parse_query(None).err(), Some(QueryProblem::Missing("code")));
        assert_eq!(
            parse_query(Some("code=a")).err(),
            Some(QueryProblem::Missing("state"))
        );
        assert_eq!(
            parse_query(Some("code=a&state=b&state=c")).err(),
            Some(QueryProblem::Duplicated("state"))
        );
        assert_eq!(
            parse_query(Some(&format!("code=%FF%FE&state={S}"))).err(),
            Some(QueryProblem::Malformed("code"))
        );
        assert_eq!(
            parse_query(Some(&format!("code=a%0Ab&state={S}"))).err(),
            Some(QueryProblem::Malformed("code"))
        );
        assert_eq!(
            parse_query(Some(&format!("code=&state={S}"))).err(),
            Some(QueryProblem::Malformed("code"))
        );
        let huge = format!("code={}&state={S}", "a".repeat(MAX_QUERY_LEN));
        assert_eq!(parse_query(Some(&huge)).err(), Some(QueryProblem::TooLong));
    }

    #[test]
    fn the_choice_form_is_read_and_checked() {
        let f = parse_choice(format!("selection={S}&site=c1&site=c2&other=x").as_bytes())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(f.sites, vec!["c1".to_owned(), "c2".to_owned()]);
        assert_eq!(
            parse_choice(b"site=c1").err(),
            Some(QueryProblem::Missing("selection"))
        );
        assert_eq!(
            parse_choice(format!("selection={S}&selection={S}").as_bytes()).err(),
            Some(QueryProblem::Duplicated("selection"))
        );
        assert_eq!(
            parse_choice(format!("selection={S}&site=%00").as_bytes()).err(),
            Some(QueryProblem::Malformed("site"))
        );
        assert_eq!(
            parse_choice(b"selection=abc").err(),
            Some(QueryProblem::Malformed("selection"))
        );
        let many = format!("selection={S}{}", "&site=c".repeat(51));
        assert_eq!(
            parse_choice(many.as_bytes()).err(),
            Some(QueryProblem::TooLong)
        );
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert!(parse_query(Some(&format!("code=a&state={S}&foo=1&foo=2"))).is_ok());
    }

    #[test]
    fn connected_url_keeps_the_return_query() {
        let url = Url::parse("https://p.example.com/done?x=1").unwrap_or_else(|e| panic!("{e}"));
        let out = connected_url(url, &["c1", "c2"]);
        assert_eq!(
            out.as_str(),
            "https://p.example.com/done?x=1&status=connected&connection=c1&connection=c2"
        );
    }
}
