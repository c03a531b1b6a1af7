//! Error messages that depend on the syscall: the same errno means different
//! things on a send and on a receive.

use fdpass::Error;
use nix::errno::Errno;

#[test]
fn emsgsize_on_a_receive_is_a_full_fd_table() {
    // macOS fails recvmsg with EMSGSIZE when the fds do not fit in the fd
    // table (Linux sets MSG_CTRUNC instead).
    let received = Error::os(Errno::EMSGSIZE, "recvmsg").to_string();
    assert!(received.starts_with("recvmsg EMSGSIZE ("), "{received}");
    assert!(received.contains("fd table"), "{received}");
    let sent = Error::os(Errno::EMSGSIZE, "sendmsg").to_string();
    assert!(sent.contains("too large for this socket"), "{sent}");
}
