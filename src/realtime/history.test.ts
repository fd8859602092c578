import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Activity, UserPresence } from '../core/presence.js'
import type { UserId } from '../core/user-id.js'
import { MemoryHistory, sameSessions } from './history.js'
import { changeOf, historyContract } from './history.contract.js'

historyContract('memory', (bounds) =>
  Promise.resolve({ history: new MemoryHistory(bounds), cleanup: () => Promise.resolve() }),
)

const bounds = { entries: 32, ageSeconds: 300 }
const A = '9007199254740993' as UserId
const B = '7' as UserId

test('memory history: each new epoch is the one before plus one, across its last nine digits', async () => {
  const history = new MemoryHistory(bounds, () => 1_000, 1_796_310_343_999_999_998n)
  history.keepOnly(() => false)
  const epochs: string[] = []
  for (let i = 0; i < 3; i++)
    epochs.push((await history.append(changeOf(A, i, 1_000), 1_000)).epoch)
  assert.deepEqual(epochs, ['1796310343999999999', '1796310344000000000', '1796310344000000001'])
  const short = new MemoryHistory(bounds, () => 1_000, 1_796_310_343_000_012_344n)
  short.keepOnly(() => false)
  assert.equal((await short.append(changeOf(A, 0, 1_000), 1_000)).epoch, '1796310343000012345')
})

test('memory history keeps only watched users’ changes; a position across an unwatched change is lost', async () => {
  const watched = new Set<UserId>()
  const history = new MemoryHistory(bounds, () => 1_000)
  history.keepOnly((id) => watched.has(id))

  // nobody watches A: each change gets a position of its own and nothing is kept
  const first = await history.append(changeOf(A, 1, 1_000), 1_000)
  const second = await history.append(changeOf(A, 2, 1_000), 1_000)
  assert.equal(first.offset, 1)
  assert.equal(second.offset, 1)
  assert.notEqual(first.epoch, second.epoch)
  assert.equal((await history.read(A, first)).complete, false)

  // someone starts watching A: its history starts at the position the snapshot reads
  const [start] = await history.positions([A])
  watched.add(A)
  assert.equal(start!.offset, 0)
  await history.append(changeOf(A, 3, 1_000), 1_000)
  await history.append(changeOf(A, 4, 1_000), 1_000)
  const read = await history.read(A, start!)
  assert.equal(read.complete, true)
  assert.deepEqual(
    read.changes.map((c) => c.position?.offset),
    [1, 2],
  )

  // nobody watches A any more and it changes: the held position no longer reaches back, but A,
  // watched within the day, keeps counting in its epoch (and where its privacy last changed),
  // as a watched user does, so that a resume can tell it was hidden throughout (fanout.ts)
  watched.delete(A)
  await history.append(changeOf(A, 5, 1_000), 1_000)
  const unwatched = await history.read(A, read.position)
  assert.equal(unwatched.complete, false)
  assert.deepEqual(unwatched.position, { epoch: start!.epoch, offset: 3 })
  assert.equal(unwatched.lastMark, 0)
  assert.equal((await history.read(A, start!)).complete, false)
  await history.mark([A], 1_000)
  assert.equal((await history.read(A, start!)).lastMark, 4)

  // a user never asked about reads as no history, complete from nothing
  assert.equal((await history.read(B, { epoch: '', offset: 0 })).complete, true)
})

test('a refresh is a change of expiry only: activities compare by what they hold, not their text', () => {
  const session = (activity: Activity, updatedAt = 1_000) => ({
    userId: B,
    key: 'title:1',
    source: 'title' as const,
    deviceType: 'PC',
    startedAt: 500,
    updatedAt,
    expiresAt: updatedAt + 60_000,
    activity,
  })
  const presence = (activity: Activity, updatedAt?: number): UserPresence => ({
    userId: B,
    sessions: [session(activity, updatedAt)],
    lastOnline: 1_000,
  })
  const rich = { id: 'playing', scid: 's', params: ['a', 'b'] }
  const titled: Activity = { kind: 'online', titleId: '1', placement: 'full', richPresence: rich }
  // the same activity written with its members in another order, later: a refresh
  const reordered: Activity = {
    richPresence: { ...rich },
    placement: 'full',
    titleId: '1',
    kind: 'online',
  }
  assert.equal(sameSessions(presence(titled), presence(reordered, 2_000)), true)
  assert.equal(sameSessions(presence(titled), presence(titled, 2_000)), true)
  for (const changed of [
    { ...titled, placement: 'fill' as const },
    { ...titled, richPresence: { ...rich, params: ['a', 'c'] } },
    { ...titled, richPresence: { ...rich, params: ['a'] } },
    { ...titled, richPresence: { ...rich, scid: undefined } },
    { ...titled, richPresence: undefined },
    { ...titled, location: 'x' },
    { ...titled, kind: 'inGame' as const },
  ]) {
    assert.equal(sameSessions(presence(titled), presence(changed)), false, JSON.stringify(changed))
  }
})
