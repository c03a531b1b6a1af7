// ava configuration. The reliability, hostile-peer and soak suites exercise
// Linux-only ground (/proc, eventfd, memfd, prlimit, strace, ETOOMANYREFS,
// SO_PASSPIDFD, /proc/net/unix):
// they run on Linux and are not collected elsewhere.
const linuxOnly = [
  '__test__/reliability.spec.ts',
  '__test__/hostile.spec.ts',
  '__test__/soak.spec.ts',
  '__test__/threat-model.spec.ts',
]

export default {
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx'],
  files: ['__test__/**/*.spec.ts', ...(process.platform === 'linux' ? [] : linuxOnly.map((f) => `!${f}`))],
  timeout: '2m',
  workerThreads: false,
  environmentVariables: { TSX_DISABLE_CACHE: '1' },
}
