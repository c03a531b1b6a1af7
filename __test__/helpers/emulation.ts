/**
 * User-mode emulation (qemu-user runs an arm64 Node on an x64 kernel): the
 * few tests that read what the kernel sees of a process (its syscall numbers
 * in /proc/PID/syscall) cannot work there, because the kernel sees qemu.
 * They are skipped with the reason in their title, and only there.
 */
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'

const MACHINES: Record<string, string[]> = {
  x64: ['x86_64'],
  arm64: ['aarch64', 'arm64'],
}

/**
 * The emulator's description when this process runs under user-mode
 * emulation, else undefined. qemu answers this process's own uname() with
 * the emulated machine, but `uname -m`, a program of the host, runs natively
 * and names the kernel's.
 */
function detectEmulation(): string | undefined {
  if (process.platform !== 'linux') return undefined
  let machine: string
  try {
    machine = execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
  const native = MACHINES[process.arch]
  if (native === undefined || native.includes(machine)) return undefined
  return `${process.arch} Node emulated on a ${machine} kernel`
}

/** Set when this process runs under user-mode emulation: what runs on what. */
export const emulation = detectEmulation()

/**
 * How much longer a wall-clock bound must be that includes starting a Node
 * process: under emulation Node starts in seconds, not in tens of milliseconds.
 */
export const slowdown = emulation === undefined ? 1 : 6

/**
 * Registers `fn` as a serial test, or, under user-mode emulation, as a
 * skipped one whose title says why.
 */
export function serialUnlessEmulated(
  title: string,
  why: string,
  fn: (t: ExecutionContext) => void | Promise<void>,
): void {
  if (emulation === undefined) test.serial(title, fn)
  else test.serial.skip(`${title} [skipped: ${why}; ${emulation}]`, fn)
}
