//! `bench` (`make bench`): throughput and memory of the refresh schedule and the export, against
//! the AWS emulator and fake Atlassian sites this process starts itself.
//!
//! Every figure is the median of several runs, printed next to its bound or target in a
//! markdown table on stdout and written to `artifacts/bench.json`. The measured work runs in a
//! child process (`bench child-…`) built from the environment exactly like the function's cold
//! start, so its peak RSS is the function's own. Progress goes to stderr.
//!
//! ```text
//! bench [--only refresh,export,export-jira,export-confluence,peers,stream,coldstart,extract]
//!       [--s3-server PATH] [--connections N] [--runs N]
//!       [--stream-runs N] [--stream-mib N] [--coldstart-runs N] [--out PATH]
//! ```

#[path = "../bench/adapter.rs"]
mod adapter;
#[path = "../bench/child.rs"]
mod child;
#[path = "../bench/coldstart.rs"]
mod coldstart;
#[path = "../bench/export.rs"]
mod export;
#[path = "../bench/extract.rs"]
mod extract;
#[path = "../bench/helper.rs"]
mod helper;
#[path = "../bench/peers.rs"]
mod peers;
#[path = "../bench/procfs.rs"]
mod procfs;
#[path = "../bench/refresh.rs"]
mod refresh;
#[path = "../bench/report.rs"]
mod report;
#[path = "../bench/stream.rs"]
mod stream;
#[path = "../bench/world.rs"]
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use integration_tests::emulator::Emulator;
use serde_json::json;

use report::Row;
use world::say;

const USAGE: &str = "\
bench: throughput and memory benchmarks (make bench)

USAGE: bench [FLAGS]

  --only LIST          which benchmarks, comma-separated: refresh, export, peers, stream,
                       coldstart, extract (default all; export-jira and export-confluence
                       = one product's export alone; peers = the Jira export beside
                       airbyte-source-jira and an atlassian-python-api loop, from the venvs
                       make bench-peers installs; extract = the text of one 50 MiB PDF,
                       needing no server)
  --s3-server PATH     store exports in this S3 server (tests/bench-s3, built by make bench)
                       instead of the emulator; DynamoDB, KMS, EventBridge and Secrets Manager
                       stay on moto
  --connections N      due connections in the refresh benchmark (default 10000, the issue's
                       size: against moto, about 5 minutes a run plus 3 minutes of set-up)
  --runs N             runs per refresh, export and extract figure (default 3)
  --stream-runs N      runs of the large-attachment stream (default 3)
  --stream-mib N       size of the streamed attachment in MiB (default 2048)
  --coldstart-runs N   cold starts measured per function binary (default 7; the release
                       binaries must be built: make bench does)
  --out PATH           the JSON report (default artifacts/bench.json in the workspace)
  --help               this text";

#[derive(Debug)]
struct Options {
    refresh: bool,
    export_jira: bool,
    export_confluence: bool,
    peers: bool,
    stream: bool,
    s3_server: Option<PathBuf>,
    coldstart: bool,
    extract: bool,
    coldstart_runs: usize,
    connections: usize,
    runs: usize,
    stream_runs: usize,
    stream_mib: u64,
    out: PathBuf,
}

fn workspace_root() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests
        .parent()
        .map_or_else(|| tests.join(".."), PathBuf::from)
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        refresh: true,
        export_jira: true,
        export_confluence: true,
        peers: true,
        stream: true,
        s3_server: None,
        coldstart: true,
        extract: true,
        coldstart_runs: 7,
        connections: 10_000,
        runs: 3,
        stream_runs: 3,
        stream_mib: 2048,
        out: workspace_root().join("artifacts/bench.json"),
    };
    let mut it = args.iter();
    let number = |flag: &str, v: Option<&String>| -> Result<u64, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag}: '{v}' is not a positive number")),
        }
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--only" => {
                let list = it.next().ok_or("--only needs a value")?;
                (
                    o.refresh,
                    o.export_jira,
                    o.export_confluence,
                    o.peers,
                    o.stream,
                    o.coldstart,
                    o.extract,
                ) = (false, false, false, false, false, false, false);
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match name {
                        "refresh" => o.refresh = true,
                        "export" => (o.export_jira, o.export_confluence) = (true, true),
                        "export-jira" => o.export_jira = true,
                        "export-confluence" => o.export_confluence = true,
                        "peers" => o.peers = true,
                        "stream" => o.stream = true,
                        "coldstart" => o.coldstart = true,
                        "extract" => o.extract = true,
                        other => return Err(format!("--only: unknown benchmark '{other}'")),
                    }
                }
            }
            "--connections" => o.connections = number(flag, it.next())? as usize,
            "--runs" => o.runs = number(flag, it.next())? as usize,
            "--stream-runs" => o.stream_runs = number(flag, it.next())? as usize,
            "--stream-mib" => o.stream_mib = number(flag, it.next())?,
            "--coldstart-runs" => o.coldstart_runs = number(flag, it.next())? as usize,
            "--s3-server" => {
                o.s3_server = Some(PathBuf::from(it.next().ok_or("--s3-server needs a value")?))
            }
            "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a value")?),
            other => return Err(format!("unknown flag '{other}' (see --help)")),
        }
    }
    Ok(Some(o))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The measured side, started by the benchmarks below.
    match args.first().map(String::as_str) {
        Some("child-refresh") => {
            let now = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bench child-refresh needs a unix time"));
            child::refresh(now).await;
            return ExitCode::SUCCESS;
        }
        Some("child-adapter") => {
            // bench child-adapter UPSTREAM CLOUD_ID EMAIL:API_TOKEN SCOPE_JQL (token: env).
            let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
            let token = std::env::var("BENCH_ADAPTER_TOKEN").unwrap_or_default();
            adapter::serve(adapter::AdapterConfig {
                upstream: arg(1),
                cloud_id: arg(2),
                token,
                basic: arg(3),
                scope: arg(4),
            })
            .await;
            return ExitCode::SUCCESS;
        }
        Some("child-extract") => {
            let path = args
                .get(1)
                .unwrap_or_else(|| panic!("bench child-extract needs a PDF's path"));
            extract::child(path).await;
            return ExitCode::SUCCESS;
        }
        Some("child-export") => {
            let (Some(tenant), Some(connector)) = (args.get(1), args.get(2)) else {
                panic!("bench child-export needs a tenant and a connector id");
            };
            child::export(tenant, connector).await;
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let options = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::from(2);
        }
    };
    run(options).await
}

/// The benchmarks that need the AWS emulator (and the S3 server, if given).
async fn with_servers(
    o: &Options,
    rows: &mut Vec<Row>,
    timings: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), ExitCode> {
    say("starting the AWS emulator");
    let emulator = match Emulator::start(0) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let s3 = match &o.s3_server {
        Some(path) => match helper::S3Server::start(path) {
            Ok(server) => {
                say(format!(
                    "S3 on {} (bench-s3), the rest on moto",
                    server.helper.endpoint
                ));
                world::use_s3_endpoint(server.helper.endpoint.clone());
                Some(server)
            }
            Err(e) => {
                eprintln!("bench: {e}");
                return Err(ExitCode::FAILURE);
            }
        },
        None => {
            say("S3 on moto (no --s3-server)");
            None
        }
    };
    let peer_tools = o.peers.then(|| peers::PeerTools::find(&workspace_root()));
    if o.refresh {
        let t = Instant::now();
        rows.extend(refresh::bench(&emulator, o.connections, o.runs).await);
        rows.push(refresh::rotations(&emulator).await);
        timings.insert("refresh_secs".into(), t.elapsed().as_secs_f64().into());
    }
    // The peers run beside the Jira export, so asking for them runs it.
    let workloads = [
        (o.export_jira || o.peers).then_some(export::JIRA),
        o.export_confluence.then_some(export::CONFLUENCE),
    ];
    for workload in workloads.into_iter().flatten() {
        let t = Instant::now();
        let peers = match (&peer_tools, workload.product) {
            (Some(tools), shared::ids::Product::Jira) => Some(tools),
            _ => None,
        };
        rows.extend(export::bench(&workload, &emulator, o.runs, s3.as_ref(), peers).await);
        timings.insert(
            format!("export_{}_secs", workload.product.as_str()),
            t.elapsed().as_secs_f64().into(),
        );
    }
    if o.stream {
        let t = Instant::now();
        rows.extend(stream::bench(&emulator, o.stream_mib, o.stream_runs).await);
        timings.insert("stream_secs".into(), t.elapsed().as_secs_f64().into());
    }
    if o.coldstart {
        let t = Instant::now();
        rows.extend(coldstart::bench(&emulator, o.coldstart_runs).await);
        timings.insert("coldstart_secs".into(), t.elapsed().as_secs_f64().into());
    }
    emulator.stop();
    drop(s3);
    Ok(())
}

async fn run(o: Options) -> ExitCode {
    let started = Instant::now();
    let load_start = procfs::loadavg();
    say(format!(
        "{} CPUs, load average {load_start}",
        procfs::cpus()
    ));
    let mut rows: Vec<Row> = Vec::new();
    let mut timings = serde_json::Map::new();
    // First, while nothing else of ours runs: it needs no server.
    if o.extract {
        let t = Instant::now();
        rows.extend(extract::bench(o.runs).await);
        timings.insert("extract_secs".into(), t.elapsed().as_secs_f64().into());
    }
    let servers = if o.refresh
        || o.export_jira
        || o.export_confluence
        || o.peers
        || o.stream
        || o.coldstart
    {
        with_servers(&o, &mut rows, &mut timings).await
    } else {
        Ok(())
    };
    if let Err(code) = servers {
        return code;
    }

    let total = started.elapsed().as_secs_f64();
    let load_end = procfs::loadavg();
    println!("{}", report::markdown(&rows));
    println!(
        "Medians of the runs shown; {} CPUs, load average {load_start} at the start and {load_end} at the end \
         (anything else running on the machine slows moto, the bottleneck); {total:.0} s in all; \
         details in {}.",
        procfs::cpus(),
        o.out.display()
    );
    let doc = json!({
        "generated_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "machine": {
            "cpus": procfs::cpus(),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
        },
        "settings": {
            "connections": o.connections,
            "runs": o.runs,
            "stream_runs": o.stream_runs,
            "stream_mib": o.stream_mib,
            "coldstart_runs": o.coldstart_runs,
        },
        "timings": timings,
        "total_secs": total,
        "rows": rows,
    });
    match report::write_json(&o.out, &doc) {
        Ok(()) => say(format!("wrote {} ({total:.0} s in all)", o.out.display())),
        Err(e) => {
            eprintln!("bench: writing {}: {e}", o.out.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_select_and_size_the_benchmarks() {
        let Ok(Some(o)) = parse(&args("--only export,stream --runs 5 --stream-mib 64")) else {
            panic!("expected options");
        };
        assert!(!o.refresh && o.export_jira && o.export_confluence && o.stream);
        assert!(!o.coldstart && !o.peers && !o.extract);
        assert_eq!((o.runs, o.stream_mib), (5, 64));
        let Ok(Some(o)) = parse(&args("--only extract")) else {
            panic!("expected options");
        };
        assert!(o.extract && !o.export_jira && !o.export_confluence && !o.stream);
        let Ok(Some(o)) = parse(&args("--only export-confluence")) else {
            panic!("expected options");
        };
        assert!(o.export_confluence && !o.export_jira && !o.peers);
        assert!(parse(&args("--only nope")).is_err());
        assert!(parse(&args("--runs 0")).is_err());
        assert!(matches!(parse(&args("--help")), Ok(None)));
    }
}
