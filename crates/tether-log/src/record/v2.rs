//! Record format 2, the one written today: about 20 bytes around a payload
//! where format 1 took 216, because nothing constant is repeated.
//!
//! ```text
//! segment = header record*              header = FF 't' 'l' 'g' 02 00 00 00
//! record  = len:varint  crc:u32le  body[len]      crc = CRC-32 (IEEE) of body
//! body    = flags:u8  offset:varint  time:varint  attrs  data
//! flags   = bit 0: block start; bits 1-2: how attrs is stored (kind 0, 1 or 2)
//! offset  = the record's offset minus the segment's base offset
//! time    = zigzag(publish_time) at a block start,
//!           else zigzag(publish_time - the previous record's publish_time)
//! attrs   = id:varint                          kind 0: the block's id-th attribute set again
//!         | count:varint change*               kind 1: a new set, from no attributes
//!         | base:varint count:varint change*   kind 2: a new set, from the set `base`
//! change  = op:u8 [name_len:varint name] [value]
//! op      = bits 0-5, the name: 0 = it follows; 1-6 = deviceId, deviceNumId,
//!           deviceRegistryId, deviceRegistryLocation, projectId, subFolder
//!           bits 6-7: 0 = set to text (len:varint bytes); 1 = set to a decimal
//!           number, stored as a varint (canonical u64 text, like deviceNumId); 2 = remove
//! data    = the rest of the body
//! ```
//!
//! The topic is not stored: it is the segment's directory. A new set gets the
//! next id of its block (0, 1, 2, ...).
//!
//! A **block** runs from a record flagged as its start to the next one: its
//! dictionary of attribute sets starts empty and its first time is absolute,
//! so it decodes on its own. The writer starts a block at every sparse index
//! point, so a reader can start at any index entry.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

use super::{CRC_LEN, CorruptReason, Cursor, check_crc, varint};
use crate::Message;
use crate::message::{Attributes, attr};

/// What every format-2 segment file starts with.
pub(crate) const MAGIC: [u8; 4] = [0xFF, b't', b'l', b'g'];
const VERSION: u8 = 2;
/// The segment header: magic, version, three bytes reserved (zero).
pub(crate) const HEADER: [u8; 8] = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0];
/// The smallest valid body: flags, offset, time, attrs.
pub(crate) const MIN_BODY_LEN: usize = 4;
/// Most bytes of a length prefix (a u32).
pub(crate) const MAX_LEN_BYTES: usize = 5;
/// Most bytes of the body prefix (flags, offset, time) a header-only scan reads.
pub(crate) const PREFIX_MAX: usize = 1 + 2 * varint::MAX_LEN;
/// Most attribute sets one block may define; the writer starts a new block
/// first, and a reader refuses more, so a bad file cannot grow the dictionary.
pub(crate) const MAX_SETS: usize = 4096;

const BLOCK_START: u8 = 0b001;
const KIND_MASK: u8 = 0b110;
const REUSE: u8 = 0;
const NEW: u8 = 1;
const NEW_FROM: u8 = 2;

/// The attribute names stored as a code (1 + index): IoT Core's six.
const NAMES: [&str; 6] = [
    attr::DEVICE_ID,
    attr::DEVICE_NUM_ID,
    attr::DEVICE_REGISTRY_ID,
    attr::DEVICE_REGISTRY_LOCATION,
    attr::PROJECT_ID,
    attr::SUB_FOLDER,
];
const NAME_MASK: u8 = 0b0011_1111;
const SET_TEXT: u8 = 0 << 6;
const SET_NUMBER: u8 = 1 << 6;
const REMOVE: u8 = 2 << 6;

type Map = BTreeMap<String, String>;

/// Checks the first bytes of a format-2 file (all of them if fewer than 8).
pub(crate) fn check_header(head: &[u8]) -> Result<(), CorruptReason> {
    if head.len() < HEADER.len() {
        return Err(CorruptReason::Truncated {
            needed: HEADER.len() as u64,
            available: head.len() as u64,
        });
    }
    if head[..4] != MAGIC {
        return Err(CorruptReason::Malformed("not a segment header"));
    }
    if head[4] != VERSION {
        return Err(CorruptReason::UnknownVersion(head[4]));
    }
    if head[..HEADER.len()] != HEADER {
        return Err(CorruptReason::Malformed("reserved header bytes are set"));
    }
    Ok(())
}

/// The largest body `message` can take, whatever the dictionary holds: the
/// prefix at its longest, the attributes at their [`full_len`] (the encoder
/// never writes more than that, or a two-byte reference), the payload. The
/// size limit and the roll decision use it, so a record never exceeds either.
pub(crate) fn max_body_len(message: &Message) -> u64 {
    (PREFIX_MAX + 2 + full_len(&message.attributes)) as u64 + message.data.len() as u64
}

/// The largest frame of a body of at most `body` bytes.
pub(crate) fn max_frame_len(body: u64) -> u64 {
    (MAX_LEN_BYTES + CRC_LEN) as u64 + body
}

/// The writer's side of one block: the sets defined so far and the last time.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    sets: Vec<Attributes>,
    /// A set's hash to the id of the last set defined with it. Two sets with
    /// one hash only cost a second definition, never a wrong reference: the
    /// set itself is compared before it is reused.
    ids: HashMap<u64, u64, BuildHasherDefault<Prehashed>>,
    /// A shared set's address to its id: the messages of one device share one set
    /// (see [`crate::EventAttributes`]), found here without hashing or comparing
    /// it. Sound because `sets` holds each set: no other set can have its
    /// address while it is in the dictionary.
    by_address: HashMap<usize, u64, BuildHasherDefault<Prehashed>>,
    hasher: RandomState,
    prev_time: i64,
    /// Scratch for the part of a body before the payload.
    head: Vec<u8>,
}

impl Encoder {
    /// True once the block holds as many sets as a reader accepts.
    pub(crate) fn block_full(&self) -> bool {
        self.sets.len() >= MAX_SETS
    }

    /// Appends the frame of `message`, `offset_in_segment` records after the
    /// segment's base. `block_start` empties the dictionary first. Takes the
    /// message so a new attribute set moves into the dictionary uncopied.
    pub(crate) fn encode(
        &mut self,
        block_start: bool,
        offset_in_segment: u64,
        message: Message,
        out: &mut Vec<u8>,
    ) {
        if block_start {
            self.sets.clear();
            self.ids.clear();
            self.by_address.clear();
        }
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        head.push(0);
        varint::put(&mut head, offset_in_segment);
        let time = if block_start {
            message.publish_time
        } else {
            message.publish_time.wrapping_sub(self.prev_time)
        };
        varint::put(&mut head, varint::zigzag(time));
        self.prev_time = message.publish_time;
        let kind = self.put_attributes(&mut head, message.attributes);
        head[0] = (kind << 1) | if block_start { BLOCK_START } else { 0 };

        let body_len = head.len() + message.data.len();
        varint::put(out, body_len as u64);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&message.data);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&message.data);
        self.head = head;
    }

    /// Writes `attributes` as a reference or a new set; returns the kind.
    fn put_attributes(&mut self, out: &mut Vec<u8>, attributes: Attributes) -> u8 {
        let address = Arc::as_ptr(&attributes) as usize;
        if let Some(&id) = self.by_address.get(&address) {
            varint::put(out, id);
            return REUSE;
        }
        // The values tell sets apart (the names are IoT Core's six); a
        // match is checked on the whole set anyway.
        let mut hasher = self.hasher.build_hasher();
        for value in attributes.values() {
            hasher.write(value.as_bytes());
            hasher.write_u8(0xff);
        }
        let hash = hasher.finish();
        if let Some(&id) = self.ids.get(&hash)
            && self.sets.get(id as usize) == Some(&attributes)
        {
            if let Some(set) = self.sets.get_mut(id as usize) {
                // The next message of this device finds it by address.
                self.by_address.remove(&(Arc::as_ptr(set) as usize));
                *set = attributes;
                self.by_address.insert(address, id);
            }
            varint::put(out, id);
            return REUSE;
        }
        // The last set defined is the likeliest to differ least (another
        // device of the same registry): only what differs is written, unless
        // writing the set out in full is shorter.
        let start = out.len();
        let mut kind = NEW;
        if let Some(base) = self.sets.last() {
            varint::put(out, self.sets.len() as u64 - 1);
            put_changes(out, base, &attributes);
            kind = NEW_FROM;
            if out.len() - start > full_len(&attributes) {
                out.truncate(start);
                kind = NEW;
            }
        }
        if kind == NEW {
            put_changes(out, &Map::new(), &attributes);
        }
        let id = self.sets.len() as u64;
        self.ids.insert(hash, id);
        self.by_address.insert(address, id);
        self.sets.push(attributes);
        kind
    }
}

/// A hasher for keys that are hashes already, or addresses.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// An address (the sets by address): spread over all bits, as the table uses
    /// the top ones and an allocation's low ones are zero.
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Writes how `new` differs from `base`, both sorted by name, in one pass:
/// the count first, then the changes.
fn put_changes(out: &mut Vec<u8>, base: &Map, new: &Map) {
    let at = out.len();
    out.push(0);
    let (mut old, mut new) = (base.iter().peekable(), new.iter().peekable());
    let mut count: u64 = 0;
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            Ordering::Less => {
                if let Some((name, _)) = old.next() {
                    put_name(out, REMOVE, name);
                    count += 1;
                }
            }
            Ordering::Greater => {
                if let Some((name, value)) = new.next() {
                    put_value(out, name, value);
                    count += 1;
                }
            }
            Ordering::Equal => {
                if let (Some((_, was)), Some((name, value))) = (old.next(), new.next())
                    && was != value
                {
                    put_value(out, name, value);
                    count += 1;
                }
            }
        }
    }
    // The count went first as one byte; more than 127 changes need more.
    if count < 0x80 {
        out[at] = count as u8;
    } else {
        let mut n = Vec::with_capacity(varint::MAX_LEN);
        varint::put(&mut n, count);
        out.splice(at..=at, n);
    }
}

fn put_value(out: &mut Vec<u8>, name: &str, value: &str) {
    match as_number(value) {
        Some(n) => {
            put_name(out, SET_NUMBER, name);
            varint::put(out, n);
        }
        None => {
            put_name(out, SET_TEXT, name);
            varint::put(out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
    }
}

/// The most bytes `attributes` take written out in full (kind 1): each value
/// counted as text, which is never shorter than its number form.
fn full_len(attributes: &Map) -> usize {
    let changes: usize = attributes
        .iter()
        .map(|(name, value)| {
            let name = match name_code(name) {
                Some(_) => 1,
                None => 1 + varint::len(name.len() as u64) + name.len(),
            };
            name + varint::len(value.len() as u64) + value.len()
        })
        .sum();
    varint::len(attributes.len() as u64) + changes
}

/// The code of one of IoT Core's attribute names.
fn name_code(name: &str) -> Option<u8> {
    Some(match name {
        attr::DEVICE_ID => 1,
        attr::DEVICE_NUM_ID => 2,
        attr::DEVICE_REGISTRY_ID => 3,
        attr::DEVICE_REGISTRY_LOCATION => 4,
        attr::PROJECT_ID => 5,
        attr::SUB_FOLDER => 6,
        _ => return None,
    })
}

fn put_name(out: &mut Vec<u8>, action: u8, name: &str) {
    match name_code(name) {
        Some(code) => out.push(action | code),
        None => {
            out.push(action);
            varint::put(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
        }
    }
}

/// `text` as a number if it is exactly the decimal form of a u64 (no sign, no
/// leading zero), so that the number's text gives `text` back.
fn as_number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// The start of a body: enough for the index and retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub offset: u64,
    pub publish_time: i64,
    pub block_start: bool,
}

/// A reader's side of one block. Start it at a block start (an index entry).
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    sets: Vec<Attributes>,
    prev_time: i64,
    in_block: bool,
}

impl Decoder {
    /// Reads a body's prefix, without the CRC (header-only scans).
    pub(crate) fn prefix(&mut self, body_start: &[u8], base: u64) -> Result<Prefix, CorruptReason> {
        self.read_prefix(&mut Cursor { buf: body_start }, base)
            .map(|(prefix, _)| prefix)
    }

    /// Verifies the CRC and decodes a whole body of a segment of `topic`.
    pub(crate) fn decode(
        &mut self,
        body: &[u8],
        stored_crc: u32,
        base: u64,
        topic: &str,
    ) -> Result<(Prefix, Message), CorruptReason> {
        check_crc(body, stored_crc)?;
        let mut c = Cursor { buf: body };
        let (prefix, kind) = self.read_prefix(&mut c, base)?;
        let attributes = self.read_attributes(&mut c, kind)?;
        let message = Message {
            topic: topic.to_owned(),
            data: c.buf.to_vec(),
            attributes,
            publish_time: prefix.publish_time,
        };
        Ok((prefix, message))
    }

    fn read_prefix(
        &mut self,
        c: &mut Cursor<'_>,
        base: u64,
    ) -> Result<(Prefix, u8), CorruptReason> {
        let flags = c.u8()?;
        if flags & !(BLOCK_START | KIND_MASK) != 0 {
            return Err(CorruptReason::Malformed("unknown flags"));
        }
        let block_start = flags & BLOCK_START != 0;
        let offset = base
            .checked_add(c.varint()?)
            .ok_or(CorruptReason::Malformed("offset past the largest one"))?;
        let time = varint::unzigzag(c.varint()?);
        let publish_time = if block_start {
            self.sets.clear();
            time
        } else if self.in_block {
            self.prev_time.wrapping_add(time)
        } else {
            return Err(CorruptReason::Malformed(
                "the read starts inside a block, not at its start",
            ));
        };
        self.in_block = true;
        self.prev_time = publish_time;
        let prefix = Prefix {
            offset,
            publish_time,
            block_start,
        };
        Ok((prefix, (flags & KIND_MASK) >> 1))
    }

    fn read_attributes(
        &mut self,
        c: &mut Cursor<'_>,
        kind: u8,
    ) -> Result<Attributes, CorruptReason> {
        let mut set = match kind {
            REUSE => return self.set(c.varint()?).cloned(),
            NEW => Map::new(),
            NEW_FROM => Map::clone(self.set(c.varint()?)?),
            _ => return Err(CorruptReason::Malformed("unknown attribute encoding")),
        };
        let count = c.varint()?;
        // Each change takes a byte at least: a count past the body is a lie.
        if count > c.buf.len() as u64 {
            return Err(CorruptReason::Malformed(
                "more attribute changes than bytes left",
            ));
        }
        for _ in 0..count {
            apply_change(c, &mut set)?;
        }
        if self.sets.len() >= MAX_SETS {
            return Err(CorruptReason::Malformed(
                "more attribute sets in one block than a writer defines",
            ));
        }
        let set = Arc::new(set);
        self.sets.push(Arc::clone(&set));
        Ok(set)
    }

    fn set(&self, id: u64) -> Result<&Attributes, CorruptReason> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.sets.get(i))
            .ok_or(CorruptReason::Malformed(
                "refers to an attribute set its block has not defined",
            ))
    }
}

fn apply_change(c: &mut Cursor<'_>, set: &mut Map) -> Result<(), CorruptReason> {
    let op = c.u8()?;
    let name = match op & NAME_MASK {
        0 => {
            let n = c.varint_len()?;
            c.string(n, "attribute name is not UTF-8")?
        }
        code => NAMES
            .get(usize::from(code) - 1)
            .ok_or(CorruptReason::Malformed("unknown attribute name code"))?
            .to_string(),
    };
    match op & !NAME_MASK {
        SET_TEXT => {
            let n = c.varint_len()?;
            let value = c.string(n, "attribute value is not UTF-8")?;
            set.insert(name, value);
        }
        SET_NUMBER => {
            set.insert(name, c.varint()?.to_string());
        }
        REMOVE => {
            set.remove(&name);
        }
        _ => return Err(CorruptReason::Malformed("unknown attribute change")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::check_len;

    /// Splits one frame off the front of `buf`: (body, crc, rest).
    fn split(buf: &[u8]) -> (&[u8], u32, &[u8]) {
        let (len, used) = varint::get(buf).expect("length");
        let rest = &buf[used..];
        let crc = u32::from_le_bytes(rest[..4].try_into().expect("crc"));
        let (body, rest) = rest[4..].split_at(len as usize);
        (body, crc, rest)
    }

    fn message(attributes: &[(&str, &str)], data: &[u8], time: i64) -> Message {
        Message {
            topic: "projects/p/topics/t".into(),
            data: data.to_vec(),
            attributes: Arc::new(
                attributes
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            publish_time: time,
        }
    }

    fn event(id: &str, num: &str, subfolder: &str, time: i64) -> Message {
        let attributes = [
            (attr::DEVICE_ID, id),
            (attr::DEVICE_NUM_ID, num),
            (attr::DEVICE_REGISTRY_ID, "fleet"),
            (attr::DEVICE_REGISTRY_LOCATION, "europe-west1"),
            (attr::PROJECT_ID, "acme"),
            (attr::SUB_FOLDER, subfolder),
        ];
        message(&attributes, b"payload", time)
    }

    fn messages() -> Vec<Message> {
        vec![
            event("dev-1", "2800000000001", "", 1_764_000_000_000_000),
            event("dev-2", "2800000000002", "", 1_764_000_000_000_500),
            event("dev-1", "2800000000001", "", 1_764_000_000_000_400),
            event("dev-1", "2800000000001", "a/b", 1_764_000_000_000_900),
            // Number-like text that must stay text, and odd names and values.
            message(
                &[("deviceNumId", "007"), ("custom key", ""), ("n", "0")],
                b"",
                i64::MIN,
            ),
            message(
                &[
                    ("big", "18446744073709551616"),
                    ("max", "18446744073709551615"),
                ],
                &[0, 255],
                i64::MAX,
            ),
            message(&[], &[1, 2, 3], -1),
            message(&[("é", "ü")], b"x", 0),
        ]
    }

    fn encode_all(messages: &[Message], block_every: usize) -> Vec<u8> {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            enc.encode(i % block_every == 0, i as u64, m.clone(), &mut out);
        }
        out
    }

    fn decode_all(mut buf: &[u8], base: u64) -> Result<Vec<(Prefix, Message)>, CorruptReason> {
        let mut dec = Decoder::default();
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (body, crc, rest) = split(buf);
            check_len(body.len() as u64, MIN_BODY_LEN, 1 << 20)?;
            out.push(dec.decode(body, crc, base, "projects/p/topics/t")?);
            buf = rest;
        }
        Ok(out)
    }

    #[test]
    fn round_trips_with_any_block_size() {
        let ms = messages();
        for block_every in [1, 2, 3, 100] {
            let bytes = encode_all(&ms, block_every);
            let got = decode_all(&bytes, 40).expect("decodes");
            assert_eq!(got.len(), ms.len());
            for (i, ((prefix, m), want)) in got.iter().zip(&ms).enumerate() {
                assert_eq!(m, want, "message {i}, blocks of {block_every}");
                assert_eq!(prefix.offset, 40 + i as u64);
                assert_eq!(prefix.block_start, i % block_every == 0);
            }
        }
    }

    #[test]
    fn a_repeated_device_costs_a_few_bytes() {
        let ms = messages();
        let mut enc = Encoder::default();
        let mut sizes = Vec::new();
        for (i, m) in ms[..3].iter().enumerate() {
            let mut out = Vec::new();
            enc.encode(i == 0, i as u64, m.clone(), &mut out);
            sizes.push(out.len() - m.data.len());
        }
        // 1st: the whole set; 2nd: two changed values; 3rd: a reference.
        assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "{sizes:?}");
        assert!(sizes[1] <= 30, "{sizes:?}");
        assert!(sizes[2] <= 10, "{sizes:?}");
    }

    #[test]
    fn shared_sets_are_found_by_address_and_never_mistaken_for_another() {
        let set = |id: &str| event(id, "2800000000001", "", 0).attributes;
        let mut enc = Encoder::default();
        let (mut bytes, mut sizes, mut sent) = (Vec::new(), Vec::new(), Vec::new());
        // Encodes a message with `attributes` itself; keeps a copy to compare.
        let mut send = |attributes: &Attributes| {
            let i = sent.len();
            let m = Message {
                attributes: Arc::clone(attributes),
                ..event("x", "1", "", i as i64)
            };
            sent.push(Message {
                attributes: Arc::new(Map::clone(attributes)),
                ..m.clone()
            });
            let before = bytes.len();
            let data = m.data.len();
            enc.encode(i == 0, i as u64, m, &mut bytes);
            sizes.push(bytes.len() - before - data);
        };
        let first = set("dev-1");
        send(&first);
        send(&first);
        // An equal set elsewhere (the device reconnected): a reference by value.
        // Then the first set is gone, its memory free for the sets that follow.
        let again = set("dev-1");
        send(&again);
        drop(first);
        for i in 0..200 {
            let other = set(&format!("dev-{}", i + 2));
            send(&other);
            send(&again);
        }
        assert!(sizes[1] <= 10 && sizes[2] <= 10, "references: {sizes:?}");
        let got = decode_all(&bytes, 0).expect("decodes");
        assert_eq!(got.len(), sent.len());
        for (i, ((_, m), want)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(m, want, "message {i}");
        }
        // The decoder shares a set between the records that reference it.
        assert!(Arc::ptr_eq(&got[0].1.attributes, &got[1].1.attributes));
    }

    #[test]
    fn prefixes_give_offsets_and_times_without_the_body() {
        let ms = messages();
        let bytes = encode_all(&ms, 3);
        let mut dec = Decoder::default();
        let mut buf = &bytes[..];
        let mut i = 0;
        while !buf.is_empty() {
            let (body, _, rest) = split(buf);
            let p = dec
                .prefix(&body[..body.len().min(PREFIX_MAX)], 0)
                .expect("prefix");
            assert_eq!((p.offset, p.publish_time), (i as u64, ms[i].publish_time));
            buf = rest;
            i += 1;
        }
    }

    #[test]
    fn a_read_must_start_at_a_block_start() {
        let ms = messages();
        let bytes = encode_all(&ms, 100);
        let (_, _, second) = split(&bytes);
        assert_eq!(
            decode_all(second, 0).map(|v| v.len()),
            Err(CorruptReason::Malformed(
                "the read starts inside a block, not at its start"
            ))
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let ms = messages();
        let bytes = encode_all(&ms[..2], 100);
        let (first, crc, _) = split(&bytes);
        let mut dec = Decoder::default();
        for i in 0..first.len() * 8 {
            let mut b = first.to_vec();
            b[i / 8] ^= 1 << (i % 8);
            assert!(dec.decode(&b, crc, 0, "t").is_err(), "bit {i}");
        }
    }

    #[test]
    fn garbage_with_a_matching_crc_never_panics() {
        for len in 0..200usize {
            for seed in 0..8usize {
                let body: Vec<u8> = (0..len).map(|i| (i * 37 + len * seed) as u8).collect();
                let mut dec = Decoder::default();
                let _ = dec.decode(&body, crc32fast::hash(&body), u64::MAX - 3, "t");
                let mut with_start = body.clone();
                if let Some(f) = with_start.first_mut() {
                    *f &= 0b111;
                    *f |= BLOCK_START;
                }
                let _ = dec.decode(&with_start, crc32fast::hash(&with_start), 0, "t");
            }
        }
    }

    #[test]
    fn the_size_bound_is_never_exceeded() {
        let ms = messages();
        let mut enc = Encoder::default();
        for (i, m) in ms.iter().enumerate() {
            let mut out = Vec::new();
            enc.encode(i == 0, u64::MAX, m.clone(), &mut out);
            let (body, _, _) = split(&out);
            assert!(body.len() as u64 <= max_body_len(m), "{i}");
            assert!(out.len() as u64 <= max_frame_len(max_body_len(m)), "{i}");
        }
    }

    #[test]
    fn name_codes_match_the_names_table() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(name_code(name), Some(i as u8 + 1), "{name}");
        }
        assert_eq!(name_code("deviceid"), None);
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(check_header(&HEADER), Ok(()));
        assert!(matches!(
            check_header(&HEADER[..3]),
            Err(CorruptReason::Truncated {
                needed: 8,
                available: 3
            })
        ));
        let mut future = HEADER;
        future[4] = 3;
        assert_eq!(check_header(&future), Err(CorruptReason::UnknownVersion(3)));
        assert!(check_header(b"not a segment").is_err());
        assert_eq!(as_number("2800000000001"), Some(2_800_000_000_001));
        for text in ["", "007", "+1", "1e3", "18446744073709551616", " 1"] {
            assert_eq!(as_number(text), None, "{text}");
        }
    }
}
