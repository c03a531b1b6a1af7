import test from 'ava'
import * as dgram from 'node:dgram'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { bind, closeFds, listen, socketInfo, socketPair, type SocketInfo } from 'fdpass'

import { withFdAudit } from './helpers/fd-audit.js'

const linux = process.platform === 'linux'

function fdOf(handleOwner: unknown): number {
  return (handleOwner as { _handle: { fd: number } })._handle.fd
}

function errorOf(fn: () => unknown): NodeJS.ErrnoException | undefined {
  try {
    fn()
  } catch (err) {
    return err as NodeJS.ErrnoException
  }
  return undefined
}

async function listening(server: net.Server, ...args: unknown[]): Promise<void> {
  server.listen(...(args as [string]))
  await once(server, 'listening')
}

async function closed(server: net.Server): Promise<void> {
  await new Promise((resolve) => server.close(resolve))
}

test.serial('socketInfo: a TCP listener and both ends of a TCP connection', async (t) => {
  await withFdAudit(t, async () => {
    const server = net.createServer()
    await listening(server, 0, '127.0.0.1')
    const port = (server.address() as net.AddressInfo).port
    const info = socketInfo(fdOf(server))
    t.deepEqual(info, {
      family: 'inet',
      familyNumber: 2,
      type: 'stream',
      typeNumber: 1,
      protocol: 6,
      listening: true,
      local: { kind: 'inet', address: '127.0.0.1', port },
      peer: null,
    } satisfies SocketInfo)

    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const client = net.connect(port, '127.0.0.1')
    await once(client, 'connect')
    const [serverSide] = await accepted
    const clientInfo = socketInfo(fdOf(client))
    t.false(clientInfo.listening)
    t.deepEqual(clientInfo.peer, { kind: 'inet', address: '127.0.0.1', port })
    t.deepEqual(socketInfo(fdOf(serverSide)).local, { kind: 'inet', address: '127.0.0.1', port })
    t.deepEqual(socketInfo(fdOf(serverSide)).peer, clientInfo.local)
    client.destroy()
    serverSide.destroy()
    await closed(server)
  })
})

test.serial('socketInfo: UDP over IPv4 and IPv6 is an unconnected, non-listening datagram socket', async (t) => {
  await withFdAudit(t, async () => {
    const udp4 = dgram.createSocket('udp4')
    udp4.bind(0, '127.0.0.1')
    await once(udp4, 'listening')
    const info = socketInfo(fdOf(udp4))
    t.is(info.family, 'inet')
    t.is(info.type, 'dgram')
    t.is(info.protocol, 17)
    t.false(info.listening)
    t.deepEqual(info.local, { kind: 'inet', address: '127.0.0.1', port: udp4.address().port })
    t.is(info.peer, null)
    udp4.close()
    await once(udp4, 'close')

    const udp6 = dgram.createSocket('udp6')
    const bound = await new Promise<boolean>((resolve) => {
      udp6.once('error', () => resolve(false))
      udp6.bind(0, '::1', () => resolve(true))
    })
    if (bound) {
      const info6 = socketInfo(fdOf(udp6))
      t.is(info6.family, 'inet6')
      t.deepEqual(info6.local, { kind: 'inet6', address: '::1', port: udp6.address().port, flowinfo: 0, scopeId: 0 })
      udp6.close()
      await once(udp6, 'close')
    } else {
      // A host without IPv6 loopback: the IPv4 half above still ran.
      t.log('no ::1 on this host: IPv6 part not run')
    }
  })
})

test.serial('socketInfo: a Unix listener on a path, its client (unnamed) and the accepted end', async (t) => {
  const path = join(fs.mkdtempSync(join(tmpdir(), 'fdpass-info-')), 's')
  await withFdAudit(t, async () => {
    const server = net.createServer()
    await listening(server, path)
    const info = socketInfo(fdOf(server))
    t.is(info.family, 'unix')
    t.is(info.type, 'stream')
    t.is(info.protocol, 0)
    t.true(info.listening)
    t.is(info.local.kind, 'path')
    t.is(info.local.kind === 'path' ? info.local.path : '', path)
    t.is(info.peer, null)

    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const client = net.connect(path)
    await once(client, 'connect')
    const [serverSide] = await accepted
    const clientInfo = socketInfo(fdOf(client))
    t.false(clientInfo.listening)
    t.deepEqual(clientInfo.local, { kind: 'unnamed' })
    t.like(clientInfo.peer, { kind: 'path', path })
    t.deepEqual(socketInfo(fdOf(serverSide)).peer, { kind: 'unnamed' })
    client.destroy()
    serverSide.destroy()
    await closed(server)
  })
  fs.rmSync(join(path, '..'), { recursive: true, force: true })
})

test.serial('socketInfo: an abstract Unix name (Linux), with its exact bytes', async (t) => {
  if (!linux) {
    t.pass('abstract Unix socket names exist on Linux only')
    return
  }
  await withFdAudit(t, async () => {
    // fdpass binds an abstract name with its exact length (Node 20's net
    // pads it with NUL bytes to the whole of sun_path).
    const name = `fdpass-info-${process.pid}-\u00e9`
    const server = await listen(`\0${name}`)
    const info = socketInfo(server.fd)
    t.true(info.listening)
    t.is(info.type, 'stream')
    t.is(info.local.kind, 'abstract')
    if (info.local.kind === 'abstract') {
      t.is(info.local.name, name)
      t.deepEqual(info.local.bytes, Buffer.from(name, 'utf8'))
    }
    await server.close()
  })
})

test.serial('socketInfo: socketPair ends of every type are unnamed and connected to each other', async (t) => {
  await withFdAudit(t, () => {
    const kinds = linux ? (['stream', 'dgram', 'seqpacket'] as const) : (['stream', 'dgram'] as const)
    for (const kind of kinds) {
      const [a, b] = socketPair(kind)
      const info = socketInfo(a)
      t.is(info.family, 'unix', kind)
      t.is(info.type, kind)
      t.false(info.listening)
      t.deepEqual(info.local, { kind: 'unnamed' })
      t.deepEqual(info.peer, { kind: 'unnamed' })
      closeFds([a, b])
    }
  })
})

test.serial('socketInfo: a seqpacket listener (Linux) and a bound, unconnected Unix datagram socket', async (t) => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'fdpass-info-'))
  await withFdAudit(t, async () => {
    if (linux) {
      const server = await listen(join(dir, 'seq'), { type: 'seqpacket' })
      t.like(socketInfo(server.fd), {
        family: 'unix',
        type: 'seqpacket',
        listening: true,
        peer: null,
        local: { kind: 'path', path: join(dir, 'seq') },
      })
      await server.close()
    }
    const dgram = await bind(join(dir, 'dgram'))
    t.like(socketInfo(dgram.fd), {
      family: 'unix',
      type: 'dgram',
      listening: false,
      peer: null,
      local: { kind: 'path', path: join(dir, 'dgram') },
    })
    dgram.close()
  })
  fs.rmSync(dir, { recursive: true, force: true })
})

test.serial('socketInfo: EBADF for a closed fd, ENOTSOCK for a file, argument errors before any syscall', async (t) => {
  await withFdAudit(t, () => {
    const [a, b] = socketPair('stream')
    closeFds([a, b])
    const badf = errorOf(() => socketInfo(a))
    t.like(badf, { code: 'EBADF', errno: -9, syscall: 'getsockopt' })
    t.true(badf instanceof Error)

    const file = fs.openSync(__filename, 'r')
    t.like(
      errorOf(() => socketInfo(file)),
      { code: 'ENOTSOCK', syscall: 'getsockopt' },
    )
    fs.closeSync(file)

    t.like(
      errorOf(() => socketInfo(-1)),
      { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
    )
    t.like(
      errorOf(() => socketInfo(1.5)),
      { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
    )
    t.like(
      errorOf(() => socketInfo('3' as unknown as number)),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
    )
  })
})
