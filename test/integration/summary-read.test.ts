/*
 * The read path (summaries) against the full read (presences), byte for byte: over random
 * presences, settings, relations and viewers, privacy applied by visibleSummary and written by
 * writeSummariesReply is exactly what visiblePresence and writeUsersReply write, for every
 * InvisibleSelfView; and the Xbox batch written from summaries (writeSummaryBatch) is what
 * writeBatch writes from full presences, at every level, with and without filters. The rules
 * are shared (core/privacy.ts); this holds the two paths to them.
 */
import fc from 'fast-check'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  PresenceType,
  type Activity,
  type Session,
  type UserPresence,
} from '../../src/core/presence.js'
import {
  accessOf,
  anonymous,
  applyPrivacy,
  strangers,
  summaryOf,
  visiblePresence,
  visibleSummary,
  type Relation,
  type UserSettings,
  type Viewer,
} from '../../src/core/privacy.js'
import type { UserId } from '../../src/core/user-id.js'
import { testConfig } from '../../src/app/config.js'
import { createService } from '../../src/app/create-service.js'
import { LocalChangeBus } from '../../src/realtime/local-change-bus.js'
import { ManualClock } from '../../src/service/clock.js'
import { Tokens } from '../../src/service/tokens.js'
import { MemoryPresenceStore } from '../../src/store/memory/memory-presence-store.js'
import { MemoryRateLimiter } from '../../src/store/memory/memory-rate-limiter.js'
import { SqliteProfileStore } from '../../src/store/sqlite/sqlite-profile-store.js'
import { writeSummariesReply, writeUsersReply } from '../../src/protocols/roblox/reply-writer.js'
import { invisibleSelfViews } from '../../src/protocols/roblox/view.js'
import {
  plainSummaries,
  plainSummary,
  writeBatch,
  writeSummaryBatch,
} from '../../src/protocols/xbox/reply-writer.js'
import type { XboxLevel, XboxViewOptions } from '../../src/protocols/xbox/view.js'

const PLATFORM_TITLE = '1000'

const NOW = Date.UTC(2026, 5, 1)
const users = ['1', '2', '3', '9007199254740993', '9223372036854775807'] as UserId[]
const userId = fc.constantFrom(...users)
const instant = fc.oneof(
  fc.constant(NOW),
  fc.integer({ min: NOW - 100_000, max: NOW + 100_000 }),
  fc.constant(0),
)
const activity: fc.Arbitrary<Activity> = fc.record(
  {
    kind: fc.constantFrom('online', 'inGame', 'inStudio'),
    placeId: fc.constantFrom('1818', '9223372036854775806'),
    rootPlaceId: fc.constant('1818'),
    universeId: fc.constant('13058'),
    gameId: fc.uuid(),
    location: fc.oneof(fc.constant(''), fc.string(), fc.constant('Obby "quoted" \\ \u2028')),
    titleId: fc.constantFrom('1234', '5678'),
    placement: fc.constantFrom('full', 'snapped'),
    titleState: fc.constantFrom('active', 'inactive'),
    richPresence: fc.record({ id: fc.constant('playing'), params: fc.constant([]) }),
  },
  { requiredKeys: ['kind'] },
)
const session = (owner: UserId): fc.Arbitrary<Session> =>
  fc.record({
    userId: fc.constant(owner),
    key: fc.constantFrom('app:iOS', 'app:PC', 'server:a'),
    source: fc.constantFrom('app', 'title', 'server'),
    deviceType: fc.constantFrom('PC', 'XboxOne', 'iOS'),
    startedAt: instant,
    // few distinct values: ties between sessions of one kind
    updatedAt: fc.constantFrom(NOW - 2, NOW - 1, NOW),
    // some expired (at or before NOW), most live
    expiresAt: fc.constantFrom(NOW - 1, NOW, NOW + 1, NOW + 60_000),
    activity,
  })
const presence: fc.Arbitrary<UserPresence> = userId.chain((owner) =>
  fc.record({
    userId: fc.constant(owner),
    sessions: fc.array(session(owner), { maxLength: 4 }),
    lastOnline: fc.option(instant, { nil: undefined }),
  }),
)
const settings: fc.Arbitrary<UserSettings> = fc.record(
  {
    visibility: fc.constantFrom('everyone', 'friends', 'nobody'),
    invisible: fc.boolean(),
    frozenLastOnline: instant,
    visibleSince: instant,
  },
  { requiredKeys: ['visibility', 'invisible'] },
)
const relation: fc.Arbitrary<Relation> = fc.record(
  { friends: fc.boolean(), blocked: fc.boolean(), lastOnline: instant },
  { requiredKeys: ['friends', 'blocked'] },
)
const viewer: fc.Arbitrary<Viewer> = fc.oneof(
  fc.constant(anonymous),
  userId.map((id): Viewer => ({ kind: 'user', userId: id })),
  fc.constantFrom<Viewer>(
    { kind: 'service', keyId: 'k', scopes: ['presence:read'] },
    { kind: 'service', keyId: 'k', scopes: ['presence:read', 'presence:read:private'] },
  ),
)

test('applyPrivacy is visibleSummary of each id, also where settings and relations are shared', () => {
  fc.assert(
    fc.property(
      fc.array(settings, { minLength: 1, maxLength: 3 }),
      fc.array(relation, { minLength: 1, maxLength: 3 }),
      fc.array(fc.tuple(presence, fc.nat(), fc.nat(), fc.boolean()), {
        minLength: 1,
        maxLength: 10,
      }),
      viewer,
      fc.boolean(),
      (settingsPool, relationPool, targets, who, withRelations) => {
        const targetSettings = targets.map(([, a]) => settingsPool[a % settingsPool.length]!)
        const relations = withRelations
          ? targets.map(([, , b]) => relationPool[b % relationPool.length]!)
          : undefined
        // some summaries Offline with an activity left: not what a store gives, still the rule
        const summaries = targets.map(([p, , , offline]) => {
          const summary = summaryOf(p, NOW)
          return offline ? { ...summary, state: PresenceType.Offline } : summary
        })
        const expected = summaries.map((summary, i) =>
          visibleSummary(
            summary,
            accessOf(who, summary.userId, targetSettings[i]!, relations?.[i] ?? strangers),
            targetSettings[i]!,
          ),
        )
        const got = [...summaries]
        applyPrivacy(who, got, targetSettings, relations)
        assert.deepEqual(got, expected)
      },
    ),
    { numRuns: 2000 },
  )
})

test('visibleSummary + writeSummariesReply = visiblePresence + writeUsersReply, byte for byte', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(presence, settings, relation), { minLength: 1, maxLength: 8 }),
      viewer,
      (targets, who) => {
        const full = targets.map(([p, s, r]) =>
          visiblePresence(p, accessOf(who, p.userId, s, r), s, NOW),
        )
        const summaries = targets.map(([p, s, r]) =>
          visibleSummary(summaryOf(p, NOW), accessOf(who, p.userId, s, r), s),
        )
        for (const invisibleSelfView of invisibleSelfViews) {
          const options = { invisibleSelfView }
          const expected = writeUsersReply(full, options).toString()
          assert.equal(writeSummariesReply(summaries, options).toString(), expected)
          // the digits from the parser's values (ids of 15 digits or fewer, as it gives them)
          if (summaries.every((s) => s.userId.length <= 15)) {
            const values = summaries.map((s) => Number(s.userId))
            assert.equal(writeSummariesReply(summaries, options, values).toString(), expected)
          }
        }
      },
    ),
    { numRuns: 2000 },
  )
})

test('service.lookupSummaries writes what service.lookup writes, catalogue and privacy applied', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-summary-'))
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(userId, session('1' as UserId)), { maxLength: 10 }),
        fc.array(
          fc.tuple(
            userId,
            settings.map((s) => ({ visibility: s.visibility, invisible: s.invisible })),
          ),
        ),
        fc.array(fc.tuple(userId, userId, fc.constantFrom('friends', 'block'))),
        fc.boolean(),
        fc.array(viewer, { minLength: 1, maxLength: 4 }),
        fc.array(
          fc.record({
            level: fc.constantFrom<XboxLevel>('user', 'device', 'title', 'all'),
            onlineOnly: fc.boolean(),
            deviceTypes: fc.constantFrom(undefined, new Set<string>(), new Set(['xboxone'])),
            titleIds: fc.constantFrom(undefined, new Set(['1234'])),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        async (beats, changes, relations, renamePlace, viewers, xboxQueries) => {
          const clock = new ManualClock(NOW - 10_000)
          const run = mkdtempSync(join(dir, 'run-'))
          const profiles = new SqliteProfileStore(run)
          const store = new MemoryPresenceStore({ ledger: profiles })
          const bus = new LocalChangeBus()
          const service = createService(
            {
              mode: 'embedded',
              presence: store,
              profiles,
              bus,
              rateLimiter: new MemoryRateLimiter(),
            },
            testConfig({ dataDir: run, sessionTtlSeconds: 60 }),
            { clock, tokens: new Tokens('unit-test-secret-of-enough-length-0123456789') },
          )
          try {
            await service.putTitle({ titleId: '1234', name: 'Forza', strings: {} })
            await service.putTitle({ titleId: PLATFORM_TITLE, name: 'Roblox', strings: {} })
            await service.putPlace({
              placeId: '1818',
              universeId: '13058',
              rootPlaceId: '1818',
              name: 'Crossroads',
            })
            for (const [owner, s] of beats) {
              clock.set(s.updatedAt - 5_000)
              await service.heartbeat({
                userId: owner,
                key: s.key,
                source: s.source,
                deviceType: s.deviceType,
                activity: s.activity,
                ttlMs: s.expiresAt - s.updatedAt + 5_000,
              })
            }
            for (const [owner, next] of changes) await service.putSettings(owner, next)
            for (const [a, b, kind] of relations) {
              if (a === b) continue
              if (kind === 'friends') await service.setFriends(a, b, true)
              else await service.setBlocked(a, b, true)
            }
            // a catalogue change after the sessions were written: reads show the new name
            if (renamePlace) {
              await service.putPlace({
                placeId: '1818',
                universeId: '13058',
                rootPlaceId: '1818',
                name: 'Renamed',
              })
            }
            clock.set(NOW)
            const ids = [...users, '404' as UserId, users[0]!]
            for (const who of viewers) {
              const full = await service.lookup(who, ids)
              const summaries = await service.lookupSummaries(who, ids)
              for (const invisibleSelfView of invisibleSelfViews) {
                const options = { invisibleSelfView }
                assert.equal(
                  writeSummariesReply(summaries, options).toString(),
                  writeUsersReply(full, options).toString(),
                )
              }
              // Xbox: summaries, and full presences only where a summary cannot tell
              const titles = await service.getTitles(['1234', '5678', PLATFORM_TITLE])
              for (const query of xboxQueries) {
                const options: XboxViewOptions = {
                  ...query,
                  locales: ['en-US'],
                  titles,
                  platformTitleId: PLATFORM_TITLE,
                }
                const rest = await service.lookup(
                  who,
                  summaries.filter((x) => !plainSummary(x, options)).map((x) => x.userId),
                )
                const expected = writeBatch(full, options, query.onlineOnly).toString()
                assert.equal(
                  writeSummaryBatch(summaries, rest, options, query.onlineOnly).toString(),
                  expected,
                )
                // as the route writes it: the flags of plainSummaries, the ids known canonical
                const { plain, notPlain } = plainSummaries(summaries, options, true)
                assert.deepEqual(
                  notPlain ?? [],
                  rest.map((x) => x.userId),
                )
                assert.equal(
                  writeSummaryBatch(summaries, rest, options, query.onlineOnly, plain).toString(),
                  expected,
                )
              }
            }
          } finally {
            await store.close()
            await profiles.close()
            await bus.close()
          }
        },
      ),
      { numRuns: 60 },
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
