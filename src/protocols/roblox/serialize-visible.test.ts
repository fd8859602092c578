import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { stateOfKind, type Activity, type PresenceType, type Session } from '../../core/presence.js'
import type { PresenceSummary, VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { isoOf } from '../shared/iso-date.js'
import { resetReplyWriter, writeSummariesReply, writeUsersReply } from './reply-writer.js'
import {
  invisibleSelfViews,
  robloxPresence,
  serializeRobloxPresence,
  serializeUserPresences,
  serializeVisible,
  type RobloxViewOptions,
} from './view.js'

const id = fc.oneof(
  fc.constant('9223372036854775807'),
  fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
)
const activity: fc.Arbitrary<Activity> = fc.record(
  {
    kind: fc.constantFrom('online', 'inGame', 'inStudio'),
    placeId: id,
    rootPlaceId: id,
    universeId: id,
    gameId: fc.uuid(),
    location: fc.oneof(fc.constant(''), fc.string(), fc.constant('Obby "quoted" \\ \u2028')),
  },
  { requiredKeys: ['kind'] },
)
// the embedded store shares frozen activities; other stores return fresh ones
const stored = fc
  .tuple(activity, fc.boolean())
  .map(([a, frozen]) => (frozen ? Object.freeze(a) : a))
const session: fc.Arbitrary<Session> = fc.record({
  userId: id.map((v) => v as UserId),
  key: fc.string(),
  source: fc.constantFrom('app', 'title', 'server'),
  deviceType: fc.constant('PC'),
  startedAt: fc.nat(),
  updatedAt: fc.nat(100),
  expiresAt: fc.nat(),
  activity: stored,
})
const presence: fc.Arbitrary<VisiblePresence> = fc.record({
  userId: id.map((v) => v as UserId),
  state: fc.constantFrom(0, 1, 2, 3, 4) as fc.Arbitrary<PresenceType>,
  sessions: fc.array(session, { maxLength: 3 }),
  lastOnline: fc.option(
    fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constant(1_700_000_000_000.5)),
    { nil: undefined },
  ),
  locationHidden: fc.boolean(),
})

test('serializeVisible writes the bytes of serializeRobloxPresence(robloxPresence(...))', () => {
  fc.assert(
    fc.property(presence, fc.constantFrom(...invisibleSelfViews), (v, invisibleSelfView) => {
      const options = { invisibleSelfView }
      const expected = serializeRobloxPresence(robloxPresence(v, options))
      // twice: the second answer comes from the per-activity prefixes
      assert.equal(serializeVisible(v, options), expected)
      assert.equal(serializeVisible(v, options), expected)
      JSON.parse(expected)
    }),
    { numRuns: 2000 },
  )
})

test('writeUsersReply writes the bytes of serializeUserPresences of serializeVisible', () => {
  resetReplyWriter()
  fc.assert(
    fc.property(
      fc.array(presence, { maxLength: 8 }),
      fc.constantFrom(...invisibleSelfViews),
      (visible, invisibleSelfView) => {
        const options = { invisibleSelfView }
        const expected = serializeUserPresences(
          visible.map((v) => serializeRobloxPresence(robloxPresence(v, options))),
        )
        // twice: the second answer comes from the cached prefix bytes
        assert.equal(writeUsersReply(visible, options).toString('utf8'), expected)
        assert.equal(writeUsersReply(visible, options).toString('utf8'), expected)
      },
    ),
    { numRuns: 2000 },
  )
})

test('writeUsersReply: a shared activity keeps one prefix per shown state', () => {
  const activity = Object.freeze({ kind: 'inGame', placeId: '7', location: 'Obby' } as const)
  const session = {
    userId: '5' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    startedAt: 0,
    updatedAt: 0,
    expiresAt: 10,
    activity,
  } as const
  const at = Date.UTC(2026, 10, 30, 23, 59, 59, 999)
  const self: VisiblePresence = {
    userId: '5' as UserId,
    state: 4,
    sessions: [session],
    lastOnline: at,
    locationHidden: false,
  }
  const other: VisiblePresence = { ...self, state: 2, lastOnline: at + 1 }
  for (const invisibleSelfView of invisibleSelfViews) {
    const options = { invisibleSelfView }
    const expected = serializeUserPresences([
      serializeVisible(self, options),
      serializeVisible(other, options),
    ])
    assert.equal(writeUsersReply([self, other], options).toString(), expected)
  }
  assert.equal(
    writeUsersReply([], { invisibleSelfView: 'state' }).toString(),
    '{"userPresences":[]}',
  )
})

/** What the text path writes for summaries: each one's activity as its one live session. */
function summariesText(summaries: PresenceSummary[], options: RobloxViewOptions): string {
  return serializeUserPresences(
    summaries.map((s) =>
      serializeVisible(
        {
          userId: s.userId,
          state: s.state,
          sessions:
            s.activity === undefined
              ? []
              : [
                  {
                    userId: s.userId,
                    key: '',
                    source: 'app',
                    deviceType: '',
                    startedAt: 0,
                    updatedAt: 0,
                    expiresAt: 10,
                    activity: s.activity,
                  },
                ],
          lastOnline: s.lastOnline,
          locationHidden: s.activity === undefined,
        },
        options,
      ),
    ),
  )
}

test("writeSummariesReply: an activity id given to another activity writes that activity's prefix", () => {
  resetReplyWriter()
  const options = { invisibleSelfView: 'state' } as const
  const summary = (userId: string, activity: Activity, activityId?: number): PresenceSummary => ({
    userId: userId as UserId,
    state: 2,
    activity,
    updatedAt: 0,
    lastOnline: 1_000,
    sessions: 1,
    deviceType: '',
    source: 'app',
    activityId,
  })
  const a = Object.freeze({ kind: 'inGame', placeId: '1', universeId: '2' }) as Activity
  const b = Object.freeze({ kind: 'inGame', placeId: '3', universeId: '4' }) as Activity
  const c = { kind: 'inGame', placeId: '5', universeId: '6' } as Activity
  const expected = (summaries: PresenceSummary[]) => summariesText(summaries, options)
  // id 7 is a's, then b's (the store dropped a and reused its id), then an unfrozen copy's
  for (const reads of [
    [summary('1', a, 7), summary('2', a, 7)],
    [summary('3', b, 7), summary('4', a), summary('5', b, 7)],
    [summary('6', c, 7), summary('7', b, 7), summary('8', a, 40)],
  ]) {
    assert.equal(writeSummariesReply(reads, options).toString(), expected(reads))
  }
})

test('writeSummariesReply: many interned activities, states, days and reused ids, byte for byte', () => {
  resetReplyWriter()
  const options = { invisibleSelfView: 'state' } as const
  const expected = (summaries: PresenceSummary[]) => summariesText(summaries, options)
  // long locations: the templates outgrow the arena's doublings and then its most (16 MiB)
  const activityOf = (n: number, round: number) =>
    Object.freeze({
      kind: n % 3 === 0 ? 'studio' : n % 3 === 1 ? 'inGame' : 'website',
      placeId: String(1_000 + n),
      universeId: String(round),
      location: `${round}:${'x'.repeat((n * 37) % 4_000)}`,
    }) as Activity
  let user = 1
  for (let round = 0; round < 3; round++) {
    const activities = Array.from({ length: 4_000 }, (_, n) => activityOf(n, round))
    // the first pass interns the activities, the next ones write them through their slots
    for (let first = 0; first < 3 * activities.length; first += 50) {
      const reads: PresenceSummary[] = []
      for (let n = first; n < first + 50; n++) {
        const activity = activities[(n * 7919) % activities.length]!
        const offline = n % 11 === 0
        reads.push({
          userId: String(user++) as UserId,
          state: offline ? 0 : stateOfKind(activity.kind),
          activity: offline ? undefined : activity,
          updatedAt: 0,
          // days apart, and never online
          lastOnline: n % 13 === 0 ? undefined : 1_700_000_000_000 + n * 86_400_017 * (round + 1),
          sessions: offline ? 0 : 1,
          deviceType: '',
          source: 'app',
          // each round gives the ids to new activities
          activityId: (n * 7919) % activities.length,
        })
      }
      assert.equal(writeSummariesReply(reads, options).toString(), expected(reads))
    }
  }
})

test("writeSummariesReply: ids' digits written from their values, byte for byte", () => {
  resetReplyWriter()
  const options = { invisibleSelfView: 'state' } as const
  const activity = Object.freeze({ kind: 'inGame', placeId: '1', universeId: '2' }) as Activity
  const summaryOf = (userId: string, lastOnline: number | undefined): PresenceSummary => ({
    userId: userId as UserId,
    state: lastOnline === undefined ? 0 : 2,
    activity: lastOnline === undefined ? undefined : activity,
    updatedAt: 0,
    lastOnline,
    sessions: lastOnline === undefined ? 0 : 1,
    deviceType: '',
    source: 'app',
  })
  // every digit count from 1 to 16, the edges of each, 0 and 2^53 - 1 (0 and the top often)
  const safeId = fc.oneof(
    fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
    fc.integer({ min: 1, max: 16 }).map((digits) => 10n ** BigInt(digits - 1)),
    fc.integer({ min: 1, max: 15 }).map((digits) => 10n ** BigInt(digits) - 1n),
    fc.constant(2n ** 53n - 1n),
    fc.constant(0n),
  )
  fc.assert(
    fc.property(
      fc.uniqueArray(safeId, { minLength: 1, maxLength: 60 }),
      fc.array(fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }), { nil: undefined }), {
        minLength: 60,
        maxLength: 60,
      }),
      (ids, times) => {
        const summaries = ids.map((id, i) => summaryOf(String(id), times[i]))
        const expected = writeSummariesReply(summaries, options).toString()
        const values = ids.map(Number)
        assert.equal(writeSummariesReply(summaries, options, values).toString(), expected)
        // values that do not belong to the ids are not used where their digit count tells: each
        // has more digits than its id (0's too: v * 10 + 1 gave it 1, as many digits as "0")
        const shifted = values.map((v) => (v + 1) * 10)
        assert.equal(writeSummariesReply(summaries, options, shifted).toString(), expected)
        // nor values of another length than the summaries'
        assert.equal(writeSummariesReply(summaries, options, values.slice(1)).toString(), expected)
        JSON.parse(expected)
      },
    ),
    { numRuns: 1000 },
  )
})

test('isoOf is Date#toISOString, day changes and edges included', () => {
  for (const ms of [
    0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 253_402_300_799_999,
  ]) {
    assert.equal(isoOf(ms), new Date(ms).toISOString())
  }
  fc.assert(
    fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => {
      assert.equal(isoOf(ms), new Date(ms).toISOString())
    }),
    { numRuns: 5000 },
  )
})
