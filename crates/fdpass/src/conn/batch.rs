//! A batch of messages read in one go.

use std::os::fd::{AsRawFd, OwnedFd};

/// A batch reads no more from the socket once its payloads reach this many
/// bytes, however many messages were asked for: what one read takes in stays
/// bounded, and usually fits the binding's shared buffers. Frames the decoder
/// already holds are still handed over (they cost no more memory, and no
/// readiness event would come for them).
pub const BATCH_BYTES: usize = crate::wire_constants::SHARED_SCRATCH_BYTES;

/// Messages read in one go: the payloads back to back, `meta` =
/// `[count, (length, fd count, fds...)...]`, and the fds, owned until the
/// receiver takes them.
#[derive(Debug, Default)]
pub struct Batch {
    /// The payloads, back to back.
    pub data: Vec<u8>,
    /// `[count, (length, fd count, fds...)...]`.
    pub meta: Vec<i32>,
    /// The fds `meta` lists, owned.
    pub fds: Vec<OwnedFd>,
}

impl Batch {
    /// Empties the batch, keeping its allocations.
    pub(super) fn reset(&mut self) {
        self.data.clear();
        self.meta.clear();
        self.meta.push(0);
        self.fds.clear();
    }

    /// Appends one message and its fds.
    pub(super) fn push(&mut self, payload: &[u8], fds: impl ExactSizeIterator<Item = OwnedFd>) {
        let first = self.fds.len();
        self.fds.reserve(fds.len());
        self.fds.extend(fds);
        self.push_received(payload, first);
    }

    /// Appends one message whose fds were received straight into `fds`,
    /// from index `first` on.
    pub(super) fn push_received(&mut self, payload: &[u8], first: usize) {
        if self.meta.is_empty() {
            self.meta.push(0);
        }
        let fds = &self.fds[first..];
        self.data.extend_from_slice(payload);
        // Payloads are at most maxBytes (a u32) and fds at most 253.
        self.meta.push(payload.len() as i32);
        self.meta.push(fds.len() as i32);
        self.meta.extend(fds.iter().map(AsRawFd::as_raw_fd));
        self.meta[0] += 1;
    }

    /// The batch, to be reused by the next read, unless a large message
    /// grew it past twice [`BATCH_BYTES`]: that memory is let go.
    pub(super) fn into_spare(self) -> Option<Batch> {
        (self.data.capacity() <= 2 * BATCH_BYTES).then_some(self)
    }

    /// How many messages it holds.
    pub fn count(&self) -> usize {
        self.meta.first().map_or(0, |&n| n as usize)
    }

    /// Whether it holds `max` messages, or at least `max_fds` fds.
    pub(super) fn is_full(&self, (max, max_fds): (usize, usize)) -> bool {
        self.count() >= max || self.fds.len() >= max_fds
    }

    /// Whether it may read more from the socket: not full, and under
    /// [`BATCH_BYTES`] of payloads.
    pub(super) fn may_read(&self, limits: (usize, usize)) -> bool {
        !self.is_full(limits) && self.data.len() < BATCH_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::READ_CHUNK;

    #[test]
    fn a_batch_reads_no_more_past_its_message_fd_or_byte_limit() {
        let mut batch = Batch::default();
        batch.reset();
        let limits = (4096, 1024);
        let payload = vec![7u8; READ_CHUNK];
        let mut pushed = 0;
        while batch.may_read(limits) {
            batch.push(&payload, std::iter::empty());
            pushed += 1;
        }
        // However many messages were asked for, the bytes stop the reads,
        // but the batch is not full: held frames may still join it.
        assert_eq!(pushed, BATCH_BYTES / READ_CHUNK);
        assert_eq!(batch.count(), pushed);
        assert!(!batch.is_full(limits));

        batch.reset();
        assert!(batch.may_read(limits));
        batch.push(b"x", std::iter::empty());
        assert!(batch.is_full((1, 1024)), "one message asked for");
        assert!(!batch.may_read((1, 1024)));
    }
}
