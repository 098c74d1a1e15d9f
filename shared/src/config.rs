//! Typed settings from the environment, validated once at start-up.
//!
//! [`Config::from_env`] reads the process environment; [`Config::from_vars`] takes the same
//! variables as pairs, so tests never mutate the environment. Errors name the variable and the
//! rule it broke, never its value (a URL may carry credentials, a name may be a secret).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use crate::ids::Product;

/// A setting that is missing or wrong. Names the variable, never echoes its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: String, reason: String },
    #[error("environment variable {var} is not allowed: {reason}")]
    Forbidden { var: String, reason: &'static str },
}

fn invalid(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// One Atlassian OAuth 2.0 (3LO) app: the Jira app or the Confluence app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    pub product: Product,
    pub client_id: String,
    /// Name of the Secrets Manager secret holding the client secret (the value itself is read
    /// once per cold start and lives only in memory).
    pub client_secret_name: String,
    /// Space-separated scopes; always contains `offline_access`.
    pub scopes: String,
}

/// Outbound endpoints. PRIVACY.md P12: these are the only hosts we talk to besides AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtlassianSettings {
    pub auth_url: Url,
    pub api_url: Url,
    /// Most requests in flight to one Atlassian site at once.
    pub max_concurrency_per_site: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the AWS SDK sends requests instead of AWS (the emulator, locally).
    pub aws_endpoint_url: Option<Url>,
    /// Where S3 requests go instead, when set (`AWS_ENDPOINT_URL_S3`, the SDK's service-specific
    /// variable): `make bench` stores exports in a fast S3 server and keeps the rest on moto.
    pub aws_endpoint_url_s3: Option<Url>,
    pub table_name: String,
    pub bucket_name: Option<String>,
    /// KMS key (id, ARN or alias) for token envelopes and S3 SSE-KMS.
    pub kms_key_id: String,
    pub event_bus_name: String,
    /// The export's resume queue (SQS, delayed deliveries after a wait); `None` leaves waits
    /// to the sweeper.
    pub resume_queue_url: Option<String>,
    /// Where the export reports a job whose invocations kept dying (the dead-letter queue).
    pub dead_letter_queue_url: Option<String>,
    pub atlassian: AtlassianSettings,
    pub jira: Option<AppSettings>,
    pub confluence: Option<AppSettings>,
    /// Our OAuth callback URL; must equal a callback URL registered for both apps.
    pub oauth_redirect_url: Option<Url>,
    /// Return URLs the platform may ask us to send the browser back to (scheme + host + port +
    /// path prefix must match one of these).
    pub allowed_return_urls: Vec<Url>,
    /// How long finished job records are kept (their TTL).
    pub job_retention: Duration,
    /// Items an export writes at once (attachment streams and document puts to S3).
    pub export_item_concurrency: usize,
}

/// `EXPORT_ITEM_CONCURRENCY`'s default, chosen from `make bench` (README, Configuration).
pub const DEFAULT_EXPORT_ITEM_CONCURRENCY: usize = 32;

const DEFAULT_AUTH_URL: &str = "https://auth.atlassian.com";
const DEFAULT_API_URL: &str = "https://api.atlassian.com";
const DEFAULT_JIRA_SCOPES: &str = "read:jira-work read:jira-user offline_access";
/// Every Confluence endpoint we call needs one of these (README, Configuration): CQL search
/// `search:confluence`; content by id and the attachment listing
/// `read:confluence-content.summary`; bodies `read:confluence-content.all`; spaces
/// `read:confluence-space.summary`; the attachment download
/// `readonly:content.attachment:confluence`.
const DEFAULT_CONFLUENCE_SCOPES: &str = "read:confluence-content.all read:confluence-content.summary search:confluence read:confluence-space.summary readonly:content.attachment:confluence offline_access";

/// Variable-name fragments that would mean basic auth or an API token (PRIVACY.md P6).
const FORBIDDEN_FRAGMENTS: [&str; 4] = ["API_TOKEN", "PASSWORD", "BASIC_AUTH", "USERNAME"];
const PRODUCT_PREFIXES: [&str; 3] = ["ATLASSIAN_", "JIRA_", "CONFLUENCE_"];

impl Config {
    /// Read and validate the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut vars = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Ok(k) = k.into_string() else { continue };
            match v.into_string() {
                Ok(v) => vars.push((k, v)),
                Err(_) if is_ours(&k) => {
                    return Err(invalid(&k, "is not valid UTF-8"));
                }
                Err(_) => {}
            }
        }
        Self::from_vars(vars)
    }

    /// Validate the given variables as if they were the environment.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        reject_basic_auth(&vars)?;
        let env = Env(&vars);

        // Every AWS call goes here when set (the emulator locally): https, or plain http to a
        // loopback host only (PRIVACY.md P12: no other host sees our requests).
        let aws_endpoint_url = env
            .opt("AWS_ENDPOINT_URL")
            .map(|v| parse_url("AWS_ENDPOINT_URL", v))
            .transpose()?;
        if let Some(url) = &aws_endpoint_url {
            require_https_or_loopback("AWS_ENDPOINT_URL", url)?;
        }
        let aws_endpoint_url_s3 = env
            .opt("AWS_ENDPOINT_URL_S3")
            .map(|v| parse_url("AWS_ENDPOINT_URL_S3", v))
            .transpose()?;
        if let Some(url) = &aws_endpoint_url_s3 {
            require_https_or_loopback("AWS_ENDPOINT_URL_S3", url)?;
        }
        let atlassian = AtlassianSettings {
            auth_url: outbound_url(
                "ATLASSIAN_AUTH_URL",
                env.opt("ATLASSIAN_AUTH_URL").unwrap_or(DEFAULT_AUTH_URL),
            )?,
            api_url: outbound_url(
                "ATLASSIAN_API_URL",
                env.opt("ATLASSIAN_API_URL").unwrap_or(DEFAULT_API_URL),
            )?,
            max_concurrency_per_site: env.number("ATLASSIAN_MAX_CONCURRENCY_PER_SITE", 8, 1, 64)?,
        };
        let jira = app(&env, Product::Jira, DEFAULT_JIRA_SCOPES)?;
        let confluence = app(&env, Product::Confluence, DEFAULT_CONFLUENCE_SCOPES)?;

        let oauth_redirect_url = env
            .opt("OAUTH_REDIRECT_URL")
            .map(|v| {
                let url = parse_url("OAUTH_REDIRECT_URL", v)?;
                require_https_or_loopback("OAUTH_REDIRECT_URL", &url)?;
                Ok::<_, ConfigError>(url)
            })
            .transpose()?;

        let mut allowed_return_urls = Vec::new();
        for item in env.opt("ALLOWED_RETURN_URLS").unwrap_or("").split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let url = parse_url("ALLOWED_RETURN_URLS", item)?;
            require_https_or_loopback("ALLOWED_RETURN_URLS", &url)?;
            allowed_return_urls.push(url);
        }

        let retention_days: u64 = env.number("JOB_RETENTION_DAYS", 30, 1, 3650)?;

        Ok(Config {
            aws_endpoint_url,
            aws_endpoint_url_s3,
            table_name: env.required("TABLE_NAME")?.to_owned(),
            bucket_name: env.opt("BUCKET_NAME").map(str::to_owned),
            kms_key_id: env.required("KMS_KEY_ID")?.to_owned(),
            event_bus_name: env.opt("EVENT_BUS_NAME").unwrap_or("default").to_owned(),
            resume_queue_url: env.opt("RESUME_QUEUE_URL").map(str::to_owned),
            dead_letter_queue_url: env.opt("DEAD_LETTER_QUEUE_URL").map(str::to_owned),
            atlassian,
            jira,
            confluence,
            oauth_redirect_url,
            allowed_return_urls,
            job_retention: Duration::from_secs(retention_days * 24 * 3600),
            export_item_concurrency: env.number(
                "EXPORT_ITEM_CONCURRENCY",
                DEFAULT_EXPORT_ITEM_CONCURRENCY,
                1,
                256,
            )?,
        })
    }

    /// The settings of one product's app, or an error naming the variable that enables it.
    pub fn app(&self, product: Product) -> Result<&AppSettings, ConfigError> {
        match product {
            Product::Jira => self
                .jira
                .as_ref()
                .ok_or(ConfigError::Missing("JIRA_CLIENT_ID")),
            Product::Confluence => self
                .confluence
                .as_ref()
                .ok_or(ConfigError::Missing("CONFLUENCE_CLIENT_ID")),
        }
    }

    /// The bucket, for the functions that need one; checked at their start-up.
    pub fn bucket(&self) -> Result<&str, ConfigError> {
        self.bucket_name
            .as_deref()
            .ok_or(ConfigError::Missing("BUCKET_NAME"))
    }

    pub fn redirect_url(&self) -> Result<&Url, ConfigError> {
        self.oauth_redirect_url
            .as_ref()
            .ok_or(ConfigError::Missing("OAUTH_REDIRECT_URL"))
    }

    /// Whether `candidate` may be used as a return URL: same scheme, host and port as an
    /// allowed URL, and its path under that URL's path.
    pub fn is_allowed_return_url(&self, candidate: &Url) -> bool {
        self.allowed_return_urls.iter().any(|allowed| {
            allowed.scheme() == candidate.scheme()
                && allowed.host_str() == candidate.host_str()
                && allowed.port_or_known_default() == candidate.port_or_known_default()
                && candidate.username().is_empty()
                && candidate.password().is_none()
                && path_is_under(candidate.path(), allowed.path())
        })
    }
}

fn path_is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" || prefix.is_empty() {
        return true;
    }
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

fn is_ours(name: &str) -> bool {
    PRODUCT_PREFIXES.iter().any(|p| name.starts_with(p))
        || matches!(
            name,
            "TABLE_NAME"
                | "BUCKET_NAME"
                | "KMS_KEY_ID"
                | "EVENT_BUS_NAME"
                | "AWS_ENDPOINT_URL"
                | "AWS_ENDPOINT_URL_S3"
        )
}

/// PRIVACY.md P6: we never take passwords or API tokens, so a deployment that tries to give
/// us one is refused at start-up rather than silently ignored.
fn reject_basic_auth(vars: &HashMap<String, String>) -> Result<(), ConfigError> {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        if PRODUCT_PREFIXES.iter().any(|p| name.starts_with(p))
            && FORBIDDEN_FRAGMENTS.iter().any(|f| name.contains(f))
        {
            return Err(ConfigError::Forbidden {
                var: name.clone(),
                reason: "passwords, basic auth and API tokens are never accepted; only OAuth 2.0 (3LO) is supported",
            });
        }
    }
    Ok(())
}

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.opt(name).ok_or(ConfigError::Missing(name))
    }

    fn number<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.opt(name) else {
            return Ok(default);
        };
        let value: T = raw
            .parse()
            .map_err(|_| invalid(name, "is not a whole number"))?;
        if value < min || value > max {
            return Err(invalid(name, format!("must be between {min} and {max}")));
        }
        Ok(value)
    }
}

fn app(
    env: &Env<'_>,
    product: Product,
    default_scopes: &str,
) -> Result<Option<AppSettings>, ConfigError> {
    let prefix = match product {
        Product::Jira => "JIRA",
        Product::Confluence => "CONFLUENCE",
    };
    let id_var = format!("{prefix}_CLIENT_ID");
    let Some(client_id) = env.opt(&id_var) else {
        return Ok(None);
    };
    let secret_var = format!("{prefix}_CLIENT_SECRET_NAME");
    let client_secret_name = env
        .opt(&secret_var)
        .ok_or_else(|| invalid(&secret_var, format!("is required when {id_var} is set")))?;
    let scopes_var = format!("{prefix}_SCOPES");
    let scopes = normalise_scopes(&scopes_var, env.opt(&scopes_var).unwrap_or(default_scopes))?;
    Ok(Some(AppSettings {
        product,
        client_id: client_id.to_owned(),
        client_secret_name: client_secret_name.to_owned(),
        scopes,
    }))
}

/// Space-separated scope list with `offline_access` always present (we need refresh tokens).
fn normalise_scopes(var: &str, raw: &str) -> Result<String, ConfigError> {
    let mut scopes: Vec<&str> = Vec::new();
    for s in raw
        .split([' ', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(var, "scopes must be printable ASCII"));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if !scopes.contains(&"offline_access") {
        scopes.push("offline_access");
    }
    Ok(scopes.join(" "))
}

fn parse_url(var: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| invalid(var, format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(var, "must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(var, "must not have a query or fragment"));
    }
    Ok(url)
}

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn require_https_or_loopback(var: &str, url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(invalid(
            var,
            "plain http is accepted only for loopback hosts",
        )),
        _ => Err(invalid(var, "must be an https URL")),
    }
}

/// PRIVACY.md P12: Atlassian traffic goes to Atlassian's hosts over https, or (local runs and
/// tests) to a loopback fake.
fn outbound_url(var: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = parse_url(var, raw)?;
    require_https_or_loopback(var, &url)?;
    if is_loopback(&url) {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host == "atlassian.com" || host.ends_with(".atlassian.com") {
        Ok(url)
    } else {
        Err(invalid(
            var,
            "must be an atlassian.com host (or a loopback host for local runs)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "connectors"),
            ("KMS_KEY_ID", "alias/connectors"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut v = base();
        v.extend_from_slice(extra);
        Config::from_vars(v)
    }

    #[test]
    fn minimal_config_uses_atlassian_defaults() {
        let c = with(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.atlassian.auth_url.as_str(), "https://auth.atlassian.com/");
        assert_eq!(c.atlassian.api_url.as_str(), "https://api.atlassian.com/");
        assert_eq!(c.event_bus_name, "default");
        assert_eq!(c.job_retention, Duration::from_secs(30 * 86400));
        assert!(c.jira.is_none() && c.confluence.is_none());
    }

    #[test]
    fn the_aws_endpoint_must_be_https_or_loopback() {
        assert!(with(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]).is_ok());
        assert!(with(&[("AWS_ENDPOINT_URL", "https://vpce.example.amazonaws.com")]).is_ok());
        assert!(with(&[("AWS_ENDPOINT_URL", "http://collector.example.com")]).is_err());
        assert!(with(&[("AWS_ENDPOINT_URL", "ftp://127.0.0.1")]).is_err());
    }

    #[test]
    fn s3_may_have_an_endpoint_of_its_own() {
        let c = with(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8014"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.aws_endpoint_url_s3.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8014/")
        );
        assert!(with(&[]).is_ok_and(|c| c.aws_endpoint_url_s3.is_none()));
        assert!(with(&[("AWS_ENDPOINT_URL_S3", "http://u:p@127.0.0.1:1")]).is_err());
    }

    #[test]
    fn missing_table_is_named() {
        let err = Config::from_vars([("KMS_KEY_ID", "k")]).err();
        assert_eq!(err, Some(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("missing environment variable TABLE_NAME")
        );
    }

    #[test]
    fn non_atlassian_hosts_are_refused() {
        for url in [
            "https://evil.example.com",
            "https://atlassian.com.evil.io",
            "ftp://auth.atlassian.com",
        ] {
            let err = with(&[("ATLASSIAN_API_URL", url)]).err();
            assert!(
                matches!(err, Some(ConfigError::Invalid { ref var, .. }) if var == "ATLASSIAN_API_URL"),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(with(&[("ATLASSIAN_AUTH_URL", "http://127.0.0.1:8080")]).is_ok());
        assert!(with(&[("ATLASSIAN_AUTH_URL", "http://localhost:8080")]).is_ok());
        assert!(with(&[("ATLASSIAN_AUTH_URL", "http://[::1]:8080")]).is_ok());
        assert!(with(&[("ATLASSIAN_AUTH_URL", "http://auth.atlassian.com")]).is_err());
        assert!(with(&[("ATLASSIAN_AUTH_URL", "http://10.0.0.1")]).is_err());
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let err = with(&[(
            "ATLASSIAN_API_URL",
            "https://user:hunter2@api.atlassian.com",
        )])
        .err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("ATLASSIAN_API_URL") && text.contains("credentials"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn api_tokens_and_passwords_are_refused() {
        for var in [
            "JIRA_API_TOKEN",
            "ATLASSIAN_PASSWORD",
            "CONFLUENCE_USERNAME",
            "ATLASSIAN_BASIC_AUTH",
        ] {
            let err = with(&[(var, "x")]).err();
            assert!(
                matches!(err, Some(ConfigError::Forbidden { var: ref v, .. }) if v == var),
                "{var}: {err:?}"
            );
        }
    }

    #[test]
    fn app_needs_its_secret_name_and_always_gets_offline_access() {
        assert!(with(&[("JIRA_CLIENT_ID", "abc")]).is_err());
        let c = with(&[
            ("JIRA_CLIENT_ID", "abc"),
            ("JIRA_CLIENT_SECRET_NAME", "jira-secret"),
            ("JIRA_SCOPES", "read:jira-work, read:jira-work"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let jira = c.app(Product::Jira).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jira.scopes, "read:jira-work offline_access");
        assert_eq!(
            c.app(Product::Confluence).err(),
            Some(ConfigError::Missing("CONFLUENCE_CLIENT_ID"))
        );
    }

    #[test]
    fn numbers_are_range_checked() {
        assert!(with(&[("JOB_RETENTION_DAYS", "0")]).is_err());
        assert!(with(&[("JOB_RETENTION_DAYS", "ten")]).is_err());
        assert!(with(&[("EXPORT_ITEM_CONCURRENCY", "0")]).is_err());
        assert!(with(&[("EXPORT_ITEM_CONCURRENCY", "257")]).is_err());
        let c = with(&[("EXPORT_ITEM_CONCURRENCY", "64")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.export_item_concurrency, 64);
        assert!(with(&[("ATLASSIAN_MAX_CONCURRENCY_PER_SITE", "4")]).is_ok());
    }

    #[test]
    fn return_urls_match_origin_and_path_prefix() {
        let c = with(&[(
            "ALLOWED_RETURN_URLS",
            "https://platform.example.com/connect, http://localhost:3000",
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        let ok = |s: &str| {
            Url::parse(s)
                .map(|u| c.is_allowed_return_url(&u))
                .unwrap_or(false)
        };
        assert!(ok("https://platform.example.com/connect"));
        assert!(ok("https://platform.example.com/connect/done?x=1"));
        assert!(ok("http://localhost:3000/anything"));
        assert!(!ok("https://platform.example.com/connector-evil"));
        assert!(!ok("https://platform.example.com.evil.io/connect"));
        assert!(!ok("http://platform.example.com/connect"));
        assert!(!ok("https://user@platform.example.com/connect"));
        assert!(!ok("http://localhost:3001/"));
    }

    #[test]
    fn non_loopback_http_return_urls_are_refused() {
        assert!(with(&[("ALLOWED_RETURN_URLS", "http://platform.example.com")]).is_err());
    }
}
