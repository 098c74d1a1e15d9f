//! Issue 9: `make local`, proven by running the `local` binary. Without app credentials it
//! starts the fake site and clicks through consent itself. With them (the real-Atlassian
//! mode) it skips the fake site, serves the callback on
//! `http://localhost:$LOCAL_CALLBACK_PORT/callback`, prints an authorize URL per app and waits
//! for consent. Here `ATLASSIAN_AUTH_URL`/`ATLASSIAN_API_URL` point that mode at a loopback
//! fake site started by the test, which plays the person: it reads the printed links,
//! consents, and sends the "browser" to the printed callback.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::fake::{self, FakeAtlassian, FakeConfig, SeedSpec};
use integration_tests::http_functions::page_title;
use tokio::sync::mpsc;
use url::Url;

use crate::connect::param;

/// Variables the developer's shell may hold that would change what the child does.
const INHERITED: [&str; 14] = [
    "ATLASSIAN_JIRA_CLIENT_ID",
    "ATLASSIAN_JIRA_CLIENT_SECRET",
    "ATLASSIAN_CONFLUENCE_CLIENT_ID",
    "ATLASSIAN_CONFLUENCE_CLIENT_SECRET",
    "ATLASSIAN_AUTH_URL",
    "ATLASSIAN_API_URL",
    "LOCAL_CALLBACK_PORT",
    "LOCAL_CONSENT_TIMEOUT_SECS",
    "LOCAL_EXPORT_TIMEOUT_SECS",
    "LOCAL_JQL",
    "LOCAL_CQL",
    "JIRA_SCOPES",
    "CONFLUENCE_SCOPES",
    "RUST_LOG",
];

/// The `local` binary running as a child; killed when dropped.
struct LocalRun {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl LocalRun {
    fn start(vars: &[(&str, String)]) -> LocalRun {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
        for name in INHERITED {
            cmd.env_remove(name);
        }
        cmd.envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", env!("CARGO_BIN_EXE_local")));
        let (out, err) = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => (out, err),
            _ => panic!("the local binary was started without its output pipes"),
        };
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut all) = stdout.lock() {
                        all.push_str(&line);
                        all.push('\n');
                    }
                    let _ = tx.send(line);
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let mut err = err;
                let _ = err.read_to_end(&mut bytes);
                if let Ok(mut all) = stderr.lock() {
                    *all = bytes;
                }
            });
        }
        LocalRun {
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// The next line the walkthrough prints, or `None` once it has exited.
    async fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(line) => line,
            Err(_) => panic!(
                "make local printed nothing for {}s; so far:\n{}",
                timeout.as_secs(),
                self.stdout()
            ),
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait for the exit (killing it at `timeout`): its status, stdout and stderr.
    async fn finish(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let until = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                outcome => panic!(
                    "make local did not exit within {}s ({outcome:?}); it printed:\n{}",
                    timeout.as_secs(),
                    self.stdout()
                ),
            }
        };
        // The reader threads end at EOF, right after the exit.
        while tokio::time::timeout(Duration::from_secs(5), self.lines.recv())
            .await
            .is_ok_and(|line| line.is_some())
        {}
        let mut stderr = String::new();
        for _ in 0..50 {
            stderr = self
                .stderr
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if !stderr.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        crate::support::remember_log_lines(stderr.as_bytes());
        (status, self.stdout(), stderr)
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port: {e}"))
}

/// A fake site with `http://localhost:{port}/callback` registered, and the environment that
/// runs `make local`'s real mode against it with both apps.
async fn real_mode_against_fake(port: u16) -> (FakeAtlassian, Vec<(&'static str, String)>) {
    crate::support::remember_secret(fake::JIRA_CLIENT_SECRET);
    crate::support::remember_secret(fake::CONFLUENCE_CLIENT_SECRET);
    let site = FakeAtlassian::start(
        FakeConfig::default()
            .with_sites(1, SeedSpec::small())
            .with_redirect_uri(&format!("http://localhost:{port}/callback")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let vars = vec![
        ("ATLASSIAN_JIRA_CLIENT_ID", fake::JIRA_CLIENT_ID.to_owned()),
        (
            "ATLASSIAN_JIRA_CLIENT_SECRET",
            fake::JIRA_CLIENT_SECRET.to_owned(),
        ),
        (
            "ATLASSIAN_CONFLUENCE_CLIENT_ID",
            fake::CONFLUENCE_CLIENT_ID.to_owned(),
        ),
        (
            "ATLASSIAN_CONFLUENCE_CLIENT_SECRET",
            fake::CONFLUENCE_CLIENT_SECRET.to_owned(),
        ),
        ("ATLASSIAN_AUTH_URL", site.base_url().to_string()),
        ("ATLASSIAN_API_URL", site.base_url().to_string()),
        ("LOCAL_CALLBACK_PORT", port.to_string()),
    ];
    (site, vars)
}

/// The authorize URL in a line `    {product}: {url}`, if it is one.
fn authorize_link(line: &str) -> Option<(String, Url)> {
    let (product, rest) = line.trim().split_once(": ")?;
    let url = Url::parse(rest.trim()).ok()?;
    url.path()
        .ends_with("/authorize")
        .then(|| (product.to_owned(), url))
}

/// Play the person for one printed link: consent (or refuse) at the fake site, then send the
/// "browser" to the callback it redirects to. Returns the callback page's status and title.
async fn follow(site: &FakeAtlassian, authorize: &Url, accept: bool) -> (u16, String) {
    crate::support::remember_secret(&param(authorize, "state"));
    let back = site
        .consent(authorize, accept)
        .await
        .unwrap_or_else(|e| panic!("the printed link was refused by the site: {e}"));
    let code = param(&back, "code");
    if !code.is_empty() {
        crate::support::remember_secret(&code);
    }
    assert_eq!(back.host_str(), Some("localhost"), "{}", back.path());
    let page = reqwest::Client::new()
        .get(back.as_str())
        .send()
        .await
        .unwrap_or_else(|e| panic!("the callback on localhost did not answer: {e}"));
    let status = page.status().as_u16();
    let html = page.text().await.unwrap_or_default();
    (status, page_title(&html))
}

fn assert_no_secrets(what: &str, text: &str, extra: &[String]) {
    for needle in [
        fake::JIRA_CLIENT_SECRET,
        fake::CONFLUENCE_CLIENT_SECRET,
        fake::ACCESS_TOKEN_PREFIX,
        fake::REFRESH_TOKEN_PREFIX,
        fake::CODE_PREFIX,
    ]
    .into_iter()
    .chain(extra.iter().map(String::as_str))
    {
        assert!(
            !text.contains(needle),
            "{what} contains a secret ({} chars)",
            needle.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_mode_prints_links_waits_for_consent_then_exports_and_refreshes() {
    let port = free_port();
    let (site, mut vars) = real_mode_against_fake(port).await;
    let project = site
        .cloud_ids()
        .first()
        .and_then(|c| site.jira(c))
        .and_then(|j| j.projects().first().map(|p| p.key.clone()))
        .unwrap_or_else(|| panic!("the fake site has no project"));
    // The JQL is chosen; the CQL is the default (`type = page and lastmodified >= now("-30d")`).
    vars.push(("LOCAL_JQL", format!("project = {project}")));
    vars.push(("LOCAL_CONSENT_TIMEOUT_SECS", "120".to_owned()));
    let started = Instant::now();
    let mut run = LocalRun::start(&vars);

    let mut followed = Vec::new();
    let mut states = Vec::new();
    while followed.len() < 2 {
        let Some(line) = run.next_line(Duration::from_secs(120)).await else {
            break;
        };
        if let Some((product, url)) = authorize_link(&line) {
            assert_eq!(url.origin(), site.base_url().origin());
            assert_eq!(
                param(&url, "redirect_uri"),
                format!("http://localhost:{port}/callback")
            );
            let (status, title) = follow(&site, &url, true).await;
            assert_eq!(status, 200, "{product}: the callback showed {title:?}");
            let expected = match product.as_str() {
                "jira" => "Jira connected",
                "confluence" => "Confluence connected",
                other => panic!("a link for an unknown product {other:?}"),
            };
            assert_eq!(title, expected);
            states.push(param(&url, "state"));
            followed.push(product);
        }
    }
    let (status, stdout, stderr) = run.finish(Duration::from_secs(240)).await;
    println!(
        "make local (real mode against a fake site) took {:.1}s; it printed:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "make local failed ({status}):\n{stdout}");
    followed.sort();
    assert_eq!(followed, ["confluence", "jira"], "{stdout}");

    // It told the person what to register, and ran the whole walkthrough.
    assert!(stdout.contains(&format!("callback URL: http://localhost:{port}/callback")));
    assert!(stdout.contains("developer console"), "{stdout}");
    assert!(
        !stdout.contains("fake Atlassian at"),
        "it started a fake site"
    );
    assert!(stdout.contains("== summary =="), "{stdout}");
    assert!(stdout.contains("connections: 2\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("\"project = {project}\"")),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""type = page and lastmodified >= now(\"-30d\")""#),
        "{stdout}"
    );
    assert!(stdout.contains("exports:     2 jobs,"), "{stdout}");
    assert!(
        !stdout.contains("exports:     2 jobs, 0 items"),
        "nothing exported: {stdout}"
    );
    assert!(
        stdout.contains("refresh:     2 refreshed, 0 failed"),
        "{stdout}"
    );
    // Every Atlassian call went to the site it was pointed at.
    assert!(
        site.hits("/oauth/token") >= 4,
        "code exchanges and refreshes"
    );
    assert!(site.hits("/ex/jira/") > 0 && site.hits("/ex/confluence/") > 0);

    // Nothing secret on the terminal or in the logs (the links carry only the state).
    assert_no_secrets("stdout", &stdout, &[]);
    assert!(!stderr.is_empty(), "the functions logged nothing");
    assert_no_secrets("stderr (the functions' logs)", &stderr, &states);
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_credentials_it_clicks_through_the_fake_site_it_starts() {
    let (status, stdout, stderr) = LocalRun::start(&[]).finish(Duration::from_secs(240)).await;
    assert!(status.success(), "make local failed ({status}):\n{stdout}");
    for expected in [
        "fake Atlassian at http://127.0.0.1:",
        "jira: consent accepted, callback answered 200 OK",
        "confluence: consent accepted, callback answered 200 OK",
        "connections: 2\n",
        "exports:     2 jobs,",
        "refresh:     2 refreshed, 0 failed",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("real Atlassian mode"), "{stdout}");
    assert_no_secrets("stdout", &stdout, &[]);
    assert_no_secrets("stderr (the functions' logs)", &stderr, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn real_mode_stops_with_the_callbacks_page_when_consent_is_refused() {
    let port = free_port();
    let (site, mut vars) = real_mode_against_fake(port).await;
    vars.retain(|(k, _)| !k.starts_with("ATLASSIAN_CONFLUENCE_"));
    let mut run = LocalRun::start(&vars);
    let mut refused = false;
    while let Some(line) = run.next_line(Duration::from_secs(120)).await {
        if let Some((product, url)) = authorize_link(&line) {
            assert_eq!(product, "jira", "only the Jira app is configured");
            let (status, title) = follow(&site, &url, false).await;
            assert_eq!((status, title.as_str()), (200, "Connection not authorized"));
            refused = true;
            break;
        }
    }
    assert!(refused, "no authorize link was printed:\n{}", run.stdout());
    let (status, stdout, _) = run.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("make local failed: the consent did not complete")
            && stdout.contains("Connection not authorized"),
        "{stdout}"
    );
    assert!(!stdout.contains("confluence:"), "{stdout}");
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_mode_gives_up_when_nobody_consents_in_time() {
    let port = free_port();
    let (site, mut vars) = real_mode_against_fake(port).await;
    vars.push(("LOCAL_CONSENT_TIMEOUT_SECS", "1".to_owned()));
    let (status, stdout, _) = LocalRun::start(&vars)
        .finish(Duration::from_secs(120))
        .await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("make local failed: consent timed out: after 1s there is still no connection for jira, confluence"),
        "{stdout}"
    );
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_mode_refuses_half_a_credential_pair_without_echoing_it() {
    let (status, stdout, stderr) = LocalRun::start(&[(
        "ATLASSIAN_CONFLUENCE_CLIENT_SECRET",
        fake::CONFLUENCE_CLIENT_SECRET.to_owned(),
    )])
    .finish(Duration::from_secs(30))
    .await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "ATLASSIAN_CONFLUENCE_CLIENT_SECRET is set but ATLASSIAN_CONFLUENCE_CLIENT_ID is not"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("[1]"), "it started anyway: {stdout}");
    assert_no_secrets("stdout", &stdout, &[]);
    assert_no_secrets("stderr", &stderr, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn real_mode_names_a_taken_callback_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = taken.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let (site, vars) = real_mode_against_fake(port).await;
    let (status, stdout, _) = LocalRun::start(&vars).finish(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("port {port} is already in use"))
            && stdout.contains("LOCAL_CALLBACK_PORT"),
        "{stdout}"
    );
    assert!(!stdout.contains("[1]"), "it started anyway: {stdout}");
    drop(taken);
    site.shutdown().await;
}
