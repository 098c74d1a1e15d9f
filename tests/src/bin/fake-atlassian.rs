//! `fake-atlassian`: the fake Atlassian Cloud as a process, for `make local` and manual testing.
//! Flags: `fake-atlassian --help`. Prints one JSON line (URLs, sites, client ids) to stdout.

use std::io::Write as _;
use std::process::ExitCode;

use integration_tests::fake::FakeAtlassian;
use integration_tests::fake::cli::{self, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, faults) = match cli::parse(&args) {
        Ok(Command::Run(config, faults)) => (*config, faults),
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fake-atlassian: {message}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let fake = match FakeAtlassian::start(config).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-atlassian: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for fault in faults {
        fake.inject(fault);
    }
    let line = serde_json::to_string(&fake.info()).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    tracing::info!(base_url = %fake.base_url(), media_url = %fake.media_url(), "fake Atlassian Cloud ready");

    wait_for_signal().await;
    tracing::info!("shutting down");
    fake.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
