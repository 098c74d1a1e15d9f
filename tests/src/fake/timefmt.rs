//! Timestamp formats of the two products and the date literals JQL and CQL accept.
//!
//! Sources: Jira's `2024-05-01T10:20:30.000+0000` is the form of every date in the Jira v3
//! reference's examples (e.g. `created` in "Get issue"); Confluence v1's
//! `2024-05-01T10:20:30.000Z` is that of `history.createdDate`/`version.when` in the v1
//! reference's examples. The JQL date literals ("yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm",
//! "yyyy/MM/dd", "yyyy-MM-dd", and periods such as `-5d`) are listed for the `created` and
//! `updated` fields at https://support.atlassian.com/jira-software-cloud/docs/jql-fields/; CQL's
//! (the same four forms) at
//! https://developer.atlassian.com/cloud/confluence/cql-fields/#created. ASSUMPTION: the fake
//! reads them all in UTC (Jira uses the searching user's time zone; the fake's user is in UTC).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

const JIRA: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000");
const CONFLUENCE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const FRIENDLY: &[FormatItem<'static>] = format_description!("[month repr:short] [day], [year]");

const DATE_TIME_DASH: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");
const DATE_TIME_SLASH: &[FormatItem<'static>] =
    format_description!("[year]/[month]/[day] [hour]:[minute]");
const DATE_DASH: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");
const DATE_SLASH: &[FormatItem<'static>] = format_description!("[year]/[month]/[day]");

/// Jira's `2024-05-01T10:20:30.000+0000` (the fake's users all live in UTC).
pub(crate) fn jira(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC).format(JIRA).unwrap_or_default()
}

/// Confluence's `2024-05-01T10:20:30.000Z`.
pub(crate) fn confluence(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(CONFLUENCE)
        .unwrap_or_default()
}

/// Search results' `friendlyLastModified`, e.g. `May 01, 2024`.
pub(crate) fn friendly(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(FRIENDLY)
        .unwrap_or_default()
}

/// A JQL/CQL date value: `yyyy-MM-dd HH:mm`, `yyyy/MM/dd HH:mm`, `yyyy-MM-dd`, `yyyy/MM/dd`
/// (all UTC), or a period relative to `now` such as `-5d`, `-4w 2d`, `-90m`, `1h`.
pub(crate) fn parse_date_literal(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let value = value.trim();
    for format in [DATE_TIME_DASH, DATE_TIME_SLASH] {
        if let Ok(t) = PrimitiveDateTime::parse(value, format) {
            return Some(t.assume_utc());
        }
    }
    for format in [DATE_DASH, DATE_SLASH] {
        if let Ok(d) = Date::parse(value, format) {
            return Some(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc());
        }
    }
    parse_period(value).and_then(|d| now.checked_add(d))
}

/// `-4w 2d`, `+1h`, `30m`: a sign applying to the whole period, then number+unit parts.
fn parse_period(value: &str) -> Option<Duration> {
    let (negative, rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    let mut total = Duration::ZERO;
    let mut seen = false;
    for part in rest.split_whitespace() {
        let (number, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit())?);
        let n: i64 = number.parse().ok()?;
        let unit_len = match unit {
            "w" => Duration::weeks(1),
            "d" => Duration::days(1),
            "h" => Duration::hours(1),
            "m" => Duration::minutes(1),
            _ => return None,
        };
        total = total.checked_add(unit_len.checked_mul(i32::try_from(n).ok()?)?)?;
        seen = true;
    }
    if !seen {
        return None;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_the_products() {
        let t = datetime!(2024-05-01 10:20:30.5 UTC);
        assert_eq!(jira(t), "2024-05-01T10:20:30.500+0000");
        assert_eq!(confluence(t), "2024-05-01T10:20:30.500Z");
        assert_eq!(friendly(t), "May 01, 2024");
    }

    #[test]
    fn parses_absolute_and_relative_dates() {
        let now = datetime!(2024-05-10 00:00 UTC);
        assert_eq!(
            parse_date_literal("2024-05-01 10:20", now),
            Some(datetime!(2024-05-01 10:20 UTC))
        );
        assert_eq!(
            parse_date_literal("2024/05/01", now),
            Some(datetime!(2024-05-01 0:00 UTC))
        );
        assert_eq!(
            parse_date_literal("-1w 2d", now),
            Some(datetime!(2024-05-01 0:00 UTC))
        );
        assert_eq!(
            parse_date_literal("-2h", now),
            Some(datetime!(2024-05-09 22:00 UTC))
        );
        assert_eq!(parse_date_literal("yesterday", now), None);
        assert_eq!(parse_date_literal("2024-13-01", now), None);
        assert_eq!(
            parse_date_literal("-2147483647w", now),
            None,
            "overflow is an error, not a panic"
        );
    }
}
