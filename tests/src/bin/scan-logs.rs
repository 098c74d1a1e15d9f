//! The privacy scan over the whole test suite's logs (PRIVACY.md P5, P7).
//!
//! The integration tests write every log line they produce, and every secret value they used
//! (OAuth states, codes, client secrets), into `target/tmp/privacy/`. This reads them all and
//! fails if any secret, any token of the fake site (every one starts with a known prefix), or
//! anything shaped like an Atlassian account id appears in a log line. `make test` runs it
//! after the tests; it refuses to pass on an empty capture, so it cannot pass vacuously.

use std::path::PathBuf;
use std::process::ExitCode;

use integration_tests::fake::{ACCESS_TOKEN_PREFIX, CODE_PREFIX, REFRESH_TOKEN_PREFIX};
use shared::export::redact::find_account_ids;

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/tmp/privacy"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "privacy scan: {} does not exist; run the integration tests first",
            dir.display()
        );
        return ExitCode::FAILURE;
    };
    let (mut logs, mut secrets) = (String::new(), Vec::new());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if name.starts_with("logs-") {
            logs.push_str(&text);
        } else if name.starts_with("secrets-") {
            secrets.extend(text.lines().filter(|l| l.len() >= 8).map(str::to_owned));
        }
    }
    secrets.sort();
    secrets.dedup();
    secrets.extend([ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, CODE_PREFIX].map(str::to_owned));
    let lines = logs.lines().count();
    if lines < 100 || secrets.len() < 10 {
        eprintln!(
            "privacy scan: only {lines} log lines and {} secrets captured; the scan would be vacuous",
            secrets.len()
        );
        return ExitCode::FAILURE;
    }
    let mut hits = 0;
    for (n, line) in logs.lines().enumerate() {
        for s in &secrets {
            if line.contains(s.as_str()) {
                hits += 1;
                eprintln!(
                    "privacy scan: log line {n} contains a secret value ({} chars)",
                    s.len()
                );
            }
        }
        if !find_account_ids(line).is_empty() {
            hits += 1;
            eprintln!("privacy scan: log line {n} contains an account id");
        }
    }
    println!(
        "privacy scan: {lines} log lines, {} secret values: {hits} hits",
        secrets.len()
    );
    if hits == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
