// Two copies of fdpass's JavaScript in one process, as a test runner's fresh
// module registry makes: the second loaded after purging the first from
// require.cache, either over the same loaded addon ('js') or after purging
// the addon's loader too, which loads the addon again ('all'). Sockets of
// both copies then stream messages with fds at once, through the event loop
// and through reads made by receive() itself. Prints one JSON line: what
// each socket received, and whether the fd table came back.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..', '..')
const fdDir = process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd'
const openFds = () => fs.readdirSync(fdDir).length

async function exchange(fdpass, tag, file) {
  const [a, b] = fdpass.FdSocket.pair()
  const got = []
  const received = (async () => {
    for (let i = 0; i < 50; i++) {
      const m = await b.receive()
      const ok = m.fds.length === 1 && fs.fstatSync(m.fds[0]).ino === fs.fstatSync(file).ino
      fdpass.closeFds(m.fds)
      got.push(ok ? m.data.toString() : `bad:${m.data.toString()}`)
    }
  })()
  for (let i = 0; i < 50; i++) {
    await a.send(`${tag}${i}`, [file])
    if (i % 7 === 0) await new Promise((r) => setTimeout(r, 1)) // let b wait on the event loop
  }
  await received
  a.close()
  b.close()
  return got
}

async function main() {
  const mode = process.argv[2]
  void process.stdout
  const before = openFds()
  const first = require(root)
  const file = fs.openSync(__filename, 'r')
  const keep = first.FdSocket.pair() // registers the first copy's buffers, stays open
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(path.join(root, 'dist')) || (mode === 'all' && key.startsWith(path.join(root, 'binding')))) {
      delete require.cache[key]
    }
  }
  const second = require(root)
  if (second === first) throw new Error('the module was not loaded again')
  const [one, two] = await Promise.all([exchange(first, 'a', file), exchange(second, 'b', file)])
  keep[0].close()
  keep[1].close()
  fs.closeSync(file)
  await new Promise((r) => setTimeout(r, 20))
  const expect = (tag) => Array.from({ length: 50 }, (_, i) => `${tag}${i}`)
  console.log(
    JSON.stringify({
      firstOk: JSON.stringify(one) === JSON.stringify(expect('a')),
      secondOk: JSON.stringify(two) === JSON.stringify(expect('b')),
      first: one.slice(0, 5),
      second: two.slice(0, 5),
      fdAuditOk: openFds() === before,
    }),
  )
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
