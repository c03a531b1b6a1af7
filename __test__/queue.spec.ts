// The read-ahead queue of FdSocket (src/internal/queue.ts): first in, first out,
// across the points where it empties and starts over in fresh storage.
import test from 'ava'

import { Queue } from '../src/internal/queue'

test('items come out in the order they went in, across refills', (t) => {
  const q = new Queue<number>()
  const out: Array<number | undefined> = []
  let next = 0
  // Interleave pushes and shifts so that the queue empties (and starts over)
  // at varying lengths, and sometimes is refilled before it empties.
  for (let round = 1; round <= 20; round++) {
    for (let i = 0; i < round % 7; i++) q.push(next++)
    for (let i = 0; i < round % 5; i++) out.push(q.shift())
  }
  while (q.length > 0) out.push(q.shift())
  const taken = out.filter((x) => x !== undefined)
  t.deepEqual(
    taken,
    Array.from({ length: next }, (_, i) => i),
  )
  t.is(q.length, 0)
  t.is(q.shift(), undefined)
  t.is(q.peek(), undefined)
})

test('length and peek follow pushes and shifts; drain takes the rest in order', (t) => {
  const q = new Queue<string>()
  q.push('a')
  q.push('b')
  q.push('c')
  t.is(q.length, 3)
  t.is(q.peek(), 'a')
  t.is(q.shift(), 'a')
  t.is(q.length, 2)
  t.is(q.peek(), 'b')
  q.push('d')
  t.deepEqual(q.drain(), ['b', 'c', 'd'])
  t.is(q.length, 0)
  t.deepEqual(q.drain(), [])
  q.push('e')
  t.is(q.shift(), 'e')
  t.is(q.length, 0)
})

test('a taken item is no longer held by the queue', async (t) => {
  // The queue must not keep taken messages (and their payloads) alive while
  // later ones wait: the slot is cleared when the item is taken.
  if (typeof globalThis.gc !== 'function') {
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    globalThis.gc = runInNewContext('gc') as typeof globalThis.gc
  }
  const q = new Queue<object>()
  q.push({ payload: new Uint8Array(1024) })
  q.push({ payload: new Uint8Array(1024) })
  // Taken while another item still waits: the queue keeps its storage.
  const taken = new WeakRef(q.shift()!)
  await new Promise((resolve) => setImmediate(resolve))
  globalThis.gc!()
  t.is(taken.deref(), undefined)
  t.is(q.length, 1)
})
