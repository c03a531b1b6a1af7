//! Message framing for stream sockets.
//!
//! A stream socket merges and splits writes, and the kernel attaches the fds of
//! a `sendmsg` to the first byte it carried. So each message travels as one
//! frame:
//!
//! ```text
//! offset 0  u32 little-endian  payload length in bytes
//! offset 4  u16 little-endian  number of fds attached to this frame
//! offset 6  u16                reserved, must be 0
//! offset 8  payload
//! ```
//!
//! and the fds go with the `sendmsg` that carries the header, so they arrive
//! with the `recvmsg` that reads the header's first byte. The decoder records,
//! for every batch of fds, the stream range of the read that brought it; a
//! header that starts in that range owns the batch and must announce exactly
//! its size. A header announcing fds that did not come, or fds that no header
//! claims, is a protocol error: the stream cannot be trusted any more.

use std::collections::vec_deque::{Drain, VecDeque};

use crate::error::{Error, Result};

/// Size of a frame header.
pub const HEADER_LEN: usize = 8;

/// Encodes a frame header.
pub fn encode_header(payload_len: u32, fd_count: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&payload_len.to_le_bytes());
    h[4..6].copy_from_slice(&fd_count.to_le_bytes());
    h
}

/// The stream range that one read covered and how many fds it brought (the
/// fds themselves wait in [`FrameDecoder`]'s `fds`, oldest first).
#[derive(Debug)]
struct FdBatch {
    start: u64,
    end: u64,
    count: usize,
}

/// One decoded frame, borrowing its payload from the decoder.
#[derive(Debug)]
pub struct Frame<'a, F> {
    /// The payload.
    pub payload: &'a [u8],
    /// The fds the frame announced, in order, taken out of the decoder as
    /// they are iterated (those not taken are dropped with it).
    pub fds: Drain<'a, F>,
}

/// Splits a byte stream with fd batches into frames. Generic over the fd type
/// so that it can be fuzzed without real fds; fds it drops are closed by their
/// own `Drop` (`OwnedFd` in real use).
#[derive(Debug)]
pub struct FrameDecoder<F> {
    max_bytes: usize,
    max_fds: usize,
    /// Read buffer. Its whole length is initialized once and reused, so that
    /// making room for a read never zero-fills it again.
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    batches: VecDeque<FdBatch>,
    /// The fds of every batch, in order: one queue for all, so that a read
    /// with fds allocates nothing once the queue has grown.
    fds: VecDeque<F>,
}

impl<F> FrameDecoder<F> {
    /// A decoder that accepts payloads of at most `max_bytes` and at most
    /// `max_fds` fds per frame.
    pub fn new(max_bytes: usize, max_fds: usize) -> Self {
        FrameDecoder {
            max_bytes,
            max_fds,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            base: 0,
            batches: VecDeque::new(),
            fds: VecDeque::new(),
        }
    }

    /// Room for the next read: at least `min` bytes, more when a frame in
    /// progress needs it. Call [`commit`](Self::commit) with what was read.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        let mut want = min;
        if let Some(len) = self.pending_frame_len() {
            want = want.max(len.saturating_sub(self.end - self.pos));
        }
        if self.pos > 0 && (self.pos == self.end || self.buf.len() - self.end < want) {
            // Move the unparsed bytes to the front (usually none or a few).
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < want {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into the [`spare`](Self::spare) room,
    /// together with the fds that came with them.
    pub fn commit(&mut self, n: usize, mut fds: Vec<F>) {
        self.commit_from(n, &mut fds);
    }

    /// [`commit`](Self::commit) taking the fds out of `fds`, which is left
    /// empty with its capacity, for the next read.
    pub fn commit_from(&mut self, n: usize, fds: &mut Vec<F>) {
        let start = self.base + self.end as u64;
        self.end = (self.end + n).min(self.buf.len());
        if !fds.is_empty() {
            self.batches.push_back(FdBatch {
                start,
                end: start + n as u64,
                count: fds.len(),
            });
            self.fds.extend(fds.drain(..));
        }
    }

    /// Adds bytes read elsewhere (copying them) with the fds that came with them.
    pub fn push(&mut self, data: &[u8], fds: Vec<F>) {
        let spare = self.spare(data.len());
        spare[..data.len()].copy_from_slice(data);
        self.commit(data.len(), fds);
    }

    /// Total length (header + payload) of the frame at the read position, if
    /// its header has arrived and is acceptable.
    fn pending_frame_len(&self) -> Option<usize> {
        let header = self.buf[..self.end].get(self.pos..self.pos + HEADER_LEN)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        (len <= self.max_bytes).then_some(HEADER_LEN + len)
    }

    /// The header at the read position, if all of it has arrived: the
    /// payload length and the fd count, checked against the limits.
    fn header(&self) -> Result<Option<(usize, usize)>> {
        let Some(header) = self.buf[..self.end].get(self.pos..self.pos + HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let fd_count = u16::from_le_bytes([header[4], header[5]]) as usize;
        let reserved = u16::from_le_bytes([header[6], header[7]]);
        if reserved != 0 {
            return Err(protocol(format!(
                "a frame header has reserved bits set ({reserved:#x})"
            )));
        }
        if len > self.max_bytes {
            return Err(protocol(format!(
                "a frame announces {len} bytes, more than maxBytes ({})",
                self.max_bytes
            )));
        }
        if fd_count > self.max_fds {
            return Err(protocol(format!(
                "a frame announces {fd_count} fds, more than maxFds ({})",
                self.max_fds
            )));
        }
        Ok(Some((len, fd_count)))
    }

    /// Checks the fds held against the frame at the read position, whether
    /// it is complete or not, so that a peer cannot make the decoder hold
    /// more than one frame's fds while that frame is incomplete.
    ///
    /// The kernel hands the fds of a `sendmsg` to the read that brings its
    /// first byte (that read may begin with fd-less bytes sent before), and
    /// a peer's `sendmsg` with fds starts with a header. So a batch belongs
    /// to the first header announcing fds that starts within its read, and
    /// must be exactly what that header announces; a batch whose read holds
    /// no header start can belong to none. Fds in the middle of a frame,
    /// more than the header announced, or more than `max_fds` in one read,
    /// are a protocol error at once: without this check a header announcing
    /// a long payload, followed by one-byte reads each carrying fds, would
    /// have every one of them held until the payload ends.
    fn check_fds(&self, header: Option<(usize, usize)>) -> Result<()> {
        let header_at = self.base + self.pos as u64;
        // Where the next header starts, or the earliest it can start while
        // this header is incomplete.
        let next_header_at = header_at + (HEADER_LEN + header.map_or(0, |(len, _)| len)) as u64;
        let mut batches = self.batches.iter();
        let mut first = batches.next();
        if let Some(batch) = first {
            if batch.end <= header_at {
                // Its read ended before this header began.
                return Err(protocol(format!(
                    "{} fds arrived that no message announced",
                    batch.count
                )));
            }
            if batch.count > self.max_fds {
                return Err(protocol(format!(
                    "{} fds arrived with one message, more than maxFds ({})",
                    batch.count, self.max_fds
                )));
            }
        }
        // A header announcing fds owns the first batch, which must hold its
        // first byte and be of the announced size.
        if let Some((_, fd_count)) = header.filter(|&(_, n)| n > 0) {
            match first {
                Some(batch) if batch.start <= header_at => {
                    if batch.count != fd_count {
                        return Err(protocol(format!(
                            "a frame announces {fd_count} fds but {} arrived with it",
                            batch.count
                        )));
                    }
                }
                _ => {
                    return Err(protocol(format!(
                        "a frame announces {fd_count} fds but none arrived with it"
                    )))
                }
            }
            first = batches.next();
        } else if header.is_none() && first.is_some_and(|b| b.start <= header_at) {
            // Perhaps this header's, once it is complete.
            first = batches.next();
        }
        // Any other batch belongs to a later header: its read must reach
        // the next header's first byte.
        if let Some(batch) = first {
            if batch.end <= next_header_at {
                return Err(protocol(match header {
                    // Its read began with this header, which announced none.
                    Some(_) if batch.start <= header_at => {
                        format!("a frame announces 0 fds but {} arrived with it", batch.count)
                    }
                    Some((_, announced)) => format!(
                        "{} fds arrived in the middle of a message, which announced {announced}",
                        batch.count
                    ),
                    None => format!("{} fds arrived in the middle of a message header", batch.count),
                }));
            }
            if batch.count > self.max_fds {
                return Err(protocol(format!(
                    "{} fds arrived with one message, more than maxFds ({})",
                    batch.count, self.max_fds
                )));
            }
        }
        Ok(())
    }

    /// The next complete frame, if one has arrived. An error (the peer broke
    /// the wire format) comes as soon as what is held shows it, even before
    /// the frame is complete.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_, F>>> {
        let header = self.header()?;
        // Every check comes before the frame takes anything, so that an
        // error leaves the decoder as it was (what it holds is dropped with
        // it, or by clear()).
        self.check_fds(header)?;
        let Some((len, fd_count)) = header else {
            return Ok(None);
        };
        if self.end - self.pos < HEADER_LEN + len {
            return Ok(None);
        }
        // Complete, and check_fds found the header's own batch (if it
        // announced fds) and no batch that ends within the frame.
        if fd_count > 0 {
            self.batches.pop_front();
        }
        let start = self.pos + HEADER_LEN;
        self.pos = start + len;
        Ok(Some(Frame {
            payload: &self.buf[start..start + len],
            fds: self.fds.drain(..fd_count),
        }))
    }

    /// Whether bytes of an unfinished frame or unclaimed fds are held.
    pub fn is_mid_frame(&self) -> bool {
        self.pos < self.end || !self.batches.is_empty()
    }

    /// How many received fds wait for their frame to complete.
    pub fn queued_fds(&self) -> usize {
        debug_assert_eq!(
            self.batches.iter().map(|b| b.count).sum::<usize>(),
            self.fds.len(),
            "the fd batches and the fd queue disagree"
        );
        self.fds.len()
    }

    /// Drops every byte and fd held (closing the fds).
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
        self.end = 0;
        self.batches.clear();
        self.fds.clear();
    }
}

fn protocol(reason: String) -> Error {
    Error::Protocol { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8], fds: u16) -> Vec<u8> {
        let mut v = encode_header(payload.len() as u32, fds).to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn drain(d: &mut FrameDecoder<u32>) -> Result<Vec<(Vec<u8>, Vec<u32>)>> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            out.push((f.payload.to_vec(), f.fds.collect()));
        }
        Ok(out)
    }

    #[test]
    fn splits_and_joins() {
        let mut d = FrameDecoder::new(1024, 4);
        let mut stream = frame(b"hello", 0);
        stream.extend(frame(b"", 2));
        stream.extend(frame(b"world", 1));
        // Arrives as: bytes up to the middle of the 2-fd header (with its fds)...
        let second = frame(b"hello", 0).len();
        d.push(&stream[..second + 3], vec![]);
        assert_eq!(drain(&mut d).unwrap(), vec![(b"hello".to_vec(), vec![])]);
        // The kernel hands the fds with the read holding the header's first byte.
        let mut d = FrameDecoder::new(1024, 4);
        d.push(&stream[..second], vec![]);
        d.push(&stream[second..second + 3], vec![7, 8]);
        d.push(&stream[second + 3..second + 8], vec![]);
        d.push(&stream[second + 8..], vec![9]);
        assert_eq!(
            drain(&mut d).unwrap(),
            vec![
                (b"hello".to_vec(), vec![]),
                (vec![], vec![7, 8]),
                (b"world".to_vec(), vec![9])
            ]
        );
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn fd_less_bytes_glued_in_front_of_an_fd_frame() {
        let mut d = FrameDecoder::new(1024, 4);
        let mut read = frame(b"aaaa", 0);
        read.extend(frame(b"b", 1));
        d.push(&read, vec![5]);
        assert_eq!(
            drain(&mut d).unwrap(),
            vec![(b"aaaa".to_vec(), vec![]), (b"b".to_vec(), vec![5])]
        );
    }

    #[test]
    fn lying_headers_are_protocol_errors() {
        let mut d = FrameDecoder::<u32>::new(1024, 4);
        d.push(&frame(b"x", 2), vec![1]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        let mut d = FrameDecoder::<u32>::new(1024, 4);
        d.push(&frame(b"x", 1), vec![]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        let mut d = FrameDecoder::<u32>::new(1024, 4);
        d.push(&frame(b"x", 0), vec![3]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        // Unclaimed fds noticed when the next header shows up.
        let mut d = FrameDecoder::<u32>::new(1024, 4);
        let mut read = frame(b"x", 0);
        read.extend_from_slice(&frame(b"y", 0)[..3]);
        d.push(&read, vec![3]);
        assert!(d.next_frame().unwrap().is_some());
        d.push(&frame(b"y", 0)[3..], vec![]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        let mut d = FrameDecoder::<u32>::new(4, 4);
        d.push(&frame(b"too long", 0), vec![]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        let mut d = FrameDecoder::<u32>::new(64, 1);
        d.push(&frame(b"x", 2), vec![1, 2]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        let mut d = FrameDecoder::<u32>::new(64, 1);
        let mut bad = frame(b"x", 0);
        bad[7] = 1;
        d.push(&bad, vec![]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));
    }

    #[test]
    fn fds_in_the_middle_of_a_frame_are_an_error_before_it_completes() {
        // A header announcing a long payload and no fds, then one-byte reads
        // each carrying fds: the first such read is an error.
        let mut d = FrameDecoder::<u32>::new(65536, 253);
        d.push(&encode_header(65536, 0), vec![]);
        assert!(d.next_frame().unwrap().is_none());
        d.push(b"x", (0..253).collect());
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        // The same before the header is complete: fds on its third byte.
        let mut d = FrameDecoder::<u32>::new(64, 4);
        d.push(&encode_header(1, 0)[..2], vec![]);
        d.push(&encode_header(1, 0)[2..3], vec![1]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        // A header that announces fds none of which came with it: known as
        // soon as the header is there.
        let mut d = FrameDecoder::<u32>::new(64, 4);
        d.push(&encode_header(32, 2), vec![]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        // More fds than announced, or than max_fds, on the header's own read.
        let mut d = FrameDecoder::<u32>::new(64, 4);
        d.push(&encode_header(32, 1), vec![1, 2]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));
        let mut d = FrameDecoder::<u32>::new(64, 4);
        d.push(&encode_header(32, 0)[..3], vec![1, 2, 3, 4, 5]);
        assert!(matches!(d.next_frame(), Err(Error::Protocol { .. })));

        // Legitimate: a read that ends the frame and brings the next
        // header's first byte with that header's fds, while the frame is
        // still incomplete before it.
        let mut stream = frame(b"abcdef", 1);
        stream.extend(frame(b"g", 2));
        let mut d = FrameDecoder::<u32>::new(64, 4);
        d.push(&stream[..10], vec![1]);
        assert!(d.next_frame().unwrap().is_none());
        assert_eq!(d.queued_fds(), 1);
        d.push(&stream[10..], vec![2, 3]);
        assert_eq!(
            drain(&mut d).unwrap(),
            vec![(b"abcdef".to_vec(), vec![1]), (b"g".to_vec(), vec![2, 3])]
        );
    }

    #[test]
    fn a_partial_read_then_the_next_fd_frame() {
        // "AA"+1 fd, then "AABBBB"+2 fds (the kernel's behaviour after a short read).
        let mut stream = frame(b"AAAA", 1);
        let cut = 2;
        stream.extend(frame(b"BBBB", 2));
        let mut d = FrameDecoder::new(64, 4);
        d.push(&stream[..cut], vec![1]);
        d.push(&stream[cut..], vec![2, 3]);
        assert_eq!(
            drain(&mut d).unwrap(),
            vec![(b"AAAA".to_vec(), vec![1]), (b"BBBB".to_vec(), vec![2, 3])]
        );
    }
}
