// The Wayland wire protocol, by hand, over an fdpass socket: just enough of
// it for examples/wayland-client.js (and the test's screenshot taker).
//
// A message is a header of two 32-bit words in the host's byte order — the
// object id, then (size << 16 | opcode) — and its arguments: int/uint/
// object/new_id as 32-bit words, string and array as a length word and the
// bytes padded to 4. An fd argument takes no bytes: it travels as
// SCM_RIGHTS with the sendmsg that carries the message, which is what
// fdpass's send(bytes, fds) does. The compositor hands fds back the same way.
'use strict'
const os = require('node:os')
const path = require('node:path')
const { closeFds, connect } = require('fdpass')

const LE = os.endianness() === 'LE'

/** One request being written: `new Message(id, opcode).uint(1).string('x').fd(fd)`. */
class Message {
  constructor(objectId, opcode) {
    this.objectId = objectId
    this.opcode = opcode
    this.words = [] // Buffers of the arguments, each a multiple of 4 bytes
    this.fds = []
  }
  uint(value) {
    const b = Buffer.alloc(4)
    if (LE) b.writeUInt32LE(value >>> 0)
    else b.writeUInt32BE(value >>> 0)
    this.words.push(b)
    return this
  }
  int(value) {
    return this.uint(value | 0)
  }
  string(text) {
    const bytes = Buffer.from(`${text}\0`, 'utf8')
    this.uint(bytes.length)
    this.words.push(Buffer.concat([bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4)]))
    return this
  }
  fd(fd) {
    this.fds.push(fd)
    return this
  }
}

/** The 8-byte header of a message. */
function header(objectId, size, opcode) {
  const b = Buffer.alloc(8)
  if (LE) {
    b.writeUInt32LE(objectId, 0)
    b.writeUInt32LE(((size << 16) | opcode) >>> 0, 4)
  } else {
    b.writeUInt32BE(objectId, 0)
    b.writeUInt32BE(((size << 16) | opcode) >>> 0, 4)
  }
  return b
}

/** Reads the arguments of one event in order. */
class Args {
  constructor(body, fds) {
    this.body = body
    this.at = 0
    this.fds = fds
  }
  uint() {
    const v = LE ? this.body.readUInt32LE(this.at) : this.body.readUInt32BE(this.at)
    this.at += 4
    return v
  }
  int() {
    const v = LE ? this.body.readInt32LE(this.at) : this.body.readInt32BE(this.at)
    this.at += 4
    return v
  }
  string() {
    const length = this.uint() // with the NUL
    const text = this.body.toString('utf8', this.at, this.at + Math.max(0, length - 1))
    this.at += (length + 3) & ~3
    return text
  }
  array() {
    const length = this.uint()
    const bytes = this.body.subarray(this.at, this.at + length)
    this.at += (length + 3) & ~3
    return bytes
  }
  /** An fd argument: the next fd the compositor sent; yours to close. */
  fd() {
    const fd = this.fds.shift()
    if (fd === undefined) throw new Error('the compositor announced an fd that did not arrive')
    return fd
  }
}

/** The path of the compositor's socket: $WAYLAND_DISPLAY, relative to $XDG_RUNTIME_DIR unless absolute. */
function displayPath(env = process.env) {
  const name = env.WAYLAND_DISPLAY || 'wayland-0'
  if (path.isAbsolute(name)) return name
  if (!env.XDG_RUNTIME_DIR)
    throw new Error(
      'XDG_RUNTIME_DIR is not set: cannot find the Wayland socket (set it, or give WAYLAND_DISPLAY as an absolute path)',
    )
  return path.join(env.XDG_RUNTIME_DIR, name)
}

/**
 * A connection to a compositor: objects by id, requests queued and sent in
 * one sendmsg by flush() (with every fd they carry), events dispatched to
 * each object's handler.
 */
class Connection {
  /** Connects to the compositor's socket (framing off: the bytes are Wayland's own). */
  static async open(socketPath) {
    return new Connection(await connect(socketPath, { framing: false }))
  }

  constructor(socket) {
    this.socket = socket
    this.nextId = 2
    this.objects = new Map() // id -> { interface, on: { [opcode]: (args) => void } }
    this.pending = []
    this.fdsIn = []
    this.error = null // set by wl_display.error
    this.buffered = Buffer.alloc(0) // the start of a message not wholly read yet
    // wl_display is object 1.
    this.display = this.object(
      'wl_display',
      {
        0: (a) => {
          const objectId = a.uint()
          const code = a.uint()
          const message = a.string()
          const iface = this.objects.get(objectId)?.interface ?? 'unknown'
          this.error = Object.assign(new Error(`${iface}@${objectId}: error ${code}: ${message}`), {
            objectId,
            code,
            protocolMessage: message,
          })
        },
        1: (a) => this.objects.delete(a.uint()), // delete_id
      },
      1,
    )
  }

  /** Makes a new object id with its event handlers (`{ opcode: handler }`). */
  object(iface, on = {}, id = this.nextId++) {
    this.objects.set(id, { interface: iface, on })
    return id
  }

  /** Queues a request; build its arguments on the returned Message. */
  request(objectId, opcode) {
    const m = new Message(objectId, opcode)
    this.pending.push(m)
    return m
  }

  /** Sends every queued request in one sendmsg, with all their fds. */
  async flush() {
    if (this.pending.length === 0) return
    const messages = this.pending
    this.pending = []
    const bytes = Buffer.concat(
      messages.map((m) => {
        const body = Buffer.concat(m.words)
        return Buffer.concat([header(m.objectId, 8 + body.length, m.opcode), body])
      }),
    )
    try {
      await this.socket.send(
        bytes,
        messages.flatMap((m) => m.fds),
      )
    } catch (err) {
      // A compositor that posts a protocol error hangs up right after: the
      // error event may be waiting unread. Read what is left and report it.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') throw err
      await this.drain()
      throw this.error ?? err
    }
  }

  /** Reads and dispatches events until the compositor's end of the stream. */
  async drain() {
    for (;;) {
      let message
      try {
        message = await this.socket.receive()
      } catch {
        return
      }
      this.dispatch(message)
    }
  }

  /**
   * Reads and dispatches events until `done()` returns true. Rejects with
   * the compositor's own error (wl_display.error), or if it hangs up.
   */
  async until(done) {
    await this.flush()
    while (!done()) {
      if (this.error) throw this.error
      let message
      try {
        message = await this.socket.receive()
      } catch (err) {
        if (err.code === 'ERR_SOCKET_CLOSED') throw new Error('the compositor closed the connection')
        throw err
      }
      this.dispatch(message)
    }
    if (this.error) throw this.error
  }

  /** Splits what one read brought into messages, and hands each to its object's handler. */
  dispatch({ data, fds }) {
    this.fdsIn.push(...fds)
    let buffered = this.buffered.length ? Buffer.concat([this.buffered, data]) : data
    while (buffered.length >= 8) {
      const objectId = LE ? buffered.readUInt32LE(0) : buffered.readUInt32BE(0)
      const word = LE ? buffered.readUInt32LE(4) : buffered.readUInt32BE(4)
      const size = word >>> 16
      if (size < 8) throw new Error(`the compositor sent a message of ${size} bytes`)
      if (buffered.length < size) break
      const handler = this.objects.get(objectId)?.on[word & 0xffff]
      if (handler) handler(new Args(buffered.subarray(8, size), this.fdsIn))
      buffered = buffered.subarray(size)
    }
    // Keep a partial message for the next read.
    this.buffered = Buffer.from(buffered)
  }

  /** wl_display.sync: resolves once the compositor has handled every request sent before. */
  async roundtrip() {
    let done = false
    const callback = this.object('wl_callback', { 0: () => (done = true) })
    this.request(this.display, 0).uint(callback)
    await this.until(() => done)
  }

  /** Closes the socket and any fd the compositor sent that no event took. */
  close() {
    if (this.fdsIn.length) closeFds(this.fdsIn.splice(0))
    this.socket.close()
  }
}

module.exports = { Connection, displayPath }
