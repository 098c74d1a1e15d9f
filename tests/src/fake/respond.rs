//! Response helpers and the error body shapes of the gateway and each product.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Unwraps `Ok`, or returns the `Err` response from the handler.
macro_rules! try_response {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}
pub(crate) use try_response;

pub(crate) fn json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn ok(body: Value) -> Response {
    json(StatusCode::OK, body)
}

pub(crate) fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}

/// The API gateway's own errors: `{"code":401,"message":"Unauthorized"}`. The shape is the one
/// production clients quote for the gateway's scope 401 (`{"code":401,"message":"Unauthorized;
/// scope does not match"}`, kovetskiy/mark#917, pchuri/confluence-cli#76); the fake reuses it
/// for its other gateway answers (ASSUMPTION, see each caller; our client reads the status only).
pub(crate) fn gateway(status: StatusCode, message: &str) -> Response {
    json(
        status,
        json!({ "code": status.as_u16(), "message": message }),
    )
}

/// Jira's `{"errorMessages":[…],"errors":{}}`: the `ErrorCollection` schema of the Jira
/// platform OpenAPI document (developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json;
/// its optional `status` is left out).
pub(crate) fn jira_error(status: StatusCode, message: &str) -> Response {
    json(status, json!({ "errorMessages": [message], "errors": {} }))
}

/// Confluence v1's `{"statusCode":400,"data":{…},"message":…}`, the shape production clients
/// record from Confluence Cloud (e.g. Onyx's tests of `onyx_confluence.py`, the CONFCLOUD-77618
/// body `{"statusCode":404,"data":{"authorized":false,"valid":false,"errors":[…],
/// "successful":false}}`; v1's OpenAPI document does not describe error bodies).
pub(crate) fn confluence_v1_error(status: StatusCode, message: &str) -> Response {
    json(
        status,
        json!({
            "statusCode": status.as_u16(),
            "data": { "authorized": status != StatusCode::FORBIDDEN, "valid": false, "errors": [], "successful": false },
            "message": message,
        }),
    )
}

/// Confluence v2's `{"errors":[{status, code, title, detail}]}`, as production clients record it
/// (e.g. `{"errors":[{"status":400,"code":"INVALID_REQUEST_PARAMETER","title":"Provided value …
/// is not the correct type. Expected type is ContentId","detail":""}]}` in the Confluence
/// clients found by the `search` tool; v2's OpenAPI document gives no error schema). The codes
/// other than `INVALID_REQUEST_PARAMETER` are ASSUMPTIONS (undocumented); our client reads the
/// status only.
pub(crate) fn confluence_v2_error(status: StatusCode, title: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "INVALID_REQUEST_PARAMETER",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        _ => "ERROR",
    };
    json(
        status,
        json!({ "errors": [{ "status": status.as_u16(), "code": code, "title": title, "detail": null }] }),
    )
}

/// A redirect with an empty body.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status;
            r.headers_mut().insert(header::LOCATION, value);
            r
        }
        Err(_) => gateway(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not build redirect",
        ),
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
