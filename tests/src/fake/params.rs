//! Raw query-string and form handling shared by the handlers: repeated keys, percent-encoding and
//! numbers that must answer 400 (never panic) when malformed.

use url::form_urlencoded;

/// A decoded query string or form body, keeping repeated keys and their order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn from_bytes(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value of `key`, each split on commas, trimmed, empties dropped.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        split_list(self.all(key))
    }

    /// A non-negative integer parameter: `Ok(None)` when absent, `Err(message)` when malformed.
    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                format!("The value '{v}' of parameter '{key}' is not a valid non-negative integer.")
            }),
        }
    }
}

/// Comma-separated values from one or more parameters.
pub(crate) fn split_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Builds a query string (`a=1&b=x+y`).
pub(crate) fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Percent-encodes one path segment (everything but unreserved characters), so a file name such
/// as `../../etc/passwd` stays one segment and is not resolved as a dot-segment.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'~')
            || (b == b'.' && !is_dot_segment(segment))
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_separated_values_are_merged() {
        let p = Params::parse(Some("fields=a,b&fields=c&x=%20y"));
        assert_eq!(p.list("fields"), vec!["a", "b", "c"]);
        assert_eq!(p.get("x"), Some(" y"));
    }

    #[test]
    fn malformed_numbers_are_errors_not_panics() {
        let p = Params::parse(Some("n=-1&m=12"));
        assert!(p.number("n").is_err());
        assert_eq!(p.number("m"), Ok(Some(12)));
        assert_eq!(p.number("missing"), Ok(None));
    }

    #[test]
    fn segments_encode_slashes_and_dot_segments() {
        assert_eq!(encode_segment("../../etc/passwd"), "..%2F..%2Fetc%2Fpasswd");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("résumé 1.pdf"), "r%C3%A9sum%C3%A9%201.pdf");
    }
}
