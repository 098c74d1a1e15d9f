//! A tenant's hourly points quota, as Jira Cloud enforces it on OAuth 2.0 apps since
//! 2 March 2026 (developer.atlassian.com/cloud/jira/platform/rate-limiting; community thread
//! 97828, "2026 point-based rate limits"): once the quota is spent, every call to the site
//! answers 429 with `RateLimit-Reason: jira-quota-tenant-based`, `Retry-After` (seconds) and
//! `X-RateLimit-Reset` (ISO 8601, `yyyy-MM-ddTHH:mmZ`) until the reset. "If you reissue the
//! request before the retry period expires, the request will fail and return the same or
//! longer Retry-After period": such an early call is answered so, the reset moves later by a
//! penalty, and the call is counted so a test can assert that it never happened.
//!
//! The header names, the reason value and the reset format are from
//! https://developer.atlassian.com/cloud/jira/platform/rate-limiting ("X-RateLimit-Reset ...
//! calculated as the request timestamp plus the Retry-After period. It's provided in the format:
//! yyyy-MM-ddTHH:mmZ", quoted in jira.atlassian.com JRACLOUD-69262) and the table of
//! `RateLimit-Reason` values on
//! https://developer.atlassian.com/cloud/jira/platform/build-an-app-that-respects-rate-limits/.
//!
//! The fake spends the quota by calls, not points: `after` calls are served, then the wait
//! begins (the shape of the answers is what the code under test depends on). ASSUMPTIONS
//! (undocumented or simplified): the 429 body (`{"code":429,"message":"Rate limit exceeded"}`,
//! the gateway's shape; our client reads headers and status only); the reason is always
//! `jira-quota-tenant-based`, even for a rule on a Confluence prefix (Confluence's own reason
//! values are not in the pages above; our client treats every `*-quota-*` reason alike); the
//! size of the penalty for an early call (docs: "the same or longer").

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::respond;

/// How much later an early call moves the reset ("the same or longer Retry-After").
pub const EARLY_CALL_PENALTY_SECS: i64 = 60;

#[derive(Debug)]
struct Rule {
    /// Calls whose path starts with this share the quota (e.g. `/ex/jira/{cloudId}/`).
    prefix: String,
    /// Calls still served before the quota is spent.
    calls_left: u64,
    /// The `Retry-After` of the first 429.
    retry_after_secs: i64,
    /// While the quota is spent: when it resets.
    reset_at: Option<OffsetDateTime>,
}

/// Every quota rule, and what they answered.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    rules: Vec<Rule>,
    /// 429s answered because a quota was spent (early calls included).
    pub answered_429: u64,
    /// Calls made before the reset after a 429 had told when to come back.
    pub early_calls: u64,
}

impl Quotas {
    pub(crate) fn add(&mut self, prefix: &str, after: u64, retry_after_secs: u64) {
        self.rules.push(Rule {
            prefix: prefix.to_owned(),
            calls_left: after,
            retry_after_secs: i64::try_from(retry_after_secs).unwrap_or(i64::MAX / 4),
            reset_at: None,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The 429 for a call to `path` at `now`, if a quota forbids it.
    pub(crate) fn check(&mut self, path: &str, now: OffsetDateTime) -> Option<Response> {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| path.starts_with(&r.prefix))?;
        match rule.reset_at {
            Some(reset) if now < reset => {
                self.early_calls += 1;
                let later = reset + time::Duration::seconds(EARLY_CALL_PENALTY_SECS);
                rule.reset_at = Some(later);
                self.answered_429 += 1;
                Some(quota_429(later, now))
            }
            Some(_) => {
                // The reset has come: a new hour, a fresh quota (the test decides its size by
                // adding another rule; this one no longer limits).
                rule.reset_at = None;
                rule.calls_left = u64::MAX;
                None
            }
            None if rule.calls_left == 0 => {
                let reset = now + time::Duration::seconds(rule.retry_after_secs);
                rule.reset_at = Some(reset);
                self.answered_429 += 1;
                Some(quota_429(reset, now))
            }
            None => {
                rule.calls_left -= 1;
                None
            }
        }
    }
}

fn quota_429(reset: OffsetDateTime, now: OffsetDateTime) -> Response {
    let secs = (reset - now).whole_seconds().max(1);
    let mut response = respond::gateway(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
    let headers = response.headers_mut();
    headers.insert("retry-after", HeaderValue::from(secs));
    headers.insert(
        "ratelimit-reason",
        HeaderValue::from_static("jira-quota-tenant-based"),
    );
    // Minute precision, as documented; rounded up so it never names a time before the end of
    // the wait.
    let minute_up = reset + time::Duration::seconds(59);
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}Z",
        minute_up.year(),
        u8::from(minute_up.month()),
        minute_up.day(),
        minute_up.hour(),
        minute_up.minute()
    );
    if let Ok(v) = HeaderValue::from_str(&stamp) {
        headers.insert("x-ratelimit-reset", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_spent_then_early_calls_are_penalised_and_counted() {
        let mut q = Quotas::default();
        q.add("/ex/jira/c1/", 2, 1800);
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        assert!(q.check("/ex/jira/c1/a", t0).is_none());
        assert!(q.check("/ex/jira/c2/a", t0).is_none(), "another site");
        assert!(q.check("/ex/jira/c1/b", t0).is_none());
        let first = q
            .check("/ex/jira/c1/c", t0)
            .unwrap_or_else(|| panic!("no 429"));
        assert_eq!(first.headers()["retry-after"], "1800");
        assert_eq!(
            first.headers()["ratelimit-reason"],
            "jira-quota-tenant-based"
        );
        assert_eq!(q.early_calls, 0);
        let early = q
            .check("/ex/jira/c1/d", t0 + time::Duration::seconds(1000))
            .unwrap_or_else(|| panic!("no 429"));
        assert_eq!(
            early.headers()["retry-after"],
            "860",
            "longer than the 800 s left"
        );
        assert_eq!(q.early_calls, 1);
        assert!(
            q.check("/ex/jira/c1/e", t0 + time::Duration::seconds(1860))
                .is_none()
        );
        assert_eq!(q.answered_429, 2);
    }
}
