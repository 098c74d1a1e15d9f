//! Issue 9: a real browser connects a site. Headless Chromium opens the authorize URL, clicks
//! Accept on the fake site's consent page, follows the redirect to the real `oauth-callback`
//! handler served on a loopback port, and lands on its success page. Screenshots of both
//! pages are kept in `target/test-artifacts/browser/<test>/`.
//!
//! Chromium comes from `make test` (`make chromium` installs Debian's package when none is
//! on PATH). Without it this test fails; it never skips.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::chromium::{BrowserError, Chromium, PageState, Tab};
use integration_tests::fake::{self, FakeConfig, SeedSpec};
use integration_tests::http_functions::HttpFunctions;
use lambda_http::http::Method;
use shared::connect::ConnectService;
use url::Url;

use crate::connect::{World, assert_one_sealed_connection, param};

/// How long one page may take to load (everything is on loopback).
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// This test's own artifacts directory (`target/test-artifacts/browser/<test>`), emptied of
/// its stale screenshots. One per test: the two browser tests run at once, and a shared
/// directory let one test delete the other's screenshots while it checked them.
fn artifacts_dir(test: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("test-artifacts").join("browser").join(test);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    for stale in ["consent.png", "connected.png", "failure.png"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    dir
}

/// Open the consent page, screenshot it, click Accept, and wait for the callback's page.
async fn click_through(
    browser: &mut Chromium,
    tab: &Tab,
    authorize: &Url,
    callback_url: &str,
    dir: &Path,
) -> Result<(PageState, PageState), BrowserError> {
    browser.navigate(tab, authorize.as_str()).await?;
    let consent_prefix = authorize
        .join("/authorize")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let consent = browser
        .wait_for_page(tab, &consent_prefix, PAGE_TIMEOUT)
        .await?;
    browser.screenshot(tab, &dir.join("consent.png")).await?;
    browser.click(tab, "#accept").await?;
    let done = browser
        .wait_for_page(tab, callback_url, PAGE_TIMEOUT)
        .await?;
    browser.screenshot(tab, &dir.join("connected.png")).await?;
    Ok((consent, done))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_clicks_accept_and_lands_on_the_success_page() {
    // The callback on a loopback port, registered with the fake site's apps.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the callback listener: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let callback_url = format!("http://127.0.0.1:{port}/callback");
    let w = World::with_redirect(
        FakeConfig::default()
            .with_sites(1, SeedSpec::small())
            .with_redirect_uri(&callback_url),
        &callback_url,
    )
    .await;
    let callback = ConnectService::from_config(w.config.clone(), &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut functions = HttpFunctions::new(callback, None);
    let mut answers = functions.watch_callbacks();
    let _serving = functions.serve(vec![listener]);

    // POST /authorizations on the connectors API: the URL the platform sends the user to.
    let authorize = w.authorize("jira", None).await;

    let dir = artifacts_dir("accept");
    let started = Instant::now();
    let mut browser = Chromium::launch(&dir.join("chromium.log"))
        .await
        .unwrap_or_else(|e| panic!("the browser test needs headless Chromium: {e}"));
    let version = browser.version().await.unwrap_or_else(|e| panic!("{e}"));
    let launched = started.elapsed();
    let tab = browser
        .open_tab()
        .await
        .unwrap_or_else(|e| panic!("opening a tab: {e}"));
    let (consent, done) =
        match click_through(&mut browser, &tab, &authorize, &callback_url, &dir).await {
            Ok(pages) => pages,
            Err(e) => {
                let shot = dir.join("failure.png");
                let saved = browser.screenshot(&tab, &shot).await.is_ok();
                panic!(
                    "the browser did not complete the consent: {e}{}",
                    if saved {
                        format!("\n  screenshot of where it stopped: {}", shot.display())
                    } else {
                        String::new()
                    }
                );
            }
        };
    browser.close().await;
    println!(
        "browser test: {version} started in {:.1}s, consent and callback took {:.1}s; \
         screenshots in {}",
        launched.as_secs_f64(),
        (started.elapsed() - launched).as_secs_f64(),
        dir.display()
    );
    let code = param(
        &Url::parse(&done.url).unwrap_or_else(|e| panic!("{e}")),
        "code",
    );
    if !code.is_empty() {
        crate::support::remember_secret(&code);
    }

    // The consent page was the fake site's, for our Jira app.
    assert_eq!(consent.title, format!("Authorize {}", fake::JIRA_CLIENT_ID));
    assert!(consent.text.contains("Accept"), "{}", consent.text);

    // The browser ended on the callback's success page, naming the connected site.
    assert_eq!(done.title, "Jira connected", "page text: {}", done.text);
    assert!(
        done.text.contains("Access was granted for")
            && done.text.contains("https://fake-site-1.atlassian.net"),
        "the success page does not name the connected site: {}",
        done.text
    );
    let answer = answers
        .try_recv()
        .unwrap_or_else(|_| panic!("the callback was never called"));
    assert!(answer.connected(), "the callback answered {answer:?}");
    assert!(answers.try_recv().is_err(), "the callback was called twice");

    // The connection is stored, active, and the table holds no plain token.
    let (status, json) = w.api(Method::GET, "/connections?tenant=acme", None).await;
    assert!(status.is_success(), "{json}");
    let conns = json["connections"].as_array().cloned().unwrap_or_default();
    assert_eq!(conns.len(), 1, "{json}");
    assert_eq!(conns[0]["product"], "jira", "{json}");
    assert_eq!(conns[0]["status"], "active", "{json}");
    assert!(
        conns[0]["site_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://fake-site-1.atlassian.net")),
        "{json}"
    );
    assert_one_sealed_connection(&w).await;
    for png in ["consent.png", "connected.png"] {
        let size = std::fs::metadata(dir.join(png)).map_or(0, |m| m.len());
        assert!(size > 1000, "{png} is {size} bytes");
    }
}

/// Wait until the tab shows a fully loaded page titled `title`.
async fn wait_for_title(
    browser: &mut Chromium,
    tab: &Tab,
    title: &str,
) -> Result<PageState, BrowserError> {
    let until = Instant::now() + PAGE_TIMEOUT;
    loop {
        if let Ok((page, true)) = browser.page(tab).await
            && page.title == title
        {
            return Ok(page);
        }
        if Instant::now() >= until {
            let seen = browser.page(tab).await.map(|(p, _)| p.title);
            panic!("the browser never showed {title:?}; last title {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_consents_for_two_sites_and_picks_one_on_the_chooser() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the callback listener: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let callback_url = format!("http://127.0.0.1:{port}/callback");
    let w = World::with_redirect(
        FakeConfig::default()
            .with_sites(2, SeedSpec::small())
            .with_redirect_uri(&callback_url),
        &callback_url,
    )
    .await;
    let callback = ConnectService::from_config(w.config.clone(), &w.aws.clients)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _serving = HttpFunctions::new(callback, None).serve(vec![listener]);
    let authorize = w.authorize("jira", None).await;
    let dir = artifacts_dir("chooser");

    let mut browser = Chromium::launch(&dir.join("chromium.log"))
        .await
        .unwrap_or_else(|e| panic!("the browser test needs headless Chromium: {e}"));
    let tab = browser.open_tab().await.unwrap_or_else(|e| panic!("{e}"));
    let (_, chooser) = click_through(&mut browser, &tab, &authorize, &callback_url, &dir)
        .await
        .unwrap_or_else(|e| panic!("consent: {e}"));
    assert_eq!(
        chooser.title, "Choose the Jira site to connect",
        "{}",
        chooser.text
    );
    assert!(
        chooser.text.contains("https://fake-site-1.atlassian.net")
            && chooser.text.contains("https://fake-site-2.atlassian.net"),
        "{}",
        chooser.text
    );
    browser
        .screenshot(&tab, &dir.join("chooser.png"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser
        .click(&tab, "#site-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser
        .click(&tab, "#connect")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let done = wait_for_title(&mut browser, &tab, "Jira connected")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser
        .screenshot(&tab, &dir.join("connected.png"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser.close().await;

    let conns = w
        .store()
        .list_connections(&crate::connect::tenant())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 1, "exactly the chosen site is connected");
    assert!(
        done.text.contains(&conns[0].site_url),
        "the page names the chosen site: {}",
        done.text
    );
    assert_one_sealed_connection(&w).await;
}
