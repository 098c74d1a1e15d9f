//! Issue 4: refresh throughput. N connections (10,000 by default, the issue's size), each
//! with its own token family minted at the fake site and its own sealed envelope, all due at
//! once; `Refresher::run` (the function's code, in a child
//! process) refreshes them. Figures: connections per second of `run`'s wall time, and the
//! child's peak RSS. Set-up (consents, sealing, writing the items) is not measured.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use integration_tests::emulator::Emulator;
use integration_tests::fake::{FakeAtlassian, FakeConfig, SeedSpec};
use serde_json::json;
use time::OffsetDateTime;

use crate::report::{Row, Verdict, median, num};
use crate::world::{Deployment, Site, connect_minted, run_child, say, tenant};

/// The token-refresh function's limits (infra/template.yaml): memory and timeout.
const MEMORY_SIZE_MIB: f64 = 256.0;
const TIMEOUT_SECS: f64 = 300.0;
/// `token_refresh::DEADLINE_MARGIN`: no refresh starts in the last 30 s.
const DEADLINE_MARGIN_SECS: f64 = 30.0;
/// Consents made at once during set-up.
const SETUP_CONCURRENCY: usize = 32;
/// The fleet issue 4 sizes the schedule for: all of it due in one invocation.
const ISSUE_CONNECTIONS: f64 = 10_000.0;

struct RunFigures {
    rate: f64,
    peak_mib: f64,
    aws_requests: f64,
    refreshed: f64,
    secs: f64,
    moto_cpu: Option<f64>,
}

pub async fn bench(emulator: &Emulator, connections: usize, runs: usize) -> Vec<Row> {
    let fake = FakeAtlassian::start(FakeConfig::default().with_sites(1, SeedSpec::empty()))
        .await
        .unwrap_or_else(|e| panic!("bench set-up: fake site: {e}"));
    let site = Site::first_of(&fake.info());
    let dep = Deployment::new(emulator, "bench-refresh").await;

    say(format!(
        "refresh: creating {connections} connections (one token family, one sealed envelope each)"
    ));
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    futures::stream::iter(0..connections)
        .map(|i| {
            let (fake, site, dep, done) = (&fake, &site, &dep, &done);
            async move {
                connect_minted(fake, site, dep, &tenant(&format!("bench-{i:05}"))).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 1000 == 0 {
                    say(format!("refresh: {n} connections stored"));
                }
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let setup_secs = started.elapsed().as_secs_f64();
    say(format!(
        "refresh: set-up took {setup_secs:.1} s ({:.0} connections/s)",
        connections as f64 / setup_secs
    ));

    let env = dep.function_env(&site.base);
    let t0 = OffsetDateTime::now_utc();
    let mut figures = Vec::new();
    let mut details = Vec::new();
    for run in 1..=runs {
        // Each run looks eight days further ahead, so every grant's weekly keep-alive is due
        // again (a refresh makes it due KEEPALIVE after the run's `now`).
        let now = t0 + time::Duration::days(8 * run as i64);
        let served_before = fake.refresh_grants_served();
        let child = run_child(
            vec!["child-refresh".into(), now.unix_timestamp().to_string()],
            env.clone(),
        )
        .await;
        let served = fake.refresh_grants_served() - served_before;
        let r = &child.result;
        let secs = r["secs"].as_f64().unwrap_or(f64::NAN);
        let refreshed = r["report"]["refreshed"].as_f64().unwrap_or(0.0);
        let f = RunFigures {
            rate: refreshed / secs,
            peak_mib: r["memory"]["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
            aws_requests: r["aws_requests"].as_f64().unwrap_or(f64::NAN),
            refreshed,
            secs,
            moto_cpu: child.moto_cpu_secs,
        };
        say(format!(
            "refresh run {run}/{runs}: {} refreshed in {:.1} s = {:.1} connections/s, peak RSS {:.1} MiB, report {}",
            f.refreshed, f.secs, f.rate, f.peak_mib, r["report"]
        ));
        details.push(json!({
            "run": run,
            "secs": secs,
            "connections_per_sec": f.rate,
            "report": r["report"],
            "refresh_grants_served_by_fake": served,
            "aws_requests": f.aws_requests,
            "moto_cpu_secs": f.moto_cpu,
            "child_wall_secs": child.wall.as_secs_f64(),
            "memory": r["memory"],
            "rss_start_kib": r["rss_start_kib"],
        }));
        figures.push((f, r["report"].clone()));
    }
    let families_killed = fake.token_families_killed();
    fake.shutdown().await;

    // Every connection refreshed exactly once per run, no token family lost to a reuse.
    let all_refreshed = families_killed == 0
        && figures.iter().zip(&details).all(|((f, report), d)| {
            f.refreshed as usize == connections
                && report["failed"] == 0
                && report["deferred"] == 0
                && d["refresh_grants_served_by_fake"] == connections
        });
    let rates: Vec<f64> = figures.iter().map(|(f, _)| f.rate).collect();
    let peaks: Vec<f64> = figures.iter().map(|(f, _)| f.peak_mib).collect();
    let rate = median(&rates);
    let req_per_refresh = median(
        &figures
            .iter()
            .map(|(f, _)| f.aws_requests / f.refreshed)
            .collect::<Vec<_>>(),
    );
    let moto_rps = median(
        &figures
            .iter()
            .map(|(f, _)| f.aws_requests / f.secs)
            .collect::<Vec<_>>(),
    );
    let moto_cpu_per_refresh = median(
        &figures
            .iter()
            .filter_map(|(f, _)| f.moto_cpu.map(|c| c / f.refreshed))
            .collect::<Vec<_>>(),
    );
    let moto_busy = median(
        &figures
            .iter()
            .filter_map(|(f, _)| f.moto_cpu.map(|c| c / f.secs))
            .collect::<Vec<_>>(),
    );
    let moto_cpu_per_request = median(
        &figures
            .iter()
            .filter_map(|(f, _)| f.moto_cpu.map(|c| c / f.aws_requests))
            .collect::<Vec<_>>(),
    );
    // What one 300 s invocation must sustain to refresh the issue's 10,000 connections before
    // its deadline margin (whatever N this run used).
    let needed = ISSUE_CONNECTIONS / (TIMEOUT_SECS - DEADLINE_MARGIN_SECS);
    let ceiling = moto_cpu_per_refresh.map(|c| 1.0 / c);
    let mut bound = format!(
        "emulator cost: {} AWS req/refresh, moto sustained {} req/s",
        req_per_refresh.map_or("?".into(), |x| num(x, 2)),
        moto_rps.map_or("?".into(), |x| num(x, 0)),
    );
    if let (Some(per_req), Some(ceil), Some(busy)) = (moto_cpu_per_request, ceiling, moto_busy) {
        bound.push_str(&format!(
            " at {} ms moto CPU/req, {}% of one core ⇒ moto ceiling ≈ {} conn/s",
            num(per_req * 1000.0, 1),
            num(busy * 100.0, 0),
            num(ceil, 1)
        ));
    }
    bound.push_str(&format!(
        "; target ≥ {} conn/s (10,000 in one {TIMEOUT_SECS:.0} s invocation)",
        num(needed, 1)
    ));
    let (verdict, note) = match rate {
        Some(r) if !all_refreshed => (
            Verdict::Fail,
            format!("not every connection was refreshed ({} conn/s)", num(r, 1)),
        ),
        Some(r) => {
            let share = ceiling.map_or(String::new(), |c| {
                format!("; {}% of the moto ceiling", num(100.0 * r / c, 0))
            });
            (
                Verdict::of(r >= needed),
                format!(
                    "{} vs ≥ {}{share}; 10,000 would take {} s",
                    num(r, 1),
                    num(needed, 1),
                    num(ISSUE_CONNECTIONS / r, 0)
                ),
            )
        }
        None => (Verdict::Fail, "no run finished".into()),
    };
    let throughput = Row {
        id: "refresh.throughput".into(),
        benchmark: format!(
            "Refresh throughput: {connections} due connections, Refresher::run (concurrency 16)"
        ),
        value: rate,
        unit: "connections/s".into(),
        samples: rates,
        figure: rate.map_or("—".into(), |r| format!("{} connections/s", num(r, 1))),
        bound,
        verdict,
        note,
        details: json!({
            "connections": connections,
            "setup_secs": setup_secs,
            "aws_requests_per_refresh": req_per_refresh,
            "moto_requests_per_sec": moto_rps,
            "moto_cpu_secs_per_refresh": moto_cpu_per_refresh,
            "moto_cpu_secs_per_request": moto_cpu_per_request,
            "token_families_killed": families_killed,
            "moto_busy_fraction_of_one_core": moto_busy,
            "moto_ceiling_connections_per_sec": ceiling,
            "target_connections_per_sec": needed,
            "runs": details,
        }),
    };
    let peak = median(&peaks);
    let rss = Row {
        id: "refresh.peak_rss".into(),
        benchmark: format!("Refresh peak RSS (token-refresh process, {connections} connections)"),
        value: peak,
        unit: "MiB".into(),
        samples: peaks,
        figure: peak.map_or("—".into(), |p| format!("{} MiB", num(p, 1))),
        bound: format!("≤ {MEMORY_SIZE_MIB:.0} MiB (the function's MemorySize)"),
        verdict: peak.map_or(Verdict::Fail, |p| Verdict::of(p <= MEMORY_SIZE_MIB)),
        note: String::new(),
        details: json!({ "measured": "VmHWM of the child process that ran cold start + Refresher::run" }),
    };
    vec![throughput, rss]
}

/// Grants in the rotations simulation.
const ROTATION_GRANTS: usize = 50;
/// Simulated days: two keep-alive periods.
const ROTATION_DAYS: i64 = 14;

/// Token rotations per grant per day under the refresh policy: `ROTATION_GRANTS` idle grants
/// (nobody exports) and the schedule's run every 10 minutes for `ROTATION_DAYS` simulated days
/// (the keeper's clock and the fake's moved together), counting the refresh grants the fake
/// serves. The old policy (refresh every access token 15 minutes before it expires) rotated
/// each family about 32 times a day.
pub async fn rotations(emulator: &Emulator) -> Row {
    let fake = FakeAtlassian::start(FakeConfig::default().with_sites(1, SeedSpec::empty()))
        .await
        .unwrap_or_else(|e| panic!("bench set-up: fake site: {e}"));
    let site = Site::first_of(&fake.info());
    let dep = Deployment::new(emulator, "bench-rotations").await;
    for i in 0..ROTATION_GRANTS {
        connect_minted(&fake, &site, &dep, &tenant(&format!("rot-{i:03}"))).await;
    }
    let config = shared::config::Config::from_vars(dep.function_env(&site.base))
        .unwrap_or_else(|e| panic!("bench set-up: config: {e}"));
    let mut keeper = shared::vault::refresh::TokenKeeper::from_config(&config, &dep.clients)
        .await
        .unwrap_or_else(|e| panic!("bench set-up: keeper: {e}"));
    keeper.clock = shared::clock::Clock::adjustable();
    let refresher = token_refresh::Refresher {
        keeper,
        concurrency: token_refresh::DEFAULT_CONCURRENCY,
    };
    let served_before = fake.refresh_grants_served();
    let started = Instant::now();
    let step = time::Duration::minutes(10);
    let mut failed = 0u64;
    for _ in 0..(ROTATION_DAYS * 144) {
        refresher.keeper.clock.advance(step);
        fake.advance_clock(std::time::Duration::from_secs(600));
        let report = refresher
            .run(tokio::time::Instant::now() + std::time::Duration::from_secs(300))
            .await
            .unwrap_or_else(|e| panic!("bench: schedule run: {e}"));
        failed += report.failed + report.revoked;
    }
    let rotations = (fake.refresh_grants_served() - served_before) as f64;
    let killed = fake.token_families_killed();
    fake.shutdown().await;
    let per_day = rotations / ROTATION_GRANTS as f64 / ROTATION_DAYS as f64;
    say(format!(
        "refresh: {rotations} rotations of {ROTATION_GRANTS} idle grants over {ROTATION_DAYS} simulated days = {} per grant per day ({:.1} s)",
        num(per_day, 3),
        started.elapsed().as_secs_f64()
    ));
    Row {
        id: "refresh.rotations_per_grant_day".into(),
        benchmark: format!(
            "Token rotations per idle grant per day ({ROTATION_GRANTS} grants, schedule every 10 min for {ROTATION_DAYS} simulated days)"
        ),
        value: Some(per_day),
        unit: "rotations/grant/day".into(),
        samples: vec![per_day],
        figure: format!("{} rotations/grant/day", num(per_day, 3)),
        bound: "≤ 1/7 + 1 per consent (weekly keep-alive; the old policy: ≈ 32)".into(),
        verdict: Verdict::of(failed == 0 && killed == 0 && per_day <= 1.0 / 7.0 + 0.01),
        note: format!("{failed} failed or revoked, {killed} families killed"),
        details: json!({
            "grants": ROTATION_GRANTS,
            "days": ROTATION_DAYS,
            "rotations": rotations,
            "failed_or_revoked": failed,
            "families_killed": killed,
        }),
    }
}
