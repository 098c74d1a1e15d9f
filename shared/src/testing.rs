//! Helpers for the workspace's in-process tests (the property tests of issue 16, in this crate
//! and in the HTTP functions): how many cases to run, and an address nothing answers on. Kept
//! here, not behind `cfg(test)`, because the functions' tests use them too.

use url::Url;

/// `default` property-test cases scaled by `PROP_CASES_PERCENT` (100 when unset): CI runs the
/// issue's 100,000 in all; a quick local run can ask for fewer.
pub fn cases(default: u32) -> u32 {
    let percent: u64 = std::env::var("PROP_CASES_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    u32::try_from(u64::from(default) * percent / 100)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// `http://127.0.0.1:{port}` for a loopback port nothing listens on (bound, then released):
/// a request there is refused at once (see [`crate::aws::AwsClients::unreachable`]).
pub fn closed_loopback_url() -> std::io::Result<Url> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Url::parse(&format!("http://127.0.0.1:{port}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_port_refuses_connections() {
        let url = closed_loopback_url().unwrap_or_else(|e| panic!("{e}"));
        let port = url.port().unwrap_or_default();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn cases_are_never_zero() {
        assert!(cases(1) >= 1);
        assert!(cases(30_000) >= 1);
    }
}
