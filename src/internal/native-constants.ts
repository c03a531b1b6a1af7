// Generated from crates/fdpass/src/wire_constants.rs by
// `cargo run -p fdpass --example gen-constants`: do not edit.
// The constants the native addon and the TypeScript layer share.

/** Events from the native socket: `(kind, a, b)`. */
export const enum Ev {
  Messages = 1,
  End = 2,
  Error = 3,
  Written = 4,
  WriteError = 5,
  Accepted = 6,
  Published = 7,
  Readable = 8,
}

/** Result of a pulled read (`socketReadInto`) that found nothing to read. */
export const PULL_WOULD_BLOCK = -1

/** Result of a pulled read (`socketReadInto`) at the end of the stream. */
export const PULL_END = -2

/** Fd slots of the lean scratch (the count and up to 253 fds, plus room to spare). */
export const SCRATCH_FD_SLOTS = 256

/** Bytes of the fd slots, at the start of the scratch. */
export const SCRATCH_FD_BYTES = 1024

/** Bytes of data the scratch holds. */
export const SCRATCH_DATA_BYTES = 65536

/** Integer slots of the scratch: a call's arguments, and its result in slot 0. */
export const SCRATCH_INT_SLOTS = 4

/** Where the integer slots start. */
export const SCRATCH_INTS_AT = 66560

/** The scratch's whole length in bytes. */
export const SCRATCH_LEN = 66576

/** Index of the loop flag that is 1 while an event-loop delivery runs, its microtasks included. */
export const LOOP_FLAG_DELIVERING = 0

/** Index of the loop flag that asks the native side to call settleStops() after a delivery. */
export const LOOP_FLAG_SETTLE = 1

/** Bytes of the shared buffer received payloads are published into. */
export const SHARED_SCRATCH_BYTES = 262144

/** i32 slots of the shared buffer batch metadata is published into. */
export const SHARED_META_SLOTS = 16384

/** Linux's SCM_MAX_FD: the most fds one message can carry. */
export const MAX_FDS_PER_MESSAGE = 253

/** Default of {@link RecvFdsOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES: number = 65536

/**
 * Default `maxBytes` of a socket: 4 MiB. Large enough for the JSON metadata,
 * D-Bus or Wayland messages that travel with fds (the kernel's default
 * socket buffer is about 200 KiB, so this is no limit in practice), small
 * enough that a hostile peer cannot make one connection buffer more than
 * that; the memory held grows only with what has arrived.
 */
export const DEFAULT_SOCKET_MAX_BYTES: number = 4194304
