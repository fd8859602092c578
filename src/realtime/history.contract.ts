/**
 * The History contract (history.ts): every adapter passes it against its real backend.
 *
 * @example
 * historyContract('memory', async (bounds) => ({ history: new MemoryHistory(bounds), cleanup: async () => {} }))
 *
 * The factory returns a fresh history with the given bounds and no entries; `cleanup` deletes
 * what it wrote. Times are real (Redis expires keys by its own clock).
 */
import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { PresenceChange } from '../core/presence.js'
import type { UserId } from '../core/user-id.js'
import {
  MARKS_KEPT,
  NO_HISTORY,
  relationConcern,
  settingsConcern,
  type History,
  type HistoryBounds,
} from './history.js'

export type HistoryFactory = (bounds: HistoryBounds) => Promise<{
  history: History
  cleanup(): Promise<void>
}>

/** Above 2^53: a JS number would round it. */
const BIG = '9007199254740993' as UserId
const OTHER = '42' as UserId

export function changeOf(userId: UserId, step: number, at: number): PresenceChange {
  const session = (location: string) => ({
    userId,
    key: 'app:Web',
    source: 'app' as const,
    deviceType: 'Web',
    startedAt: at - 1000,
    updatedAt: at,
    expiresAt: at + 60_000,
    activity: { kind: 'inGame' as const, placeId: '1818', location },
  })
  return {
    userId,
    before: { userId, sessions: step > 1 ? [session(`step-${step - 1}`)] : [], lastOnline: at - 1 },
    after: { userId, sessions: [session(`step-${step}`)], lastOnline: at },
  }
}

function locationsOf(changes: PresenceChange[]): string[] {
  return changes.map((c) => c.after.sessions[0]?.activity.location ?? '')
}

export function historyContract(name: string, factory: HistoryFactory): void {
  async function open(t: TestContext, bounds: HistoryBounds = { entries: 5, ageSeconds: 60 }) {
    const { history, cleanup } = await factory(bounds)
    t.after(cleanup)
    return history
  }

  async function appendSteps(
    history: History,
    userId: UserId,
    from: number,
    to: number,
    at = Date.now(),
  ) {
    const out: PresenceChange[] = []
    for (let step = from; step <= to; step++) {
      const change = changeOf(userId, step, at)
      await history.append(change, at)
      out.push(change)
    }
    return out
  }

  describe(`History contract: ${name}`, () => {
    test('a user without history stands at no epoch, offset 0, and has nothing to read', async (t) => {
      const history = await open(t)
      assert.deepEqual(await history.positions([BIG, OTHER]), [NO_HISTORY, NO_HISTORY])
      assert.deepEqual(await history.read(BIG, NO_HISTORY), {
        position: NO_HISTORY,
        changes: [],
        complete: true,
        lastMark: undefined,
        marks: undefined,
      })
    })

    test('appends get consecutive offsets in one epoch, per user, and read back in order', async (t) => {
      const history = await open(t)
      const at = Date.now()
      const made = await appendSteps(history, BIG, 1, 3, at)
      await appendSteps(history, OTHER, 1, 1, at)
      const epoch = made[0]!.position!.epoch
      assert.match(epoch, /^\d+$/)
      assert.deepEqual(
        made.map((c) => c.position),
        [1, 2, 3].map((offset) => ({ epoch, offset, at })),
      )
      const [big, other] = await history.positions([BIG, OTHER])
      assert.deepEqual(big, { epoch, offset: 3 })
      assert.equal(other!.offset, 1)

      const all = await history.read(BIG, NO_HISTORY)
      assert.equal(all.complete, true)
      assert.deepEqual(all.position, { epoch, offset: 3 })
      assert.deepEqual(all.changes, made)
      assert.equal(all.changes[0]!.userId, BIG)

      // from a position: the change at it (while held) and every later one
      const since = await history.read(BIG, { epoch, offset: 2 })
      assert.equal(since.complete, true)
      assert.deepEqual(locationsOf(since.changes), ['step-2', 'step-3'])
      assert.deepEqual(
        since.changes.map((c) => c.position!.offset),
        [2, 3],
      )
      const current = await history.read(BIG, { epoch, offset: 3 })
      assert.equal(current.complete, true)
      assert.deepEqual(locationsOf(current.changes), ['step-3'])
    })

    test('bounded by length: a position older than the kept changes no longer reaches', async (t) => {
      const history = await open(t, { entries: 5, ageSeconds: 60 })
      const made = await appendSteps(history, BIG, 1, 8)
      const epoch = made[0]!.position!.epoch
      const kept = await history.read(BIG, { epoch, offset: 3 })
      // 4..8 are kept: a subscriber at 3 missed exactly those
      assert.equal(kept.complete, true)
      assert.deepEqual(locationsOf(kept.changes), [
        'step-4',
        'step-5',
        'step-6',
        'step-7',
        'step-8',
      ])
      const lost = await history.read(BIG, { epoch, offset: 2 })
      assert.equal(lost.complete, false)
      assert.deepEqual(lost.changes, [])
      assert.deepEqual(lost.position, { epoch, offset: 8 })
      // nor does the start of the history once it is trimmed
      assert.equal((await history.read(BIG, NO_HISTORY)).complete, false)
    })

    test('bounded by age: changes older than the age are dropped, the offsets go on', async (t) => {
      const history = await open(t, { entries: 100, ageSeconds: 60 })
      const now = Date.now()
      const old = await appendSteps(history, BIG, 1, 2, now - 120_000)
      const epoch = old[0]!.position!.epoch
      await appendSteps(history, BIG, 3, 3, now)
      const read = await history.read(BIG, { epoch, offset: 1 })
      assert.equal(read.complete, false)
      const recent = await history.read(BIG, { epoch, offset: 2 })
      assert.equal(recent.complete, true)
      assert.deepEqual(locationsOf(recent.changes), ['step-3'])
      assert.deepEqual(recent.position, { epoch, offset: 3 })
    })

    test('a position of another epoch never reaches: the history was lost meanwhile', async (t) => {
      const history = await open(t)
      const made = await appendSteps(history, BIG, 1, 2)
      const epoch = made[0]!.position!.epoch
      const read = await history.read(BIG, { epoch: `${epoch}1`, offset: 1 })
      assert.equal(read.complete, false)
      assert.deepEqual(read.changes, [])
      // a position ahead of the history is from another life too
      assert.equal((await history.read(BIG, { epoch, offset: 9 })).complete, false)
    })

    test('where the privacy last changed outlives the trimming of the changes', async (t) => {
      const history = await open(t, { entries: 2, ageSeconds: 60 })
      const [made] = await appendSteps(history, BIG, 1, 1)
      const epoch = made!.position!.epoch
      // a new epoch has no mark
      assert.equal((await history.read(BIG, { epoch, offset: 1 })).lastMark, 0)
      await history.mark([BIG, OTHER], Date.now())
      const [marked] = await history.positions([BIG])
      assert.deepEqual(marked, { epoch, offset: 2 })
      await appendSteps(history, BIG, 2, 6)
      // the mark and the changes after it were trimmed: the read no longer reaches, the mark shows
      const read = await history.read(BIG, { epoch, offset: 1 })
      assert.equal(read.complete, false)
      assert.deepEqual(read.position, { epoch, offset: 7 })
      assert.equal(read.lastMark, 2)
      // and the other user marked has its own
      const [other] = await history.positions([OTHER])
      assert.equal((await history.read(OTHER, other!)).lastMark, other!.offset)
    })

    test('whom each mark concerns outlives the trimming, as far back as the marks kept go', async (t) => {
      const history = await open(t, { entries: 2, ageSeconds: 60 })
      const [made] = await appendSteps(history, BIG, 1, 1)
      const epoch = made!.position!.epoch
      assert.deepEqual((await history.read(BIG, { epoch, offset: 1 })).marks, [])
      await history.mark([BIG, OTHER], Date.now(), [relationConcern(OTHER), relationConcern(BIG)])
      await history.mark([BIG], Date.now(), [settingsConcern({ friends: false, others: true })])
      await appendSteps(history, BIG, 2, 6)
      const read = await history.read(BIG, { epoch, offset: 1 })
      assert.equal(read.complete, false)
      assert.deepEqual(read.marks, [
        { offset: 2, prev: 0, concern: `r${OTHER}` },
        { offset: 3, prev: 2, concern: 'so' },
      ])
      // after the first mark, only the second
      assert.deepEqual((await history.read(BIG, { epoch, offset: 2 })).marks, [
        { offset: 3, prev: 2, concern: 'so' },
      ])
      // a mark without a concern concerns every viewer
      await history.mark([BIG], Date.now())
      const [now] = await history.positions([BIG])
      assert.deepEqual((await history.read(BIG, { epoch, offset: 8 })).marks, [
        { offset: now!.offset, prev: 3, concern: '' },
      ])
      // more marks than are kept: a position from before the oldest kept cannot tell them all
      for (let i = 0; i < MARKS_KEPT; i++) await history.mark([BIG], Date.now(), ['sf'])
      assert.equal((await history.read(BIG, { epoch, offset: 1 })).marks, undefined)
      const [last] = await history.positions([BIG])
      assert.equal((await history.read(BIG, { epoch, offset: last!.offset - 1 })).marks?.length, 1)
    })

    test('a change keeps what a fan-out needs: before, after, reason, ended', async (t) => {
      const history = await open(t)
      const at = Date.now()
      const change = changeOf(BIG, 1, at)
      const ended = change.after.sessions[0]!
      const gone: PresenceChange = {
        userId: BIG,
        before: change.after,
        after: { userId: BIG, sessions: [], lastOnline: at },
        reason: 'timeout',
        ended: [ended],
      }
      await history.append(change, at)
      await history.append(gone, at)
      const read = await history.read(BIG, NO_HISTORY)
      assert.deepEqual(read.changes, [change, gone])
      assert.equal(read.changes[1]!.reason, 'timeout')
    })
  })
}
