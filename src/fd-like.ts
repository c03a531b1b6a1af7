/**
 * What `FdSocket#send` accepts as fds: fd numbers, `{ fd }` objects, file
 * handles, `net` sockets and servers, `dgram` sockets (turned into fd
 * numbers by internal/fd-conversion.ts).
 */
import type * as dgram from 'node:dgram'
import type * as fs from 'node:fs'
import type * as net from 'node:net'

export { toFd } from './internal/fd-conversion'

/** Anything whose fd `FdSocket.send` can pass. */
export type FdLike = number | { fd: number } | net.Socket | net.Server | dgram.Socket | fs.promises.FileHandle
