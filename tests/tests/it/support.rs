//! Helpers that hide plumbing, so tests read as specifications.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use integration_tests::fake::{self, FakeAtlassian};
use shared::atlassian::AtlassianUrls;
use shared::atlassian::http::{AtlassianHttp, RetryPolicy};
use shared::atlassian::oauth::{self, AppCredentials, TokenGrant};
use shared::atlassian::outbound::Outbound;
use shared::config::{AppSettings, AtlassianSettings};
use shared::ids::Product;
use shared::secret::secret;
use tracing_subscriber::fmt::MakeWriter;
use url::Url;

/// Retries quick enough for tests, with the production shape.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        max_total_wait: Duration::from_secs(10),
    }
}

pub fn http(policy: RetryPolicy) -> AtlassianHttp {
    AtlassianHttp::new(policy, 8, Outbound::loopback()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn settings(site: &FakeAtlassian) -> AtlassianSettings {
    AtlassianSettings {
        auth_url: site.base_url(),
        api_url: site.base_url(),
        max_concurrency_per_site: 8,
    }
}

pub fn urls(site: &FakeAtlassian) -> AtlassianUrls {
    AtlassianUrls::new(&settings(site))
}

pub fn jira_app() -> AppCredentials {
    AppCredentials {
        settings: AppSettings {
            product: Product::Jira,
            client_id: fake::JIRA_CLIENT_ID.into(),
            client_secret_name: "unused".into(),
            scopes: "read:jira-work read:jira-user offline_access".into(),
        },
        client_secret: secret(fake::JIRA_CLIENT_SECRET),
    }
}

pub fn default_redirect() -> Url {
    Url::parse(fake::DEFAULT_REDIRECT_URI).unwrap_or_else(|e| panic!("{e}"))
}

/// Consent at the fake site and exchange the code: a real token pair for the Jira app.
pub async fn jira_tokens(site: &FakeAtlassian, http: &AtlassianHttp) -> TokenGrant {
    let app = jira_app();
    let redirect = default_redirect();
    let url = oauth::authorize_url(&urls(site), &app.settings, &redirect, &secret("test-state"));
    let back = site
        .consent(&url, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"));
    oauth::exchange_code(http, &urls(site), &app, &secret(code), &redirect)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every log line written while a [`LogCapture`] is installed on this thread.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

/// Where the whole suite's log lines and the secret values the tests used are written, for the
/// privacy scan `make test` runs after the tests (`scan-logs`, PRIVACY.md P7).
pub fn privacy_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("privacy")
}

fn append(file: &str, bytes: &[u8]) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock();
    let dir = privacy_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{file}-{}.txt", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(bytes);
    }
}

/// Record a secret value a test used (a state, a code, a client secret): the privacy scan
/// fails if it appears in any log line of the suite.
pub fn remember_secret(value: &str) {
    append("secrets", format!("{value}\n").as_bytes());
}

/// Hand log lines another process wrote (a child's JSON logs) to the privacy scan.
pub fn remember_log_lines(bytes: &[u8]) {
    append("logs", bytes);
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        append("logs", buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogCapture {
    /// The production JSON subscriber, installed once for the whole test process, writing
    /// every line of every test here. (Per-thread subscribers miss lines: tracing caches
    /// callsite interest globally.) Scans see what all tests logged so far, which only makes
    /// them stricter.
    pub fn global() -> &'static LogCapture {
        static LOGS: OnceLock<LogCapture> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = LogCapture::default();
            if tracing::subscriber::set_global_default(shared::telemetry::subscriber(logs.clone()))
                .is_err()
            {
                panic!("another global subscriber was installed first; log scans would be vacuous");
            }
            logs
        })
    }

    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Fail if any of `needles` appears in any captured line.
    pub fn assert_free_of(&self, needles: &[&str]) {
        let text = self.text();
        assert!(
            !text.is_empty(),
            "no log lines were captured: the check would be vacuous"
        );
        for n in needles {
            assert!(!n.is_empty(), "empty needle");
            assert!(
                !text.contains(n),
                "a log line contains a secret value ({} chars)",
                n.len()
            );
        }
    }
}
