//! The peer benchmark (`make bench-peers`, part of `make bench`): airbyte-source-jira 4.0.0 and a
//! plain atlassian-python-api 5.0.5 paging loop read the same fake Jira site as our export, with
//! the same latency on every API request, right after our export's runs in the same process.
//! Both run from their own venvs (.venv/airbyte, .venv/atlassian; pinned in peers/) under
//! peers/measure.py, which reports each one's wall time, CPU time and peak RSS. Airbyte reaches
//! the site through the adapter (`adapter.rs`), whose own cost is measured and printed.
//!
//! What each side does differs, and the table says so: our export fetches every issue with its
//! comments, changelog and attachments and writes each to S3; Airbyte's `issues` stream reads
//! pages of 50 issues with every field, rendered fields, transitions and the embedded changelog
//! and prints them as records; the loop reads pages of 100 issues with every field and drops
//! them. Neither downloads an attachment, so the verdicts compare them with our export run
//! with attachments off (every issue, comment and changelog still written to S3); the full
//! export's ratio is printed beside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use integration_tests::fake::{FakeAtlassian, Origin};
use serde_json::{Value, json};
use shared::ids::Product;

use crate::helper::Helper;
use crate::report::{Row, Verdict, median, num};
use crate::world::{Consenter, Site, say};

/// Where the peers live: the workspace's peers/ scripts and the two venvs.
pub struct PeerTools {
    scripts: PathBuf,
    airbyte_python: PathBuf,
    atlassian_python: PathBuf,
}

impl PeerTools {
    /// The tools under `root` (the workspace), or why they are missing (`make bench-peers`
    /// installs them).
    pub fn find(root: &Path) -> Result<PeerTools, String> {
        let tools = PeerTools {
            scripts: root.join("peers"),
            airbyte_python: root.join(".venv/airbyte/bin/python"),
            atlassian_python: root.join(".venv/atlassian/bin/python"),
        };
        for p in [&tools.airbyte_python, &tools.atlassian_python] {
            if !p.exists() {
                return Err(format!(
                    "{} is missing (make bench-peers installs it)",
                    p.display()
                ));
            }
        }
        Ok(tools)
    }
}

/// Our export's figures from the same run, to compare with.
pub struct Ours {
    pub items_per_sec: Option<f64>,
    pub cpu_per_1000: Option<f64>,
    pub peak_mib: Option<f64>,
    pub api_requests: Option<f64>,
}

/// One peer run as measure.py reported it, plus the fake's count of its API requests.
struct PeerRun {
    secs: f64,
    items: f64,
    cpu_secs: f64,
    peak_mib: f64,
    api_requests: usize,
    /// The adapter's CPU seconds and own wall seconds during the run (Airbyte only).
    adapter: Option<(f64, f64, f64)>,
}

impl PeerRun {
    fn rate(&self) -> f64 {
        self.items / self.secs
    }

    fn cpu_per_1000(&self) -> f64 {
        self.cpu_secs / self.items.max(1.0) * 1000.0
    }
}

/// Run `python script args…` under measure.py with `stdin` fed in, without blocking the runtime
/// (the fake site in this process keeps serving). Returns measure.py's line.
async fn measured(
    tools: &PeerTools,
    python: &Path,
    airbyte: bool,
    args: Vec<String>,
    stdin: String,
) -> Value {
    let measure = tools.scripts.join("measure.py");
    let python = python.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut cmd = Command::new(&python);
        cmd.arg(measure);
        if airbyte {
            cmd.arg("--airbyte-records");
        }
        let mut child = cmd
            .arg("--")
            .arg(&python)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(stdin.as_bytes())?;
        }
        child.wait_with_output()
    })
    .await
    .unwrap_or_else(|e| panic!("bench peers: task: {e}"))
    .unwrap_or_else(|e| panic!("bench peers: running {}: {e}", python_name(airbyte)));
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "bench peers: measure.py printed nothing ({})",
                output.status
            )
        })
}

fn python_name(airbyte: bool) -> &'static str {
    if airbyte {
        "airbyte-source-jira"
    } else {
        "the atlassian-python-api loop"
    }
}

fn api_requests_since(fake: &FakeAtlassian, mark: usize) -> usize {
    fake.requests()
        .into_iter()
        .skip(mark)
        .filter(|r| r.origin == Origin::Main && r.path.starts_with("/ex/"))
        .count()
}

async fn adapter_stats(adapter: &Helper) -> (f64, f64) {
    let url = adapter.endpoint.join("__adapter/stats").ok();
    let v: Value = match url {
        Some(u) => match reqwest::get(u).await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        },
        None => Value::Null,
    };
    (
        v["requests"].as_f64().unwrap_or(0.0),
        v["own_secs"].as_f64().unwrap_or(0.0),
    )
}

/// The peers' rows. `expected` is the number of visible issues the query selects.
pub async fn bench(
    tools: &PeerTools,
    fake: &FakeAtlassian,
    site: &Site,
    query: &str,
    expected: usize,
    runs: usize,
    // Ours, the full export; and ours doing the peers' work (without attachments).
    (ours, like): (&Ours, &Ours),
) -> Vec<Row> {
    let token = Consenter::new(site.clone(), Product::Jira)
        .access_token()
        .await;
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("bench: own path: {e}"));
    let (email, api_token) = ("bench@example.com", "bench-api-token");
    let adapter = Helper::start_with_env(
        &exe,
        &[
            "child-adapter".into(),
            site.base.to_string(),
            site.cloud_id.clone(),
            format!("{email}:{api_token}"),
            query.to_owned(),
        ],
        &[("BENCH_ADAPTER_TOKEN", token.as_str())],
    )
    .unwrap_or_else(|e| panic!("bench peers: adapter: {e}"));
    let dir = std::env::temp_dir().join(format!("bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("bench peers: {e}"));
    let domain = format!(
        "{}:{}",
        adapter.endpoint.host_str().unwrap_or("127.0.0.1"),
        adapter.endpoint.port().unwrap_or(80)
    );
    let config = json!({
        "domain": domain, "email": email, "api_token": api_token,
        "start_date": "2000-01-01T00:00:00Z",
    });
    let catalog = json!({ "streams": [{
        "stream": { "name": "issues", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"] },
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
    }]});
    let (config_path, catalog_path) = (dir.join("config.json"), dir.join("catalog.json"));
    for (path, doc) in [(&config_path, &config), (&catalog_path, &catalog)] {
        std::fs::write(path, doc.to_string()).unwrap_or_else(|e| panic!("bench peers: {e}"));
    }
    let base = format!("{}ex/jira/{}", site.base, site.cloud_id);

    let mut airbyte = Vec::new();
    let mut loop_runs = Vec::new();
    for run in 1..=runs {
        let mark = fake.requests().len();
        let (cpu0, (req0, own0)) = (adapter.cpu_secs(), adapter_stats(&adapter).await);
        let started = Instant::now();
        let v = measured(
            tools,
            &tools.airbyte_python,
            true,
            vec![
                tools
                    .scripts
                    .join("airbyte_read.py")
                    .to_string_lossy()
                    .into_owned(),
                "read".into(),
                "--config".into(),
                config_path.to_string_lossy().into_owned(),
                "--catalog".into(),
                catalog_path.to_string_lossy().into_owned(),
            ],
            String::new(),
        )
        .await;
        let _ = started;
        let (cpu1, (req1, own1)) = (adapter.cpu_secs(), adapter_stats(&adapter).await);
        let r = peer_run(
            &v,
            api_requests_since(fake, mark),
            Some((
                cpu1.zip(cpu0).map_or(f64::NAN, |(b, a)| b - a),
                own1 - own0,
                req1 - req0,
            )),
        );
        say(format!(
            "peers: airbyte-source-jira run {run}/{runs}: {} issues in {:.1} s, CPU {:.2} s, peak RSS {:.0} MiB, {} API requests",
            r.items, r.secs, r.cpu_secs, r.peak_mib, r.api_requests
        ));
        airbyte.push(r);

        let mark = fake.requests().len();
        let v = measured(
            tools,
            &tools.atlassian_python,
            false,
            vec![
                tools
                    .scripts
                    .join("atlassian_loop.py")
                    .to_string_lossy()
                    .into_owned(),
                base.clone(),
                query.to_owned(),
            ],
            format!("{token}\n"),
        )
        .await;
        let r = peer_run(&v, api_requests_since(fake, mark), None);
        say(format!(
            "peers: atlassian-python-api loop run {run}/{runs}: {} issues in {:.1} s, CPU {:.2} s, peak RSS {:.0} MiB, {} API requests",
            r.items, r.secs, r.cpu_secs, r.peak_mib, r.api_requests
        ));
        loop_runs.push(r);
    }
    drop(adapter);
    let _ = std::fs::remove_dir_all(&dir);

    let mut rows = vec![
        peer_row(
            "airbyte",
            "airbyte-source-jira 4.0.0, issues stream (pages of 50, every field, renderedFields, transitions, changelog; records to stdout; via the adapter)",
            &airbyte,
            (ours, like),
            5.0,
            expected,
        ),
        peer_row(
            "atlassian_python_api",
            "atlassian-python-api 5.0.5 paging loop (enhanced_jql, pages of 100, every field; nothing stored)",
            &loop_runs,
            (ours, like),
            2.0,
            expected,
        ),
    ];
    let per = |f: &dyn Fn(&(f64, f64, f64)) -> f64| -> Vec<f64> {
        airbyte
            .iter()
            .filter_map(|r| r.adapter.as_ref().map(f))
            .collect()
    };
    let cpu = median(&per(&|a| a.0));
    let own = median(&per(&|a| a.1));
    let requests = median(&per(&|a| a.2));
    let per_request_ms = own.zip(requests).map(|(o, n)| o / n.max(1.0) * 1000.0);
    let cpu_per_request_ms = cpu.zip(requests).map(|(c, n)| c / n.max(1.0) * 1000.0);
    rows.push(Row {
        id: "peers.adapter_overhead".into(),
        benchmark: "Peer adapter's own cost (old /search → /search/jql, basic → bearer), during the Airbyte runs".into(),
        value: per_request_ms,
        unit: "ms/request".into(),
        samples: per(&|a| a.1 / a.2.max(1.0) * 1000.0),
        figure: format!(
            "{} ms wall and {} ms CPU per request ({} requests a run); CPU {} s a run",
            per_request_ms.map_or("?".into(), |x| num(x, 2)),
            cpu_per_request_ms.map_or("?".into(), |x| num(x, 2)),
            requests.map_or("?".into(), |x| num(x, 0)),
            cpu.map_or("?".into(), |x| num(x, 2)),
        ),
        bound: "— (added to Airbyte's wall; the 50 ms latency is per request upstream)".into(),
        verdict: Verdict::Info,
        note: String::new(),
        details: Value::Null,
    });
    rows
}

fn peer_run(v: &Value, api_requests: usize, adapter: Option<(f64, f64, f64)>) -> PeerRun {
    if v["exit_code"] != 0 {
        panic!("bench peers: a peer run failed: {v}");
    }
    PeerRun {
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        items: v["items"].as_f64().unwrap_or(0.0),
        cpu_secs: v["cpu_secs"].as_f64().unwrap_or(f64::NAN),
        peak_mib: v["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        api_requests,
        adapter,
    }
}

fn peer_row(
    id: &str,
    what: &str,
    runs: &[PeerRun],
    (ours, like): (&Ours, &Ours),
    target: f64,
    expected: usize,
) -> Row {
    let rates: Vec<f64> = runs.iter().map(PeerRun::rate).collect();
    let rate = median(&rates);
    let cpu = median(&runs.iter().map(PeerRun::cpu_per_1000).collect::<Vec<_>>());
    let peak = median(&runs.iter().map(|r| r.peak_mib).collect::<Vec<_>>());
    let requests = median(
        &runs
            .iter()
            .map(|r| r.api_requests as f64)
            .collect::<Vec<_>>(),
    );
    let wall = median(&runs.iter().map(|r| r.secs).collect::<Vec<_>>());
    // Judged on the same work: ours without attachments (the peers download none); the full
    // export's ratio is printed beside it.
    let ratio = like.items_per_sec.zip(rate).map(|(o, p)| o / p);
    let full_ratio = ours.items_per_sec.zip(rate).map(|(o, p)| o / p);
    // The peers read search results, which still list the issues the user may no longer open
    // (the fake's forbidden ones, left out by bulk fetch and so by our export): at least ours.
    let complete = runs.iter().all(|r| r.items as usize >= expected);
    let fmt = |x: Option<f64>, d: usize| x.map_or("?".into(), |x| num(x, d));
    let side = |o: &Ours| {
        format!(
            "{} issues/s, CPU {} s per 1,000, peak RSS {} MiB, {} API requests",
            fmt(o.items_per_sec, 1),
            fmt(o.cpu_per_1000, 2),
            fmt(o.peak_mib, 0),
            fmt(o.api_requests, 0)
        )
    };
    Row {
        id: format!("peers.{id}.issues_per_sec"),
        benchmark: format!("Peer: {what}"),
        value: rate,
        unit: "issues/s".into(),
        samples: rates,
        figure: format!(
            "{} issues/s ({} s wall); CPU {} s per 1,000 issues; peak RSS {} MiB; {} API requests",
            fmt(rate, 1),
            fmt(wall, 1),
            fmt(cpu, 2),
            fmt(peak, 0),
            fmt(requests, 0)
        ),
        bound: format!(
            "ours ≥ {target}× its issues/s, doing the same work (ours without attachments: {}; with them: {})",
            side(like),
            side(ours)
        ),
        verdict: match ratio {
            Some(r) if complete => Verdict::of(r >= target),
            _ => Verdict::Fail,
        },
        note: match (ratio, full_ratio) {
            (Some(r), f) if complete => format!(
                "ours / peer = {} on the same work; {} with attachments",
                num(r, 2),
                fmt(f, 2)
            ),
            (Some(r), _) => format!("ours / peer = {}; the peer missed issues", num(r, 2)),
            (None, _) => "no run finished".into(),
        },
        details: json!({
            "runs": runs.iter().map(|r| json!({
                "secs": r.secs, "items": r.items, "cpu_secs": r.cpu_secs,
                "peak_rss_mib": r.peak_mib, "api_requests": r.api_requests,
            })).collect::<Vec<_>>(),
        }),
    }
}
