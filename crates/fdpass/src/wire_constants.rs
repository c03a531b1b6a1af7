//! The constants the Rust side and the TypeScript layer must agree on, in
//! one place: the event codes a native socket calls JavaScript with, the
//! layout of the lean calls' scratch buffer, and the limits both sides check.
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
    /// `export const NAME = value` with its doc comment.
    Const(&'static str, i64, &'static str),
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
        ],
        "Events a native socket calls its callback with `(kind, a, b)`.",
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
        "Bytes of data the scratch holds, after the fd slots.",
    ),
    TsItem::Const(
        "SCRATCH_INT_SLOTS",
        SCRATCH_INT_SLOTS as i64,
        "Integer argument slots of a lean call (slot 0 holds its result afterwards).",
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
    TsItem::Const(
        "DEFAULT_MAX_BYTES",
        DEFAULT_MAX_BYTES as i64,
        "Default `maxBytes` of the raw `recvFds`.",
    ),
    TsItem::Const(
        "DEFAULT_SOCKET_MAX_BYTES",
        DEFAULT_SOCKET_MAX_BYTES as i64,
        "Default `maxBytes` of a socket: 4 MiB.",
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
        match item {
            TsItem::Const(name, value, doc) => {
                let _ = write!(out, "\n/** {doc} */\nexport const {name} = {value}\n");
            }
            TsItem::Enum(name, members, doc) => {
                let _ = write!(out, "\n/** {doc} */\nexport const enum {name} {{\n");
                for (member, value) in *members {
                    let _ = writeln!(out, "  {member} = {value},");
                }
                out.push_str("}\n");
            }
        }
    }
    out
}
