/**
 * Temporary files for tests that pass fds: an open fd of a file with known
 * contents (unlinked at once, so nothing is left behind), and reading it back.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

let counter = 0

/** An fd of a new file in `dir` holding `contents`, opened with `flags` and already unlinked. */
export function openTempFile(dir: string, contents: string, flags = 'r+'): number {
  const file = path.join(dir, `f${process.pid}-${counter++}`)
  fs.writeFileSync(file, contents)
  const fd = fs.openSync(file, flags)
  fs.unlinkSync(file)
  return fd
}

/** Up to `max` bytes of `fd` from `position` (null: from its offset), as text. */
export function readText(fd: number, position: number | null = 0, max = 4096): string {
  const buf = Buffer.alloc(max)
  return buf.subarray(0, fs.readSync(fd, buf, 0, max, position)).toString()
}
