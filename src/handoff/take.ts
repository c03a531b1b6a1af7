/**
 * The new process's side of a listener handoff: `takeListeners()` receives
 * the old process's listeners by name, and `ready()` tells it to stop
 * accepting.
 */
import { describe, makeError, type FdpassError } from '../errors'
import type { FdSocket } from '../fd-socket'
import { connect } from '../connect'
import { integerOption, optionsObject } from '../internal/validate'
import { abortedError, protocolError, startDeadline, timeoutError, type Deadline } from '../internal/deadline'
import {
  checkListenerList,
  decode,
  encode,
  FDS_MESSAGE,
  FDS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  type ListenerKind,
  type ListenerMetadata,
} from './protocol'
import { closeQuietly } from '../internal/fd-release'
import { describeListener, TakenListener } from './taken-listener'

/** Options of {@link takeListeners}. */
export interface TakeListenersOptions {
  /** Aborts the transfer (rejects with an `AbortError`; every fd received so far is closed). */
  signal?: AbortSignal
  /**
   * How long the old process has to send every listener, in ms (0 to
   * 2^31 - 1, default 10000; 0: no limit), and then to confirm `ready()`.
   * Rejects with `ETIMEDOUT`.
   */
  timeout?: number
  /** The most listeners accepted (1 to 65536, default 1024): an old process offering more is refused. */
  maxListeners?: number
}

const TAKE_LISTENERS_TIMEOUT = 10000
const DEFAULT_MAX_LISTENERS = 1024

/** Rejects with ETIMEDOUT / AbortError instead of the receive's own abort. */
async function receiveWithin(
  socket: FdSocket,
  deadline: Deadline,
  signal: AbortSignal | undefined,
  ms: number,
  gone: () => string,
) {
  let message
  try {
    message = await socket.receive({ signal: deadline.signal })
  } catch (err) {
    if (deadline.timedOut())
      throw timeoutError('the old process did not hand over its listeners', ms, 'is it a listener handoff socket?')
    if (signal?.aborted) throw abortedError(signal)
    // A close, or a reset when the peer closed with our message unread.
    const code = (err as FdpassError).code
    if (code === 'ERR_SOCKET_CLOSED' || code === 'ECONNRESET') {
      throw makeError(Error, 'ECONNRESET', gone())
    }
    throw err
  }
  if (message.data.length === 0 && message.fds.length === 0) throw makeError(Error, 'ECONNRESET', gone())
  return message
}

/**
 * Connects to the old process's {@link serveListeners} socket at `path` and
 * receives its listeners: fds and what they are, by name. The old process
 * keeps accepting until {@link TakenListeners.ready} is called, so adopt
 * them first (`listener.listen(server)`, `listener.bind(socket)`, …), then
 * call `ready()`.
 *
 * Rejects with `ENOENT` or `ECONNREFUSED` when no old process serves at
 * `path` (a first start: listen as usual), `ERR_FDPASS_PROTOCOL` when the
 * peer is not a listener handoff server or breaks the protocol,
 * `ERR_FDS_TRUNCATED` when this process could not receive every fd (its fd
 * limit, `ulimit -n`, is reached: EMFILE), `ECONNRESET` when the old process
 * goes away mid-transfer, `ETIMEDOUT`, or an `AbortError`. On every failure
 * each fd received so far is closed, and the old process keeps its listeners.
 *
 * @example
 * const taken = await takeListeners('/run/app/handoff.sock')
 * await taken.get('web').listen(server)
 * await taken.ready() // the old process stops accepting now
 */
export async function takeListeners(path: string, options?: TakeListenersOptions): Promise<TakenListeners> {
  const opts = optionsObject(options, 'options')
  const timeout = integerOption(opts.timeout, 'timeout', 0, 2 ** 31 - 1, TAKE_LISTENERS_TIMEOUT)
  const maxListeners = integerOption(opts.maxListeners, 'maxListeners', 1, 65536, DEFAULT_MAX_LISTENERS)
  const signal = opts.signal as AbortSignal | undefined
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw makeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "signal" option must be an AbortSignal. Received ${describe(signal)}`,
    )
  }
  if (signal?.aborted) throw abortedError(signal)
  const socket = await connect(path, {
    maxBytes: MAX_MESSAGE_BYTES,
    maxFds: FDS_PER_MESSAGE,
    readAhead: 1,
    maxQueuedFds: FDS_PER_MESSAGE,
  })
  const deadline = startDeadline(signal, timeout)
  const received: number[] = []
  try {
    await socket.send(encode('take'))
    const header = await receiveWithin(
      socket,
      deadline,
      signal,
      timeout,
      () =>
        'the old process closed the handoff connection before sending its listeners (its allowPeer check may refuse this process, or it is not a listener handoff socket)',
    )
    let list: ListenerMetadata[]
    try {
      list = checkListenerList(
        decode(header.data, header.fds.length, 'listeners', 'the old process').listeners,
        maxListeners,
      )
    } catch (err) {
      received.push(...header.fds)
      throw err
    }
    while (received.length < list.length) {
      const { data, fds } = await receiveWithin(
        socket,
        deadline,
        signal,
        timeout,
        () => `the old process went away after sending ${received.length} of ${list.length} listeners`,
      )
      received.push(...fds)
      const expected = Math.min(FDS_PER_MESSAGE, list.length - (received.length - fds.length))
      if (data.toString('latin1') !== FDS_MESSAGE || fds.length !== expected) {
        throw protocolError(`the old process sent a message with ${fds.length} fds where ${expected} were expected`)
      }
    }
    const listeners = list.map((meta, i) => new TakenListener(meta, received[i]!, describeListener(meta, received[i]!)))
    return new TakenListeners(socket, listeners, timeout)
  } catch (err) {
    closeQuietly(received)
    socket.close()
    throw explain(err as FdpassError)
  } finally {
    deadline.dispose()
  }
}

/** Adds what to do to a receive error. */
function explain(err: FdpassError): FdpassError {
  if (err.code === 'ERR_FDS_TRUNCATED') {
    err.message = `${err.message}: this process could not receive every listener, most likely because it has reached its fd limit (EMFILE: raise ulimit -n); every fd received was closed and the old process keeps its listeners`
  } else if (err.code === 'ERR_FDPASS_PROTOCOL' && !err.message.includes('listener handoff')) {
    err.message = `${err.message}; is the path a listener handoff socket (serveListeners)?`
  }
  return err
}

/** The listeners received from the old process, by name. */
export class TakenListeners implements Iterable<TakenListener> {
  /** The listeners, in the order the old process named them. */
  readonly listeners: readonly TakenListener[]
  readonly #socket: FdSocket
  readonly #timeout: number
  #readyCalled = false

  /** @internal Made by `takeListeners()`. */
  constructor(socket: FdSocket, listeners: TakenListener[], timeout: number) {
    this.#socket = socket
    this.listeners = listeners
    this.#timeout = timeout
  }

  /** The names of the listeners, in order. */
  get names(): string[] {
    return this.listeners.map((l) => l.name)
  }

  /** The listener named `name`, or `undefined`. */
  get(name: string): TakenListener | undefined {
    return this.listeners.find((l) => l.name === name)
  }

  /** Iterates over the listeners. */
  [Symbol.iterator](): Iterator<TakenListener> {
    return this.listeners[Symbol.iterator]()
  }

  /**
   * Tells the old process that this one serves the listeners: it resolves
   * its `taken()`, stops accepting and drains. Resolves once the old process
   * confirmed; rejects with `ECONNRESET` if it went away first (the listeners
   * are this process's either way), or `ETIMEDOUT`. Call it once: a second
   * call throws `ERR_INVALID_STATE`.
   */
  async ready(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.#readyCalled) throw makeError(Error, 'ERR_INVALID_STATE', 'ready() was already called')
    this.#readyCalled = true
    const signal = optionsObject(options, 'options').signal as AbortSignal | undefined
    const deadline = startDeadline(signal, this.#timeout)
    try {
      await this.#socket.send(encode('ready', { names: this.names }))
      const reply = await receiveWithin(
        this.#socket,
        deadline,
        signal,
        this.#timeout,
        () => "the old process went away before confirming ready(); the listeners are this process's",
      )
      decode(reply.data, reply.fds.length, 'done', 'the old process')
    } catch (err) {
      throw explain(err as FdpassError)
    } finally {
      deadline.dispose()
      this.#socket.close()
    }
  }

  /**
   * Closes every listener fd not adopted or taken yet, and the handoff
   * connection (without `ready()`, the old process keeps serving).
   */
  close(): void {
    for (const listener of this.listeners) listener.close()
    this.#socket.close()
  }

  /** Same as {@link TakenListeners.close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close()
  }
}

export { TakenListener }
export type { ListenerKind, ListenerMetadata }
