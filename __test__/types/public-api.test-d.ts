/**
 * Type tests of the public API: compiled by `npm run typecheck` (tsc over
 * __test__), never run. Each assertion fails the type check when a type
 * drifts from what README and the API reference say; each @ts-expect-error
 * fails it when something wrong starts to be accepted.
 */
import type * as dgram from 'node:dgram'
import type * as fs from 'node:fs'
import type * as net from 'node:net'

import {
  bind,
  closeFds,
  connect,
  DEFAULT_MAX_BYTES,
  fdKind,
  FdServer,
  FdSocket,
  listen,
  MAX_FDS_PER_MESSAGE,
  recvFds,
  sendFds,
  socketPair,
  SyncSocket,
  getHaproxySockets,
  HAPROXY_SOCKET_OPTIONS,
  serveHaproxySockets,
  serveListeners,
  takeListeners,
  type HaproxySocket,
  type HaproxySocketServer,
  type HandoffResult,
  type ListenerHandoff,
  type ListenerKind,
  type TakenListener,
  type TakenListeners,
  type BindOptions,
  type ConnectOptions,
  type FdKind,
  type FdLike,
  type FdMessage,
  type FdpassError,
  type ListenOptions,
  type PeerCheck,
  type PeerCredentials,
  type ReceiveManyOptions,
  type ReceiveOptions,
  type RecvFdsOptions,
  type RecvFdsResult,
  type ServerOptions,
  type SocketOptions,
  type SocketType,
} from 'fdpass'
import { socketInfo, type SocketAddress, type SocketInfo } from 'fdpass'
import {
  LISTEN_FDS_START,
  listenFds,
  listenFdsByName,
  MAX_FDNAME_LENGTH,
  notify,
  ready,
  removeStoredFds,
  storeFds,
  watchdog,
  watchdogInterval,
  type ListenFdsOptions,
} from 'fdpass/systemd'

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
/** Compiles only when its argument is `true`. */
function expect<T extends true>(): T | undefined {
  return undefined
}

export const checks = [
  // Constants and the socket types.
  expect<Equal<typeof MAX_FDS_PER_MESSAGE, 253>>(),
  expect<Equal<typeof DEFAULT_MAX_BYTES, number>>(),
  expect<Equal<SocketType, 'stream' | 'seqpacket' | 'dgram'>>(),
  expect<
    Equal<
      FdKind,
      'file' | 'directory' | 'socket' | 'fifo' | 'character-device' | 'block-device' | 'symlink' | 'unknown'
    >
  >(),

  // The raw API.
  expect<Equal<typeof socketPair, (type?: SocketType) => [number, number]>>(),
  expect<Equal<typeof sendFds, (socket: number, data: Uint8Array | string, fds?: readonly number[]) => number>>(),
  expect<Equal<typeof recvFds, (socket: number, options?: RecvFdsOptions) => RecvFdsResult>>(),
  expect<Equal<typeof closeFds, (fds: readonly number[]) => void>>(),
  expect<Equal<typeof fdKind, (fd: number) => FdKind>>(),
  expect<Equal<RecvFdsOptions, { maxBytes?: number; maxFds?: number }>>(),
  expect<Equal<RecvFdsResult, { data: Buffer; fds: number[] }>>(),

  // SyncSocket.
  expect<Equal<ReturnType<typeof SyncSocket.pair>, [SyncSocket, SyncSocket]>>(),
  expect<Equal<ReturnType<typeof SyncSocket.from>, SyncSocket>>(),
  expect<Equal<SyncSocket['send'], (data: Uint8Array | string, fds?: readonly number[]) => number>>(),
  expect<Equal<SyncSocket['receive'], (options?: RecvFdsOptions) => RecvFdsResult>>(),
  expect<Equal<SyncSocket['fd'] | SyncSocket['closed'] | SyncSocket['type'], number | boolean | SocketType>>(),

  // Every socket option, with its type (README's options table).
  expect<
    Equal<
      SocketOptions,
      { framing?: boolean; maxBytes?: number; maxFds?: number; readAhead?: number; maxQueuedFds?: number }
    >
  >(),
  expect<Equal<Omit<ConnectOptions, keyof SocketOptions>, { type?: SocketType }>>(),
  expect<
    Equal<
      Omit<ListenOptions, keyof SocketOptions>,
      { type?: 'stream' | 'seqpacket'; backlog?: number; mode?: number; replaceStale?: boolean; allowPeer?: PeerCheck }
    >
  >(),
  expect<Equal<Omit<BindOptions, keyof SocketOptions>, { mode?: number; replaceStale?: boolean }>>(),
  expect<Equal<ReceiveOptions, { signal?: AbortSignal }>>(),
  expect<Equal<Omit<ReceiveManyOptions, 'signal'>, { max?: number }>>(),

  // Peer credentials: the pid may be unknown.
  expect<Equal<PeerCredentials, { pid: number | undefined; uid: number; gid: number }>>(),
  expect<Equal<PeerCheck, (credentials: PeerCredentials) => boolean>>(),

  // What send() accepts as fds.
  expect<Equal<FdLike, number | { fd: number } | net.Socket | net.Server | dgram.Socket | fs.promises.FileHandle>>(),

  // FdSocket.
  expect<Equal<ReturnType<typeof FdSocket.pair>, [FdSocket, FdSocket]>>(),
  expect<Equal<typeof FdSocket.from, (fd: number, options?: SocketOptions) => FdSocket>>(),
  expect<Equal<FdSocket['send'], (data: Uint8Array | string, fds?: readonly FdLike[]) => Promise<void>>>(),
  expect<Equal<FdSocket['receive'], (options?: ReceiveOptions) => Promise<FdMessage>>>(),
  expect<Equal<FdSocket['receiveMany'], (options?: ReceiveManyOptions) => Promise<FdMessage[]>>>(),
  expect<Equal<FdSocket['peerCredentials'], () => PeerCredentials>>(),
  expect<Equal<FdSocket['close'], () => void>>(),
  expect<Equal<FdSocket[typeof Symbol.dispose], () => void>>(),
  expect<Equal<FdSocket['fd'] | FdSocket['writableLength'], number>>(),
  expect<Equal<FdSocket['closed'], boolean>>(),
  expect<Equal<FdSocket['type'], SocketType>>(),
  expect<Equal<FdSocket['whenClosed'], () => Promise<void>>>(),
  expect<Equal<FdMessage, { data: Buffer; fds: number[] }>>(),

  // FdServer: close() and asyncDispose are asynchronous.
  expect<Equal<FdServer['accept'], (options?: ReceiveOptions) => Promise<FdSocket>>>(),
  expect<Equal<FdServer['close'], () => Promise<void>>>(),
  expect<Equal<FdServer[typeof Symbol.asyncDispose], () => Promise<void>>>(),
  expect<Equal<FdServer['path'], string>>(),
  expect<Equal<FdServer['fd'], number>>(),
  expect<Equal<FdServer['whenClosed'], () => Promise<void>>>(),
  expect<Equal<typeof FdServer.from, (fd: number, options?: ServerOptions) => FdServer>>(),
  expect<Equal<ServerOptions['allowPeer'], PeerCheck | undefined>>(),

  // Named sockets.
  expect<Equal<typeof connect, (path: string, options?: ConnectOptions) => Promise<FdSocket>>>(),
  expect<Equal<typeof listen, (path: string, options?: ListenOptions) => Promise<FdServer>>>(),
  expect<Equal<typeof bind, (path: string, options?: BindOptions) => Promise<FdSocket>>>(),

  // Errors.
  expect<Equal<Pick<FdpassError, 'code' | 'errno' | 'syscall'>, { code: string; errno?: number; syscall?: string }>>(),
]

/** Uses that must not compile. */
export async function rejected(socket: FdSocket, server: FdServer): Promise<void> {
  const { pid, uid } = socket.peerCredentials()
  // @ts-expect-error the pid may be undefined: check it before using it as a number
  const known: number = pid
  const sure: number = uid
  // @ts-expect-error fds are numbers or Node objects with an fd, not strings
  await socket.send('x', ['3'])
  // @ts-expect-error listen() makes stream or seqpacket servers; datagram sockets use bind()
  await listen('/tmp/x.sock', { type: 'dgram' })
  // @ts-expect-error no such option
  FdSocket.pair('stream', { maxfds: 1 })
  // @ts-expect-error no such socket type
  socketPair('raw')
  // @ts-expect-error close() of a server is asynchronous: it returns a promise, not void
  const done: void = server.close()
  // @ts-expect-error FdServer.from() adopts a listening socket as it is: no listen() options
  FdServer.from(3, { backlog: 16 })
  // @ts-expect-error recvFds takes an options object
  recvFds(0, 1)
  void [known, sure, done]
}

// Listener handoff and HAProxy: names, kinds and results are typed.

export async function handoffTypes(server: net.Server, udp: dgram.Socket, fdServer: FdServer): Promise<void> {
  const handoff: ListenerHandoff = await serveListeners('/tmp/h.sock', { web: server, udp, ipc: fdServer, raw: 3 })
  const result: HandoffResult = await handoff.taken({ signal: AbortSignal.timeout(1000) })
  const names: string[] = result.names
  const taken: TakenListeners = await takeListeners('/tmp/h.sock', { timeout: 1000, maxListeners: 8 })
  const web: TakenListener | undefined = taken.get('web')
  const kind: ListenerKind | undefined = web?.kind
  expect<Equal<ListenerKind, 'tcp' | 'unix' | 'udp' | 'fdpass' | 'fd'>>()
  const port: number | undefined = web?.metadata.port
  await web?.listen(server)
  await taken.get('udp')?.bind(udp)
  const adopted: FdServer | undefined = taken.get('ipc')?.toFdServer()
  const fd: number | undefined = taken.get('raw')?.take()
  await taken.ready()
  taken.close()
  // @ts-expect-error listeners are given by name in an object, not as an array
  await serveListeners('/tmp/h.sock', [server])
  // @ts-expect-error a string is not a listener
  await serveListeners('/tmp/h.sock', { web: 'x' })

  const sockets: HaproxySocket[] = await getHaproxySockets('/run/haproxy.sock', { maxSockets: 10 })
  const first = sockets[0]
  const bits: number | undefined = first?.options
  const isDgram: boolean | undefined = first?.dgram
  const served: HaproxySocketServer = await serveHaproxySockets('/tmp/x.sock', [
    server,
    udp,
    3,
    { socket: server, namespace: '', interface: 'lo', options: HAPROXY_SOCKET_OPTIONS.V6ONLY },
  ])
  const count: number = (await served.taken()).count
  await served.close()
  // @ts-expect-error an FdServer is not an IP listener HAProxy can take
  await serveHaproxySockets('/tmp/x.sock', [fdServer])
  void [names, kind, port, adopted, fd, bits, isDgram, count]
}

// ---------------------------------------------------------------- streams (FdStream) and fdpass/usocket

import { Duplex } from 'node:stream'

import {
  createConnection,
  createServer,
  DEFAULT_STREAM_MAX_QUEUED_FDS,
  FdStream,
  FdStreamServer,
  type FdStreamChunk,
  type FdStreamOptions,
  type StreamListenOptions,
} from 'fdpass'
import { UServer, USocket, type USocketOptions, type USocketReadResult } from 'fdpass/usocket'

export async function streamTypes(file: fs.promises.FileHandle, sock: net.Socket): Promise<void> {
  const options: FdStreamOptions = { allowHalfOpen: true, maxQueuedFds: DEFAULT_STREAM_MAX_QUEUED_FDS }
  const stream: FdStream = createConnection('@abstract', options, () => undefined)
  const duplex: Duplex = stream
  const chunk: FdStreamChunk = { data: 'x', fds: [3, file, sock, { fd: 4 }] }
  const more: boolean = stream.write(chunk)
  stream.write(Buffer.from('bytes'), (err) => void err)
  const fds: number[] = stream.takeFds(2)
  const all: number[] = stream.readFds()
  const queued: number = stream.queuedFds
  const same: FdStream = stream.setNoDelay(true).setKeepAlive(true).unref().ref().end()
  const adopted: FdStream = FdStream.from(3, { readableHighWaterMark: 1 << 16 })
  const server: FdStreamServer = createServer((s: FdStream) => s.end()).listen({
    path: '/tmp/x.sock',
    backlog: 8,
    mode: 0o600,
  } satisfies StreamListenOptions)
  const where: string | null = server.address()
  server.close((err?: Error) => void err)
  // @ts-expect-error fds travel with bytes: a chunk has data
  stream.write({ fds: [3] })
  // @ts-expect-error fds are fd-likes, not strings
  stream.write({ data: 'x', fds: ['3'] })
  // @ts-expect-error takeFds takes a count
  stream.takeFds('all')

  const usocketOptions: USocketOptions = { path: '/run/bus', allowHalfOpen: false }
  const u = new USocket(usocketOptions, () => undefined)
  const asStream: FdStream = u
  const bytes: Buffer | null = u.read(16)
  const withFds: USocketReadResult | null = u.read(16, null)
  const data: Buffer | null | undefined = withFds?.data
  const userver: UServer = new UServer()
  const serverOfStreams: FdStreamServer = userver.listen('/tmp/u.sock', 16, () => undefined)
  void [duplex, more, fds, all, queued, same, adopted, where, asStream, bytes, data, serverOfStreams]
}

/** socketInfo and fdpass/systemd, as README and the API reference describe them. */
export const socketInfoAndSystemdChecks = [
  expect<Equal<typeof socketInfo, (fd: number) => SocketInfo>>(),
  expect<Equal<SocketInfo['family'], 'unix' | 'inet' | 'inet6' | 'other'>>(),
  expect<Equal<SocketInfo['type'], 'stream' | 'dgram' | 'seqpacket' | 'raw' | 'other'>>(),
  expect<Equal<SocketInfo['listening'], boolean>>(),
  expect<Equal<SocketInfo['peer'], SocketAddress | null>>(),
  expect<Equal<SocketAddress['kind'], 'path' | 'abstract' | 'unnamed' | 'inet' | 'inet6' | 'other'>>(),
  expect<Equal<Extract<SocketAddress, { kind: 'inet' }>, { kind: 'inet'; address: string; port: number }>>(),
  expect<Equal<Extract<SocketAddress, { kind: 'path' }>, { kind: 'path'; path: string; bytes: Buffer }>>(),
  expect<Equal<typeof LISTEN_FDS_START, 3>>(),
  expect<Equal<typeof MAX_FDNAME_LENGTH, 255>>(),
  expect<Equal<ListenFdsOptions, { unsetEnvironment?: boolean }>>(),
  expect<Equal<typeof listenFds, (options?: ListenFdsOptions) => number[]>>(),
  expect<Equal<typeof listenFdsByName, (options?: ListenFdsOptions) => Map<string, number[]>>>(),
  expect<Equal<typeof notify, (state: string, fds?: readonly number[]) => boolean>>(),
  expect<Equal<typeof ready, () => boolean>>(),
  expect<Equal<typeof watchdog, () => boolean>>(),
  expect<Equal<typeof watchdogInterval, () => number | undefined>>(),
  expect<Equal<typeof storeFds, (name: string, fds: readonly number[]) => boolean>>(),
  expect<Equal<typeof removeStoredFds, (name: string) => boolean>>(),
]

/** socketInfo and fdpass/systemd uses that must not compile. */
export function rejectedSystemd(info: SocketInfo): void {
  // @ts-expect-error the peer is null when not connected: check it first
  const port: number = info.peer.port
  // @ts-expect-error narrow on kind before reading an address's fields
  const path: string = info.local.path
  // @ts-expect-error storeFds takes an array of fds
  storeFds('http', 3)
  // @ts-expect-error notify's state is a string of KEY=VALUE lines
  notify({ READY: 1 })
  void [port, path]
}
