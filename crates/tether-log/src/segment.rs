//! Segment files: names on disk, sequential frame reading, and the scans run
//! at start-up (header-only for sealed segments, full CRC check with torn-tail
//! truncation for the last one).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::record::{self, BODY_PREFIX_LEN, CorruptReason, FRAME_HEADER_LEN};
use crate::{Message, percent};

/// A sparse index entry is added every this many bytes, so a read seeks close
/// to its offset instead of scanning the segment from the start.
pub(crate) const INDEX_INTERVAL: u64 = 64 * 1024;

/// What the log knows about one segment file (for sealed and active segments).
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    /// Offset of the first record (also the file name).
    pub base: u64,
    pub path: PathBuf,
    /// Bytes known durable and valid; readers never look past this.
    pub len: u64,
    /// Offset after the last record in this segment.
    pub next: u64,
    /// Newest publish time in the segment (None: empty), for age retention.
    pub max_publish_time: Option<i64>,
    /// (offset, byte position) pairs, ascending.
    pub index: Vec<(u64, u64)>,
}

impl SegmentMeta {
    pub(crate) fn empty(base: u64, path: PathBuf) -> Self {
        Self {
            base,
            path,
            len: 0,
            next: base,
            max_publish_time: None,
            index: Vec::new(),
        }
    }

    /// The indexed (offset, position) to start from when looking for `offset`.
    pub(crate) fn seek_point(&self, offset: u64) -> (u64, u64) {
        let i = self.index.partition_point(|&(o, _)| o <= offset);
        match i.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(&p) => p,
            None => (self.base, 0),
        }
    }
}

/// `00000000000000000042.log` for base offset 42: zero-padded so names sort.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base offset named by a segment file name, or None for other files.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A topic name as one directory name: bytes outside `[A-Za-z0-9_.-]` (and a
/// leading `.`, so `.`/`..` cannot occur) become `%XX`. Reversible, so the
/// topic list comes from the directory names.
pub(crate) fn dir_name(topic: &str) -> String {
    percent::encode(topic, |i, b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0)
    })
}

/// The inverse of [`dir_name`]; None for a name it could not have produced.
pub(crate) fn topic_from_dir_name(name: &str) -> Option<String> {
    // Any byte may stand as it is here; the round trip below refuses the
    // names `dir_name` would have escaped.
    let topic = percent::decode(name, |_| true)?;
    (!topic.is_empty() && dir_name(&topic) == name).then_some(topic)
}

/// One step of a sequential read.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// A record starting at `pos`.
    Record { pos: u64, item: T },
    /// Clean end: exactly at the limit.
    End,
    /// The record at `pos` is bad.
    Bad { pos: u64, reason: CorruptReason },
}

/// Reads frames from a segment file up to a byte limit.
#[derive(Debug)]
pub(crate) struct FrameReader {
    r: BufReader<File>,
    pos: u64,
    limit: u64,
    max_body: u64,
}

impl FrameReader {
    /// Opens `path` positioned at `pos`; reads stop at `limit` bytes.
    pub(crate) fn open(path: &Path, pos: u64, limit: u64, max_body: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(pos))?;
        Ok(Self {
            r: BufReader::with_capacity(64 * 1024, file),
            pos,
            limit,
            max_body,
        })
    }

    /// Reads the frame header and checks the length; Ok(Err(step)) ends the read.
    fn header(&mut self) -> io::Result<Result<(u64, u32, u32), Step<()>>> {
        let start = self.pos;
        let available = self.limit.saturating_sub(start);
        if available == 0 {
            return Ok(Err(Step::End));
        }
        if available < FRAME_HEADER_LEN as u64 {
            return Ok(Err(torn(start, FRAME_HEADER_LEN as u64, available)));
        }
        let mut h = [0; FRAME_HEADER_LEN];
        self.r.read_exact(&mut h)?;
        let (len, crc) = record::parse_frame_header(&h);
        if let Err(reason) = record::check_len(len, self.max_body) {
            return Ok(Err(Step::Bad { pos: start, reason }));
        }
        let needed = FRAME_HEADER_LEN as u64 + u64::from(len);
        if needed > available {
            return Ok(Err(torn(start, needed, available)));
        }
        Ok(Ok((start, len, crc)))
    }

    /// The next record, CRC-checked and decoded.
    pub(crate) fn next_record(&mut self) -> io::Result<Step<(u64, Message)>> {
        let (start, len, crc) = match self.header()? {
            Ok(h) => h,
            Err(step) => return Ok(retype(step)),
        };
        // `len` is bounded by max_body (checked above), so this allocation is too.
        let mut body = vec![0; len as usize];
        self.r.read_exact(&mut body)?;
        self.pos = start + FRAME_HEADER_LEN as u64 + u64::from(len);
        Ok(match record::decode_body(&body, crc) {
            Ok(item) => Step::Record { pos: start, item },
            Err(reason) => Step::Bad { pos: start, reason },
        })
    }

    /// The next record's (offset, publish_time, frame length), without reading
    /// or checking the rest of its body.
    pub(crate) fn next_header(&mut self) -> io::Result<Step<(u64, i64, u64)>> {
        let (start, len, _crc) = match self.header()? {
            Ok(h) => h,
            Err(step) => return Ok(retype(step)),
        };
        let mut p = [0; BODY_PREFIX_LEN];
        self.r.read_exact(&mut p)?;
        let frame = FRAME_HEADER_LEN as u64 + u64::from(len);
        self.pos = start + frame;
        // The rest of the body is skipped, not read.
        let rest = i64::from(len) - BODY_PREFIX_LEN as i64;
        self.r.seek_relative(rest)?;
        Ok(match record::parse_prefix(&p) {
            Ok((offset, time)) => Step::Record {
                pos: start,
                item: (offset, time, frame),
            },
            Err(reason) => Step::Bad { pos: start, reason },
        })
    }
}

fn torn(pos: u64, needed: u64, available: u64) -> Step<()> {
    Step::Bad {
        pos,
        reason: CorruptReason::Truncated { needed, available },
    }
}

fn retype<T>(step: Step<()>) -> Step<T> {
    match step {
        Step::End | Step::Record { .. } => Step::End,
        Step::Bad { pos, reason } => Step::Bad { pos, reason },
    }
}

/// Result of scanning a segment at start-up.
#[derive(Debug)]
pub(crate) struct Scan {
    pub meta: SegmentMeta,
    /// The first bad record, if the scan stopped early: (position, reason).
    pub stopped_at: Option<(u64, CorruptReason)>,
    /// The file's size on disk.
    pub file_len: u64,
}

/// Scans a segment from the start, building its index and publish-time range.
/// `verify` checks every CRC (the last segment); otherwise only headers are read
/// (sealed segments, whose records are checked when read).
pub(crate) fn scan(path: &Path, base: u64, max_body: u64, verify: bool) -> io::Result<Scan> {
    let file_len = std::fs::metadata(path)?.len();
    let mut reader = FrameReader::open(path, 0, file_len, max_body)?;
    let mut meta = SegmentMeta::empty(base, path.to_path_buf());
    let mut last_indexed: Option<u64> = None;
    let stopped_at = loop {
        let step = if verify {
            match reader.next_record()? {
                Step::Record {
                    pos,
                    item: (offset, m),
                } => Step::Record {
                    pos,
                    item: (offset, m.publish_time),
                },
                Step::End => Step::End,
                Step::Bad { pos, reason } => Step::Bad { pos, reason },
            }
        } else {
            match reader.next_header()? {
                Step::Record {
                    pos,
                    item: (o, t, _),
                } => Step::Record { pos, item: (o, t) },
                Step::End => Step::End,
                Step::Bad { pos, reason } => Step::Bad { pos, reason },
            }
        };
        match step {
            Step::End => break None,
            Step::Bad { pos, reason } => break Some((pos, reason)),
            Step::Record {
                pos,
                item: (offset, time),
            } => {
                if offset != meta.next {
                    let reason = CorruptReason::UnexpectedOffset {
                        expected: meta.next,
                        found: offset,
                    };
                    break Some((pos, reason));
                }
                if last_indexed.is_none_or(|p| pos >= p + INDEX_INTERVAL) {
                    meta.index.push((offset, pos));
                    last_indexed = Some(pos);
                }
                meta.next = offset + 1;
                meta.len = reader.pos;
                meta.max_publish_time = Some(meta.max_publish_time.map_or(time, |m| m.max(time)));
            }
        }
    };
    Ok(Scan {
        meta,
        stopped_at,
        file_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_and_parse() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.idx",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn dir_names_are_safe_and_reversible() {
        for topic in ["projects/p/topics/t", "..", ".", "a b%c~+", "é/ü", "x.y"] {
            let d = dir_name(topic);
            assert!(!d.contains('/') && d != "." && d != "..", "{d}");
            assert_eq!(topic_from_dir_name(&d).as_deref(), Some(topic));
        }
        assert_eq!(dir_name("projects/p/topics/t"), "projects%2Fp%2Ftopics%2Ft");
        for foreign in ["%zz", "%2", "a%2fb", "", ".hidden"] {
            assert_eq!(topic_from_dir_name(foreign), None, "{foreign}");
        }
    }
}
