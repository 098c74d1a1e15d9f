//! Headless Chromium driven over the DevTools protocol (CDP), for the browser test.
//!
//! The browser is started with `--remote-debugging-pipe`: it reads commands from its file
//! descriptor 3 and writes answers and events to descriptor 4, one JSON message each, ended by
//! a NUL byte. A `sh -c 'exec … 3<&0 4>&1'` wrapper puts the child's stdin and stdout pipes on
//! those descriptors, so no WebSocket client, no debugging port and no `pre_exec` are needed.
//! A reader thread turns descriptor 4 into a channel; a call writes one command and waits for
//! the answer with its id, skipping events.
//!
//! The browser runs with a fresh profile in a temporary directory and is killed (with the
//! renderers it started, which exit with it) when the [`Chromium`] is dropped, on every path.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Names tried on `PATH` when `CHROMIUM` is not set (Debian's package installs `chromium`).
pub const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
];

/// The longest a single DevTools command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why driving the browser failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(String);

fn fail(message: impl Into<String>) -> BrowserError {
    BrowserError(message.into())
}

/// The page a tab shows.
#[derive(Debug, Clone, Default)]
pub struct PageState {
    pub url: String,
    pub title: String,
    /// `document.body.innerText`.
    pub text: String,
}

/// One tab, attached in flat mode: its commands carry this session id.
#[derive(Debug, Clone)]
pub struct Tab {
    session: String,
}

/// A running headless Chromium.
pub struct Chromium {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::UnboundedReceiver<Vec<u8>>,
    next_id: u64,
    profile: PathBuf,
    log: PathBuf,
}

/// The Chromium binary: `CHROMIUM` if set, else the first of [`CHROMIUM_NAMES`] on `PATH`.
pub fn find() -> Result<PathBuf, BrowserError> {
    if let Some(named) = std::env::var_os("CHROMIUM").filter(|v| !v.is_empty()) {
        let named = PathBuf::from(named);
        return which(&named).ok_or_else(|| {
            fail(format!(
                "CHROMIUM is set to {}, which is not an executable file",
                named.display()
            ))
        });
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| which(Path::new(name)))
        .ok_or_else(|| {
            fail(format!(
                "no Chromium on PATH (looked for {}). `make test` installs Debian's chromium \
                 package first (`make chromium`); or set CHROMIUM to a Chromium binary",
                CHROMIUM_NAMES.join(", ")
            ))
        })
}

fn which(name: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.components().count() > 1 {
        return executable(name).then(|| name.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// A fresh, empty directory for the browser profile.
fn temp_profile() -> Result<PathBuf, BrowserError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "chromium-profile-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("creating the profile dir {}: {e}", dir.display())))?;
    Ok(dir)
}

impl Chromium {
    /// Start headless Chromium ([`find`]); its stderr goes to `log`.
    pub async fn launch(log: &Path) -> Result<Chromium, BrowserError> {
        let binary = find()?;
        let profile = temp_profile()?;
        let log_file = std::fs::File::create(log)
            .map_err(|e| fail(format!("creating {}: {e}", log.display())))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(&binary)
            .args([
                "--headless=new",
                // Root in a container: Chromium's sandbox needs user namespaces we lack.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--password-store=basic",
                "--use-mock-keychain",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1024,768",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| fail(format!("starting {}: {e}", binary.display())))?;
        let (Some(to_browser), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("Chromium was started without its DevTools pipes"));
        };
        let (tx, from_browser) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for message in BufReader::new(stdout).split(0) {
                let Ok(message) = message else { break };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        let mut browser = Chromium {
            child,
            to_browser,
            from_browser,
            next_id: 0,
            profile,
            log: log.to_path_buf(),
        };
        // The first answer proves the pipe works.
        browser.call("Browser.getVersion", json!({}), None).await?;
        Ok(browser)
    }

    /// The browser's product string, e.g. `Chrome/148.0.…`.
    pub async fn version(&mut self) -> Result<String, BrowserError> {
        let v = self.call("Browser.getVersion", json!({}), None).await?;
        Ok(v["product"].as_str().unwrap_or_default().to_owned())
    }

    /// The last lines Chromium wrote to its log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n    ");
        format!(
            "\n  Chromium's log ({}) ends with:\n    {tail}",
            self.log.display()
        )
    }

    /// Send one command and wait for its answer.
    pub async fn call(
        &mut self,
        method: &str,
        params: Value,
        tab: Option<&Tab>,
    ) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(tab) = tab {
            message["sessionId"] = json!(tab.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        if let Err(e) = self
            .to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
        {
            return Err(fail(format!(
                "{method}: writing to Chromium's DevTools pipe: {e}{}",
                self.log_tail()
            )));
        }
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            while let Some(raw) = self.from_browser.recv().await {
                let Ok(msg) = serde_json::from_slice::<Value>(&raw) else {
                    continue;
                };
                if msg["id"].as_u64() == Some(id) {
                    return Some(msg);
                }
            }
            None
        })
        .await;
        match answer {
            Err(_) => Err(fail(format!(
                "{method}: no answer from Chromium within {}s{}",
                CALL_TIMEOUT.as_secs(),
                self.log_tail()
            ))),
            Ok(None) => Err(fail(format!(
                "{method}: Chromium closed its DevTools pipe (did it crash?){}",
                self.log_tail()
            ))),
            Ok(Some(msg)) => match msg.get("error") {
                Some(error) => Err(fail(format!(
                    "{method}: Chromium answered {}",
                    error["message"].as_str().unwrap_or("an error")
                ))),
                None => Ok(msg["result"].clone()),
            },
        }
    }

    /// A new tab showing `about:blank`.
    pub async fn open_tab(&mut self) -> Result<Tab, BrowserError> {
        let target = self
            .call("Target.createTarget", json!({ "url": "about:blank" }), None)
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| fail("Target.createTarget: no targetId in the answer"))?
            .to_owned();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
                None,
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| fail("Target.attachToTarget: no sessionId in the answer"))?
            .to_owned();
        Ok(Tab { session })
    }

    /// Load `url` in the tab (returns once the navigation is committed).
    pub async fn navigate(&mut self, tab: &Tab, url: &str) -> Result<(), BrowserError> {
        let nav = self
            .call("Page.navigate", json!({ "url": url }), Some(tab))
            .await?;
        match nav["errorText"].as_str() {
            Some(error) if !error.is_empty() => Err(fail(format!(
                "Page.navigate to {}: {error}",
                origin_of(url)
            ))),
            _ => Ok(()),
        }
    }

    /// Evaluate a JavaScript expression in the tab's page; its value as JSON.
    pub async fn eval(&mut self, tab: &Tab, expression: &str) -> Result<Value, BrowserError> {
        let out = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
                Some(tab),
            )
            .await?;
        if let Some(details) = out.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("an exception");
            return Err(fail(format!("Runtime.evaluate: {text}")));
        }
        Ok(out["result"]["value"].clone())
    }

    /// The tab's page now.
    pub async fn page(&mut self, tab: &Tab) -> Result<(PageState, bool), BrowserError> {
        let v = self
            .eval(
                tab,
                "({url: location.href, ready: document.readyState, title: document.title, \
                  text: document.body ? document.body.innerText : ''})",
            )
            .await?;
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let complete = field("ready") == "complete";
        Ok((
            PageState {
                url: field("url"),
                title: field("title"),
                text: field("text"),
            },
            complete,
        ))
    }

    /// Wait until the tab has fully loaded a page whose URL starts with `url_prefix`.
    pub async fn wait_for_page(
        &mut self,
        tab: &Tab,
        url_prefix: &str,
        timeout: Duration,
    ) -> Result<PageState, BrowserError> {
        let until = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            // While a navigation replaces the document, evaluation fails; keep polling.
            match self.page(tab).await {
                Ok((page, true)) if page.url.starts_with(url_prefix) => return Ok(page),
                Ok((page, complete)) => {
                    last = format!(
                        "{} ({}, title {:?})",
                        origin_and_path(&page.url),
                        if complete { "loaded" } else { "loading" },
                        page.title
                    );
                }
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= until {
                return Err(fail(format!(
                    "the browser did not reach {} within {}s; last seen: {last}",
                    origin_and_path(url_prefix),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Click the element `selector` matches the way a person would: scroll it into view and
    /// press and release the left mouse button over its centre.
    pub async fn click(&mut self, tab: &Tab, selector: &str) -> Result<(), BrowserError> {
        let selector_js = serde_json::to_string(selector)
            .map_err(|e| fail(format!("selector {selector:?}: {e}")))?;
        let rect = self
            .eval(
                tab,
                &format!(
                    "(() => {{ const e = document.querySelector({selector_js}); if (!e) return null; \
                     e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                     return {{x: r.left + r.width / 2, y: r.top + r.height / 2, \
                     w: r.width, h: r.height}}; }})()"
                ),
            )
            .await?;
        let (Some(x), Some(y)) = (rect["x"].as_f64(), rect["y"].as_f64()) else {
            return Err(fail(format!("no element matches {selector:?} on the page")));
        };
        if rect["w"].as_f64().unwrap_or(0.0) <= 0.0 || rect["h"].as_f64().unwrap_or(0.0) <= 0.0 {
            return Err(fail(format!("{selector:?} is not visible")));
        }
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
            Some(tab),
        )
        .await?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
                Some(tab),
            )
            .await?;
        }
        Ok(())
    }

    /// Save a PNG of what the tab shows.
    pub async fn screenshot(&mut self, tab: &Tab, path: &Path) -> Result<(), BrowserError> {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png" }),
                Some(tab),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| fail(format!("Page.captureScreenshot: not base64: {e}")))?;
        if !png.starts_with(b"\x89PNG") {
            return Err(fail("Page.captureScreenshot: the answer is not a PNG"));
        }
        std::fs::write(path, &png).map_err(|e| fail(format!("writing {}: {e}", path.display())))
    }

    /// Ask the browser to close, and make sure it is gone.
    pub async fn close(mut self) {
        let _ = self.call("Browser.close", json!({}), None).await;
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Drop kills it if it is still running.
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `scheme://host:port` of a URL, for messages (its query may hold a state or a code).
fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "an invalid URL".to_owned())
}

/// The URL without its query and fragment, for messages.
fn origin_and_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "about" => u.to_string(),
        Ok(u) => format!("{}{}", u.origin().ascii_serialization(), u.path()),
        Err(_) => "an invalid URL".to_owned(),
    }
}
