/**
 * fdpass: pass open file descriptors (files, pipes, sockets) between
 * processes over Unix domain sockets with `SCM_RIGHTS`.
 *
 * Two layers: the raw, synchronous API on fd numbers (`socketPair`,
 * `sendFds`, `recvFds`, `closeFds`, `fdKind`) or on an owned `SyncSocket`,
 * `memfd` for shared memory to pass,
 * and event-loop sockets
 * (`FdSocket`, `FdServer`, `connect`, `listen`, `bind`) with framing,
 * backpressure and Node object support.
 * For byte-stream protocols (D-Bus, Wayland, X11), `FdStream`
 * (`createConnection`, `createServer`): a `stream.Duplex` with an fd queue.
 *
 * @packageDocumentation
 */
export type { FdpassError } from './src/errors'
export type { FdKind, RecvFdsOptions, RecvFdsResult, SocketType } from './src/raw'
export { closeFds, DEFAULT_MAX_BYTES, fdKind, recvFds, sendFds, socketPair } from './src/raw'
export { MAX_FDS_PER_MESSAGE } from './src/raw'
export { SyncSocket } from './src/sync-socket'
export { MAX_MEMFD_NAME_BYTES, memfd } from './src/memfd'
export type { FdLike } from './src/fd-like'
export type { FdMessage, PeerCredentials, ReceiveManyOptions, ReceiveOptions, SocketOptions } from './src/fd-socket'
export { DEFAULT_SOCKET_MAX_BYTES, FdSocket } from './src/fd-socket'
export type { PeerCheck, ServerOptions } from './src/fd-server'
export { FdServer } from './src/fd-server'
export type { BindOptions, ConnectOptions, ListenOptions } from './src/connect'
export { bind, connect, listen } from './src/connect'
export type {
  HandoffResult,
  HandoffSource,
  ListenerKind,
  ListenerMetadata,
  ServeListenersOptions,
  TakeListenersOptions,
  TakenOptions,
} from './src/handoff'
export { ListenerHandoff, serveListeners, takeListeners, TakenListener, TakenListeners } from './src/handoff'
export type {
  GetHaproxySocketsOptions,
  HaproxySocket,
  HaproxySocketEntry,
  HaproxySocketSource,
  HaproxyTransfer,
  ServeHaproxySocketsOptions,
} from './src/haproxy'
export { getHaproxySockets, HAPROXY_SOCKET_OPTIONS, HaproxySocketServer, serveHaproxySockets } from './src/haproxy'
export type { FdStreamChunk, FdStreamOptions } from './src/stream/fd-stream'
export { DEFAULT_STREAM_MAX_QUEUED_FDS, FdStream } from './src/stream/fd-stream'
export { createConnection } from './src/stream/create-connection'
export type { StreamListenOptions } from './src/stream/server'
export { createServer, FdStreamServer } from './src/stream/server'
export type { SocketAddress, SocketInfo } from './src/socket-info'
export { socketInfo } from './src/socket-info'
