//! Fuzzes the stream frame decoder with arbitrary reads and fd batches.
//!
//! The input is a decoder configuration and a sequence of operations: reads of
//! arbitrary bytes (through `push` or through `spare`/`commit_from`, short reads
//! included), reads that carry a well-formed frame cut in two, calls to
//! `next_frame` and `clear`. Each read may bring a batch of fake fds, numbered
//! with fresh ids; the fake fd records its id when dropped, so every fd is
//! accounted for.
//!
//! A model of the stream (every byte pushed, the read position, the batches
//! and the stream range of the read that brought each) checks, after every
//! operation, until the first error:
//! - a frame's payload is the stream's bytes after its header, at most
//!   `max_bytes` long, and the stream is consumed frame after frame;
//! - a frame's fds are exactly one batch, in order: the oldest unclaimed one,
//!   whose read brought the header's first byte, of the announced size;
//! - no fd is duplicated, invented or dropped while the decoder holds it;
//!   `clear` drops exactly the held fds;
//! - `next_frame` returns nothing only when no complete frame is held, and
//!   then holds at most one fd batch, the one whose read brought the
//!   header's first byte (fds in the middle of a frame are an error at
//!   once); an error takes nothing (every fd it held is still held);
//! - `queued_fds` and `is_mid_frame` agree with the model.
//!
//! After an error the decoder is dropped; then every fd ever pushed has been
//! either handed out in a frame or dropped, exactly once.

#![no_main]

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

use fdpass::frame::{encode_header, FrameDecoder, HEADER_LEN};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// A stand-in for `OwnedFd` that records when it is closed.
#[derive(Debug, PartialEq, Eq)]
struct FakeFd(u32);

impl Drop for FakeFd {
    fn drop(&mut self) {
        DROPPED.with(|d| d.borrow_mut().push(self.0));
    }
}

fn take_dropped() -> Vec<u32> {
    DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// A read of these bytes with `fds` fds, through `push`.
    Push { data: Vec<u8>, fds: u8 },
    /// A read through `spare(min)` that fills `fill` of the room (clamped)
    /// with `byte`.. and commits it with `fds` fds.
    Spare { min: u16, fill: u16, byte: u8, fds: u8 },
    /// A well-formed header and payload, read in two parts cut at `cut`; the
    /// first part brings `fds` fds. The header announces `lie` fds if given,
    /// else `fds`.
    Frame {
        len: u16,
        fds: u8,
        lie: Option<u8>,
        cut: u16,
        byte: u8,
    },
    /// `next_frame` until it returns nothing or an error.
    Drain,
    /// One `next_frame`.
    Next,
    /// `clear`.
    Clear,
}

#[derive(Debug, Arbitrary)]
struct Input {
    max_bytes: u16,
    max_fds: u8,
    ops: Vec<Op>,
}

struct Batch {
    start: u64,
    end: u64,
    ids: Vec<u32>,
}

struct Model {
    max_bytes: usize,
    /// Every byte pushed since the last `clear`, from stream offset `base`.
    stream: Vec<u8>,
    base: u64,
    /// Stream offset of the next frame header.
    cursor: u64,
    /// Batches not handed out yet, oldest first.
    batches: VecDeque<Batch>,
    next_id: u32,
    created: u32,
    delivered: HashSet<u32>,
    dropped: HashSet<u32>,
}

impl Model {
    fn end(&self) -> u64 {
        self.base + self.stream.len() as u64
    }

    fn new_fds(&mut self, n: u8) -> (Vec<FakeFd>, Vec<u32>) {
        let ids: Vec<u32> = (0..n as u32).map(|i| self.next_id + i).collect();
        self.next_id += n as u32;
        self.created += n as u32;
        (ids.iter().map(|&i| FakeFd(i)).collect(), ids)
    }

    fn record_read(&mut self, bytes: &[u8], ids: Vec<u32>) {
        let start = self.end();
        self.stream.extend_from_slice(bytes);
        if !ids.is_empty() {
            self.batches.push_back(Batch {
                start,
                end: self.end(),
                ids,
            });
        }
    }

    fn available(&self) -> &[u8] {
        &self.stream[(self.cursor - self.base) as usize..]
    }

    fn queued(&self) -> usize {
        self.batches.iter().map(|b| b.ids.len()).sum()
    }

    fn check_no_drops(&mut self, during: &str) {
        let dropped = take_dropped();
        assert!(dropped.is_empty(), "fds {dropped:?} dropped during {during}");
    }

    fn note_dropped(&mut self, ids: Vec<u32>) {
        for id in ids {
            assert!(id < self.next_id, "fd {id} dropped but never created");
            assert!(
                !self.delivered.contains(&id),
                "fd {id} dropped after being handed out"
            );
            assert!(self.dropped.insert(id), "fd {id} dropped twice");
        }
    }
}

/// `n` bytes counting up from `first` (wrapping), copied rather than
/// generated byte by byte, which instrumented code would make slow.
fn pattern(first: u8, n: usize) -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let all = PATTERN.get_or_init(|| (0..=u16::MAX as usize + 256).map(|i| i as u8).collect());
    &all[first as usize..first as usize + n]
}

/// One `next_frame`, checked against the model. `Err(())` ends the run.
fn step(d: &mut FrameDecoder<FakeFd>, m: &mut Model) -> Result<bool, ()> {
    let header_at = m.cursor;
    let result = d.next_frame();
    let frame = match result {
        Err(_) => {
            // An error takes nothing: every held fd is still held, none dropped.
            drop(result);
            assert_eq!(d.queued_fds(), m.queued(), "an error consumed fds");
            m.check_no_drops("a failing next_frame");
            return Err(());
        }
        Ok(None) => {
            let avail = m.available();
            if avail.len() >= HEADER_LEN {
                let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
                assert!(
                    avail.len() < HEADER_LEN + len,
                    "a complete frame of {len} bytes is held but next_frame returned nothing"
                );
            }
            // While a frame is incomplete, the decoder holds at most one
            // batch: the one whose read brought the header's first byte.
            assert!(
                m.batches.len() <= 1,
                "{} fd batches held for an incomplete frame",
                m.batches.len()
            );
            if let Some(batch) = m.batches.front() {
                assert!(
                    batch.start <= header_at && header_at < batch.end,
                    "batch [{}, {}) held for a header at {header_at}",
                    batch.start,
                    batch.end
                );
            }
            m.check_no_drops("next_frame");
            return Ok(false);
        }
        Ok(Some(f)) => f,
    };
    let payload = frame.payload.to_vec();
    let fds: Vec<FakeFd> = frame.fds.collect();

    let avail = m.available();
    assert!(
        avail.len() >= HEADER_LEN,
        "a frame came out of fewer than {HEADER_LEN} bytes"
    );
    let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
    let announced = u16::from_le_bytes([avail[4], avail[5]]) as usize;
    assert_eq!(
        u16::from_le_bytes([avail[6], avail[7]]),
        0,
        "reserved bits accepted"
    );
    assert!(
        len <= m.max_bytes,
        "payload of {len} bytes over max_bytes {}",
        m.max_bytes
    );
    assert_eq!(payload.len(), len, "payload length differs from the header's");
    assert_eq!(
        &payload[..],
        &avail[HEADER_LEN..HEADER_LEN + len],
        "payload bytes differ"
    );
    assert_eq!(fds.len(), announced, "fd count differs from the header's");

    let ids: Vec<u32> = fds.iter().map(|f| f.0).collect();
    // Handed out: the fake fds now belong to the caller, who keeps them.
    for f in fds {
        std::mem::forget(f);
    }
    if !ids.is_empty() {
        let batch = m
            .batches
            .pop_front()
            .expect("fds handed out with no batch pushed");
        assert_eq!(ids, batch.ids, "a frame's fds are not the oldest batch");
        assert!(
            batch.start <= header_at && header_at < batch.end,
            "batch [{}, {}) handed to a header at {header_at}",
            batch.start,
            batch.end
        );
    }
    for id in ids {
        assert!(m.delivered.insert(id), "fd {id} handed out twice");
        assert!(!m.dropped.contains(&id), "fd {id} handed out after being dropped");
    }
    m.cursor += (HEADER_LEN + len) as u64;
    m.check_no_drops("next_frame");
    Ok(true)
}

fn run(input: Input) {
    take_dropped();
    let max_bytes = input.max_bytes as usize;
    let max_fds = input.max_fds as usize;
    let mut d = FrameDecoder::<FakeFd>::new(max_bytes, max_fds);
    let mut m = Model {
        max_bytes,
        stream: Vec::new(),
        base: 0,
        cursor: 0,
        batches: VecDeque::new(),
        next_id: 0,
        created: 0,
        delivered: HashSet::new(),
        dropped: HashSet::new(),
    };

    for op in input.ops {
        match op {
            Op::Push { data, fds } => {
                let (fds, ids) = m.new_fds(fds);
                d.push(&data, fds);
                m.record_read(&data, ids);
                m.check_no_drops("push");
            }
            Op::Spare { min, fill, byte, fds } => {
                let (fds, ids) = m.new_fds(fds);
                let spare = d.spare(min as usize);
                assert!(spare.len() >= min as usize, "spare gave less than asked");
                let n = (fill as usize).min(spare.len());
                spare[..n].copy_from_slice(pattern(byte, n));
                let bytes = spare[..n].to_vec();
                // As the binding reads: the fds come in a vector it reuses.
                let mut fds = fds;
                d.commit_from(n, &mut fds);
                assert!(fds.is_empty(), "commit_from left fds in the caller's vector");
                m.record_read(&bytes, ids);
                m.check_no_drops("spare/commit");
            }
            Op::Frame {
                len,
                fds,
                lie,
                cut,
                byte,
            } => {
                let len = len as usize % 4096;
                let mut bytes = encode_header(len as u32, lie.unwrap_or(fds) as u16).to_vec();
                bytes.extend_from_slice(pattern(byte, len));
                let cut = (cut as usize).clamp(1, bytes.len());
                let (fds, ids) = m.new_fds(fds);
                d.push(&bytes[..cut], fds);
                m.record_read(&bytes[..cut], ids);
                d.push(&bytes[cut..], Vec::new());
                m.record_read(&bytes[cut..], Vec::new());
                m.check_no_drops("push");
            }
            Op::Drain => loop {
                match step(&mut d, &mut m) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(()) => return finish(d, m),
                }
            },
            Op::Next => {
                if step(&mut d, &mut m).is_err() {
                    return finish(d, m);
                }
            }
            Op::Clear => {
                d.clear();
                let mut dropped = take_dropped();
                dropped.sort_unstable();
                let mut held: Vec<u32> = m.batches.drain(..).flat_map(|b| b.ids).collect();
                held.sort_unstable();
                assert_eq!(dropped, held, "clear dropped other fds than those held");
                m.note_dropped(dropped);
                m.base = m.end();
                m.cursor = m.base;
                m.stream.clear();
            }
        }
        assert_eq!(d.queued_fds(), m.queued(), "queued_fds disagrees with the model");
        assert_eq!(
            d.is_mid_frame(),
            m.cursor < m.end() || !m.batches.is_empty(),
            "is_mid_frame disagrees with the model"
        );
    }
    finish(d, m);
}

/// Drops the decoder, then checks that every fd was handed out or dropped, once.
fn finish(d: FrameDecoder<FakeFd>, mut m: Model) {
    drop(d);
    let dropped = take_dropped();
    m.note_dropped(dropped);
    assert_eq!(
        m.delivered.len() + m.dropped.len(),
        m.created as usize,
        "fds leaked: {} created, {} handed out, {} dropped",
        m.created,
        m.delivered.len(),
        m.dropped.len()
    );
}

fuzz_target!(|input: Input| {
    run(input);
});
