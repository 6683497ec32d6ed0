//! What a session keeps of its input between reads.
//!
//! Whole packets are decoded straight from the caller's bytes. Only what cannot be
//! decoded yet is copied and held: a packet split across reads, and (on the server)
//! input that arrives while a CONNECT is being authenticated. A split packet is
//! completed by copying just its missing bytes, and held bytes are compacted once per
//! call, never once per packet, so a read of many small packets costs no more than
//! decoding them.

use alloc::vec::Vec;

use crate::codec::frame_len;

/// Room for held bytes kept once they are decoded; a larger buffer (a burst, or input
/// held during authentication) is released.
const HELD_KEPT: usize = 4 * 1024;

/// The bytes a session received but has not decoded yet.
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    held: Vec<u8>,
}

impl InputBuffer {
    /// Offers the held bytes, then `input`, to `consume`. It decodes whole packets from
    /// the front of the slice it is given and returns how many bytes it used; it may
    /// stop early (a session awaiting a decision, or closed). Whatever it leaves of
    /// `input` is held for the next call.
    pub(crate) fn feed(&mut self, mut input: &[u8], mut consume: impl FnMut(&[u8]) -> usize) {
        if !self.held.is_empty() {
            let (rest_of_packet, after) = input.split_at(self.missing(input).min(input.len()));
            self.held.extend_from_slice(rest_of_packet);
            input = after;
            self.resume(&mut consume);
            if !self.held.is_empty() {
                // Still incomplete (so `input` is used up), or `consume` stopped early.
                self.held.extend_from_slice(input);
                return;
            }
        }
        let used = consume(input).min(input.len());
        self.held.extend_from_slice(&input[used..]);
        self.release_if_idle();
    }

    /// Gives back a large buffer once nothing is held in it.
    fn release_if_idle(&mut self) {
        if self.held.is_empty() && self.held.capacity() > HELD_KEPT {
            self.held = Vec::new();
        }
    }

    /// Bytes of memory held for input.
    pub(crate) fn capacity(&self) -> usize {
        self.held.capacity()
    }

    /// Offers the held bytes alone to `consume` again (after the session's state
    /// changed) and drops what it used.
    pub(crate) fn resume(&mut self, mut consume: impl FnMut(&[u8]) -> usize) {
        let used = consume(&self.held).min(self.held.len());
        self.held.drain(..used);
        self.release_if_idle();
    }

    /// How many bytes are held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Drops the held bytes and their memory (the session ended).
    pub(crate) fn clear(&mut self) {
        self.held = Vec::new();
    }

    /// How many bytes of `input` complete the packet at the front of the held bytes:
    /// all of them while its length is unknown (the decoder then sees everything and
    /// reports what is wrong).
    fn missing(&self, input: &[u8]) -> usize {
        // A fixed header is at most 5 bytes; it may itself be split across reads.
        let mut header = [0u8; 5];
        let from_held = self.held.len().min(header.len());
        header[..from_held].copy_from_slice(&self.held[..from_held]);
        let from_input = (header.len() - from_held).min(input.len());
        header[from_held..from_held + from_input].copy_from_slice(&input[..from_input]);
        frame_len(&header[..from_held + from_input])
            .map_or(input.len(), |total| total.saturating_sub(self.held.len()))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::InputBuffer;
    use crate::codec::frame_len;

    const PINGREQ: [u8; 2] = [0xc0, 0x00];
    const PUBACK: [u8; 4] = [0x40, 0x02, 0x00, 0x01];

    /// Takes whole frames from the front of `data`, recording the size of each slice
    /// offered and each frame taken.
    fn frames(data: &[u8], offered: &mut Vec<usize>, taken: &mut Vec<Vec<u8>>) -> usize {
        offered.push(data.len());
        let mut used = 0;
        while let Some(frame) = frame_len(&data[used..]).and_then(|n| data.get(used..used + n)) {
            taken.push(frame.to_vec());
            used += frame.len();
        }
        used
    }

    #[test]
    fn whole_packets_are_not_held_and_a_split_one_is_completed_alone() {
        let mut buffer = InputBuffer::default();
        let (mut offered, mut taken) = (Vec::new(), Vec::new());
        let mut first = PINGREQ.to_vec();
        first.extend_from_slice(&PUBACK[..1]);
        buffer.feed(&first, |d| frames(d, &mut offered, &mut taken));
        assert_eq!(taken, vec![PINGREQ.to_vec()]);
        assert_eq!(
            buffer.len(),
            1,
            "only the split PUBACK's first byte is held"
        );

        let mut second = PUBACK[1..].to_vec();
        second.extend_from_slice(&PINGREQ);
        second.extend_from_slice(&PUBACK);
        buffer.feed(&second, |d| frames(d, &mut offered, &mut taken));
        assert_eq!(
            taken[1..],
            [PUBACK.to_vec(), PINGREQ.to_vec(), PUBACK.to_vec()]
        );
        // The split PUBACK was completed on its own (4 bytes), then the rest of the
        // read was decoded where it lay (6 bytes).
        assert_eq!(offered, [3, 4, 6]);
        assert_eq!(buffer.len(), 0);
    }

    #[test]
    fn a_consumer_that_stops_leaves_the_rest_held_in_order() {
        let mut buffer = InputBuffer::default();
        buffer.feed(&[1, 2, 3], |_| 1);
        buffer.feed(&[4, 5], |_| 0);
        assert_eq!(buffer.len(), 4);
        let mut resumed = Vec::new();
        buffer.resume(|d| {
            resumed.extend_from_slice(d);
            d.len()
        });
        assert_eq!(resumed, [2, 3, 4, 5]);
        assert_eq!(buffer.len(), 0);
    }
}
