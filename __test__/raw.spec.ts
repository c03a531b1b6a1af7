import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, fdKind, recvFds, sendFds, socketPair, type SocketType } from 'fdpass'

import { isCloexec, withFdAudit } from './helpers/fd-audit.js'
import { openTempFile, readText } from './helpers/files.js'

const linux = process.platform === 'linux'
// macOS has no SOCK_SEQPACKET for AF_UNIX (tested below).
const TYPES: SocketType[] = linux ? ['stream', 'seqpacket', 'dgram'] : ['stream', 'dgram']
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-raw-'))
const fileWith = (contents: string): number => openTempFile(tmp, contents)
const readAll = (fd: number, position = 0): string => readText(fd, position)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as NodeJS.ErrnoException).code
  }
  return undefined
}

for (const type of TYPES) {
  for (const count of [1, 2, 253]) {
    test.serial(`${type}: ${count} fd(s) round trip, in order, close-on-exec`, async (t) => {
      await withFdAudit(t, () => {
        const [a, b] = socketPair(type)
        const sent = Array.from({ length: count }, (_, i) => fileWith(`file ${i}`))
        t.is(sendFds(a, 'hello', sent), 5)
        const { data, fds } = recvFds(b)
        t.is(data.toString(), 'hello')
        t.is(fds.length, count)
        fds.forEach((fd, i) => {
          t.not(fd, sent[i])
          t.true(isCloexec(fd), `received fd ${fd} is close-on-exec`)
          t.is(readAll(fd), `file ${i}`)
        })
        closeFds([...fds, ...sent, a, b])
      })
    })
  }

  test.serial(`${type}: socketPair ends are close-on-exec and sockets`, async (t) => {
    await withFdAudit(t, () => {
      const [a, b] = socketPair(type)
      t.true(isCloexec(a))
      t.true(isCloexec(b))
      t.is(fdKind(a), 'socket')
      closeFds([a, b])
    })
  })

  test.serial(`${type}: more fds than maxFds -> ERR_FDS_TRUNCATED, all closed`, async (t) => {
    await withFdAudit(t, () => {
      const [a, b] = socketPair(type)
      const sent = [fileWith('x'), fileWith('y'), fileWith('z')]
      for (const maxFds of [0, 1, 2]) {
        sendFds(a, 'm', sent)
        const err = t.throws(() => recvFds(b, { maxFds }))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_FDS_TRUNCATED')
        t.regex(err!.message, /carried 3 fds, more than maxFds/)
      }
      // The socket still works after the refused messages.
      sendFds(a, 'ok', [sent[0]!])
      const { data, fds } = recvFds(b, { maxFds: 1 })
      t.is(data.toString(), 'ok')
      closeFds([...fds, ...sent, a, b])
    })
  })

  test.serial(`${type}: messages without fds`, async (t) => {
    await withFdAudit(t, () => {
      const [a, b] = socketPair(type)
      t.is(sendFds(a, Buffer.from('plain')), 5)
      const got = recvFds(b)
      t.is(got.data.toString(), 'plain')
      t.deepEqual(got.fds, [])
      closeFds([a, b])
    })
  })
}

for (const type of TYPES.filter((t) => t !== 'stream')) {
  test.serial(`${type}: a message longer than maxBytes -> ERR_MESSAGE_TRUNCATED, its fds closed`, async (t) => {
    await withFdAudit(t, () => {
      const [a, b] = socketPair(type)
      const f = fileWith('x')
      sendFds(a, 'ten bytes!', [f])
      const err = t.throws(() => recvFds(b, { maxBytes: 3 }))
      t.is((err as NodeJS.ErrnoException).code, 'ERR_MESSAGE_TRUNCATED')
      sendFds(a, 'next')
      t.is(recvFds(b).data.toString(), 'next')
      closeFds([f, a, b])
    })
  })
}

test.serial('stream: a short read delivers the rest next time', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    const f = fileWith('x')
    sendFds(a, 'abcdef', [f])
    const first = recvFds(b, { maxBytes: 2 })
    t.is(first.data.toString(), 'ab')
    t.is(first.fds.length, 1)
    const rest = recvFds(b)
    t.is(rest.data.toString(), 'cdef')
    t.deepEqual(rest.fds, [])
    closeFds([...first.fds, f, a, b])
  })
})

test.serial('the file offset is shared with the receiver', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const f = fileWith('0123456789')
    const head = Buffer.alloc(4)
    fs.readSync(f, head, 0, 4, null)
    sendFds(a, 'f', [f])
    const { fds } = recvFds(b)
    const rest = Buffer.alloc(10)
    const n = fs.readSync(fds[0]!, rest, 0, 10, null)
    t.is(rest.subarray(0, n).toString(), '456789')
    closeFds([...fds, f, a, b])
  })
})

test.serial('254 fds -> ERR_TOO_MANY_FDS before any syscall', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const f = fileWith('x')
    const err = t.throws(() => sendFds(a, 'x', new Array(254).fill(f)))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_TOO_MANY_FDS')
    t.true(err instanceof RangeError)
    // Nothing was sent.
    sendFds(a, 'after')
    t.is(recvFds(b).data.toString(), 'after')
    closeFds([f, a, b])
  })
})

test.serial('empty data with fds -> ERR_EMPTY_DATA', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const f = fileWith('x')
    t.is(
      codeOf(() => sendFds(a, '', [f])),
      'ERR_EMPTY_DATA',
    )
    t.is(
      codeOf(() => sendFds(a, new Uint8Array(0), [f])),
      'ERR_EMPTY_DATA',
    )
    closeFds([f, a, b])
  })
})

test.serial('a TCP socket is refused: Linux would drop the fds silently', async (t) => {
  await withFdAudit(t, async () => {
    const server = net.createServer()
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    await once(client, 'connect')
    const tcpFd = (client as unknown as { _handle: { fd: number } })._handle.fd
    const f = fileWith('x')
    const err = t.throws(() => sendFds(tcpFd, 'x', [f]))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_NOT_UNIX_SOCKET')
    t.regex(err!.message, /only AF_UNIX sockets can carry fds/)
    closeFds([f])
    const [peer] = await accepted
    peer.destroy()
    client.destroy()
    await Promise.all([once(peer, 'close'), once(client, 'close')])
    server.close()
    await once(server, 'close')
  })
})

test.serial('a closed peer gives EPIPE (no SIGPIPE), with errno and syscall', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    closeFds([b])
    const f = fileWith('x')
    const err = t.throws(() => sendFds(a, 'x', [f])) as NodeJS.ErrnoException
    t.is(err.code, 'EPIPE')
    t.is(err.errno, -os.constants.errno.EPIPE)
    t.is(err.syscall, 'sendmsg')
    t.is(err.message, 'sendmsg EPIPE (the peer closed the socket)')
    closeFds([f, a])
  })
})

test.serial('end of stream returns empty data and no fds', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    closeFds([a])
    const got = recvFds(b)
    t.is(got.data.length, 0)
    t.deepEqual(got.fds, [])
    closeFds([b])
  })
})

test.serial('a non-blocking socket with nothing queued gives EAGAIN', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    // A net.Socket sets O_NONBLOCK on the shared file description.
    const s = new net.Socket({ fd: b, readable: false, writable: false })
    const err = t.throws(() => recvFds(b)) as NodeJS.ErrnoException
    t.is(err.code, 'EAGAIN')
    t.is(err.syscall, 'recvmsg')
    s.destroy()
    closeFds([a])
  })
})

test.serial('a full non-blocking socket gives EAGAIN on send', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    const s = new net.Socket({ fd: a, readable: false, writable: false })
    const chunk = Buffer.alloc(4096)
    let code: string | undefined
    for (let i = 0; i < 100_000 && code === undefined; i++) code = codeOf(() => sendFds(a, chunk))
    t.is(code, 'EAGAIN')
    s.destroy()
    closeFds([b])
  })
})

test.serial('bad arguments get TypeError/RangeError before any syscall', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const bad: Array<[unknown, string, typeof Error]> = [
      ['3', 'ERR_INVALID_ARG_TYPE', TypeError],
      [NaN, 'ERR_OUT_OF_RANGE', RangeError],
      [-1, 'ERR_OUT_OF_RANGE', RangeError],
      [1.5, 'ERR_OUT_OF_RANGE', RangeError],
      [2 ** 31, 'ERR_OUT_OF_RANGE', RangeError],
      [undefined, 'ERR_INVALID_ARG_TYPE', TypeError],
    ]
    for (const [value, code, Class] of bad) {
      const asFd = value as number
      for (const call of [
        () => sendFds(asFd, 'x'),
        () => sendFds(a, 'x', [asFd]),
        () => recvFds(asFd),
        () => closeFds([asFd]),
        () => fdKind(asFd),
      ]) {
        const err = t.throws(call, { instanceOf: Class })
        t.is((err as NodeJS.ErrnoException).code, code, `code for ${String(value)}`)
      }
    }
    t.is(
      codeOf(() => sendFds(a, 42 as unknown as string)),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      codeOf(() => sendFds(a, 'x', 'not an array' as unknown as number[])),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      codeOf(() => recvFds(b, { maxFds: 254 })),
      'ERR_OUT_OF_RANGE',
    )
    t.is(
      codeOf(() => recvFds(b, { maxBytes: 0 })),
      'ERR_OUT_OF_RANGE',
    )
    t.is(
      codeOf(() => recvFds(b, { maxBytes: '1' as unknown as number })),
      'ERR_INVALID_ARG_TYPE',
    )
    t.is(
      codeOf(() => socketPair('raw' as SocketType)),
      'ERR_INVALID_ARG_VALUE',
    )
    closeFds([a, b])
  })
})

test.serial('closed fds give EBADF', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair()
    const f = fileWith('x')
    closeFds([f])
    const sendErr = t.throws(() => sendFds(a, 'x', [f])) as NodeJS.ErrnoException
    t.is(sendErr.code, 'EBADF')
    t.is(sendErr.errno, -os.constants.errno.EBADF)
    t.is(
      codeOf(() => fdKind(f)),
      'EBADF',
    )
    closeFds([b])
    t.is(
      codeOf(() => recvFds(b)),
      'EBADF',
    )
    // closeFds closes every fd it can, then reports the first failure.
    const err = t.throws(() => closeFds([b, a])) as NodeJS.ErrnoException
    t.is(err.code, 'EBADF')
    t.is(err.syscall, 'close')
    t.is(
      codeOf(() => fdKind(a)),
      'EBADF',
      'a was closed despite the earlier failure',
    )
  })
})

test.serial('fdKind names every kind of fd', async (t) => {
  await withFdAudit(t, async () => {
    const f = fileWith('x')
    t.is(fdKind(f), 'file')
    const dir = fs.openSync(tmp, 'r')
    t.is(fdKind(dir), 'directory')
    const fifoPath = path.join(tmp, 'fifo')
    const mk = spawn('mkfifo', [fifoPath])
    await once(mk, 'exit')
    const fifo = fs.openSync(fifoPath, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
    fs.unlinkSync(fifoPath)
    t.is(fdKind(fifo), 'fifo')
    const nul = fs.openSync('/dev/null', 'r')
    t.is(fdKind(nul), 'character-device')
    closeFds([f, dir, fifo, nul])

    const blockDevices = fs.readdirSync('/dev').filter((name) => {
      try {
        return fs.statSync(`/dev/${name}`).isBlockDevice()
      } catch {
        return false
      }
    })
    let opened = false
    let lastCode: string | undefined
    for (const name of blockDevices) {
      try {
        const bd = fs.openSync(`/dev/${name}`, 'r')
        t.is(fdKind(bd), 'block-device')
        closeFds([bd])
        opened = true
        break
      } catch (err) {
        lastCode = (err as NodeJS.ErrnoException).code
      }
    }
    // Unprivileged CI users cannot open block devices: then the reason must be
    // a permission error, not something fdpass did.
    if (!opened) t.true(lastCode === 'EACCES' || lastCode === 'EPERM' || blockDevices.length === 0)
  })
})

/** Runs the Python peer with `socket` as its fd 3; resolves to its JSON report. */
async function runPython(mode: string, socket: number, during?: () => void): Promise<Record<string, unknown>> {
  const child = spawn('python3', [path.join(__dirname, 'peers', 'py_peer.py'), mode], {
    stdio: ['ignore', 'pipe', 'inherit', socket],
  })
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk))
  during?.()
  const [code] = (await once(child, 'close')) as [number]
  if (code !== 0) throw new Error(`python peer exited with ${code}`)
  return JSON.parse(out) as Record<string, unknown>
}

for (const type of TYPES) {
  test.serial(`interop ${type}: Python socket.send_fds -> fdpass recvFds`, async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair(type)
      const report = runPython('send', theirs)
      closeFds([theirs])
      const { data, fds } = recvFds(mine)
      t.is(data.toString(), 'from-python')
      t.is(fds.length, 1)
      t.is(readAll(fds[0]!), 'python file contents')
      t.true(isCloexec(fds[0]!))
      closeFds(fds)
      sendFds(mine, 'k')
      const result = await report
      t.is(result.sent, 11)
      t.true(result.fd_audit_ok, `python fds: ${JSON.stringify(result)}`)
      closeFds([mine])
    })
  })

  test.serial(`interop ${type}: fdpass sendFds -> Python socket.recv_fds`, async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair(type)
      const f1 = fileWith('first')
      const f2 = fileWith('second')
      t.is(sendFds(mine, 'from-node', [f1, f2]), 9)
      closeFds([f1, f2])
      const result = await runPython('recv', theirs)
      closeFds([theirs, mine])
      t.is(result.data, 'from-node')
      t.is(result.flags, 0)
      t.deepEqual(result.contents, ['first', 'second'])
      t.true(result.fd_audit_ok, `python fds: ${JSON.stringify(result)}`)
    })
  })
}

if (!linux) {
  test.serial('seqpacket is refused with a clear error where the platform lacks it', (t) => {
    const err = t.throws(() => socketPair('seqpacket')) as NodeJS.ErrnoException
    t.is(err.code, 'EPROTONOSUPPORT')
    t.regex(err.message, /use 'stream'/)
  })
}

// eventfd and O_PATH exist on Linux only.
if (linux)
  test.serial('fdKind of an eventfd and an O_PATH symlink fd received from Python', async (t) => {
    await withFdAudit(t, async () => {
      const [mine, theirs] = socketPair('seqpacket')
      const report = runPython('kinds', theirs)
      closeFds([theirs])
      const efd = recvFds(mine)
      t.is(efd.data.toString(), 'eventfd')
      t.is(fdKind(efd.fds[0]!), 'unknown')
      const link = recvFds(mine)
      t.is(link.data.toString(), 'symlink')
      t.is(fdKind(link.fds[0]!), 'symlink')
      closeFds([...efd.fds, ...link.fds])
      sendFds(mine, 'k')
      t.true((await report).fd_audit_ok)
      closeFds([mine])
    })
  })
