/**
 * Values the TypeScript layer and the native addon must agree on: the event
 * codes of the native sockets, the layout of the lean calls' scratch, the
 * loop flags of the deferred stops, and the limits of a message. Kept in
 * this one file, each as the native side defines it (crates/fdpass-node).
 */

/** Events from the native socket: must match socket.rs. */
export const enum Ev {
  Messages = 1,
  End = 2,
  Error = 3,
  Written = 4,
  WriteError = 5,
  Accepted = 6,
  Published = 7,
}

/** Fd slots of the scratch (the count and up to 253 fds, plus room to spare). */
export const SCRATCH_FD_SLOTS = 256
/** Bytes of the fd slots. */
export const SCRATCH_FD_BYTES = SCRATCH_FD_SLOTS * 4
/** Bytes of data the scratch holds. */
export const SCRATCH_DATA_BYTES = 64 * 1024
/** Integer slots of the scratch: a call's arguments, and its result in slot 0. */
export const SCRATCH_INT_SLOTS = 4

/** Index of the loop flag that is 1 while an event-loop delivery runs, its microtasks included. */
export const LOOP_FLAG_DELIVERING = 0
/** Index of the loop flag that asks the native side to call settleStops() after a delivery. */
export const LOOP_FLAG_SETTLE = 1

/** Linux's SCM_MAX_FD: the most fds one message can carry. */
export const MAX_FDS_PER_MESSAGE = 253

/** Default of {@link RecvFdsOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES = 64 * 1024
