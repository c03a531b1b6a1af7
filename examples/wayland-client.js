// A minimal Wayland client in plain JavaScript: the wire protocol by hand
// (examples/wayland/wire.js) over fdpass, with the pixels in shared memory
// from fdpass's memfd() whose fd travels to the compositor with
// wl_shm.create_pool — the fd passing Node itself cannot do.
//
// It connects to $WAYLAND_DISPLAY, binds wl_compositor, wl_shm and
// xdg_wm_base, opens a window (an xdg_toplevel), shows a buffer with a known
// pattern, waits for the compositor's frame callback (the frame is on
// screen), and exits cleanly. If the compositor reports a protocol error,
// its own text is printed and the exit code is 1.
//
//   node examples/wayland-client.js              # show one frame, then exit
//   node examples/wayland-client.js --hold       # keep the window until stdin ends or Ctrl-C
//   node examples/wayland-client.js --fullscreen # ask for the whole output (the size comes from the compositor)
//   node examples/wayland-client.js --bad-stride # a deliberately bad buffer: see the compositor's error
//
// The pattern, for anyone checking the pixels: at (x, y) the colour is
// red = x & 255, green = y & 255, blue = (x ^ y) & 255 (XRGB8888).
'use strict'
const fs = require('node:fs')
const { closeFds, memfd } = require('fdpass')
const { Connection, displayPath } = require('./wayland/wire')

const WL_SHM_FORMAT_XRGB8888 = 1
const DEFAULT_SIZE = { width: 320, height: 240 }
const log = (line) => console.log(`[wayland-client] ${line}`)

/** The pattern, as XRGB8888 pixels in memory (little-endian: blue, green, red, x). */
function pattern(width, height) {
  const pixels = Buffer.alloc(width * height * 4)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      pixels.writeUInt32LE(
        (0xff000000 | ((x & 255) << 16) | ((y & 255) << 8) | ((x ^ y) & 255)) >>> 0,
        (y * width + x) * 4,
      )
    }
  }
  return pixels
}

async function main() {
  const hold = process.argv.includes('--hold')
  const badStride = process.argv.includes('--bad-stride')
  const fullscreen = process.argv.includes('--fullscreen')
  const wl = await Connection.open(displayPath())
  try {
    // The registry lists the compositor's globals; a round trip collects them all.
    const globals = new Map() // interface -> { name, version }
    const registry = wl.object('wl_registry', {
      0: (a) => {
        const name = a.uint()
        const iface = a.string()
        globals.set(iface, { name, version: a.uint() })
      },
    })
    wl.request(wl.display, 1).uint(registry) // wl_display.get_registry
    await wl.roundtrip()
    const bind = (iface, version, on) => {
      const global = globals.get(iface)
      if (!global) throw new Error(`the compositor offers no ${iface}`)
      const id = wl.object(iface, on)
      // wl_registry.bind(name, new_id of any interface: interface, version, id)
      wl.request(registry, 0).uint(global.name).string(iface).uint(Math.min(version, global.version)).uint(id)
      return id
    }
    const compositor = bind('wl_compositor', 4)
    const shm = bind('wl_shm', 1)
    const wmBase = bind('xdg_wm_base', 1, {
      0: (a) => wl.request(wmBase, 3).uint(a.uint()), // ping -> pong
    })
    log(`bound wl_compositor, wl_shm and xdg_wm_base (${globals.size} globals offered)`)

    // A window: a surface with the xdg_toplevel role. Its first commit, with
    // no buffer, asks the compositor for a configure (the size it wants).
    const surface = wl.object('wl_surface')
    wl.request(compositor, 0).uint(surface) // create_surface
    let configured = null
    let size = null
    const xdgSurface = wl.object('xdg_surface', {
      0: (a) => (configured = a.uint()), // configure(serial)
    })
    const toplevel = wl.object('xdg_toplevel', {
      0: (a) => {
        const width = a.int()
        const height = a.int()
        size = width > 0 && height > 0 ? { width, height } : DEFAULT_SIZE
      },
    })
    wl.request(wmBase, 2).uint(xdgSurface).uint(surface) // get_xdg_surface
    wl.request(xdgSurface, 1).uint(toplevel) // get_toplevel
    wl.request(toplevel, 2).string('fdpass wayland-client') // set_title
    if (fullscreen) wl.request(toplevel, 11).uint(0) // set_fullscreen(on the output the compositor picks)
    wl.request(surface, 6) // commit
    await wl.until(() => configured !== null)
    wl.request(xdgSurface, 4).uint(configured) // ack_configure
    const { width, height } = size ?? DEFAULT_SIZE

    // The pixels, in shared memory the compositor maps: an fd from memfd(),
    // filled with fs.writeSync, passed with wl_shm.create_pool.
    const stride = width * 4
    const bytes = stride * height
    const fd = memfd('wl_shm-pool', bytes)
    let pool
    let buffer
    try {
      fs.writeSync(fd, pattern(width, height), 0, bytes, 0)
      pool = wl.object('wl_shm_pool')
      wl.request(shm, 0).uint(pool).fd(fd).int(bytes) // create_pool(id, fd, size)
      buffer = wl.object('wl_buffer')
      // create_buffer(id, offset, width, height, stride, format)
      wl.request(pool, 0)
        .uint(buffer)
        .int(0)
        .int(width)
        .int(height)
        .int(badStride ? 4 : stride)
        .uint(WL_SHM_FORMAT_XRGB8888)
      wl.request(pool, 1) // destroy: the buffer keeps the memory mapped
      await wl.flush()
    } finally {
      closeFds([fd]) // the compositor holds its own copy now
    }
    log(`passed a ${bytes}-byte memfd with wl_shm.create_pool`)

    // Show it, and ask to be told when it is on screen.
    let shown = false
    const frame = wl.object('wl_callback', { 0: () => (shown = true) })
    wl.request(surface, 1).uint(buffer).int(0).int(0) // attach
    wl.request(surface, 2).int(0).int(0).int(width).int(height) // damage
    wl.request(surface, 3).uint(frame) // frame
    wl.request(surface, 6) // commit
    await wl.until(() => shown)
    log(`frame shown: ${width}x${height}`)

    if (hold) {
      log('holding the window until stdin ends')
      await new Promise((resolve) => {
        process.stdin.on('end', resolve).on('error', resolve).resume()
        process.once('SIGINT', resolve).once('SIGTERM', resolve)
      })
      process.stdin.pause()
    }

    // Tear down in order, and make sure the compositor took it all without an error.
    wl.request(buffer, 0) // wl_buffer.destroy
    wl.request(toplevel, 0) // xdg_toplevel.destroy
    wl.request(xdgSurface, 0) // xdg_surface.destroy
    wl.request(surface, 0) // wl_surface.destroy
    wl.request(wmBase, 0) // xdg_wm_base.destroy
    await wl.roundtrip()
    log('closed cleanly')
  } finally {
    wl.close()
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err.protocolMessage !== undefined) console.error(`[wayland-client] compositor error: ${err.message}`)
    else console.error(`[wayland-client] ${err.message}`)
    process.exit(1)
  },
)
