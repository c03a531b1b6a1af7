//! The lean calls' scratch (`fdpass::scratch`) and the raw receive buffer
//! (`fdpass::receive_buffer`) over socketpairs, each test with an audit of
//! this process's fds: sends from the fd slots and from either data source,
//! receives into the scratch, closing slots, and every argument out of range
//! refused before any syscall.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use common::audited;
use fdpass::receive_buffer::{kept_capacity, recv_fds_buffered, with_buffer, KEPT_BYTES};
use fdpass::scratch::{CallError, Malformed, Scratch, UnixCheck};
use fdpass::wire_constants::{
    SCRATCH_DATA_BYTES, SCRATCH_FD_BYTES, SCRATCH_FD_SLOTS, SCRATCH_INTS_AT, SCRATCH_LEN,
};
use fdpass::{socket_pair, Error, SocketType, MAX_FDS_PER_MESSAGE};

/// Scratch memory as JavaScript's ArrayBuffer would be: SCRATCH_LEN bytes,
/// aligned, written by the caller between calls.
struct Memory(Vec<i32>);

impl Memory {
    fn new() -> Memory {
        Memory(vec![0; SCRATCH_LEN / 4])
    }

    fn scratch(&mut self) -> Scratch {
        // SAFETY: SCRATCH_LEN bytes, 4-aligned, that outlive the Scratch in
        // every test, and that the test touches only between calls.
        unsafe { Scratch::from_raw(self.0.as_mut_ptr().cast()) }.expect("aligned, non-null")
    }

    fn set_ints(&mut self, ints: &[i32]) {
        let at = SCRATCH_INTS_AT / 4;
        self.0[at..at + ints.len()].copy_from_slice(ints);
    }

    fn result(&self) -> i32 {
        self.0[SCRATCH_INTS_AT / 4]
    }

    fn set_fds(&mut self, fds: &[RawFd]) {
        self.0[..fds.len()].copy_from_slice(fds);
    }

    fn fd(&self, slot: usize) -> RawFd {
        self.0[slot]
    }

    fn set_data(&mut self, data: &[u8]) {
        // SAFETY: the data area lies inside the vector, and nothing else
        // borrows it now.
        unsafe {
            let area = self.0.as_mut_ptr().cast::<u8>().add(SCRATCH_FD_BYTES);
            std::ptr::copy_nonoverlapping(data.as_ptr(), area, data.len());
        }
    }

    fn data(&self, len: usize) -> Vec<u8> {
        // SAFETY: as for set_data, reading.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(SCRATCH_FD_BYTES), len) }
            .to_vec()
    }
}

fn file() -> File {
    File::open("/dev/null").expect("open /dev/null")
}

fn same_file(a: RawFd, b: &File) -> bool {
    // SAFETY: a is open (just received) and borrowed for this check only.
    let a = unsafe { BorrowedFd::borrow_raw(a) };
    let a = nix::sys::stat::fstat(a).expect("fstat");
    let b = b.metadata().expect("metadata");
    a.st_ino as u64 == b.ino() && a.st_dev as u64 == b.dev()
}

fn malformed<T: std::fmt::Debug>(result: Result<T, CallError>) {
    assert!(matches!(result, Err(CallError::Malformed)), "{result:?}");
}

/// Nothing is queued on `socket` (the send before was refused).
fn nothing_queued(socket: &OwnedFd) {
    let mut buf = [0u8; 8];
    let got = fdpass::recv_fds_append_waiting(
        socket.as_fd(),
        &mut buf,
        MAX_FDS_PER_MESSAGE,
        &mut fdpass::cmsg::ControlBuffer::new(),
        &mut Vec::new(),
        fdpass::Wait::Never,
    );
    assert!(
        matches!(got, Err(Error::Os { errno, .. }) if errno == nix::errno::Errno::EAGAIN),
        "{got:?}"
    );
}

#[test]
fn sends_from_the_slots_with_either_data_and_receives_into_the_scratch() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        let (f1, f2) = (file(), file());
        let mut sender = Memory::new();
        let mut receiver = Memory::new();
        for external in [false, true] {
            for check in [UnixCheck::EverySend, UnixCheck::Checked] {
                sender.set_fds(&[f1.as_raw_fd(), f2.as_raw_fd()]);
                let payload: &[u8] = b"hello";
                if external {
                    sender.set_ints(&[a.as_raw_fd(), 2]);
                    sender.scratch().send(Some(payload), check).expect("send");
                } else {
                    sender.set_data(payload);
                    sender.set_ints(&[a.as_raw_fd(), 5, 2]);
                    sender.scratch().send(None, check).expect("send");
                }
                assert_eq!(sender.result(), 5, "bytes sent");

                receiver.set_ints(&[b.as_raw_fd(), 64, 2]);
                let mut scratch = receiver.scratch();
                scratch.recv().expect("recv");
                assert_eq!(receiver.result(), 5, "bytes received");
                assert_eq!(receiver.data(5), payload);
                assert_eq!(receiver.fd(0), 2, "the fd count is in slot 0");
                assert!(same_file(receiver.fd(1), &f1) && same_file(receiver.fd(2), &f2));
                // The received fds (slots 1 and 2) moved to slots 0 and 1, then closed.
                let received = [receiver.fd(1), receiver.fd(2)];
                receiver.set_fds(&received);
                receiver.set_ints(&[2]);
                receiver.scratch().close_slots().expect("close");
            }
        }
    });
}

#[test]
fn a_receive_keeps_no_fd_of_a_message_over_max_fds() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        let f = file();
        let mut memory = Memory::new();
        memory.set_fds(&[f.as_raw_fd(), f.as_raw_fd()]);
        memory.set_ints(&[a.as_raw_fd(), 1, 2]);
        memory.set_data(b"x");
        memory.scratch().send(None, UnixCheck::EverySend).expect("send");
        memory.set_ints(&[b.as_raw_fd(), 8, 1]);
        let got = memory.scratch().recv();
        assert!(
            matches!(got, Err(CallError::Failed(Error::FdsTruncated { .. }))),
            "{got:?}"
        );
    });
}

#[test]
fn arguments_out_of_range_are_refused_before_any_syscall() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        let f = file();
        let mut memory = Memory::new();
        memory.set_fds(&[f.as_raw_fd()]);
        memory.set_data(b"x");
        let socket = a.as_raw_fd();
        let too_many = SCRATCH_FD_SLOTS as i32 + 1;
        let too_long = SCRATCH_DATA_BYTES as i32 + 1;
        for ints in [
            [socket, 1, too_many],
            [socket, 1, -1],
            [socket, too_long, 1],
            [socket, -1, 1],
        ] {
            memory.set_ints(&ints);
            malformed(memory.scratch().send(None, UnixCheck::EverySend));
        }
        for ints in [[socket, too_many, 0], [socket, -1, 0]] {
            memory.set_ints(&ints);
            malformed(memory.scratch().send(Some(b"x"), UnixCheck::Checked));
        }
        nothing_queued(&b);

        // Within the slots but over the kernel's limit: the core's own check.
        memory.set_ints(&[socket, MAX_FDS_PER_MESSAGE as i32 + 1, 0]);
        let got = memory.scratch().send(Some(b"x"), UnixCheck::EverySend);
        assert!(
            matches!(got, Err(CallError::Failed(Error::TooManyFds { .. }))),
            "{got:?}"
        );
        // A negative socket is the caller's error, as for any fd argument.
        memory.set_ints(&[-1, 1, 1]);
        let got = memory.scratch().send(None, UnixCheck::EverySend);
        assert!(
            matches!(got, Err(CallError::Failed(Error::InvalidArgument { .. }))),
            "{got:?}"
        );
        nothing_queued(&b);

        let receiver = b.as_raw_fd();
        for ints in [
            [receiver, too_long, 1],
            [receiver, -1, 1],
            [receiver, 8, SCRATCH_FD_SLOTS as i32],
            [receiver, 8, -1],
        ] {
            memory.set_ints(&ints);
            malformed(memory.scratch().recv());
        }
        for count in [too_many, -1] {
            memory.set_ints(&[count]);
            malformed(memory.scratch().close_slots());
        }
        let scratch = memory.scratch();
        assert_eq!(scratch.int(4), Err(Malformed));
        assert_eq!(scratch.fd_slots(SCRATCH_FD_SLOTS + 1), Err(Malformed));
        assert_eq!(scratch.data(SCRATCH_DATA_BYTES + 1), Err(Malformed));
        assert_eq!(scratch.fd_slots(1).expect("one slot"), [f.as_raw_fd()]);
        assert_eq!(scratch.data(1).expect("one byte"), b"x");

        // The fds of a pulled read: count in slot 0, then the fds; more than
        // the slots hold are refused and nothing is written.
        let fds = vec![f.as_fd(); SCRATCH_FD_SLOTS];
        memory.scratch().set_received_fds(&fds[..2]).expect("two fit");
        assert_eq!(
            [memory.fd(0), memory.fd(1), memory.fd(2)],
            [2, f.as_raw_fd(), f.as_raw_fd()]
        );
        assert_eq!(memory.scratch().set_received_fds(&fds), Err(Malformed));
        assert_eq!(memory.fd(0), 2, "slot 0 untouched");
    });
}

#[test]
fn sending_on_a_number_that_is_not_a_unix_socket_is_refused_when_checked() {
    audited(|| {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut memory = Memory::new();
        memory.set_ints(&[w.as_raw_fd(), 0]);
        let got = memory.scratch().send(Some(b"x"), UnixCheck::EverySend);
        assert!(matches!(got, Err(CallError::Failed(_))), "{got:?}");
        drop((r, w));
    });
}

#[test]
fn from_raw_refuses_null_and_misaligned_memory() {
    let mut memory = Memory::new();
    // SAFETY: neither pointer is used: both are refused.
    unsafe {
        assert!(Scratch::from_raw(std::ptr::null_mut()).is_none());
        assert!(Scratch::from_raw(memory.0.as_mut_ptr().cast::<u8>().add(1)).is_none());
    }
}

#[test]
fn the_receive_buffer_keeps_small_buffers_and_frees_large_ones() {
    audited(|| {
        let (a, b) = socket_pair(SocketType::Stream).expect("socketpair");
        let f = file();
        fdpass::send_fds(a.as_fd(), b"hello", &[f.as_raw_fd()]).expect("send");
        let got =
            recv_fds_buffered(b.as_fd(), 1 << 24, 1, |data, fds| (data.to_vec(), fds.len())).expect("recv");
        assert_eq!(
            got,
            (b"hello".to_vec(), 1),
            "the fd was closed as the Vec dropped"
        );
        assert!(kept_capacity() <= KEPT_BYTES, "a 16 MiB buffer is not kept");

        with_buffer(1000, |buf| assert_eq!(buf.len(), 1000));
        let kept = kept_capacity();
        assert!((1000..=KEPT_BYTES).contains(&kept), "{kept}");
        with_buffer(KEPT_BYTES + 1, |buf| assert_eq!(buf.len(), KEPT_BYTES + 1));
        assert_eq!(
            kept_capacity(),
            kept,
            "a larger buffer leaves the kept one as it was"
        );
        // A nested call gets a buffer of its own instead of a double borrow.
        with_buffer(10, |outer| {
            with_buffer(10, |inner| assert_eq!(inner.len(), 10));
            assert_eq!(outer.len(), 10);
        });
    });
}
