//! Segment files: names on disk, sequential frame reading in either record
//! format, and the scans run at start-up (header-only for sealed segments,
//! full CRC check with torn-tail truncation for the last one).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::record::{self, CorruptReason, Format, v1, v2};
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
    /// The record format of the file.
    pub format: Format,
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
    pub(crate) fn empty(base: u64, path: PathBuf, format: Format) -> Self {
        Self {
            base,
            path,
            format,
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
            None => (self.base, self.format.header_len()),
        }
    }
}

/// The record format of the file at `path`, from its first bytes.
pub(crate) fn detect_format(path: &Path) -> io::Result<Format> {
    let mut head = Vec::with_capacity(v2::MAGIC.len());
    File::open(path)?
        .take(v2::MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    Ok(Format::detect(&head))
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

/// What a reader needs to know about a segment file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    /// The segment's base offset (format 2 stores offsets relative to it).
    pub base: u64,
    pub format: Format,
    /// The topic (format 2 does not store it in records).
    pub topic: &'a str,
}

/// A record's place in the log, read from the start of its body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub offset: u64,
    pub publish_time: i64,
    /// Format 2: a block (and an index entry) starts here.
    pub block_start: bool,
}

/// A frame located in the file, its body not yet read.
struct Frame {
    start: u64,
    /// Bytes of length prefix and CRC.
    head_len: u64,
    len: u64,
    crc: u32,
}

/// Reads frames from a segment file (or, for the fuzz targets, bytes in
/// memory) up to a byte limit.
#[derive(Debug)]
pub(crate) struct FrameReader<R = File> {
    r: BufReader<R>,
    pos: u64,
    limit: u64,
    max_body: u64,
    base: u64,
    format: Format,
    topic: String,
    decoder: v2::Decoder,
}

impl<R: Read + Seek> FrameReader<R> {
    /// A reader over `input`, which is already positioned at `pos`.
    pub(crate) fn new(input: R, src: Source<'_>, pos: u64, limit: u64, max_body: u64) -> Self {
        Self {
            r: BufReader::with_capacity(64 * 1024, input),
            pos,
            limit,
            max_body,
            base: src.base,
            format: src.format,
            topic: src.topic.to_owned(),
            decoder: v2::Decoder::default(),
        }
    }

    /// Bytes read so far: the end of the last frame.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Reads the length and CRC and checks the length; Ok(Err(step)) ends the read.
    /// Both formats put the length first (format 1: u32le, format 2: a varint)
    /// and then the CRC (u32le).
    fn frame(&mut self) -> io::Result<Result<Frame, Step<()>>> {
        let start = self.pos;
        let available = self.limit.saturating_sub(start);
        if available == 0 {
            return Ok(Err(Step::End));
        }
        let mut prefix = [0; v2::MAX_LEN_BYTES];
        let (len, len_bytes, min_body) = match self.format {
            Format::V1 => {
                if available < 4 {
                    return Ok(Err(torn(start, v1::FRAME_HEADER_LEN as u64, available)));
                }
                let mut len = [0; 4];
                self.r.read_exact(&mut len)?;
                (u64::from(u32::from_le_bytes(len)), 4, v1::MIN_BODY_LEN)
            }
            Format::V2 => {
                let mut n = 0;
                // One byte at a time, never past the limit: the prefix may be torn.
                while n == 0 || prefix[n - 1] & 0x80 != 0 {
                    if n == v2::MAX_LEN_BYTES {
                        return Ok(Err(bad(start, "the length prefix is too long")));
                    }
                    if n as u64 == available {
                        return Ok(Err(torn(start, n as u64 + 1, available)));
                    }
                    self.r.read_exact(&mut prefix[n..=n])?;
                    n += 1;
                }
                let Ok((len, _)) = record::varint::get(&prefix[..n]) else {
                    return Ok(Err(bad(start, "the length prefix is too long")));
                };
                (len, n, v2::MIN_BODY_LEN)
            }
        };
        if let Err(reason) = record::check_len(len, min_body, self.max_body) {
            return Ok(Err(Step::Bad { pos: start, reason }));
        }
        let head_len = (len_bytes + record::CRC_LEN) as u64;
        if head_len + len > available {
            return Ok(Err(torn(start, head_len + len, available)));
        }
        let mut crc = [0; record::CRC_LEN];
        self.r.read_exact(&mut crc)?;
        Ok(Ok(Frame {
            start,
            head_len,
            len,
            crc: u32::from_le_bytes(crc),
        }))
    }

    /// The next record, CRC-checked and decoded.
    pub(crate) fn next_record(&mut self) -> io::Result<Step<(Header, Message)>> {
        let f = match self.frame()? {
            Ok(f) => f,
            Err(step) => return Ok(retype(step)),
        };
        // `len` is bounded by max_body (checked above), so this allocation is too.
        let mut body = vec![0; f.len as usize];
        self.r.read_exact(&mut body)?;
        self.pos = f.start + f.head_len + f.len;
        let decoded = match self.format {
            Format::V1 => v1::decode_body(&body, f.crc).map(|(offset, message)| {
                let header = Header {
                    offset,
                    publish_time: message.publish_time,
                    block_start: false,
                };
                (header, message)
            }),
            Format::V2 => self
                .decoder
                .decode(&body, f.crc, self.base, &self.topic)
                .map(|(p, message)| (header(p), message)),
        }
        .and_then(|(h, message)| Ok((below_max(h)?, message)));
        Ok(match decoded {
            Ok(item) => Step::Record { pos: f.start, item },
            Err(reason) => Step::Bad {
                pos: f.start,
                reason,
            },
        })
    }

    /// The next record's offset and publish time, without reading or
    /// checking the rest of its body.
    pub(crate) fn next_header(&mut self) -> io::Result<Step<Header>> {
        let f = match self.frame()? {
            Ok(f) => f,
            Err(step) => return Ok(retype(step)),
        };
        let mut p = [0; v2::PREFIX_MAX];
        let read = match self.format {
            // Every format-1 body is longer than its prefix (MIN_BODY_LEN).
            Format::V1 => v1::BODY_PREFIX_LEN,
            Format::V2 => v2::PREFIX_MAX.min(f.len as usize),
        };
        self.r.read_exact(&mut p[..read])?;
        self.pos = f.start + f.head_len + f.len;
        // The rest of the body is skipped, not read.
        self.r.seek_relative(f.len as i64 - read as i64)?;
        let parsed = match self.format {
            Format::V1 => {
                let mut prefix = [0; v1::BODY_PREFIX_LEN];
                prefix.copy_from_slice(&p[..read]);
                v1::parse_prefix(&prefix).map(|(offset, publish_time)| Header {
                    offset,
                    publish_time,
                    block_start: false,
                })
            }
            Format::V2 => self.decoder.prefix(&p[..read], self.base).map(header),
        }
        .and_then(below_max);
        Ok(match parsed {
            Ok(item) => Step::Record { pos: f.start, item },
            Err(reason) => Step::Bad {
                pos: f.start,
                reason,
            },
        })
    }
}

fn header(p: v2::Prefix) -> Header {
    Header {
        offset: p.offset,
        publish_time: p.publish_time,
        block_start: p.block_start,
    }
}

/// Refuses a record at offset `u64::MAX`: no offset could follow it, so the
/// scan and the readers, which count on `offset + 1`, would overflow. Only a
/// damaged or crafted file holds one (format 1 stores absolute offsets).
fn below_max(h: Header) -> Result<Header, CorruptReason> {
    if h.offset == u64::MAX {
        return Err(CorruptReason::Malformed("offset past the largest one"));
    }
    Ok(h)
}

fn bad(pos: u64, what: &'static str) -> Step<()> {
    Step::Bad {
        pos,
        reason: CorruptReason::Malformed(what),
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
pub(crate) fn scan(src: Source<'_>, max_body: u64, verify: bool) -> io::Result<Scan> {
    let file = File::open(src.path)?;
    let file_len = file.metadata()?.len();
    scan_from(file, file_len, src, max_body, verify)
}

/// [`scan`] of `input`, `file_len` bytes long, read from its start.
pub(crate) fn scan_from<R: Read + Seek>(
    mut input: R,
    file_len: u64,
    src: Source<'_>,
    max_body: u64,
    verify: bool,
) -> io::Result<Scan> {
    let mut meta = SegmentMeta::empty(src.base, src.path.to_path_buf(), src.format);
    if src.format == Format::V2 && file_len > 0 {
        let mut head = Vec::with_capacity(v2::HEADER.len());
        (&mut input)
            .take(v2::HEADER.len() as u64)
            .read_to_end(&mut head)?;
        if let Err(reason) = v2::check_header(&head) {
            let stopped_at = Some((0, reason));
            return Ok(Scan {
                meta,
                stopped_at,
                file_len,
            });
        }
        meta.len = src.format.header_len();
    }
    input.seek(SeekFrom::Start(meta.len))?;
    let mut reader = FrameReader::new(input, src, meta.len, file_len, max_body);
    let mut last_indexed: Option<u64> = None;
    let stopped_at = loop {
        let step = if verify {
            match reader.next_record()? {
                Step::Record {
                    pos,
                    item: (header, _),
                } => Step::Record { pos, item: header },
                Step::End => Step::End,
                Step::Bad { pos, reason } => Step::Bad { pos, reason },
            }
        } else {
            reader.next_header()?
        };
        match step {
            Step::End => break None,
            Step::Bad { pos, reason } => break Some((pos, reason)),
            Step::Record { pos, item: h } => {
                if h.offset != meta.next {
                    let reason = CorruptReason::UnexpectedOffset {
                        expected: meta.next,
                        found: h.offset,
                    };
                    break Some((pos, reason));
                }
                // Format 2 reads can only start at a block, so blocks are the
                // index; format 1 records stand alone, so any spacing works.
                let index_here = match src.format {
                    Format::V1 => last_indexed.is_none_or(|p| pos >= p + INDEX_INTERVAL),
                    Format::V2 => h.block_start,
                };
                if index_here {
                    meta.index.push((h.offset, pos));
                    last_indexed = Some(pos);
                }
                meta.next = h.offset + 1;
                meta.len = reader.pos;
                meta.max_publish_time = Some(
                    meta.max_publish_time
                        .map_or(h.publish_time, |m| m.max(h.publish_time)),
                );
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
