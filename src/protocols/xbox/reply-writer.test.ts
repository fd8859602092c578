import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Activity, PresenceType, Session } from '../../core/presence.js'
import type { PresenceSummary, VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import {
  plainSummaries,
  resetBatchWriter,
  writeBatch,
  writeRecords,
  writeSummaryBatch,
} from './reply-writer.js'
import {
  presenceRecord,
  xboxLevels,
  type PresenceRecord,
  type TitleRecord,
  type XboxViewOptions,
} from './view.js'

const text = fc.oneof(
  fc.constantFrom('', 'Roblox', 'Place 7', 'Web', 'XboxOne', 'full', 'active'),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('"quoted" \\ \u2028 \u0007 é 🎮', '\ud800 lone'),
)
const title: fc.Arbitrary<TitleRecord> = fc.record(
  {
    id: text,
    name: text,
    lastModified: text,
    timestamp: text,
    placement: fc.constantFrom('full', 'fill', 'snapped', 'background'),
    state: fc.constantFrom('active', 'inactive'),
    activity: fc.record({ richPresence: text }),
  },
  { requiredKeys: ['id', 'name', 'lastModified', 'timestamp', 'placement', 'state'] },
)
const record: fc.Arbitrary<PresenceRecord> = fc.record(
  {
    xuid: fc.oneof(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String), text),
    state: fc.constantFrom('Online', 'Away', 'Offline'),
    devices: fc.array(
      fc.record(
        { type: text, titles: fc.array(title, { maxLength: 3 }) },
        { requiredKeys: ['type'] },
      ),
      { maxLength: 3 },
    ),
    lastSeen: fc.record({ deviceType: text, titleName: text, timestamp: text }),
  },
  { requiredKeys: ['xuid', 'state'] },
)

test('writeRecords writes the bytes of JSON.stringify(records)', () => {
  fc.assert(
    fc.property(fc.array(record, { maxLength: 20 }), (records) => {
      assert.equal(writeRecords(records).toString('utf8'), JSON.stringify(records))
    }),
    { numRuns: 3000 },
  )
})

test('writeRecords grows past the size of the batch before', () => {
  const small = writeRecords([{ xuid: '1', state: 'Offline' }])
  assert.equal(small.toString(), '[{"xuid":"1","state":"Offline"}]')
  const many: PresenceRecord[] = Array.from({ length: 3000 }, (_, i) => ({
    xuid: String(i + 1),
    state: 'Away',
    devices: [{ type: 'Web', titles: [] }],
  }))
  assert.equal(writeRecords(many).toString(), JSON.stringify(many))
})

const xuid = fc.oneof(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String), fc.constant('x"1'))
const instant = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800_000 }),
  fc.constantFrom(1_700_000_000_000.5, -1, 253_402_300_800_000),
)
const activity: fc.Arbitrary<Activity> = fc
  .tuple(
    fc.record(
      {
        kind: fc.constantFrom('online', 'inGame', 'inStudio'),
        placeId: fc.constantFrom('1818', '7'),
        location: fc.oneof(fc.constantFrom('', 'Obby', 'Home "q" \u2028 é'), fc.string()),
        titleId: fc.constantFrom('10', '1234'),
        placement: fc.constantFrom('full', 'snapped'),
        titleState: fc.constantFrom('active', 'inactive'),
        richPresence: fc.record({
          id: fc.constantFrom('playing', 'x'),
          params: fc.constant<string[]>([]),
        }),
      },
      { requiredKeys: ['kind'] },
    ),
    fc.boolean(),
  )
  .map(([a, frozen]) => (frozen ? Object.freeze(a) : a))
const session: fc.Arbitrary<Session> = fc.record({
  userId: fc.constant('1' as UserId),
  key: fc.constant('k'),
  source: fc.constantFrom('app', 'title', 'server'),
  deviceType: fc.constantFrom('Web', 'XboxOne', 'PC', 'Odd "type"'),
  startedAt: fc.constant(0),
  updatedAt: instant,
  expiresAt: fc.constant(1),
  activity,
})
const visible: fc.Arbitrary<VisiblePresence> = fc.record({
  userId: xuid.map((v) => v as UserId),
  state: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<PresenceType>,
  sessions: fc.oneof(fc.array(session, { maxLength: 1 }), fc.array(session, { maxLength: 3 })),
  lastOnline: fc.option(instant, { nil: undefined }),
  locationHidden: fc.boolean(),
})
const viewOptions: fc.Arbitrary<XboxViewOptions> = fc.record({
  level: fc.constantFrom(...xboxLevels),
  locales: fc.constantFrom([], ['fr-FR']),
  titles: fc.constantFrom(
    new Map(),
    new Map([
      ['1', { titleId: '1', name: 'Roblox', strings: {} }],
      ['10', { titleId: '10', name: 'Ten "x"', strings: { playing: { default: 'Playing' } } }],
    ]),
    new Map([['1', { titleId: '1', name: 'Other name', strings: {} }]]),
  ),
  platformTitleId: fc.constantFrom('1', '10'),
  deviceTypes: fc.constantFrom(undefined, new Set<string>(), new Set(['xboxone'])),
  titleIds: fc.constantFrom(undefined, new Set<string>(), new Set(['10'])),
})

test('writeBatch writes the bytes of JSON.stringify of the records presenceRecord makes', () => {
  resetBatchWriter()
  fc.assert(
    fc.property(
      fc.array(visible, { maxLength: 8 }),
      viewOptions,
      fc.boolean(),
      (presences, options, onlineOnly) => {
        const records = presences
          .map((p) => presenceRecord(p, options))
          .filter((r): r is PresenceRecord => !!r && !(onlineOnly && r.state === 'Offline'))
        const expected = JSON.stringify(records)
        // twice: the second time from the cached title parts
        assert.equal(writeBatch(presences, options, onlineOnly).toString('utf8'), expected)
        assert.equal(writeBatch(presences, options, onlineOnly).toString('utf8'), expected)
      },
    ),
    { numRuns: 3000 },
  )
})

test('writeSummaryBatch: a titled record kept per activity id is written again for another activity, device type, day or view', () => {
  resetBatchWriter()
  const day = 86_400_000
  const first = Object.freeze<Activity>({ kind: 'inGame', placeId: '1818', location: 'Obby' })
  const second = Object.freeze<Activity>({ kind: 'inGame', placeId: '7', location: 'Home' })
  const roblox = new Map([['1', { titleId: '1', name: 'Roblox', strings: {} }]])
  const renamed = new Map([['1', { titleId: '1', name: 'Renamed', strings: {} }]])
  // one user at a time under activity id 0, as stores reuse ids: each step changes one thing
  const steps: Array<[Activity, string, number, XboxViewOptions['titles']]> = [
    [first, 'Web', 20_000 * day + 1_000, roblox],
    [first, 'Web', 20_000 * day + 2_000, roblox],
    [second, 'Web', 20_000 * day + 3_000, roblox],
    [second, 'PC', 20_000 * day + 4_000, roblox],
    [second, 'PC', 20_001 * day + 5_000, roblox],
    [second, 'PC', 20_001 * day + 6_000, renamed],
    [first, 'Web', 20_001 * day + 7_000, renamed],
  ]
  for (const [activity, deviceType, updatedAt, titles] of steps) {
    const userId = '7' as UserId
    const options: XboxViewOptions = { level: 'all', locales: [], titles, platformTitleId: '1' }
    const summary: PresenceSummary = {
      userId,
      state: 2 as PresenceType,
      activity,
      updatedAt,
      lastOnline: undefined,
      sessions: 1,
      deviceType,
      source: 'app',
      activityId: 0,
    }
    const presence: VisiblePresence = {
      userId,
      state: 2 as PresenceType,
      sessions: [
        {
          userId,
          key: 'k',
          source: 'app',
          deviceType,
          startedAt: 0,
          updatedAt,
          expiresAt: updatedAt + 1,
          activity,
        },
      ],
      lastOnline: undefined,
      locationHidden: false,
    }
    const expected = JSON.stringify([presenceRecord(presence, options)])
    const { plain } = plainSummaries([summary], options, true)
    assert.equal(writeSummaryBatch([summary], [], options, false, plain).toString(), expected)
    assert.equal(writeSummaryBatch([summary], [], options, false, plain).toString(), expected)
  }
})
