//! Entry points for the fuzz targets in `fuzz/` and the property tests: the
//! segment scan that recovery runs at start-up and the sequential record
//! reader, over bytes in memory instead of a file. Not part of the API: the
//! decoders stay crate-private, and this may change at any time.

use std::io::Cursor;
use std::path::Path;

use crate::Message;
use crate::record::{self, CorruptReason, Format, v2, varint};
use crate::segment::{self, FrameReader, Source, Step};

/// The topic every in-memory segment belongs to (format 2 does not store it).
pub const TOPIC: &str = "projects/p/topics/t";

/// What a scan of a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Format 2 (by the file's first bytes) rather than format 1.
    pub v2: bool,
    /// Bytes of whole, valid records (with the header): where recovery cuts.
    pub valid_len: u64,
    /// The offset after the last valid record.
    pub next: u64,
    /// The newest publish time among the valid records.
    pub max_publish_time: Option<i64>,
    /// The sparse index: (offset, byte position) pairs.
    pub index: Vec<(u64, u64)>,
    /// The first bad record: (position, reason).
    pub stopped_at: Option<(u64, CorruptReason)>,
}

fn source(bytes: &[u8], base: u64) -> Source<'static> {
    Source {
        path: Path::new(""),
        base,
        format: Format::detect(bytes),
        topic: TOPIC,
    }
}

/// Scans `bytes` as the last segment of a topic (`verify`: every CRC is
/// checked, as recovery does) or as a sealed one (headers only).
///
/// # Errors
/// Only if the frame reader reads past the end of `bytes`, which its limit
/// should rule out: the checks treat it as a failure.
pub fn scan(bytes: &[u8], base: u64, max_body: u32, verify: bool) -> std::io::Result<Scanned> {
    let src = source(bytes, base);
    let len = bytes.len() as u64;
    let s = segment::scan_from(Cursor::new(bytes), len, src, u64::from(max_body), verify)?;
    Ok(Scanned {
        v2: src.format == Format::V2,
        valid_len: s.meta.len,
        next: s.meta.next,
        max_publish_time: s.meta.max_publish_time,
        index: s.meta.index,
        stopped_at: s.stopped_at,
    })
}

/// Reads every record from byte position `pos` (the first record, or an index
/// entry) as a reader does: (offset, message) pairs up to the first bad record.
pub fn read(bytes: &[u8], base: u64, max_body: u32, pos: u64) -> Vec<(u64, Message)> {
    let src = source(bytes, base);
    let mut input = Cursor::new(bytes);
    input.set_position(pos);
    let limit = bytes.len() as u64;
    let mut reader = FrameReader::new(input, src, pos, limit, u64::from(max_body));
    let mut out = Vec::new();
    while let Ok(Step::Record { item, .. }) = reader.next_record() {
        out.push((item.0.offset, item.1));
    }
    debug_assert!(reader.pos() <= limit);
    out
}

/// Rewrites the CRC of every whole frame in `bytes` to match its body, so the
/// fuzzer's mutations reach the body decoders instead of stopping at the CRC.
pub fn fix_crcs(bytes: &mut [u8]) {
    let format = Format::detect(bytes);
    let mut pos = format.header_len() as usize;
    loop {
        let Some(rest) = bytes.get(pos..) else { return };
        let (len, len_bytes) = match format {
            Format::V1 => match rest.first_chunk::<4>() {
                Some(l) => (u64::from(u32::from_le_bytes(*l)), 4),
                None => return,
            },
            Format::V2 => match varint::get(&rest[..rest.len().min(v2::MAX_LEN_BYTES)]) {
                Ok(v) => v,
                Err(_) => return,
            },
        };
        let body_start = pos + len_bytes + record::CRC_LEN;
        let Some(body_end) = usize::try_from(len)
            .ok()
            .and_then(|l| body_start.checked_add(l))
            .filter(|&end| end <= bytes.len())
        else {
            return;
        };
        let crc = crc32fast::hash(&bytes[body_start..body_end]);
        bytes[pos + len_bytes..body_start].copy_from_slice(&crc.to_le_bytes());
        pos = body_end;
    }
}

/// `messages` as a format-2 segment (header included), a block every
/// `block_every` records: what the writer produces.
pub fn encode_v2(messages: &[Message], block_every: usize) -> Vec<u8> {
    let mut out = v2::HEADER.to_vec();
    let mut enc = v2::Encoder::default();
    for (i, m) in messages.iter().enumerate() {
        let block_start = i % block_every.max(1) == 0 || enc.block_full();
        enc.encode(block_start, i as u64, m.clone(), &mut out);
    }
    out
}

/// The largest record body [`check`] accepts.
const CHECK_MAX_BODY: u32 = 1 << 16;

/// The properties the `log_record` fuzz target and the property tests check,
/// on one input: a mode byte, then a segment file. The mode's bit 0 leaves the
/// CRCs as they are (else [`fix_crcs`]); bits 1-2 pick the base offset (0, 40,
/// `u64::MAX - 2`, or the mode's bits 3-7).
///
/// Recovery keeps a prefix of the file, and cutting the file there gives a
/// clean segment with the same next offset and index (recovery is
/// idempotent); the header-only scan of sealed segments agrees with the full
/// one on that prefix; the reader returns exactly the records the scan
/// counted, from the start and from every index entry; every record read
/// survives encode → decode in format 2.
///
/// # Panics
/// When a property does not hold: that is its purpose.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 0 {
        fix_crcs(&mut bytes);
    }
    let base = match mode >> 1 & 3 {
        0 => 0,
        1 => 40,
        2 => u64::MAX - 2,
        _ => u64::from(mode >> 3),
    };

    let full = scan(&bytes, base, CHECK_MAX_BODY, true).expect("in-memory scan");
    let valid = usize::try_from(full.valid_len).expect("fits");
    assert!(valid <= bytes.len());
    match &full.stopped_at {
        None => assert_eq!(valid, bytes.len()),
        Some((pos, _)) => assert_eq!(*pos, full.valid_len),
    }
    assert!(full.next >= base);

    // What start-up leaves on disk after cutting the torn tail.
    let cut = &bytes[..valid];
    let again = scan(cut, base, CHECK_MAX_BODY, true).expect("in-memory scan");
    assert_eq!(again.stopped_at, None, "recovered segment is damaged");
    assert_eq!(again.next, full.next);
    assert_eq!(again.index, full.index);
    assert_eq!(again.max_publish_time, full.max_publish_time);
    if !cut.is_empty() {
        assert_eq!(again.v2, full.v2);
    }
    let headers = scan(cut, base, CHECK_MAX_BODY, false).expect("in-memory scan");
    assert_eq!(headers, again, "header-only scan disagrees");

    let header_len = if again.v2 && !cut.is_empty() { 8 } else { 0 };
    let records = read(cut, base, CHECK_MAX_BODY, header_len);
    assert_eq!(records.len() as u64, full.next - base);
    for (i, (offset, _)) in records.iter().enumerate() {
        assert_eq!(*offset, base + i as u64);
    }
    for &(offset, pos) in &full.index {
        let from = read(cut, base, CHECK_MAX_BODY, pos);
        let skip = usize::try_from(offset - base).expect("fits");
        assert_eq!(from, records[skip..], "read from index entry at {pos}");
    }

    // Format 2 keeps the topic out of the records; format 1 repeats it in each.
    let messages: Vec<_> = records
        .into_iter()
        .map(|(_, mut m)| {
            m.topic = TOPIC.to_owned();
            m
        })
        .collect();
    let encoded = encode_v2(&messages, 3);
    let decoded = read(&encoded, base, u32::MAX, 8);
    let back: Vec<_> = decoded.into_iter().map(|(_, m)| m).collect();
    assert_eq!(back, messages);
}
