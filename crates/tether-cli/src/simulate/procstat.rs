//! CPU time and resident memory of a local process, from /proc (Linux).

use std::time::Duration;

/// Kernel clock ticks per second of /proc/PID/stat (USER_HZ; 100 on Linux).
const USER_HZ: u64 = 100;

/// One sample of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if the process is gone or
/// this is not Linux. `pid` `None` = this process.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Sample {
        cpu: Duration::from_millis((utime + stime) * 1000 / USER_HZ),
        rss: rss_kib * 1024,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_itself() {
        if cfg!(target_os = "linux") {
            let s = super::sample(None);
            assert!(s.is_some_and(|s| s.rss > 0));
        }
    }
}
