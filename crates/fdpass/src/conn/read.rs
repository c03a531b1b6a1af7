//! A connection's reads: framed messages on a stream, datagrams and
//! seqpacket messages, batched.

use std::os::fd::AsFd;

use super::datagram_scratch::DatagramScratch;
use super::{Batch, Connection, Event, READ_CHUNK};
use crate::error::{Error, MAX_FDS_PER_MESSAGE};
use crate::message::{recv_fds_append_waiting, Wait};
use crate::socket::SocketType;

/// What ended a read before the socket ran dry.
enum ReadEnd {
    Eof,
    Failed(Error),
}

impl Connection {
    /// Reads up to `max` messages (stopping after the one that brings the
    /// batch to `max_fds` fds): the batch, if any message came, and what
    /// ended the read, if something did (end of stream, an error).
    pub fn read_batch(&mut self, max: usize, max_fds: usize) -> (Option<Batch>, Option<Event>) {
        if self.fd.is_none() || self.eof || max == 0 || self.config.listening {
            return (None, None);
        }
        let mut batch = self.spare_batch.take().unwrap_or_default();
        batch.reset();
        let outcome = if self.config.framing {
            self.read_frames((max, max_fds), &mut batch)
        } else {
            self.read_datagrams((max, max_fds), &mut batch)
        };
        let tail = match outcome {
            Ok(()) => None,
            Err(ReadEnd::Eof) => {
                self.eof = true;
                Some(Event::End)
            }
            Err(ReadEnd::Failed(e)) => Some(Event::Error(e)),
        };
        if batch.count() == 0 {
            self.spare_batch = batch.into_spare();
            return (None, tail);
        }
        (Some(batch), tail)
    }

    fn read_frames(&mut self, limits: (usize, usize), batch: &mut Batch) -> Result<(), ReadEnd> {
        let Some(sock) = self.fd.as_ref() else {
            return Ok(());
        };
        loop {
            while !batch.is_full(limits) {
                let error = match self.decoder.next_frame() {
                    Ok(Some(frame)) => {
                        batch.push(frame.payload, frame.fds);
                        continue;
                    }
                    Ok(None) => break,
                    Err(e) => e,
                };
                self.decoder.clear();
                return Err(ReadEnd::Failed(error));
            }
            // The fds the decoder holds for a frame still incomplete count
            // against the fd room as well. A batch with no message yet reads
            // anyway, or a receive would wait forever for its frame: the
            // decoder then holds only that frame's fds (FrameDecoder::next_frame
            // fails at once on any others), so one read passes the room by at
            // most one message's fds.
            let held = batch.fds.len() + self.decoder.queued_fds();
            if !batch.may_read(limits) || (batch.count() > 0 && held >= limits.1) {
                return Ok(());
            }
            let spare = self.decoder.spare(READ_CHUNK);
            let fds = &mut self.received_fds;
            match recv_fds_append_waiting(
                sock.as_fd(),
                spare,
                MAX_FDS_PER_MESSAGE,
                &mut self.control,
                fds,
                Wait::Never,
            ) {
                Ok(0) if fds.is_empty() => {
                    self.decoder.commit(0, Vec::new());
                    if self.decoder.is_mid_frame() {
                        self.decoder.clear();
                        return Err(ReadEnd::Failed(Error::Protocol {
                            reason: "the peer closed the connection in the middle of a message".into(),
                        }));
                    }
                    return Err(ReadEnd::Eof);
                }
                Ok(len) => self.decoder.commit_from(len, fds),
                Err(e) => {
                    self.decoder.commit(0, Vec::new());
                    if e.would_block() {
                        return Ok(());
                    }
                    self.decoder.clear();
                    return Err(ReadEnd::Failed(e));
                }
            }
        }
    }

    fn read_datagrams(&mut self, limits: (usize, usize), batch: &mut Batch) -> Result<(), ReadEnd> {
        let Some(sock) = self.fd.as_ref() else {
            return Ok(());
        };
        let (max_bytes, max_fds, kind) = (self.config.max_bytes, self.config.max_fds, self.config.kind);
        let mut scratch = DatagramScratch::take(max_bytes);
        while batch.may_read(limits) {
            let buf = &mut scratch.0[..max_bytes];
            let first = batch.fds.len();
            match recv_fds_append_waiting(
                sock.as_fd(),
                buf,
                max_fds,
                &mut self.control,
                &mut batch.fds,
                Wait::Never,
            ) {
                Ok(len) => {
                    if len == 0 && batch.fds.len() == first && kind != SocketType::Datagram {
                        return Err(ReadEnd::Eof);
                    }
                    batch.push_received(&buf[..len], first);
                }
                Err(e) if e.would_block() => return Ok(()),
                // A seqpacket peer that closed with our messages unread makes
                // the kernel report ECONNRESET *before* the messages it had
                // sent us (reading the error clears it). Read those first, as
                // a stream does; the end of the stream follows them.
                Err(e) if e.errno() == Some(libc::ECONNRESET) && kind == SocketType::SeqPacket => continue,
                Err(e) => return Err(ReadEnd::Failed(e)),
            }
        }
        Ok(())
    }
}
