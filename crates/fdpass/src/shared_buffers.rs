//! Buffers shared with a JavaScript runtime, through which the hot paths pass
//! received batches without creating objects: a batch's payloads go into
//! `scratch`, its metadata (counts, lengths, fds) into `meta`, and JavaScript
//! reads them before the call that wrote them returns.
//!
//! Also the two flags of the deferred stops (`src/internal/deferred-stops.ts`):
//! slot [`LOOP_FLAG_DELIVERING`] is 1 while an event-loop delivery runs, its
//! microtasks included; JavaScript sets slot [`LOOP_FLAG_SETTLE`] to have its
//! settle function called once they have run.

use crate::region::Region;
use crate::wire_constants::{LOOP_FLAG_DELIVERING, LOOP_FLAG_SETTLE};

/// One set of shared buffers and loop flags.
pub struct SharedBuffers {
    scratch: Region<u8>,
    meta: Region<i32>,
    flags: Region<i32>,
}

impl SharedBuffers {
    /// The set over these regions; None if `flags` has too few slots.
    pub fn new(scratch: Region<u8>, meta: Region<i32>, flags: Region<i32>) -> Option<Self> {
        let has_slots = [LOOP_FLAG_DELIVERING, LOOP_FLAG_SETTLE]
            .iter()
            .all(|&i| i < flags.len());
        has_slots.then_some(SharedBuffers { scratch, meta, flags })
    }

    /// Writes a batch's payloads and metadata; false (nothing written) when
    /// either does not fit.
    pub fn publish(&self, data: &[u8], meta: &[i32]) -> bool {
        data.len() <= self.scratch.len()
            && meta.len() <= self.meta.len()
            && self.scratch.write_start(data)
            && self.meta.write_start(meta)
    }

    /// Marks the start of an event-loop delivery; returns whether one was
    /// already running (a nested delivery leaves the settling to that one).
    pub fn begin_delivery(&self) -> bool {
        let was = self.flags.get(LOOP_FLAG_DELIVERING) != Some(0);
        self.flags.set(LOOP_FLAG_DELIVERING, 1);
        was
    }

    /// Marks the end of the outermost delivery; returns whether JavaScript
    /// asked for its settle function to be called (the request is consumed).
    pub fn end_delivery(&self) -> bool {
        self.flags.set(LOOP_FLAG_DELIVERING, 0);
        let asked = self.flags.get(LOOP_FLAG_SETTLE).is_some_and(|v| v != 0);
        self.flags.set(LOOP_FLAG_SETTLE, 0);
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region over `memory`, which the test keeps alive and reads only
    /// once the regions are gone.
    fn region<T: Copy>(memory: &mut [T]) -> Region<T> {
        // SAFETY: see above.
        unsafe { Region::new(memory.as_mut_ptr(), memory.len()) }
    }

    #[test]
    fn a_batch_is_published_only_when_both_parts_fit() {
        let (mut scratch, mut meta, mut flags) = ([0u8; 4], [0i32; 3], [0i32; 2]);
        let buffers = SharedBuffers::new(region(&mut scratch), region(&mut meta), region(&mut flags))
            .expect("two flag slots");
        assert!(!buffers.publish(b"hello", &[1, 5, 0]), "payloads too long");
        assert!(!buffers.publish(b"no", &[2, 1, 0, 1, 0]), "metadata too long");
        assert_eq!((scratch, meta), ([0; 4], [0; 3]), "nothing written");
        assert!(buffers.publish(b"hi", &[1, 2, 0]));
        assert_eq!(scratch, *b"hi\0\0");
        assert_eq!(meta, [1, 2, 0]);
    }

    #[test]
    fn the_loop_flags_tell_nesting_and_a_settle_request_once() {
        let (mut scratch, mut meta, mut flags) = ([0u8; 1], [0i32; 1], [0i32; 2]);
        let buffers = SharedBuffers::new(region(&mut scratch), region(&mut meta), region(&mut flags))
            .expect("two flag slots");
        assert!(!buffers.begin_delivery(), "the outermost delivery");
        assert!(buffers.begin_delivery(), "nested");
        assert!(!buffers.end_delivery(), "nobody asked");
        assert!(!buffers.begin_delivery());
        // JavaScript asks for its settle function during the delivery.
        buffers.flags.set(LOOP_FLAG_SETTLE, 1);
        assert!(buffers.end_delivery());
        assert!(!buffers.end_delivery(), "the request was consumed");
        assert_eq!(flags, [0, 0]);

        let mut short = [0i32; 1];
        assert!(SharedBuffers::new(region(&mut scratch), region(&mut meta), region(&mut short)).is_none());
    }
}
