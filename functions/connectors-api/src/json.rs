//! JSON bodies in and out, and the error shape: `{"error": code, "message": text, "correlation_id"}`.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest request body we read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An expected failure, shown to the caller. `message` never holds a secret or echoes input
/// values (only field names and rules).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }
    pub fn method_not_allowed(allowed: &'static str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: format!("allowed: {allowed}"),
        }
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }

    pub fn into_response(self, correlation_id: &str) -> Response<Body> {
        // Server-side details go to the log; the caller gets the code and a reference.
        let message = if self.status.is_server_error() {
            "the request could not be completed; quote the correlation_id when reporting it"
                .to_owned()
        } else {
            self.message
        };
        let body = serde_json::json!({ "error": self.code, "message": message, "correlation_id": correlation_id });
        let mut resp = Response::new(Body::Text(body.to_string()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// Parse a JSON request body into `T`, with messages that name the field but never echo a
/// value.
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => return Err(ApiError::bad_request("a JSON body is required")),
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => return Err(ApiError::bad_request("a JSON body is required")),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(format!(
            "body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(describe(&e)))
}

/// serde_json's messages can quote the offending value; keep only the safe ones.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("(line {}, column {})", e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("body is not valid JSON {at}"),
        Category::Data => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or_default();
            if msg.starts_with("missing field") || msg.starts_with("unknown field") {
                // Field names only (ours, or the caller's own key).
                let short = msg.split(", expected").next().unwrap_or(msg);
                format!("{short} {at}")
            } else if !msg.contains('`') && !msg.contains('"') && !msg.starts_with("invalid") {
                // Our own validation messages: "tenant: must not be empty".
                format!("{msg} {at}")
            } else if msg.starts_with("unknown variant") {
                format!("a field has a value that is not allowed {at}")
            } else {
                format!("a field has the wrong type {at}")
            }
        }
    }
}

pub fn respond<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        tenant: shared::ids::TenantId,
        n: u32,
    }

    fn parse(s: &str) -> Result<In, String> {
        serde_json::from_str::<In>(s).map_err(|e| describe(&e))
    }

    #[test]
    fn messages_name_fields_but_never_values() {
        let cases = [
            (
                r#"{"tenant":"a","n":1,"password":"hunter2"}"#,
                "unknown field `password`",
            ),
            (r#"{"n":1}"#, "missing field `tenant`"),
            (r#"{"tenant":"../x","n":1}"#, "tenant: may only contain"),
            (r#"{"tenant":"a","n":"hunter2"}"#, "wrong type"),
            ("not json hunter2", "not valid JSON"),
        ];
        for (input, expected) in cases {
            let msg = parse(input).err().unwrap_or_default();
            assert!(msg.contains(expected), "{input} -> {msg}");
            assert!(!msg.contains("hunter2"), "{input} -> {msg}");
        }
    }
}
