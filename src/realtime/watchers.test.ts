import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../core/user-id.js'
import { Watchers, type WatchEntry } from './watchers.js'

const t1 = '1' as UserId
const t2 = '2' as UserId

interface Conn {
  name: string
  watches: W[]
}
interface W extends WatchEntry<Conn> {
  n: number
}
const conn = (name: string): Conn => ({ name, watches: [] })
const watch = (connection: Conn, target: UserId, n: number): W => ({
  connection,
  target,
  slot: 0,
  n,
})

test('indexes both ways and leaves nothing behind', () => {
  const watchers = new Watchers<Conn, W>()
  const a = conn('a')
  const b = conn('b')
  watchers.add(watch(a, t1, 1))
  watchers.add(watch(a, t2, 2))
  watchers.add(watch(b, watchers.canonical('1' as UserId), 3))
  assert.deepEqual(
    watchers.watchersOf(t1).map((w) => w.connection.name),
    ['a', 'b'],
  )
  assert.deepEqual(
    a.watches.map((w) => [w.target, w.n]),
    [
      [t1, 1],
      [t2, 2],
    ],
  )
  assert.equal(watchers.get(b, t1)?.n, 3)
  assert.equal(watchers.index(a).get(t2)?.n, 2)
  const first = watchers.get(a, t1)!
  assert.equal(watchers.remove(first), false, 'b still watches t1')
  assert.equal(watchers.remove(first), false, 'already gone')
  assert.equal(watchers.watchersOf(t1)[0]?.slot, 0, 'the last watch moved into the freed slot')
  assert.deepEqual(watchers.size, { targets: 2, connections: 2 })
  assert.deepEqual(watchers.removeAll(a), [t2])
  assert.deepEqual(watchers.removeAll(b), [t1])
  assert.deepEqual(watchers.size, { targets: 0, connections: 0 })
  assert.equal(watchers.isWatched(t1), false)
  assert.equal(watchers.watchersOf(t1).length, 0)
})

test('a watch removed while its target list is walked from the end is skipped cleanly', () => {
  const watchers = new Watchers<Conn, W>()
  const conns = ['a', 'b', 'c', 'd'].map(conn)
  for (const [i, c] of conns.entries()) watchers.add(watch(c, t1, i))
  const seen: string[] = []
  const list = watchers.watchersOf(t1)
  for (let i = list.length - 1; i >= 0; i--) {
    const w = list[i]
    if (!w) continue
    seen.push(w.connection.name)
    if (w.connection.name === 'c') watchers.removeAll(w.connection)
  }
  assert.deepEqual(seen, ['d', 'c', 'b', 'a'])
  assert.deepEqual(
    watchers.watchersOf(t1).map((w) => w.connection.name),
    ['a', 'b', 'd'],
  )
})
