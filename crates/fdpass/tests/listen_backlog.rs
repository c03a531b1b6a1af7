//! `unix::listen` takes any backlog, as `listen(2)` does: the kernel caps it
//! at its own maximum, whatever the C library's `SOMAXCONN` constant says
//! (128 on musl and macOS, 4096 on glibc).

use std::os::fd::AsFd;

use fdpass::unix;
use fdpass::{new_socket, SocketType};

/// Each call gets its own path: the tests run in parallel threads of one
/// process, and two of them listening with the same backlog must not unlink
/// each other's socket file.
fn listening(backlog: i32) -> (std::path::PathBuf, std::os::fd::OwnedFd) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("fdpass-backlog-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = new_socket(SocketType::Stream).expect("socket");
    let addr = unix::unix_addr(path.as_os_str().as_encoded_bytes(), "bind").expect("address");
    unix::bind(server.as_fd(), &addr).expect("bind");
    unix::listen(server.as_fd(), backlog).unwrap_or_else(|e| panic!("listen with backlog {backlog}: {e}"));
    (path, server)
}

#[test]
fn any_backlog_is_accepted() {
    for backlog in [-1, 0, 1, 128, 511, 4096, 65535, i32::MAX] {
        let (path, server) = listening(backlog);
        drop(server);
        std::fs::remove_file(path).expect("remove the socket file");
    }
}

/// Linux queues backlog + 1 connections nobody accepted; the next one waits.
#[cfg(target_os = "linux")]
#[test]
fn a_backlog_of_one_queues_two_connections() {
    let (path, server) = listening(1);
    let addr = unix::unix_addr(path.as_os_str().as_encoded_bytes(), "connect").expect("address");
    let mut clients = Vec::new();
    let queued = loop {
        let client = new_socket(SocketType::Stream).expect("socket");
        fdpass::set_nonblocking(client.as_fd(), true).expect("non-blocking");
        let outcome = unix::connect(client.as_fd(), &addr).expect("connect");
        clients.push(client);
        if matches!(outcome, unix::Connect::Retry) || clients.len() > 10 {
            break clients.len() - 1;
        }
    };
    assert_eq!(queued, 2);
    drop(server);
    std::fs::remove_file(path).expect("remove the socket file");
}
