//! Start-up: lock the directory, find every topic's segments, cut torn tails,
//! and tell each segment's record format.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::record::{CorruptReason, Format};
use crate::segment::{self, SegmentMeta, Source};
use crate::state::Shared;
use crate::writer::{Active, Recovered, TopicWriter};
use crate::{LogConfig, LogError};

/// A torn tail found and cut off at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The topic.
    pub topic: String,
    /// The segment that was truncated.
    pub segment: PathBuf,
    /// Where the first bad record started (the new file length).
    pub position: u64,
    /// How many bytes were removed.
    pub removed_bytes: u64,
    /// Why the record was bad.
    pub reason: CorruptReason,
}

pub(crate) fn recover(shared: &Shared, config: &LogConfig) -> Result<Recovered, LogError> {
    let root = &shared.root;
    std::fs::create_dir_all(root).map_err(|e| LogError::open(root, e))?;
    let lock_path = root.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LogError::open(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LogError::Locked { path: root.clone() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LogError::open(&lock_path, e)),
    }

    let mut topics = HashMap::new();
    let mut truncations = Vec::new();
    let entries = std::fs::read_dir(root).map_err(|e| LogError::open(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::open(root, e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        // Directories we could not have written (and the lock file) are ignored.
        let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(segment::topic_from_dir_name)
        else {
            continue;
        };
        if !is_dir {
            continue;
        }
        let writer = recover_topic(shared, config, &name, &entry.path(), &mut truncations)?;
        topics.insert(name, writer);
    }
    Ok(Recovered {
        topics,
        truncations,
        lock,
    })
}

fn recover_topic(
    shared: &Shared,
    config: &LogConfig,
    name: &str,
    dir: &Path,
    truncations: &mut Vec<Truncation>,
) -> Result<TopicWriter, LogError> {
    let mut bases: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::open(dir, e))? {
        let entry = entry.map_err(|e| LogError::open(dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    let max_body = u64::from(config.max_record_bytes);
    let state = shared.topic(name);
    let mut metas = Vec::with_capacity(bases.len());
    let mut active = None;
    let mut next = 0;

    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment::file_name(base));
        let read_err = |e| LogError::read(name, path.clone(), e);
        let format = segment::detect_format(&path).map_err(read_err)?;
        let src = Source {
            path: &path,
            base,
            format,
            topic: name,
        };
        if let Some(&following) = bases.get(i + 1) {
            // Sealed: index the headers. Damage is left in place and reported
            // (with its offset) when a reader reaches it.
            let scan = segment::scan(src, max_body, false).map_err(read_err)?;
            let mut meta = scan.meta;
            meta.len = scan.file_len;
            meta.next = following;
            metas.push(meta);
            continue;
        }
        // The last segment was being appended to: check every record and cut
        // the file at the first bad one (a torn write from a crash).
        let scan = segment::scan(src, max_body, true).map_err(read_err)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(read_err)?;
        if let Some((position, reason)) = scan.stopped_at {
            let cut = |e| LogError::append(name, path.clone(), "truncate the torn tail of", e);
            // Zeros are what the writer wrote ahead of its data, not a torn
            // write: they are cut (the writer writes them again) but not reported.
            let written_ahead = all_zero(&file, position, scan.file_len).map_err(read_err)?;
            file.set_len(position).map_err(cut)?;
            file.sync_data().map_err(cut)?;
            if !written_ahead {
                truncations.push(Truncation {
                    topic: name.to_owned(),
                    segment: path.clone(),
                    position,
                    removed_bytes: scan.file_len - position,
                    reason,
                });
            }
        }
        let mut meta: SegmentMeta = scan.meta;
        next = meta.next;
        if meta.format == Format::V1 && meta.len > 0 {
            // A format-1 segment is sealed as it is: the next append starts
            // a format-2 segment after it.
            metas.push(meta);
            continue;
        }
        // An empty file (or one cut back to nothing) is written in format 2.
        meta.format = Format::V2;
        active = Some(Active {
            file,
            path,
            base,
            durable_len: meta.len,
            file_len: meta.len,
        });
        metas.push(meta);
    }
    let bytes: u64 = metas.iter().map(|m| m.len).sum();
    shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    *state.write_segments() = metas;
    state.next.send_replace(next);
    Ok(TopicWriter::new(state, active, next))
}

/// True when every byte of `file` from `from` to `to` is zero.
fn all_zero(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let want = (to - at).min(buf.len() as u64) as usize;
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}
