/**
 * fdpass: pass open file descriptors (files, pipes, sockets) between
 * processes over Unix domain sockets with `SCM_RIGHTS`.
 *
 * @packageDocumentation
 */
export type { FdpassError } from './src/errors'
export type { FdKind, RecvFdsOptions, RecvFdsResult, SocketType } from './src/raw'
export { closeFds, DEFAULT_MAX_BYTES, fdKind, recvFds, sendFds, socketPair } from './src/raw'
export { MAX_FDS_PER_MESSAGE } from './src/validate'
