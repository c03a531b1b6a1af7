//! Sends, and the queue of those the kernel did not take at once.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::Event;
use crate::error::{Error, Result};
use crate::frame::encode_header;
use crate::message::{check_send, send_vectored_waiting, Wait};

#[derive(Debug)]
struct PendingWrite {
    bytes: Vec<u8>,
    offset: usize,
    /// Duplicates of the fds to attach, owned until the first byte goes out.
    fds: Vec<OwnedFd>,
}

/// Sends waiting for the socket to be writable, oldest first.
#[derive(Debug, Default)]
pub(super) struct WriteQueue {
    writes: VecDeque<PendingWrite>,
    bytes: usize,
}

impl WriteQueue {
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Drops every queued send, closing its fds.
    pub(super) fn clear(&mut self) {
        self.writes.clear();
        self.bytes = 0;
    }

    /// Sends at once if nothing is queued, else (or for what the kernel did
    /// not take) queues: see [`Connection::send`](super::Connection::send).
    pub(super) fn send(
        &mut self,
        sock: BorrowedFd<'_>,
        framing: bool,
        data: &[u8],
        fds: &[RawFd],
    ) -> Result<bool> {
        let header;
        let mut iov = [IoSlice::new(&[]), IoSlice::new(data)];
        let iov: &[IoSlice<'_>] = if framing {
            let len = u32::try_from(data.len()).map_err(|_| Error::InvalidArgument {
                reason: "a message is limited to 4 GiB".into(),
            })?;
            // check_send below refuses more than 253 fds.
            header = encode_header(len, u16::try_from(fds.len()).unwrap_or(u16::MAX));
            iov[0] = IoSlice::new(&header);
            &iov
        } else {
            &iov[1..]
        };
        let total: usize = iov.iter().map(|s| s.len()).sum();
        check_send(total, fds.len())?;
        if !self.writes.is_empty() {
            let dups = duplicate(fds)?;
            self.push(iov, 0, dups);
            return Ok(false);
        }
        match send_vectored_waiting(sock, iov, fds, Wait::Never) {
            Ok(n) if n == total => Ok(true),
            Ok(n) => {
                // A partial stream send: the fds went with the first byte;
                // the rest goes later, without them.
                self.push(iov, n, Vec::new());
                Ok(false)
            }
            Err(e) if e.would_block() => {
                let dups = duplicate(fds)?;
                self.push(iov, 0, dups);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Queues the bytes of `iov` past the first `skip`, with `fds`.
    fn push(&mut self, iov: &[IoSlice<'_>], skip: usize, fds: Vec<OwnedFd>) {
        let mut bytes = Vec::with_capacity(iov.iter().map(|s| s.len()).sum::<usize>() - skip);
        let mut skip = skip;
        for slice in iov {
            let s: &[u8] = slice;
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            bytes.extend_from_slice(&s[skip..]);
            skip = 0;
        }
        self.bytes += bytes.len();
        self.writes.push_back(PendingWrite {
            bytes,
            offset: 0,
            fds,
        });
    }

    /// Sends what the queue holds until the kernel pushes back.
    pub(super) fn flush(&mut self, sock: BorrowedFd<'_>) -> Vec<Event> {
        let mut completed = 0u32;
        let mut events = Vec::new();
        while let Some(write) = self.writes.front_mut() {
            let raw: Vec<RawFd> = write.fds.iter().map(AsRawFd::as_raw_fd).collect();
            match send_vectored_waiting(
                sock,
                &[IoSlice::new(&write.bytes[write.offset..])],
                &raw,
                Wait::Never,
            ) {
                Ok(n) => {
                    // The kernel holds its own references now.
                    write.fds.clear();
                    write.offset += n;
                    self.bytes -= n;
                    if write.offset < write.bytes.len() {
                        break;
                    }
                    self.writes.pop_front();
                    completed += 1;
                }
                Err(e) if e.would_block() => break,
                Err(e) => {
                    let failed = u32::try_from(self.writes.len()).unwrap_or(u32::MAX);
                    self.clear();
                    if completed > 0 {
                        events.push(Event::Written(completed));
                    }
                    events.push(Event::WriteError(e, failed));
                    return events;
                }
            }
        }
        if completed > 0 {
            events.push(Event::Written(completed));
        }
        events
    }
}

/// Close-on-exec duplicates of `fds`, for a send that waits: the caller may
/// close its own as soon as the send call returns.
fn duplicate(fds: &[RawFd]) -> Result<Vec<OwnedFd>> {
    fds.iter()
        .map(|&fd| {
            if fd < 0 {
                return Err(Error::os(Errno::EBADF, "fcntl"));
            }
            // SAFETY: fd is non-negative and borrowed only for the
            // duplication, within the send call whose caller lent it; a
            // closed fd makes the fcntl fail with EBADF.
            crate::fd::dup_cloexec(unsafe { BorrowedFd::borrow_raw(fd) })
        })
        .collect()
}
