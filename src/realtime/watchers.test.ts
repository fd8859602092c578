import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../core/user-id.js'
import { RELATIONS, WatchList, Watchers, watchOf } from './watchers.js'

const t1 = '1' as UserId
const t2 = '2' as UserId
const t3 = '3' as UserId

interface Conn {
  name: string
  watches: WatchList
}
const conn = (name: string): Conn => ({ name, watches: new WatchList() })

/** The watchers of `target` as [connection name, watched target, offset]. */
function watchersOf(watchers: Watchers<Conn>, target: UserId): Array<[string, UserId, number]> {
  const out: Array<[string, UserId, number]> = []
  for (const entry of watchers.watchersOf(target)) {
    const c = watchers.connectionOf(entry)
    const w = watchOf(entry)
    out.push([c.name, c.watches.target(w), c.watches.offset(w)])
  }
  return out
}

test('indexes both ways and leaves nothing behind', () => {
  const watchers = new Watchers<Conn>()
  const a = conn('a')
  const b = conn('b')
  watchers.add(a, t1, 1)
  watchers.add(a, t2, 2)
  watchers.add(b, watchers.canonical('1' as UserId), 3)
  assert.deepEqual(watchersOf(watchers, t1), [
    ['a', t1, 1],
    ['b', t1, 3],
  ])
  assert.equal(watchers.get(b, t1), 0)
  assert.equal(a.watches.offset(watchers.index(a).get(t2)!), 2)
  assert.equal(watchers.remove(a, watchers.get(a, t1)), false, 'b still watches t1')
  assert.equal(watchers.get(a, t1), -1)
  assert.equal(watchers.get(a, t2), 0, "a's last watch moved into the freed place")
  assert.deepEqual(watchersOf(watchers, t2), [['a', t2, 2]], 'and its target knows')
  assert.deepEqual(watchersOf(watchers, t1), [['b', t1, 3]], 'the last pair moved into the slot')
  assert.deepEqual(watchers.size, { targets: 2, connections: 2 })
  assert.deepEqual(watchers.removeAll(a), [t2])
  assert.deepEqual(watchers.removeAll(b), [t1])
  assert.deepEqual(watchers.size, { targets: 0, connections: 0 })
  assert.equal(watchers.isWatched(t1), false)
  assert.equal(watchers.watchersOf(t1).length, 0)
})

test('keeps both sides consistent through removals in any order', () => {
  const watchers = new Watchers<Conn>()
  const conns = ['a', 'b', 'c'].map(conn)
  for (const c of conns) for (const t of [t1, t2, t3]) watchers.add(c, t, 0)
  watchers.remove(conns[1]!, watchers.get(conns[1]!, t1))
  watchers.remove(conns[0]!, watchers.get(conns[0]!, t2))
  watchers.remove(conns[2]!, watchers.get(conns[2]!, t3))
  for (const t of [t1, t2, t3]) {
    const list = watchers.watchersOf(t)
    assert.equal(list.length, 2)
    list.forEach((entry, slot) => {
      const c = watchers.connectionOf(entry)
      assert.equal(c.watches.target(watchOf(entry)), t)
      assert.equal(c.watches.slot(watchOf(entry)), slot)
    })
  }
  assert.deepEqual(
    conns.map((c) => c.watches.size),
    [2, 2, 2],
  )
  // a member number given back is reused
  const d = conn('d')
  watchers.removeAll(conns[0]!)
  watchers.add(d, t1, 0)
  assert.equal(d.watches.member, 0)
  assert.equal(watchers.connectionOf(watchers.watchersOf(t1).at(-1)!), d)
  assert.deepEqual(watchers.size, { targets: 3, connections: 3 })
})

test('a watch keeps its flags, relation and held offline apart from its slot', () => {
  const watchers = new Watchers<Conn>()
  const a = conn('a')
  const b = conn('b')
  watchers.add(b, t1, 0)
  const w = watchers.add(a, t1, 7)
  const own = Object.freeze({ friends: false, blocked: true, lastOnline: 5 })
  a.watches.setRelation(w, own)
  a.watches.setSent(w, '{"x":1}', true)
  a.watches.hold(w, { since: 1, reason: 'explicit', offset: 0 })
  watchers.remove(b, 0)
  assert.equal(a.watches.slot(w), 0)
  assert.equal(a.watches.relation(w), own)
  assert.equal(a.watches.online(w), true)
  assert.equal(a.watches.sent(w), '{"x":1}')
  assert.equal(a.watches.held(w)?.since, 1)
  a.watches.setRelation(w, RELATIONS[1]!)
  a.watches.setSent(w, '{"x":2}', false)
  assert.equal(a.watches.relation(w), RELATIONS[1])
  assert.equal(a.watches.online(w), false)
  assert.equal(a.watches.unhold(w), true)
  assert.equal(a.watches.holding, false)
  assert.equal(a.watches.offset(w), 7)
})

test('a watch removed while its target list is walked from the end is skipped cleanly', () => {
  const watchers = new Watchers<Conn>()
  const conns = ['a', 'b', 'c', 'd'].map(conn)
  for (const c of conns) watchers.add(c, t1, 0)
  const seen: string[] = []
  const list = watchers.watchersOf(t1)
  for (let k = list.length - 1; k >= 0; k--) {
    const entry = list[k]
    if (entry === undefined) continue
    const c = watchers.connectionOf(entry)
    seen.push(c.name)
    if (c.name === 'c') watchers.removeAll(c)
  }
  assert.deepEqual(seen, ['d', 'c', 'b', 'a'])
  assert.deepEqual(
    watchersOf(watchers, t1).map(([name]) => name),
    ['a', 'b', 'd'],
  )
})

test('any sequence of adds and removals keeps both sides the mirror of each other', () => {
  const watchers = new Watchers<Conn>()
  const conns = Array.from({ length: 12 }, (_, i) => conn(`c${i}`))
  const targets = Array.from({ length: 20 }, (_, i) => String(i + 1) as UserId)
  const model = new Map<Conn, Set<UserId>>(conns.map((c) => [c, new Set()]))
  let seed = 7
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  for (let step = 0; step < 3000; step++) {
    const c = conns[next(conns.length)]!
    const t = targets[next(targets.length)]!
    const op = next(10)
    const watched = model.get(c)!
    if (op < 6 && !watched.has(t)) {
      watchers.add(c, watchers.canonical(t), step)
      watched.add(t)
    } else if (op < 9 && watched.has(t)) {
      const orphan = watchers.remove(c, watchers.get(c, t))
      watched.delete(t)
      assert.equal(orphan, ![...model.values()].some((set) => set.has(t)))
    } else if (op === 9) {
      watchers.removeAll(c)
      watched.clear()
    }
    for (const t2 of targets) {
      const entries = watchers.watchersOf(t2)
      const holders = conns.filter((c2) => model.get(c2)!.has(t2))
      assert.equal(entries.length, holders.length)
      assert.equal(watchers.isWatched(t2), holders.length > 0)
      entries.forEach((entry, slot) => {
        const c2 = watchers.connectionOf(entry)
        assert.equal(c2.watches.target(watchOf(entry)), t2)
        assert.equal(c2.watches.slot(watchOf(entry)), slot)
      })
    }
    for (const c2 of conns) assert.equal(c2.watches.size, model.get(c2)!.size)
  }
  const watching = conns.filter((c) => model.get(c)!.size > 0).length
  assert.equal(watchers.size.connections, watching)
})
