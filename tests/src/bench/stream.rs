//! Issue 5: memory while streaming one 2 GiB attachment into S3 (target < 64 MiB). The fake
//! site runs as its own process (the `fake-atlassian` binary) and the export in a child process,
//! so the child's peak RSS is the exporter's alone: not the fake's, not moto's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use integration_tests::emulator::Emulator;
use integration_tests::fake::AdminInfo;
use serde_json::json;
use shared::ids::Product;

use crate::report::{Row, Verdict, median, num};
use crate::world::{Consenter, Deployment, Site, put_connector, run_child, say, tenant};

/// The brief's target for the exporter's peak RSS.
const TARGET_MIB: f64 = 64.0;
const TENANT: &str = "bench";
const QUERY: &str = "project = BIG";

/// The `fake-atlassian` process; killed (by its own id) when dropped.
struct FakeProcess {
    child: Child,
    info: AdminInfo,
}

impl FakeProcess {
    fn start(exe: &Path, attachment_mib: u64) -> Result<FakeProcess, String> {
        let mut child = Command::new(exe)
            .args([
                "--preset",
                "empty",
                "--jira-projects",
                "BIG:1",
                "--attachments",
                "0",
                "--large-attachment-mib",
                &attachment_mib.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        match read {
            Some(Ok(n)) if n > 0 => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("fake-atlassian printed no start-up line".into());
            }
        }
        match serde_json::from_str::<AdminInfo>(&line) {
            Ok(info) => Ok(FakeProcess { child, info }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "fake-atlassian's start-up line is not its info: {e}"
                ))
            }
        }
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fake-atlassian` next to this executable (cargo puts both bins of the crate there).
fn fake_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("fake-atlassian");
    path.is_file().then_some(path)
}

pub async fn bench(emulator: &Emulator, attachment_mib: u64, runs: usize) -> Vec<Row> {
    let rss_name =
        format!("Peak RSS streaming one {attachment_mib} MiB attachment (export process)");
    let speed_name = format!("Streaming one {attachment_mib} MiB attachment into S3 (8 MiB parts)");
    let bound = format!("< {TARGET_MIB:.0} MiB");
    let Some(exe) = fake_binary() else {
        let why = "the fake-atlassian binary is not next to bench: run `cargo build --release -p integration-tests --bins` (make bench does)";
        return vec![
            Row::not_measured("stream.peak_rss", &rss_name, &bound, why),
            Row::not_measured("stream.mib_per_sec", &speed_name, "—", why),
        ];
    };
    let fake = tokio::task::spawn_blocking(move || FakeProcess::start(&exe, attachment_mib))
        .await
        .unwrap_or_else(|e| panic!("bench set-up: {e}"))
        .unwrap_or_else(|e| panic!("bench set-up: {e}"));
    let site = Site::first_of(&fake.info);
    let dep = Deployment::new(emulator, "bench-stream").await;
    let connection = Consenter::new(site.clone(), Product::Jira)
        .connect(&dep, &tenant(TENANT))
        .await;
    let env = dep.function_env(&site.base);
    let expected = attachment_mib * 1024 * 1024;

    let mut peaks = Vec::new();
    let mut speeds = Vec::new();
    let mut details = Vec::new();
    for run in 1..=runs {
        let id = format!("bench-stream-{run}");
        put_connector(
            &dep,
            &tenant(TENANT),
            &connection.id,
            &id,
            Product::Jira,
            QUERY,
            Default::default(),
        )
        .await;
        let child = run_child(
            vec!["child-export".into(), TENANT.into(), id.clone()],
            env.clone(),
        )
        .await;
        let r = child.result;
        if r["completed"] != true || r["attachments"] != 1 {
            panic!("bench: the 2 GiB export did not complete: {r}");
        }
        let secs = r["secs"].as_f64().unwrap_or(f64::NAN);
        let peak = r["memory"]["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
        let speed = attachment_mib as f64 / secs;
        say(format!(
            "stream run {run}/{runs}: {attachment_mib} MiB in {secs:.1} s = {speed:.1} MiB/s, peak RSS {peak:.1} MiB"
        ));
        peaks.push(peak);
        speeds.push(speed);
        details.push(json!({
            "secs": secs,
            "mib_per_sec": speed,
            "bytes_exported": r["bytes"],
            "moto_cpu_secs": child.moto_cpu_secs,
            "child": r,
        }));
        // Free the emulator's copy before the next run.
        let prefix = format!("{TENANT}/jira/{}/{id}/", site.cloud_id);
        if let Err(e) = dep.blobs().delete_prefix(&prefix).await {
            say(format!("stream: could not delete run {run}'s objects: {e}"));
        }
    }
    drop(fake);

    let peak = median(&peaks);
    let speed = median(&speeds);
    vec![
        Row {
            id: "stream.peak_rss".into(),
            benchmark: rss_name,
            value: peak,
            unit: "MiB".into(),
            samples: peaks,
            figure: peak.map_or("—".into(), |p| format!("{} MiB", num(p, 1))),
            bound,
            verdict: peak.map_or(Verdict::Fail, |p| Verdict::of(p < TARGET_MIB)),
            note: String::new(),
            details: json!({
                "attachment_bytes": expected,
                "measured": "VmHWM of the child process that ran cold start + the whole export job",
                "runs": details,
            }),
        },
        Row {
            id: "stream.mib_per_sec".into(),
            benchmark: speed_name,
            value: speed,
            unit: "MiB/s".into(),
            samples: speeds,
            figure: speed.map_or("—".into(), |s| format!("{} MiB/s", num(s, 1))),
            bound: "— (fake → exporter → moto on one machine)".into(),
            verdict: Verdict::Info,
            note: String::new(),
            details: serde_json::Value::Null,
        },
    ]
}
