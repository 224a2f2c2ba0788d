//! Process resources: resident memory and CPU time of this process (Linux `/proc`).

use std::time::Duration;

/// One reading.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Resident set size, bytes.
    pub rss: u64,
    /// User + system CPU time since the process started.
    pub cpu: Duration,
}

/// Reads `/proc/self/status` (VmRSS) and `/proc/self/stat` (utime + stime); zeros elsewhere.
pub fn sample() -> Sample {
    sample_of("self")
}

/// The same for another process.
pub fn sample_of(pid: &str) -> Sample {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .map_or(Duration::ZERO, |ticks| Duration::from_millis(ticks * 10));
    Sample { rss, cpu }
}
