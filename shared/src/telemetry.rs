//! Structured JSON logs for CloudWatch with an allow-list of fields (PRIVACY.md P7).
//!
//! Every log line is one JSON object: `timestamp`, `level`, `target`, `span`, `message` and the
//! event's and enclosing spans' fields. A field whose name is not in [`ALLOWED_FIELDS`] is
//! written as `"[redacted]"`, so a careless `info!(token = %t)` cannot leak: the allow-list is
//! the mechanism, code review is only the second line.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// Field names that may appear in a log line with their value. Ids, counts, outcomes and
/// timings only: never tokens, codes, states, secrets, e-mails, query text or content.
pub const ALLOWED_FIELDS: &[&str] = &[
    "message",
    "correlation_id",
    "request_id",
    "function",
    "route",
    "method",
    "endpoint",
    "tenant",
    "product",
    "connection_id",
    "connector_id",
    "job_id",
    "cloud_id",
    "site_count",
    "outcome",
    "status",
    "http_status",
    "attempt",
    "retry_in_ms",
    "elapsed_ms",
    "duration_ms",
    "items",
    "bytes",
    "pages",
    "attachments",
    "skipped",
    "refreshed",
    "revoked",
    "failed",
    "count",
    "concurrency",
    "phase",
    "reason",
    "error",
    "error_kind",
    "remaining_ms",
    "version",
    // Export waits and self-healing (shared/src/export/runner.rs).
    "resume_at",
    "site_wide",
    "deaths",
    "restarts",
    "slack_minutes",
    "unchanged",
    "published",
];

pub const REDACTED: &str = "[redacted]";

/// The correlation id of a request: the Lambda request id when it is a plain token, otherwise
/// a fresh random one. Shown to users on error pages and logged with every line of a request.
pub fn correlation_id(request_id: Option<&str>) -> String {
    request_id
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut raw = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
            hex::encode(raw)
        })
}

/// The default filter: `RUST_LOG` if set, else `info` for us and `warn` for the noisy
/// dependencies (the AWS SDK and hyper log request details at debug).
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_smithy_runtime=warn,aws_config=warn,hyper=warn,rustls=warn,h2=warn,reqwest=warn")
    })
}

/// A subscriber writing allow-listed JSON lines to `writer`.
pub fn subscriber<W>(writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(filter())
        .with(SpanFieldsLayer)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(AllowListJson)
                .with_ansi(false)
                .with_writer(writer),
        )
}

/// Install the JSON subscriber on stdout (Lambda sends stdout to CloudWatch). Call once per
/// cold start; a second call is a no-op.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// Allow-listed span fields, kept in the span's extensions for the event formatter.
#[derive(Default)]
struct SpanFields(Map<String, Value>);

struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(fields) = ext.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }
}

/// Writes one JSON object per event with allow-listed fields only.
pub struct AllowListJson;

impl<S, N> FormatEvent<S, N> for AllowListJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::String(name.to_owned()));
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: impl FnOnce() -> Value) {
        let name = field.name();
        let value = if ALLOWED_FIELDS.contains(&name) {
            value()
        } else {
            Value::String(REDACTED.into())
        };
        self.0.insert(name.to_owned(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, || Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, || Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, || Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, || Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, || Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, || Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, || Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let buf = Buffer::default();
        tracing::subscriber::with_default(subscriber(buf.clone()), f);
        let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    #[test]
    fn each_event_is_one_json_line_with_span_fields() {
        let lines = capture(|| {
            let span = tracing::info_span!("request", correlation_id = "c-1", tenant = "acme");
            let _g = span.enter();
            tracing::info!(
                outcome = "connected",
                elapsed_ms = 12u64,
                "callback handled"
            );
        });
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["message"], "callback handled");
        assert_eq!(l["correlation_id"], "c-1");
        assert_eq!(l["tenant"], "acme");
        assert_eq!(l["elapsed_ms"], 12);
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["span"], "request");
    }

    #[test]
    fn fields_outside_the_allow_list_are_redacted() {
        let lines = capture(|| {
            let span = tracing::info_span!("request", state = "s3cr3t-state");
            let _g = span.enter();
            tracing::warn!(
                access_token = "tok-abc-123",
                email = "a@b.c",
                code = 987_654_321u64,
                "oops"
            );
        });
        let text = serde_json::to_string(&lines).unwrap_or_default();
        for leaked in ["tok-abc-123", "a@b.c", "s3cr3t-state", "987654321"] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert_eq!(lines[0]["access_token"], REDACTED);
        assert_eq!(lines[0]["state"], REDACTED);
    }
}
