// ava configuration. The suites listed in __test__/linux-only.json exercise
// Linux-only ground (/proc, eventfd, memfd, prlimit, strace, ETOOMANYREFS,
// SO_PASSPIDFD, /proc/net/unix): they run on Linux and are not collected
// elsewhere, where __test__/platform-skips.spec.ts reports each as skipped,
// with the reason.
import { readFileSync } from 'node:fs'

const linuxOnly = Object.keys(JSON.parse(readFileSync(new URL('./__test__/linux-only.json', import.meta.url), 'utf8')))

export default {
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx'],
  files: ['__test__/**/*.spec.ts', ...(process.platform === 'linux' ? [] : linuxOnly.map((f) => `!${f}`))],
  timeout: '2m',
  workerThreads: false,
  environmentVariables: { TSX_DISABLE_CACHE: '1' },
}
