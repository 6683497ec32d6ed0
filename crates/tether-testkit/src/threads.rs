//! The scheduling priority (`nice`) of a process's threads, read from `/proc` (Linux).

/// `(thread id, nice)` of each thread of `pid` (`None`: this process) whose name starts
/// with `name_prefix`. A thread that ends while it is read is left out.
///
/// # Panics
/// When `/proc/PID/task` cannot be listed, or a thread's `stat` has no nice field.
pub fn thread_nices(pid: Option<u32>, name_prefix: &str) -> Vec<(u32, i64)> {
    let dir = pid.map_or_else(
        || "/proc/self/task".to_owned(),
        |p| format!("/proc/{p}/task"),
    );
    let mut found = Vec::new();
    for task in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {dir}: {e}")) {
        let Ok(task) = task else { continue };
        let path = task.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.starts_with(name_prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let nice = nice_in(&stat)
            .unwrap_or_else(|| panic!("no nice value in {}/stat: {stat}", path.display()));
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        found.push((tid, nice));
    }
    found
}

/// The nice value in a `/proc/…/stat` line: after the parenthesised name, state is
/// field 3 and nice field 19 (proc(5)).
fn nice_in(stat: &str) -> Option<i64> {
    stat.rfind(')')
        .and_then(|end| stat.get(end + 2..))
        .and_then(|fields| fields.split(' ').nth(16))
        .and_then(|n| n.parse().ok())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_a_named_thread_and_its_nice() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let named = std::thread::Builder::new()
            .name("kit-nice-probe".into())
            .spawn(move || {
                // The thread names itself once running: read it only after that.
                let _ = ready_tx.send(());
                let _ = rx.recv();
            })
            .expect("thread");
        ready.recv().expect("the thread started");
        let found = thread_nices(None, "kit-nice-probe");
        assert_eq!(found.len(), 1, "{found:?}");
        let own = std::fs::read_to_string("/proc/thread-self/stat").expect("own stat");
        assert_eq!(
            Some(found[0].1),
            nice_in(&own),
            "a thread inherits its creator's nice"
        );
        assert!(thread_nices(None, "no-such-thread-name").is_empty());
        drop(tx);
        named.join().expect("joined");
    }
}
