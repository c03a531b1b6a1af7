/**
 * The accept loop of the protocol servers whose peers each take a whole
 * transfer (the listener handoff, HAProxy's `_getsocks`): connections are
 * served one at a time, a failed one is reported and the next is awaited,
 * and a failed accept (EMFILE, say) is reported and retried shortly after
 * rather than ending the server.
 */
import type { FdServer } from '../fd-server'
import type { FdSocket } from '../fd-socket'
import type { FdpassError } from '../errors'

/** How long to wait after a failed accept before the next one, in ms. */
const ACCEPT_RETRY_MS = 100

export class ServeInTurn {
  readonly #server: FdServer
  readonly #serveOne: (socket: FdSocket) => Promise<boolean>
  readonly #onFailed: ((error: FdpassError) => void) | undefined
  #current: FdSocket | undefined
  #stopped = false

  /**
   * Starts serving `server`. `serveOne` runs for each connection in turn and
   * resolves true once the server's job is done (no more connections are
   * served); each connection is closed after it. Failures go to `onFailed`,
   * whose own exceptions are ignored: they must not stop the server.
   */
  constructor(
    server: FdServer,
    serveOne: (socket: FdSocket) => Promise<boolean>,
    onFailed: ((error: FdpassError) => void) | undefined,
  ) {
    this.#server = server
    this.#serveOne = serveOne
    this.#onFailed = onFailed
    void this.#loop()
  }

  /** Cuts off the connection being served and accepts no other (the caller closes the server). */
  stop(): void {
    this.#stopped = true
    this.#current?.close()
  }

  async #loop(): Promise<void> {
    for (;;) {
      let socket: FdSocket
      try {
        socket = await this.#server.accept()
      } catch (err) {
        if (this.#stopped || (err as FdpassError).code === 'ERR_SOCKET_CLOSED') return
        this.#report(err as FdpassError)
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS))
        continue
      }
      this.#current = socket
      let done = false
      try {
        done = await this.#serveOne(socket)
      } catch (err) {
        this.#report(err as FdpassError)
      } finally {
        socket.close()
        this.#current = undefined
      }
      if (done || this.#stopped) return
    }
  }

  #report(error: FdpassError): void {
    try {
      this.#onFailed?.(error)
    } catch {
      // A throwing callback must not stop the server.
    }
  }
}
