//! Helper processes the bench starts and measures: the S3 server (`bench-s3`, built by `make
//! bench` from tests/bench-s3) and the peer-benchmark adapter. Each prints one JSON line with
//! its endpoint on stdout and exits when its stdin closes (dropping the handle closes it).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;
use url::Url;

use crate::procfs;

/// A running helper process.
pub struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    pub endpoint: Url,
    ticks: f64,
}

impl Helper {
    /// Start `program args…` and wait for its endpoint line.
    pub fn start(program: &Path, args: &[String]) -> Result<Helper, String> {
        Helper::start_with_env(program, args, &[])
    }

    /// As [`Helper::start`], with `env` added to the environment.
    pub fn start_with_env(
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Helper, String> {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{}: no stdout", program.display()))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("{}: reading its endpoint: {e}", program.display()))?;
        let endpoint = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["endpoint"].as_str().and_then(|s| Url::parse(s).ok()))
            .ok_or_else(|| format!("{} printed no endpoint", program.display()))?;
        Ok(Helper {
            child,
            stdin,
            endpoint,
            ticks: procfs::clock_ticks(),
        })
    }

    /// CPU seconds the process has used so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        procfs::cpu_secs(self.child.id(), self.ticks)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The S3 server exports are stored in during the bench (in its memory).
pub struct S3Server {
    pub helper: Helper,
}

impl S3Server {
    /// `bench-s3` at `program`, with the emulator's credentials (`testing`/`testing`) so the
    /// SDK's SigV4 signatures check out.
    pub fn start(program: &Path) -> Result<S3Server, String> {
        let args = ["--access-key", "testing", "--secret-key", "testing"].map(str::to_owned);
        let helper = Helper::start(program, &args)?;
        Ok(S3Server { helper })
    }
}
