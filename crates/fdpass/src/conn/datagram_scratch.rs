//! The receive buffer of datagram and seqpacket connections: one per thread,
//! not one per connection (see [`DatagramScratch`]).

use std::cell::Cell;

thread_local! {
    /// The receive buffer of every datagram and seqpacket connection of this
    /// thread: a message must be read whole, into room for `maxBytes`, but
    /// only its own bytes are kept (copied into the batch). One buffer per
    /// thread rather than per connection, so that a thousand connections
    /// with a maxBytes of a few MiB do not hold a few GiB. Its pages are
    /// touched only as far as the messages that arrived reach.
    static DATAGRAM_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// This thread's datagram buffer, taken for one read and put back on drop.
pub(super) struct DatagramScratch(pub(super) Vec<u8>);

impl DatagramScratch {
    /// The buffer, with room for at least `len` bytes.
    pub(super) fn take(len: usize) -> Self {
        let mut buf = DATAGRAM_SCRATCH.with(Cell::take);
        if buf.len() < len {
            // A fresh zeroed allocation (calloc) of this size is untouched
            // memory: it costs only the pages messages write into.
            buf = vec![0; len];
        }
        DatagramScratch(buf)
    }
}

impl Drop for DatagramScratch {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let _ = DATAGRAM_SCRATCH.try_with(|cell| cell.set(buf));
    }
}
