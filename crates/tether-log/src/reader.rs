//! Reading a topic by offset, in either record format. Blocking; the async API
//! runs it on tokio's blocking pool, except for a reader near the head of the
//! active segment, which first tries the page cache on its own thread
//! ([`read_cached`]). Only durable bytes are read (the lengths the writer
//! published after its fsync), and every record's CRC is checked.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Most bytes a cached read may cover, from its seek point to the durable end: it
/// runs on the caller's (async) thread, so its work stays small.
pub(crate) const CACHED_READ_MAX_BYTES: u64 = 256 * 1024;

/// Reads `max` records from `from` on; may wait for the disk.
pub(crate) fn read(
    shared: &Shared,
    topic: &str,
    from: u64,
    max: usize,
) -> Result<Vec<Record>, LogError> {
    read_via(shared, topic, from, max, |path, pos| {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(pos))?;
        Ok(file)
    })
}

/// The same read without waiting for the disk: `None` unless `from` is in the
/// last segment, at most [`CACHED_READ_MAX_BYTES`] before its durable end, and
/// every byte needed is in the page cache (a reader following the head reads
/// what the writer has just written). Any failure is `None` too: the caller
/// reads again with [`read`], which reports it.
pub(crate) fn read_cached(
    shared: &Shared,
    topic: &str,
    from: u64,
    max: usize,
) -> Option<Vec<Record>> {
    if shared.no_cached_reads.load(Ordering::Relaxed) {
        return None;
    }
    let state = shared.existing_topic(topic)?;
    {
        let segments = state.read_segments();
        let last = segments.last()?;
        let (_, pos) = last.seek_point(from.max(last.base));
        if from < last.base || last.len.saturating_sub(pos) > CACHED_READ_MAX_BYTES {
            return None;
        }
    }
    read_via(shared, topic, from, max, |path, pos| {
        Ok(CachedFile {
            file: File::open(path)?,
            pos,
            unsupported: &shared.no_cached_reads,
        })
    })
    .ok()
}

/// A segment read only from the page cache: a read that would wait for the disk
/// fails (`EAGAIN`, `preadv2` with `RWF_NOWAIT`).
struct CachedFile<'a> {
    file: File,
    pos: u64,
    /// Set when the file system does not support such reads.
    unsupported: &'a AtomicBool,
}

impl Read for CachedFile<'_> {
    #[cfg(target_os = "linux")]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::io::{ReadWriteFlags, preadv2};
        let n = preadv2(
            &self.file,
            &mut [io::IoSliceMut::new(buf)],
            self.pos,
            ReadWriteFlags::NOWAIT,
        )
        .inspect_err(|e| {
            if *e == rustix::io::Errno::OPNOTSUPP {
                self.unsupported.store(true, Ordering::Relaxed);
            }
        })?;
        self.pos += n as u64;
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.unsupported.store(true, Ordering::Relaxed);
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Seek for CachedFile<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(_) => None,
        }
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// The read, with `open` giving the segment file positioned at a byte.
fn read_via<R: Read + Seek>(
    shared: &Shared,
    topic: &str,
    mut from: u64,
    max: usize,
    open: impl Fn(&Path, u64) -> io::Result<R>,
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
        let opened = open(&cursor.path, pos)
            .map(|input| FrameReader::new(input, src, pos, cursor.len, shared.max_body));
        let mut frames = match opened {
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
