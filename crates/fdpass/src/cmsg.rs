//! Parsing of received control data, written to distrust it.
//!
//! nix's `RecvMsg::cmsgs()` refuses to parse anything once the kernel set
//! `MSG_CTRUNC`, which strands the fds that did arrive, and `msg_controllen` is
//! not exposed. So the receive path hands the kernel a zero-filled buffer and
//! walks it here: a header whose length is smaller than a header ends the walk
//! (the zero fill guarantees one after the last real message), and every length
//! is clamped to the buffer, because macOS reports the untruncated length of a
//! truncated message.
//!
//! The buffer is reused from one receive to the next, so it remembers how far
//! the last walk went: only that prefix can hold anything but zeros, and only
//! it is cleared again (24 bytes after a one-fd message instead of the whole
//! buffer, about 1.1 KiB).

use std::mem::size_of;

/// The most fds accepted in one receive: Linux `SCM_MAX_FD` is 253 and macOS
/// takes up to about 254, so room for 256 covers both.
const RECV_FD_SLOTS: u32 = 256;

/// Room for a credentials message (or any other a peer could cause) besides
/// the fds, so that it never pushes the fds out of the buffer.
const EXTRA_CMSG_ROOM: u32 = 64;

/// Size of the receive control buffer.
// SAFETY: CMSG_SPACE only does arithmetic on its argument.
pub const CONTROL_BUFFER_LEN: usize = unsafe {
    (libc::CMSG_SPACE(RECV_FD_SLOTS * size_of::<libc::c_int>() as u32) + libc::CMSG_SPACE(EXTRA_CMSG_ROOM))
        as usize
};

/// A receive control buffer, aligned as the kernel expects a `cmsghdr` to be,
/// that keeps itself zero-filled beyond what the last receive wrote.
///
/// Use: [`ControlBuffer::for_recvmsg`] before each `recvmsg`, then
/// [`ControlBuffer::walk`] to read what arrived.
#[repr(C, align(8))]
pub struct ControlBuffer {
    bytes: [u8; CONTROL_BUFFER_LEN],
    /// Every byte from here on is zero.
    dirty: usize,
}

impl ControlBuffer {
    /// A zero-filled control buffer.
    pub const fn new() -> Self {
        ControlBuffer {
            bytes: [0; CONTROL_BUFFER_LEN],
            dirty: 0,
        }
    }

    /// The whole buffer, zero-filled, for the kernel to write into. Until the
    /// next [`ControlBuffer::walk`], all of it counts as written (a receive
    /// that fails is not walked, and its buffer is cleared in full next time).
    pub fn for_recvmsg(&mut self) -> &mut [u8] {
        self.bytes[..self.dirty].fill(0);
        self.dirty = CONTROL_BUFFER_LEN;
        &mut self.bytes
    }

    /// Walks every control message in the buffer, in order, and remembers
    /// where the walk ended.
    ///
    /// The kernel writes its messages one after another from the start, so
    /// the walk over a buffer that was zero-filled ends at the first zero
    /// header after them: nothing past that header was written.
    pub fn walk(&mut self, mut each: impl FnMut(ControlMessage<'_>)) {
        let mut messages = control_messages(&self.bytes);
        for message in &mut messages {
            each(message);
        }
        self.dirty = (messages.pos + HEADER_LEN).min(CONTROL_BUFFER_LEN);
    }

    /// The bytes, as the next walk will see them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes `data` at the start, as a kernel would (fuzzing and tests).
    pub fn fill_from(&mut self, data: &[u8]) {
        let n = data.len().min(CONTROL_BUFFER_LEN);
        self.for_recvmsg()[..n].copy_from_slice(&data[..n]);
    }
}

impl Default for ControlBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// One control message, borrowed from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMessage<'a> {
    /// `cmsg_level`, e.g. `SOL_SOCKET`.
    pub level: i32,
    /// `cmsg_type`, e.g. `SCM_RIGHTS`.
    pub kind: i32,
    /// The payload, clamped to the buffer.
    pub data: &'a [u8],
}

impl ControlMessage<'_> {
    /// Whether this message carries fds that the receiving process now owns:
    /// `SCM_RIGHTS`, and on Linux `SCM_PIDFD`, which is an fd too.
    pub fn carries_fds(&self) -> bool {
        self.level == libc::SOL_SOCKET && (self.kind == libc::SCM_RIGHTS || is_pidfd(self.kind))
    }

    /// The fd numbers in the payload: whole `c_int`s only, negative ones
    /// skipped (the kernel never writes one; a forged buffer might).
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.data
            .chunks_exact(size_of::<libc::c_int>())
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .filter(|fd| *fd >= 0)
    }
}

#[cfg(target_os = "linux")]
fn is_pidfd(kind: i32) -> bool {
    // SCM_PIDFD (Linux 6.5+), not yet named by every libc.
    kind == 0x04
}

#[cfg(not(target_os = "linux"))]
fn is_pidfd(_kind: i32) -> bool {
    false
}

/// `CMSG_ALIGN`: glibc and musl align to `size_t`, macOS to 4 bytes.
const fn cmsg_align(len: usize) -> usize {
    #[cfg(target_vendor = "apple")]
    const ALIGN: usize = 4;
    #[cfg(not(target_vendor = "apple"))]
    const ALIGN: usize = size_of::<usize>();
    (len + ALIGN - 1) & !(ALIGN - 1)
}

const HEADER_LEN: usize = size_of::<libc::cmsghdr>();
const DATA_OFFSET: usize = cmsg_align(HEADER_LEN);

/// Walks the control messages in `buf`, bounds-checked.
pub fn control_messages(buf: &[u8]) -> ControlMessages<'_> {
    ControlMessages { buf, pos: 0 }
}

/// Iterator over the control messages of a buffer. See [`control_messages`].
#[derive(Debug, Clone)]
pub struct ControlMessages<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ControlMessages<'a> {
    type Item = ControlMessage<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.len() < HEADER_LEN {
            return None;
        }
        // SAFETY: `rest` holds at least HEADER_LEN bytes, and read_unaligned
        // copies them without any alignment requirement; cmsghdr is plain data.
        let header: libc::cmsghdr = unsafe { std::ptr::read_unaligned(rest.as_ptr().cast()) };
        let len = header.cmsg_len as usize;
        if len < HEADER_LEN {
            // Zero fill (the end) or a corrupt header: nothing more to trust.
            return None;
        }
        let end = len.min(rest.len());
        let data = rest.get(DATA_OFFSET.min(end)..end).unwrap_or(&[]);
        // A length that reaches the end of the buffer ends the walk; aligning
        // it could overflow (a forged cmsg_len near usize::MAX).
        self.pos = if len >= rest.len() {
            self.buf.len()
        } else {
            (self.pos + cmsg_align(len)).min(self.buf.len())
        };
        Some(ControlMessage {
            level: header.cmsg_level,
            kind: header.cmsg_type,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut Vec<u8>, level: i32, kind: i32, payload: &[u8], declared: Option<usize>) {
        let start = buf.len();
        buf.resize(start + DATA_OFFSET, 0);
        let len = declared.unwrap_or(DATA_OFFSET + payload.len());
        // SAFETY: cmsghdr is a plain C struct of integers (and padding on
        // some targets), for which all-zero bytes are a valid value.
        let mut header: libc::cmsghdr = unsafe { std::mem::zeroed() };
        header.cmsg_len = len as _;
        header.cmsg_level = level;
        header.cmsg_type = kind;
        // SAFETY: buf[start..] holds DATA_OFFSET >= size_of::<cmsghdr>() bytes
        // (resized just above), and write_unaligned needs no alignment.
        unsafe { std::ptr::write_unaligned(buf[start..].as_mut_ptr().cast(), header) };
        buf.extend_from_slice(payload);
        buf.resize(start + cmsg_align(DATA_OFFSET + payload.len()), 0);
    }

    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|i| i.to_ne_bytes()).collect()
    }

    /// Writes `messages` into a reused buffer as a kernel would (one after
    /// another from the start), walks them, and checks that the next
    /// receive's buffer is all zeros again.
    /// Returns the messages yielded and how many bytes were to be cleared.
    fn reuse_after(control: &mut ControlBuffer, messages: &[u8]) -> (usize, usize) {
        let n = messages.len().min(CONTROL_BUFFER_LEN);
        control.for_recvmsg()[..n].copy_from_slice(&messages[..n]);
        let mut yielded = 0;
        control.walk(|_| yielded += 1);
        let dirty = control.dirty;
        assert!(
            control.for_recvmsg().iter().all(|b| *b == 0),
            "stale control bytes after {yielded} messages"
        );
        (yielded, dirty)
    }

    #[test]
    fn a_reused_buffer_is_zero_again_for_every_receive() {
        let mut control = ControlBuffer::new();
        let mut one = Vec::new();
        put(&mut one, libc::SOL_SOCKET, libc::SCM_RIGHTS, &ints(&[3]), None);
        let (yielded, dirty) = reuse_after(&mut control, &one);
        assert_eq!(yielded, 1);
        assert!(
            dirty <= one.len() + HEADER_LEN,
            "cleared {dirty} bytes for one fd"
        );

        // Many fds, then credentials after them, then one fd again.
        let mut many = Vec::new();
        put(
            &mut many,
            libc::SOL_SOCKET,
            libc::SCM_RIGHTS,
            &ints(&[5; 253]),
            None,
        );
        put(&mut many, libc::SOL_SOCKET, 2, &[7; 12], None);
        assert_eq!(reuse_after(&mut control, &many).0, 2);
        assert_eq!(reuse_after(&mut control, &one).0, 1);

        // A length past the end (macOS reports a truncated message's full
        // length): the whole buffer is cleared next time.
        let mut long = Vec::new();
        put(
            &mut long,
            libc::SOL_SOCKET,
            libc::SCM_RIGHTS,
            &ints(&[9; 4]),
            Some(1 << 20),
        );
        long.resize(CONTROL_BUFFER_LEN, 0xff);
        assert_eq!(reuse_after(&mut control, &long), (1, CONTROL_BUFFER_LEN));

        // A receive that failed is never walked: everything is cleared.
        control.for_recvmsg().fill(0xaa);
        assert!(control.for_recvmsg().iter().all(|b| *b == 0));
    }

    #[test]
    fn walks_several_messages() {
        let mut buf = Vec::new();
        put(&mut buf, libc::SOL_SOCKET, libc::SCM_RIGHTS, &ints(&[3, 4]), None);
        put(&mut buf, libc::SOL_SOCKET, 99, &[1, 2, 3], None);
        put(&mut buf, libc::SOL_SOCKET, libc::SCM_RIGHTS, &ints(&[5]), None);
        buf.resize(buf.len() + 32, 0);
        let all: Vec<_> = control_messages(&buf).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].fds().collect::<Vec<_>>(), vec![3, 4]);
        assert!(!all[1].carries_fds());
        assert_eq!(all[2].fds().collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn clamps_an_untruncated_length_to_the_buffer() {
        // macOS reports the full length of a truncated message.
        let mut buf = Vec::new();
        put(
            &mut buf,
            libc::SOL_SOCKET,
            libc::SCM_RIGHTS,
            &ints(&[7, 8]),
            Some(4096),
        );
        let all: Vec<_> = control_messages(&buf).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].fds().collect::<Vec<_>>(), vec![7, 8]);
    }

    #[test]
    fn ignores_partial_ints_negative_fds_and_tiny_headers() {
        let mut buf = Vec::new();
        let mut payload = ints(&[-1, 9]);
        payload.extend_from_slice(&[1, 2]);
        put(&mut buf, libc::SOL_SOCKET, libc::SCM_RIGHTS, &payload, None);
        let all: Vec<_> = control_messages(&buf).collect();
        assert_eq!(all[0].fds().collect::<Vec<_>>(), vec![9]);
        assert_eq!(control_messages(&[0u8; 3]).count(), 0);
        let mut tiny = Vec::new();
        put(&mut tiny, libc::SOL_SOCKET, libc::SCM_RIGHTS, &[], Some(2));
        assert_eq!(control_messages(&tiny).count(), 0);
    }

    #[test]
    fn a_length_near_usize_max_ends_the_walk() {
        // Found by the control_messages fuzz target: aligning this length
        // overflowed, and the walk yielded the same message forever.
        let mut buf = Vec::new();
        put(
            &mut buf,
            libc::SOL_SOCKET,
            libc::SCM_RIGHTS,
            &ints(&[3, 4]),
            Some(usize::MAX - 1),
        );
        let all: Vec<_> = control_messages(&buf).take(2).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].fds().collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn buffer_fits_the_kernel_maximum() {
        // SAFETY: arithmetic only.
        let needed = unsafe { libc::CMSG_SPACE(253 * 4) } as usize;
        assert!(CONTROL_BUFFER_LEN >= needed);
    }
}
