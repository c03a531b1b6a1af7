import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import * as path from 'node:path'

import { withFdAudit } from './helpers/fd-audit.js'
import { haveWeston, OUTPUT, screenshot, startWeston, type Weston } from './helpers/weston.js'

const example = path.join(__dirname, '..', 'examples', 'wayland-client.js')
// .ci/run sets it: there a missing weston is a failure, not a skip.
const required = process.env.FDPASS_REQUIRE_WESTON === '1'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the example against `weston`. With `whileShown`, runs it with --hold,
 * calls `whileShown` once it reports its frame on screen, then ends its stdin.
 */
function runExample(weston: Weston, args: string[], whileShown?: () => Promise<void>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [example, ...args, ...(whileShown ? ['--hold'] : [])], {
      env: { ...process.env, XDG_RUNTIME_DIR: weston.runtimeDir, WAYLAND_DISPLAY: weston.display },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    let stdout = ''
    let stderr = ''
    let asked = false
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s
      if (whileShown && !asked && /^\[wayland-client\] holding the window/m.test(stdout)) {
        asked = true
        whileShown().then(
          () => child.stdin.end(),
          (err: unknown) => {
            child.kill('SIGKILL')
            reject(err)
          },
        )
      }
    })
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    if (!whileShown) child.stdin.end()
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** The example's pattern at (x, y), as 0xRRGGBB. */
const expected = (x: number, y: number): number => ((x & 255) << 16) | ((y & 255) << 8) | ((x ^ y) & 255)

/** Runs `fn` with a fresh weston, then stops it and checks that it and its helpers were reaped. */
async function withWeston(t: ExecutionContext, fn: (weston: Weston) => Promise<void>): Promise<void> {
  const weston = await startWeston()
  try {
    await fn(weston)
  } finally {
    const { reaperReport } = await weston.stop()
    t.regex(reaperReport, /^subreaper: reaped \d+ processes$/, weston.log())
  }
}

const registered = process.platform !== 'linux' ? 'none' : haveWeston || required ? 'run' : 'skip'

if (registered === 'none') {
  test.skip('wayland: the example on weston (skipped: weston runs on Linux only, and the example needs a Wayland compositor)', () => {})
}
const wayland = registered === 'run' ? test.serial : test.skip
const why = registered === 'skip' ? ' (skipped: weston is not installed; .ci/run installs it)' : ''

if (registered !== 'none') {
  wayland(
    `wayland: the example's buffer is on weston's screen, pixel for pixel (screenshot through a passed fd)${why}`,
    async (t) => {
      await withFdAudit(t, () =>
        withWeston(t, async (weston) => {
          let shot: Awaited<ReturnType<typeof screenshot>> | undefined
          const run = await runExample(weston, ['--fullscreen'], async () => {
            shot = await screenshot(weston.socketPath)
          })
          t.is(run.stderr, '')
          t.regex(run.stdout, /^\[wayland-client\] bound wl_compositor, wl_shm and xdg_wm_base/m)
          t.regex(
            run.stdout,
            new RegExp(
              `^\\[wayland-client\\] passed a ${OUTPUT.width * OUTPUT.height * 4}-byte memfd with wl_shm.create_pool$`,
              'm',
            ),
          )
          t.regex(run.stdout, new RegExp(`^\\[wayland-client\\] frame shown: ${OUTPUT.width}x${OUTPUT.height}$`, 'm'))
          t.regex(run.stdout, /^\[wayland-client\] closed cleanly$/m)
          t.is(run.code, 0)
          // What the compositor shows: every pixel of the output is the pattern.
          t.truthy(shot)
          if (!shot) return
          t.deepEqual([shot.width, shot.height], [OUTPUT.width, OUTPUT.height])
          let wrong = 0
          let first = ''
          for (let y = 0; y < shot.height; y++) {
            for (let x = 0; x < shot.width; x++) {
              const got = shot.pixels.readUInt32LE((y * shot.width + x) * 4) & 0xffffff
              if (got !== expected(x, y)) {
                if (wrong++ === 0)
                  first = `(${x}, ${y}): got ${got.toString(16)}, expected ${expected(x, y).toString(16)}`
              }
            }
          }
          t.is(wrong, 0, `pixels differ from the pattern, first at ${first}`)
        }),
      )
    },
  )

  wayland(`wayland: the compositor's own error text is reported (a buffer with a bad stride)${why}`, async (t) => {
    await withFdAudit(t, () =>
      withWeston(t, async (weston) => {
        const run = await runExample(weston, ['--bad-stride'])
        t.is(run.code, 1)
        // libwayland-server's wl_shm text, as weston sent it in wl_display.error.
        t.regex(
          run.stderr,
          /^\[wayland-client\] compositor error: wl_shm_pool@\d+: error 1: invalid width, height or stride \(\d+x\d+, 4\)$/m,
        )
        t.notRegex(run.stdout, /frame shown/)
      }),
    )
  })

  wayland(`wayland: no compositor at $WAYLAND_DISPLAY is a clear error${why}`, async (t) => {
    await withFdAudit(t, () =>
      withWeston(t, async (weston) => {
        const run = await runExample({ ...weston, display: 'wayland-nobody' }, [])
        t.is(run.code, 1)
        t.regex(run.stderr, /^\[wayland-client\] connect ENOENT \(no socket exists at that path\)$/m)
      }),
    )
  })
}
