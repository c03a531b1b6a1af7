//! The constants the Rust side and the TypeScript layer must agree on, in
//! one place: the event codes a native socket calls JavaScript with, the
//! layout of the lean calls' scratch buffer, the slots of the loop flags, the
//! sizes of the shared buffers, and the limits and defaults both sides use.
//!
//! `src/internal/native-constants.ts` is generated from [`TYPESCRIPT`] by
//! `cargo run -p fdpass --example gen-constants` (`-- --check` fails when the
//! file is stale); nothing else defines these numbers.

use crate::error::MAX_FDS_PER_MESSAGE as MAX_FDS;

/// Messages arrived: `(kind, Buffer of payloads, Int32Array [count, (len, nfds, fd...)...])`.
pub const EV_MESSAGES: i32 = 1;
/// The peer closed the stream.
pub const EV_END: i32 = 2;
/// `(kind, Error)`: the socket is unusable.
pub const EV_ERROR: i32 = 3;
/// `(kind, n)`: `n` queued sends completed.
pub const EV_WRITTEN: i32 = 4;
/// `(kind, Error, n)`: a queued send failed, and `n` queued sends with it.
pub const EV_WRITE_ERROR: i32 = 5;
/// `(kind, undefined, Int32Array [count, fd...])`: accepted connections.
pub const EV_ACCEPTED: i32 = 6;
/// `(kind, count)`: the batch is in the shared buffers.
pub const EV_PUBLISHED: i32 = 7;
/// The socket has input for a connection that pulls its reads itself
/// ([`Connection::set_pull_reads`](crate::conn::Connection::set_pull_reads)).
pub const EV_READABLE: i32 = 8;

/// What a pulled read (`Connection::read_into`) reports when the socket had
/// nothing to read: the read would block.
pub const PULL_WOULD_BLOCK: i32 = -1;
/// What a pulled read reports at the end of the stream.
pub const PULL_END: i32 = -2;

/// Fd slots of the lean scratch: the count and up to 253 fds, plus room to spare.
pub const SCRATCH_FD_SLOTS: usize = 256;
/// Bytes of the fd slots, at the start of the scratch.
pub const SCRATCH_FD_BYTES: usize = SCRATCH_FD_SLOTS * 4;
/// Bytes of data the scratch holds, after the fd slots: `recvFds`'s default
/// `maxBytes`; larger ones take the allocating path.
pub const SCRATCH_DATA_BYTES: usize = 64 * 1024;
/// Integer argument slots of a lean call, after the data (the first also
/// takes the result).
pub const SCRATCH_INT_SLOTS: usize = 4;
/// Where the integer slots start.
pub const SCRATCH_INTS_AT: usize = SCRATCH_FD_BYTES + SCRATCH_DATA_BYTES;
/// The scratch's whole length in bytes.
pub const SCRATCH_LEN: usize = SCRATCH_INTS_AT + SCRATCH_INT_SLOTS * 4;

/// Slot of the loop flags that is 1 while an event-loop delivery runs, its
/// microtasks included.
pub const LOOP_FLAG_DELIVERING: usize = 0;
/// Slot of the loop flags that asks the native side to call JavaScript's
/// settle function after a delivery.
pub const LOOP_FLAG_SETTLE: usize = 1;

/// Bytes of the shared buffer received payloads are published into.
pub const SHARED_SCRATCH_BYTES: usize = 256 * 1024;
/// i32 slots of the shared buffer batch metadata is published into.
pub const SHARED_META_SLOTS: usize = 16 * 1024;

/// The most fds one message may carry (Linux `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = MAX_FDS;
/// Default `maxBytes` of the raw `recvFds`.
pub const DEFAULT_MAX_BYTES: usize = SCRATCH_DATA_BYTES;
/// Default `maxBytes` of a socket: 4 MiB.
pub const DEFAULT_SOCKET_MAX_BYTES: usize = 4 * 1024 * 1024;

/// How a constant appears in the generated TypeScript file.
#[derive(Debug, Clone, Copy)]
pub enum TsItem {
    /// `export const NAME = value` with its doc comment: of the literal type.
    Const(&'static str, i64, &'static str),
    /// `export const NAME: number = value` with its doc comment: a default
    /// whose public type is `number`, free to change.
    Number(&'static str, i64, &'static str),
    /// `export const enum NAME { Member = value, ... }` with its doc comment.
    Enum(&'static str, &'static [(&'static str, i64)], &'static str),
}

/// Everything `src/internal/native-constants.ts` holds, in order.
pub const TYPESCRIPT: &[TsItem] = &[
    TsItem::Enum(
        "Ev",
        &[
            ("Messages", EV_MESSAGES as i64),
            ("End", EV_END as i64),
            ("Error", EV_ERROR as i64),
            ("Written", EV_WRITTEN as i64),
            ("WriteError", EV_WRITE_ERROR as i64),
            ("Accepted", EV_ACCEPTED as i64),
            ("Published", EV_PUBLISHED as i64),
            ("Readable", EV_READABLE as i64),
        ],
        "Events from the native socket: `(kind, a, b)`.",
    ),
    TsItem::Const(
        "PULL_WOULD_BLOCK",
        PULL_WOULD_BLOCK as i64,
        "Result of a pulled read (`socketReadInto`) that found nothing to read.",
    ),
    TsItem::Const(
        "PULL_END",
        PULL_END as i64,
        "Result of a pulled read (`socketReadInto`) at the end of the stream.",
    ),
    TsItem::Const(
        "SCRATCH_FD_SLOTS",
        SCRATCH_FD_SLOTS as i64,
        "Fd slots of the lean scratch (the count and up to 253 fds, plus room to spare).",
    ),
    TsItem::Const(
        "SCRATCH_FD_BYTES",
        SCRATCH_FD_BYTES as i64,
        "Bytes of the fd slots, at the start of the scratch.",
    ),
    TsItem::Const(
        "SCRATCH_DATA_BYTES",
        SCRATCH_DATA_BYTES as i64,
        "Bytes of data the scratch holds.",
    ),
    TsItem::Const(
        "SCRATCH_INT_SLOTS",
        SCRATCH_INT_SLOTS as i64,
        "Integer slots of the scratch: a call's arguments, and its result in slot 0.",
    ),
    TsItem::Const(
        "SCRATCH_INTS_AT",
        SCRATCH_INTS_AT as i64,
        "Where the integer slots start.",
    ),
    TsItem::Const(
        "SCRATCH_LEN",
        SCRATCH_LEN as i64,
        "The scratch's whole length in bytes.",
    ),
    TsItem::Const(
        "LOOP_FLAG_DELIVERING",
        LOOP_FLAG_DELIVERING as i64,
        "Index of the loop flag that is 1 while an event-loop delivery runs, its microtasks included.",
    ),
    TsItem::Const(
        "LOOP_FLAG_SETTLE",
        LOOP_FLAG_SETTLE as i64,
        "Index of the loop flag that asks the native side to call settleStops() after a delivery.",
    ),
    TsItem::Const(
        "SHARED_SCRATCH_BYTES",
        SHARED_SCRATCH_BYTES as i64,
        "Bytes of the shared buffer received payloads are published into.",
    ),
    TsItem::Const(
        "SHARED_META_SLOTS",
        SHARED_META_SLOTS as i64,
        "i32 slots of the shared buffer batch metadata is published into.",
    ),
    TsItem::Const(
        "MAX_FDS_PER_MESSAGE",
        MAX_FDS_PER_MESSAGE as i64,
        "Linux's SCM_MAX_FD: the most fds one message can carry.",
    ),
    TsItem::Number(
        "DEFAULT_MAX_BYTES",
        DEFAULT_MAX_BYTES as i64,
        "Default of {@link RecvFdsOptions.maxBytes}.",
    ),
    TsItem::Number(
        "DEFAULT_SOCKET_MAX_BYTES",
        DEFAULT_SOCKET_MAX_BYTES as i64,
        "Default `maxBytes` of a socket: 4 MiB. Large enough for the JSON metadata,\n\
         D-Bus or Wayland messages that travel with fds (the kernel's default\n\
         socket buffer is about 200 KiB, so this is no limit in practice), small\n\
         enough that a hostile peer cannot make one connection buffer more than\n\
         that; the memory held grows only with what has arrived.",
    ),
];

/// The generated TypeScript file's whole text.
pub fn typescript() -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "// Generated from crates/fdpass/src/wire_constants.rs by\n\
         // `cargo run -p fdpass --example gen-constants`: do not edit.\n\
         // The constants the native addon and the TypeScript layer share.\n",
    );
    for item in TYPESCRIPT {
        let (TsItem::Const(_, _, doc) | TsItem::Number(_, _, doc) | TsItem::Enum(_, _, doc)) = item;
        if doc.contains('\n') {
            out.push_str("\n/**\n");
            for line in doc.lines() {
                let _ = writeln!(out, " * {line}");
            }
            out.push_str(" */\n");
        } else {
            let _ = write!(out, "\n/** {doc} */\n");
        }
        match item {
            TsItem::Const(name, value, _) => {
                let _ = writeln!(out, "export const {name} = {value}");
            }
            TsItem::Number(name, value, _) => {
                let _ = writeln!(out, "export const {name}: number = {value}");
            }
            TsItem::Enum(name, members, _) => {
                let _ = writeln!(out, "export const enum {name} {{");
                for (member, value) in *members {
                    let _ = writeln!(out, "  {member} = {value},");
                }
                out.push_str("}\n");
            }
        }
    }
    out
}
