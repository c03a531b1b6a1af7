/**
 * A real compositor for the Wayland tests: Debian's weston, headless, with
 * the pixman renderer (so there are pixels to read back) and `--debug` (so
 * the weston_screenshooter protocol is offered), in a private
 * XDG_RUNTIME_DIR, as a foreground child of the test; and a screenshot
 * taken through that protocol into shared memory passed by fd.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { closeFds, memfd } from 'fdpass'

/** Whether weston is installed (`.ci/run` installs it). */
export const haveWeston = spawnSync('weston', ['--version'], { encoding: 'utf8' }).status === 0

export interface Weston {
  /** The private XDG_RUNTIME_DIR. */
  runtimeDir: string
  /** The socket name, for WAYLAND_DISPLAY. */
  display: string
  /** The socket's full path. */
  socketPath: string
  /** What weston logged so far. */
  log(): string
  /** Stops weston (SIGTERM), waits until it and its helpers are reaped, removes the runtime dir. */
  stop(): Promise<{ code: number | null; reaperReport: string }>
}

export const OUTPUT = { width: 320, height: 240 }

// Window and startup animations would put half-faded pixels on the screen.
const CONFIG = `[core]
idle-time=0
[shell]
startup-animation=none
animation=none
close-animation=none
focus-animation=none
`

/** Starts weston and resolves once its socket exists. */
export async function startWeston(): Promise<Weston> {
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-weston-'))
  fs.chmodSync(runtimeDir, 0o700)
  const config = path.join(runtimeDir, 'weston.ini')
  fs.writeFileSync(config, CONFIG)
  const display = 'wayland-fdpass'
  const socketPath = path.join(runtimeDir, display)
  // weston starts helper clients of its own (the desktop shell's panel, a
  // keyboard); a subreaper between it and the test reaps them too.
  const child: ChildProcess = spawn(
    'python3',
    [
      path.join(__dirname, '..', 'peers', 'subreaper.py'),
      'weston',
      '--backend=headless-backend.so',
      '--use-pixman',
      `--width=${OUTPUT.width}`,
      `--height=${OUTPUT.height}`,
      `--socket=${display}`,
      `--config=${config}`,
      '--debug',
    ],
    { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s))
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))),
  )
  let running = true
  void exited.then(() => (running = false))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))

  const stop = async () => {
    if (running) child.kill('SIGTERM')
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await exited
    await closed
    clearTimeout(kill)
    fs.rmSync(runtimeDir, { recursive: true, force: true })
    const reaperReport = /subreaper: reaped \d+ processes/.exec(output)?.[0] ?? ''
    return { code, reaperReport }
  }

  for (let i = 0; i < 500 && !fs.existsSync(socketPath); i++) {
    if (!running) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  if (!fs.existsSync(socketPath)) {
    await stop()
    throw new Error(`weston did not create its socket:\n${output}`)
  }
  return { runtimeDir, display, socketPath, log: () => output, stop }
}

interface Args {
  uint(): number
  int(): number
  string(): string
}
interface Message {
  uint(value: number): Message
  int(value: number): Message
  string(text: string): Message
  fd(fd: number): Message
}
interface Connection {
  display: number
  object(iface: string, on?: Record<number, (a: Args) => void>): number
  request(objectId: number, opcode: number): Message
  flush(): Promise<void>
  until(done: () => boolean): Promise<void>
  roundtrip(): Promise<void>
  close(): void
}
// The example's wire module (plain JavaScript), typed here for the test.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const wire = require('../../examples/wayland/wire.js') as {
  Connection: { open(socketPath: string): Promise<Connection> }
}

/** A screenshot: `pixels` holds 0xAARRGGBB words (little-endian), `width` per row. */
export interface Screenshot {
  width: number
  height: number
  pixels: Buffer
}

/**
 * Takes a screenshot of the compositor's output with weston_screenshooter:
 * the compositor copies the output into a wl_shm buffer whose memory this
 * process made with memfd() and passed by fd, then reads it back.
 */
export async function screenshot(socketPath: string): Promise<Screenshot> {
  const wl = await wire.Connection.open(socketPath)
  let fd = -1
  try {
    const globals = new Map<string, number>()
    const registry = wl.object('wl_registry', {
      0: (a) => {
        const name = a.uint()
        globals.set(a.string(), name)
      },
    })
    wl.request(wl.display, 1).uint(registry)
    await wl.roundtrip()
    const bind = (iface: string, on?: Record<number, (a: Args) => void>): number => {
      const name = globals.get(iface)
      if (name === undefined) throw new Error(`weston offers no ${iface} (is --debug on?)`)
      const id = wl.object(iface, on)
      wl.request(registry, 0).uint(name).string(iface).uint(1).uint(id)
      return id
    }
    let size: { width: number; height: number } | undefined
    const output = bind('wl_output', {
      1: (a) => {
        // mode(flags, width, height, refresh): flag 1 is the current mode.
        const flags = a.uint()
        const width = a.int()
        const height = a.int()
        if (flags & 1) size = { width, height }
      },
    })
    const shm = bind('wl_shm')
    let shot = false
    const shooter = bind('weston_screenshooter', { 0: () => (shot = true) })
    await wl.roundtrip()
    if (!size) throw new Error('the output reported no current mode')
    const { width, height } = size
    const bytes = width * height * 4
    fd = memfd('screenshot', bytes)
    const pool = wl.object('wl_shm_pool')
    wl.request(shm, 0).uint(pool).fd(fd).int(bytes)
    const buffer = wl.object('wl_buffer')
    wl.request(pool, 0)
      .uint(buffer)
      .int(0)
      .int(width)
      .int(height)
      .int(width * 4)
      .uint(0) // ARGB8888
    wl.request(shooter, 0).uint(output).uint(buffer) // shoot
    await wl.until(() => shot)
    const pixels = Buffer.alloc(bytes)
    fs.readSync(fd, pixels, 0, bytes, 0)
    wl.request(buffer, 0)
    wl.request(pool, 1)
    await wl.roundtrip()
    return { width, height, pixels }
  } finally {
    if (fd >= 0) closeFds([fd])
    wl.close()
  }
}
