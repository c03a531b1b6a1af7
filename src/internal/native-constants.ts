// Generated from crates/fdpass/src/wire_constants.rs by
// `cargo run -p fdpass --example gen-constants`: do not edit.
// The constants the native addon and the TypeScript layer share.

/** Events a native socket calls its callback with `(kind, a, b)`. */
export const enum Ev {
  Messages = 1,
  End = 2,
  Error = 3,
  Written = 4,
  WriteError = 5,
  Accepted = 6,
  Published = 7,
}

/** Fd slots of the lean scratch (the count and up to 253 fds, plus room to spare). */
export const SCRATCH_FD_SLOTS = 256

/** Bytes of the fd slots, at the start of the scratch. */
export const SCRATCH_FD_BYTES = 1024

/** Bytes of data the scratch holds, after the fd slots. */
export const SCRATCH_DATA_BYTES = 65536

/** Integer argument slots of a lean call (slot 0 holds its result afterwards). */
export const SCRATCH_INT_SLOTS = 4

/** Where the integer slots start. */
export const SCRATCH_INTS_AT = 66560

/** The scratch's whole length in bytes. */
export const SCRATCH_LEN = 66576

/** Bytes of the shared buffer received payloads are published into. */
export const SHARED_SCRATCH_BYTES = 262144

/** i32 slots of the shared buffer batch metadata is published into. */
export const SHARED_META_SLOTS = 16384

/** Linux's SCM_MAX_FD: the most fds one message can carry. */
export const MAX_FDS_PER_MESSAGE = 253

/** Default `maxBytes` of the raw `recvFds`. */
export const DEFAULT_MAX_BYTES = 65536

/** Default `maxBytes` of a socket: 4 MiB. */
export const DEFAULT_SOCKET_MAX_BYTES = 4194304
