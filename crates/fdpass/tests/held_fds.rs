//! The held-fd marks (`fdpass::held_fds`) over real fds: marking, fds past
//! the end of the marks, regrowing, and closing exactly the held fds.
//!
//! Whether an fd is closed is told without looking at fd numbers (the tests
//! run in parallel threads of one process, which reuse them): each fd is the
//! read end of a pipe, whose write end gets EPIPE exactly when no copy of the
//! read end is left open.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use common::{has_reader, pipe};
use fdpass::held_fds::HeldFds;
use fdpass::region::Region;

/// Marks memory, as JavaScript's Uint8Array would hold it; every access,
/// the regions' included, goes through the one pointer it was made with.
struct Memory {
    ptr: *mut u8,
    len: usize,
}

impl Memory {
    fn new(len: usize) -> Self {
        let ptr = Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>();
        Memory { ptr, len }
    }

    /// A region over the memory, used while the memory lives.
    fn region(&self) -> Region<u8> {
        // SAFETY: valid for `len` bytes until `drop`, which the tests call
        // after the regions are gone; single-threaded.
        unsafe { Region::new(self.ptr, self.len) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: valid for `len` bytes; no region writes while this borrow lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The marked fd numbers.
    fn marked(&self) -> Vec<RawFd> {
        self.bytes()
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0)
            .map(|(fd, _)| fd as RawFd)
            .collect()
    }
}

/// The read ends of `n` new pipes, handed over to `held`: their numbers,
/// and the write ends that tell whether they are closed.
fn hand_over_pipes(held: &mut HeldFds, n: usize) -> (Vec<RawFd>, Vec<std::fs::File>) {
    let (mut fds, writers): (Vec<OwnedFd>, Vec<_>) = (0..n).map(|_| pipe()).unzip();
    let raws = fds.iter().map(AsRawFd::as_raw_fd).collect();
    HeldFds::hand_over(Some(held), &mut fds);
    (raws, writers)
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw of a boxed slice of `len` bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
    }
}

#[test]
fn close_all_closes_exactly_the_marked_fds() {
    let mut marks = Memory::new(64 * 1024);
    let mut held = HeldFds::new(marks.region());
    let (kept, mut kept_w) = pipe();
    let (a, mut a_w) = pipe();
    let (b, mut b_w) = pipe();
    let (released, mut released_w) = pipe();
    let mut fds = vec![a, b, released];
    let raws: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    HeldFds::hand_over(Some(&mut held), &mut fds);
    assert!(fds.is_empty(), "ownership passed");
    assert!(
        has_reader(&mut a_w) && has_reader(&mut b_w),
        "handing over closes nothing"
    );
    // JavaScript hands the last one to its user: it clears its mark and the fd is the user's.
    marks.bytes_mut()[raws[2] as usize] = 0;
    // SAFETY: the released fd is ours again (the user's, in the binding).
    let released_again = unsafe { OwnedFd::from_raw_fd(raws[2]) };

    // SAFETY: the marked fds were handed over above and nothing else uses them.
    let closed = unsafe { held.close_all() };
    let mut expected = raws[..2].to_vec();
    expected.sort_unstable();
    assert_eq!(closed, expected);
    assert!(
        !has_reader(&mut a_w) && !has_reader(&mut b_w),
        "marked fds closed"
    );
    assert!(has_reader(&mut released_w), "a released fd stays open");
    assert!(has_reader(&mut kept_w), "an fd never marked stays open");
    drop((kept, released_again));
}

#[test]
fn fds_past_the_end_are_kept_aside_and_closed_too() {
    let marks = Memory::new(0);
    let mut held = HeldFds::new(marks.region());
    let (raws, mut w) = hand_over_pipes(&mut held, 2);
    // SAFETY: both were handed over and nothing else uses them.
    let closed = unsafe { held.close_all() };
    assert_eq!(closed, raws, "kept aside, in the order they came");
    assert!(!has_reader(&mut w[0]) && !has_reader(&mut w[1]));
}

#[test]
fn regrowing_marks_what_was_kept_aside_in_the_new_marks() {
    let (a, mut a_w) = pipe();
    let (b, mut b_w) = pipe();
    let (low, high) = if a.as_raw_fd() < b.as_raw_fd() {
        (a, b)
    } else {
        (b, a)
    };
    let (low_raw, high_raw) = (low.as_raw_fd(), high.as_raw_fd());
    // Marks that hold `low` but not `high`.
    let small = Memory::new(high_raw as usize);
    let mut held = HeldFds::new(small.region());
    HeldFds::hand_over(Some(&mut held), &mut vec![low, high]);
    assert_eq!(small.marked(), [low_raw]);

    // JavaScript grows the marks, copying them over, and registers the copy.
    let mut grown = Memory::new(2 * high_raw as usize + 1);
    grown.bytes_mut()[..small.len].copy_from_slice(small.bytes());
    held.regrow(grown.region());
    assert_eq!(grown.marked(), [low_raw, high_raw], "the fd kept aside is marked");

    // SAFETY: both were handed over and nothing else uses them.
    let closed = unsafe { held.close_all() };
    assert_eq!(closed, [low_raw, high_raw], "each closed once");
    assert!(!has_reader(&mut a_w) && !has_reader(&mut b_w));
}

#[test]
fn closing_held_fds_clears_their_marks_so_the_teardown_leaves_them_alone() {
    let marks = Memory::new(64 * 1024);
    let mut held = HeldFds::new(marks.region());
    let (raws, mut w) = hand_over_pipes(&mut held, 3);
    held.close(&raws[..2]).expect("close");
    assert!(!has_reader(&mut w[0]) && !has_reader(&mut w[1]), "closed");
    assert_eq!(marks.marked(), [raws[2]], "only the fd not closed is still held");
    // SAFETY: the one still marked was handed over and nothing else uses it.
    let closed = unsafe { held.close_all() };
    assert_eq!(closed, [raws[2]], "the teardown closes no number twice");
    assert!(!has_reader(&mut w[2]));
}

#[test]
fn closing_held_fds_kept_past_the_end_forgets_them_too() {
    let marks = Memory::new(0);
    let mut held = HeldFds::new(marks.region());
    let (raws, mut w) = hand_over_pipes(&mut held, 2);
    held.close(&raws[..1]).expect("close");
    assert!(!has_reader(&mut w[0]) && has_reader(&mut w[1]));
    // SAFETY: the one still kept was handed over and nothing else uses it.
    let closed = unsafe { held.close_all() };
    assert_eq!(closed, [raws[1]]);
    assert!(!has_reader(&mut w[1]));
}

#[test]
fn handing_over_without_marks_only_lets_go_of_ownership() {
    let (a, mut a_w) = pipe();
    let raw = a.as_raw_fd();
    HeldFds::hand_over(None, &mut vec![a]);
    assert!(has_reader(&mut a_w), "not closed: JavaScript owns it now");
    // SAFETY: handed over above; taken back to close it.
    drop(unsafe { OwnedFd::from_raw_fd(raw) });
    assert!(!has_reader(&mut a_w));
}
