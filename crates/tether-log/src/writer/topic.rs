//! One topic in the writer thread: staging records into its active segment,
//! rolling segments, and committing (write, fsync, publish to readers).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::sync_dir;
use crate::record::{Format, v2};
use crate::segment::{self, INDEX_INTERVAL, SegmentMeta};
use crate::state::{Shared, TopicState};
use crate::{LogConfig, LogError, Message};

/// The segment being appended to (always format 2).
#[derive(Debug)]
pub(crate) struct Active {
    pub file: File,
    pub path: PathBuf,
    /// Offset of its first record.
    pub base: u64,
    /// Bytes fsynced (and visible to readers).
    pub durable_len: u64,
    /// The file's length. Past the data it holds zeros written ahead
    /// ([`LogConfig::write_ahead_bytes`]), which the next appends overwrite.
    pub file_len: u64,
}

/// The writer's view of one topic: the visible state plus what is staged.
#[derive(Debug)]
pub(crate) struct TopicWriter {
    pub state: Arc<TopicState>,
    /// None until an append creates a segment (also after recovery found a
    /// format-1 segment last: it is never appended to).
    pub active: Option<Active>,
    /// The next offset that is durable.
    pub durable_next: u64,
    /// The next offset to assign (durable_next + staged records).
    next_offset: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    pending_index: Vec<(u64, u64)>,
    pending_max_time: Option<i64>,
    /// Where the current block (and its index entry) started; None: the next
    /// record starts a block.
    last_indexed: Option<u64>,
    encoder: v2::Encoder,
    /// Set when a failed write could not be rolled back.
    unavailable: Option<String>,
}

/// What staging one record did.
pub(crate) struct Staged {
    pub offset: u64,
    /// A full segment was sealed (and a new one started) first.
    pub rolled: bool,
}

impl TopicWriter {
    /// The writer of a topic whose next offset is `next`. Appending starts a
    /// new block: what the dictionary of an existing block held is not known.
    pub(crate) fn new(state: Arc<TopicState>, active: Option<Active>, next: u64) -> Self {
        Self {
            state,
            active,
            durable_next: next,
            next_offset: next,
            pending: Vec::new(),
            pending_index: Vec::new(),
            pending_max_time: None,
            last_indexed: None,
            encoder: v2::Encoder::default(),
            unavailable: None,
        }
    }

    fn written_len(&self) -> u64 {
        self.active.as_ref().map_or(0, |a| a.durable_len) + self.pending.len() as u64
    }

    /// Encodes one record into the pending buffer, rolling first if it would
    /// overflow the active segment. `frame_len` is the most it can take.
    pub(crate) fn stage(
        &mut self,
        message: Message,
        frame_len: u64,
        config: &LogConfig,
        shared: &Shared,
    ) -> Result<Staged, LogError> {
        if let Some(reason) = &self.unavailable {
            return Err(LogError::TopicUnavailable {
                topic: self.state.name.clone(),
                reason: reason.clone(),
            });
        }
        let written = self.written_len();
        let mut rolled = false;
        if self.active.is_none() {
            self.create_segment(shared)?;
        } else if written > Format::V2.header_len() && written + frame_len > config.segment_bytes {
            // Seal the full segment: what is staged for it becomes durable first.
            self.commit(shared, config)?;
            self.seal()?;
            self.create_segment(shared)?;
            rolled = true;
        }
        if self.written_len() == 0 {
            self.pending.extend_from_slice(&v2::HEADER);
        }
        let pos = self.written_len();
        let block_start = self.last_indexed.is_none_or(|p| pos >= p + INDEX_INTERVAL)
            || self.encoder.block_full();
        if block_start {
            self.pending_index.push((self.next_offset, pos));
            self.last_indexed = Some(pos);
        }
        let base = self.active.as_ref().map_or(self.next_offset, |a| a.base);
        let time = message.publish_time;
        self.pending_max_time = Some(self.pending_max_time.map_or(time, |t| t.max(time)));
        self.encoder.encode(
            block_start,
            self.next_offset - base,
            message,
            &mut self.pending,
        );
        let offset = self.next_offset;
        self.next_offset += 1;
        Ok(Staged { offset, rolled })
    }

    /// Creates the segment starting at the next offset and makes it active.
    fn create_segment(&mut self, shared: &Shared) -> Result<(), LogError> {
        let base = self.next_offset;
        let dir = &self.state.dir;
        let path = dir.join(segment::file_name(base));
        let fail = |action, e| LogError::append(&self.state.name, path.clone(), action, e);
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
            sync_dir(&shared.root).map_err(|e| fail("sync the directory entry of", e))?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| fail("create", e))?;
        // The new file's directory entry must be durable before records in it are acked.
        sync_dir(dir).map_err(|e| fail("sync the directory entry of", e))?;
        self.state
            .write_segments()
            .push(SegmentMeta::empty(base, path.clone(), Format::V2));
        self.active = Some(Active {
            file,
            path,
            base,
            durable_len: 0,
            file_len: 0,
        });
        self.last_indexed = None;
        Ok(())
    }

    /// Cuts the active segment's zeros written ahead, durably: before the next
    /// segment exists (only the last segment of a topic may end in zeros), and
    /// when the log closes.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        if active.file_len > active.durable_len {
            let cut = |e| LogError::append(&self.state.name, active.path.clone(), "seal", e);
            active.file.set_len(active.durable_len).map_err(cut)?;
            active.file.sync_data().map_err(cut)?;
            active.file_len = active.durable_len;
        }
        Ok(())
    }

    /// Writes and fsyncs what is staged, then publishes it to readers. On
    /// failure the file is cut back to its durable length, so a failed batch
    /// leaves nothing behind.
    pub(crate) fn commit(&mut self, shared: &Shared, config: &LogConfig) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let data_end = active.durable_len + self.pending.len() as u64;
        let result = active
            .file
            .write_all_at(&self.pending, active.durable_len)
            .map_err(|e| ("append to", e))
            .and_then(|()| {
                active.file_len = active.file_len.max(data_end);
                write_ahead(active, data_end, config);
                shared.syncs.fetch_add(1, Ordering::Relaxed);
                super::priority::wait_for_disk(|| active.file.sync_data()).map_err(|e| ("fsync", e))
            });
        if let Err((action, e)) = result {
            let err = LogError::append(&self.state.name, active.path.clone(), action, e);
            self.roll_back(&err);
            return Err(err);
        }
        let written = self.pending.len() as u64;
        active.durable_len += written;
        shared.bytes.fetch_add(written, Ordering::Relaxed);
        if let Some(meta) = self.state.write_segments().last_mut() {
            meta.len = active.durable_len;
            meta.next = self.next_offset;
            meta.index.append(&mut self.pending_index);
            meta.max_publish_time = match (meta.max_publish_time, self.pending_max_time) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        self.pending.clear();
        self.pending_index.clear();
        self.pending_max_time = None;
        self.durable_next = self.next_offset;
        self.state.next.send_replace(self.durable_next);
        Ok(())
    }

    fn roll_back(&mut self, err: &LogError) {
        self.pending.clear();
        self.pending_index.clear();
        self.pending_max_time = None;
        self.next_offset = self.durable_next;
        // The dictionary may name sets whose definitions were just cut: the
        // next record starts a fresh block.
        self.last_indexed = None;
        if let Some(active) = &self.active {
            // After a failed fsync the page cache is untrustworthy: cut the file
            // back to what was synced; if even that fails, stop using the topic.
            if let Err(e) = active.file.set_len(active.durable_len) {
                self.unavailable = Some(format!("{err}; truncating back failed too: {e}"));
            }
        }
        if let Some(active) = &mut self.active {
            active.file_len = active.durable_len;
        }
    }
}

/// Most zeros written by one call: a static buffer, no allocation.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Writes zeros ahead of `data_end` once the data has reached the zeros'
/// end, up to [`LogConfig::write_ahead_bytes`] and the segment size; the
/// fsync that follows makes the new length durable once per chunk. Best
/// effort: on a full disk the file is cut back to the data, and appends go on
/// growing it as they would without.
fn write_ahead(active: &mut Active, data_end: u64, config: &LogConfig) {
    if config.write_ahead_bytes == 0 || active.file_len > data_end {
        return;
    }
    let end = (data_end + config.write_ahead_bytes).min(config.segment_bytes);
    let mut at = data_end;
    while at < end {
        let n = (end - at).min(ZEROS.len() as u64) as usize;
        if active.file.write_all_at(&ZEROS[..n], at).is_err() {
            if active.file.set_len(data_end).is_ok() {
                active.file_len = data_end;
            }
            return;
        }
        at += n as u64;
        active.file_len = at;
    }
}
