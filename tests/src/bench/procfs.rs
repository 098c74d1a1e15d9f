//! What Linux tells about processes: our own peak and current RSS, the emulator's CPU time, the
//! machine's load. Everything is best effort: `None` where /proc does not say.

use std::path::Path;

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmHWM`, `VmRSS`), in KiB.
fn status_kib(path: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// This process's peak resident set (`VmHWM`), in KiB.
pub fn own_peak_rss_kib() -> Option<u64> {
    status_kib(Path::new("/proc/self/status"), "VmHWM")
}

/// This process's resident set now (`VmRSS`), in KiB.
pub fn own_rss_kib() -> Option<u64> {
    status_kib(Path::new("/proc/self/status"), "VmRSS")
}

/// Fields of `/proc/<pid>/stat` after the command name (which may contain spaces).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks per second for `/proc/<pid>/stat` CPU times.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_secs(pid: u32, ticks: f64) -> Option<f64> {
    let f = stat_fields(pid)?;
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// The moto server this process started: our child whose command line runs the launcher.
pub fn moto_pid() -> Option<u32> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let parent = stat_fields(*pid)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| ppid == me);
            parent
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains("moto_launcher"))
                    .unwrap_or(false)
        })
}

/// `/proc/loadavg`'s three averages, e.g. `"1.52 1.10 0.80"`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Online CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_figures_are_readable() {
        // RSS first: other test threads may allocate between the two reads.
        let now = own_rss_kib().unwrap_or(0);
        let peak = own_peak_rss_kib().unwrap_or(0);
        assert!(now > 0 && peak >= now, "VmRSS {now} KiB, VmHWM {peak} KiB");
        assert!(cpu_secs(std::process::id(), clock_ticks()).is_some());
    }
}
