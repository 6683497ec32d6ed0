//! Reading a topic by offset, in either record format. Blocking; the async API
//! runs it on tokio's blocking pool. Only durable bytes are read (the lengths
//! the writer published after its fsync), and every record's CRC is checked.

use std::io;
use std::path::PathBuf;

use crate::record::{CorruptReason, Format};
use crate::segment::{FrameReader, Header, Source, Step};
use crate::state::Shared;
use crate::{LogError, Record};

/// Where to read next, taken from the shared state under its lock.
struct Cursor {
    path: PathBuf,
    base: u64,
    format: Format,
    /// Offset and position the read starts from (an index point).
    start: (u64, u64),
    len: u64,
    next: u64,
}

pub(crate) fn read(
    shared: &Shared,
    topic: &str,
    mut from: u64,
    max: usize,
) -> Result<Vec<Record>, LogError> {
    let mut out = Vec::new();
    let Some(state) = shared.existing_topic(topic) else {
        return Ok(out);
    };
    let mut vanished: Option<PathBuf> = None;
    while out.len() < max {
        let cursor = {
            let segments = state.read_segments();
            let Some(first) = segments.first() else { break };
            // Retention may have deleted `from`: continue at the earliest kept.
            from = from.max(first.base);
            let i = segments
                .partition_point(|s| s.base <= from)
                .saturating_sub(1);
            let Some(seg) = segments.get(i) else { break };
            if from >= seg.next {
                // Past this segment's end: the next one, if any, starts later.
                match segments.get(i + 1) {
                    Some(n) => from = n.base,
                    None => break,
                }
                continue;
            }
            Cursor {
                path: seg.path.clone(),
                base: seg.base,
                format: seg.format,
                start: seg.seek_point(from),
                len: seg.len,
                next: seg.next,
            }
        };
        let (mut expected, pos) = cursor.start;
        let src = Source {
            path: &cursor.path,
            base: cursor.base,
            format: cursor.format,
            topic,
        };
        let mut frames = match FrameReader::open(src, pos, cursor.len, shared.max_body) {
            Ok(r) => r,
            // Deleted by retention between the snapshot and the open: look again,
            // but only once per file so a vanished file cannot loop forever.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && vanished.as_ref() != Some(&cursor.path) =>
            {
                vanished = Some(cursor.path);
                continue;
            }
            Err(e) => return Err(LogError::read(topic, cursor.path, e)),
        };
        loop {
            let step = frames
                .next_record()
                .map_err(|e| LogError::read(topic, cursor.path.clone(), e))?;
            let corrupt = |position, reason| LogError::Corrupt {
                topic: topic.to_owned(),
                segment: cursor.path.clone(),
                offset: expected,
                position,
                reason,
            };
            match step {
                Step::End => {
                    from = from.max(cursor.next);
                    break;
                }
                // Records before the damage are returned first; the next read,
                // starting at the bad offset, gets the error.
                Step::Bad { .. } if !out.is_empty() => return Ok(out),
                Step::Bad { pos, reason } => return Err(corrupt(pos, reason)),
                Step::Record {
                    pos,
                    item: (Header { offset, .. }, message),
                } => {
                    if offset != expected {
                        if !out.is_empty() {
                            return Ok(out);
                        }
                        let reason = CorruptReason::UnexpectedOffset {
                            expected,
                            found: offset,
                        };
                        return Err(corrupt(pos, reason));
                    }
                    expected += 1;
                    if offset >= from {
                        out.push(Record { offset, message });
                        from = offset + 1;
                        if out.len() >= max {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
