//! The writer thread runs under SCHED_BATCH on Linux (one test in its own process:
//! the only log, so the only writer thread).

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_writer_thread_does_not_preempt_the_appenders() -> Result<(), Box<dyn std::error::Error>>
{
    use tether_log::{EmbeddedLog, LogConfig};

    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(LogConfig::new(dir.path().to_path_buf())).await?;
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?.path();
        if std::fs::read_to_string(task.join("comm"))?.trim() != "tether-log-writ" {
            continue;
        }
        // /proc/TID/stat: "pid (comm) state ..."; policy is field 41.
        let stat = std::fs::read_to_string(task.join("stat"))?;
        let after_comm = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
        let policy: u32 = after_comm
            .split_whitespace()
            .nth(41 - 3)
            .ok_or("no policy field")?
            .parse()?;
        policies.push(policy);
    }
    log.close().await;
    const SCHED_BATCH: u32 = 3;
    assert_eq!(
        policies,
        vec![SCHED_BATCH],
        "one writer thread, under SCHED_BATCH"
    );
    Ok(())
}
