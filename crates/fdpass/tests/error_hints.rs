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

#[test]
fn placing_a_socket_in_a_missing_directory_fails_as_a_bind_that_says_what_to_do() {
    let missing = std::env::temp_dir().join(format!("fdpass-no-such-dir-{}", std::process::id()));
    let lock = missing.join("s.sock.lock");
    let err = match fdpass::socket_file::PathLock::try_lock(lock.as_os_str().as_encoded_bytes()) {
        Err(e) => e,
        Ok(_) => panic!("a lock file was made in a directory that does not exist"),
    };
    assert_eq!((err.code(), err.syscall()), ("ENOENT", Some("bind")));
    assert!(err.to_string().contains("create it first"), "{err}");
    // connect's ENOENT keeps its own meaning.
    let connect = Error::os(Errno::ENOENT, "connect").to_string();
    assert!(connect.contains("no socket exists"), "{connect}");
}

#[test]
fn classes_are_those_node_uses_for_the_same_code() {
    use fdpass::error::ErrorClass;
    let invalid = Error::InvalidArgument { reason: "x".into() };
    assert_eq!(
        (invalid.code(), invalid.class()),
        ("ERR_INVALID_ARG_VALUE", ErrorClass::TypeError)
    );
    let too_many = Error::TooManyFds { count: 300 };
    assert_eq!(
        (too_many.code(), too_many.class()),
        ("ERR_TOO_MANY_FDS", ErrorClass::RangeError)
    );
    assert_eq!(Error::EmptyData.class(), ErrorClass::Error);
    assert_eq!(Error::os(Errno::EPIPE, "sendmsg").class(), ErrorClass::Error);
}
