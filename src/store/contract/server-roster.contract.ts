/**
 * The game-server half of the PresenceStore contract (reportServer, endServer, getServer and
 * the sweep's `server_lost`). `presenceStoreContract` runs it, so every adapter passes it.
 */
import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { Activity } from '../../core/presence.js'
import { parseUserId, type UserId } from '../../core/user-id.js'
import {
  serverSessionKey,
  ServerUniverseRefused,
  type PresenceChange,
  type PresenceStore,
  type ServerReport,
} from '../presence-store.js'
import type { PresenceStoreFactory } from './presence-store.contract.js'

const T0 = Date.UTC(2026, 0, 1)
const TTL = 60_000
const GAME_A = '3f1c2a9e-0000-4000-8000-00000000000a'
const GAME_B = '3f1c2a9e-0000-4000-8000-00000000000b'

function id(value: string | number): UserId {
  const parsed = parseUserId(String(value))
  assert.ok(parsed, `test id ${value} must be valid`)
  return parsed
}

function ids(...values: Array<string | number>): UserId[] {
  return values.map(id)
}

function activityOf(gameId: string, placeId = '1818'): Activity {
  return { kind: 'inGame', placeId, rootPlaceId: placeId, universeId: '13058', gameId }
}

function report(gameId: string, players: readonly UserId[], extra: Partial<ServerReport> = {}) {
  return {
    gameId,
    players,
    activity: activityOf(gameId),
    deviceType: 'GameServer',
    ttlMs: TTL,
    ...extra,
  } satisfies ServerReport
}

/** `user+` for a player who came online on a server, `user-` (with reason) for one who left. */
function summary(changes: readonly PresenceChange[]): string[] {
  return changes.map((c) => (c.ended?.length ? `${c.userId}-${c.reason}` : `${c.userId}+`)).sort()
}

export function serverRosterContract(name: string, factory: PresenceStoreFactory): void {
  async function open(t: TestContext): Promise<PresenceStore> {
    const { store, cleanup } = await factory()
    t.after(cleanup)
    return store
  }

  describe(`PresenceStore contract, game servers: ${name}`, () => {
    test('a writer limited to universes replaces and ends only rosters of its universes', async (t) => {
      const store = await open(t)
      const theirs = activityOf(GAME_A)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0)
      // a live roster of universe 13058: a report or an end limited to 100 writes nothing
      const ours = { ...theirs, universeId: '100' }
      await assert.rejects(
        store.reportServer(report(GAME_A, ids(3), { activity: ours, universes: ['100'] }), T0 + 1),
        (error: unknown) => error instanceof ServerUniverseRefused && error.universeId === '13058',
      )
      await assert.rejects(
        store.endServer(GAME_A, T0 + 1, 'explicit', ['100']),
        (error: unknown) => error instanceof ServerUniverseRefused && error.universeId === '13058',
      )
      assert.deepEqual((await store.getServer(GAME_A, T0 + 1))?.players.sort(), ids(1, 2))
      assert.equal((await store.getMany(ids(3), T0 + 1))[0]!.sessions.length, 0)
      // its own universe among the writer's: replaced, then ended
      const limited = { universes: ['100', '13058'] }
      assert.deepEqual(summary(await store.reportServer(report(GAME_A, ids(2), limited), T0 + 2)), [
        '1-explicit',
      ])
      assert.deepEqual(
        summary(await store.endServer(GAME_A, T0 + 3, 'explicit', limited.universes)),
        ['2-explicit'],
      )
      // past its expiry, a roster is anyone's to replace; ending one of another universe ends nothing
      await store.reportServer(report(GAME_B, ids(4)), T0)
      assert.deepEqual(await store.endServer(GAME_B, T0 + TTL, 'explicit', ['100']), [])
      assert.deepEqual(
        summary(
          await store.reportServer(
            report(GAME_B, ids(5), {
              activity: { ...activityOf(GAME_B), universeId: '100' },
              universes: ['100'],
            }),
            T0 + TTL,
          ),
        ),
        // player 4's session expired with the roster: nothing left to end
        ['5+'],
      )
    })

    test('a report ends its players’ sessions past expiry and returns them: no sweep finds them', async (t) => {
      const store = await open(t)
      const [stays, phone] = ids(21, 22)
      await store.reportServer(report(GAME_A, [stays!]), T0)
      await store.heartbeat(
        {
          userId: phone!,
          key: 'app:iOS',
          source: 'app',
          deviceType: 'iOS',
          activity: { kind: 'online' },
          ttlMs: TTL / 2,
        },
        T0,
      )
      // the roster expired, the phone too, none swept: the same report again, and the phone's
      // player joining it
      const at = T0 + TTL + 10
      const changes = await store.reportServer(report(GAME_A, [stays!, phone!]), at)
      assert.deepEqual(
        changes.map((c) => [c.userId, (c.expired ?? []).map((s) => s.key)]),
        [
          [stays, ['server:' + GAME_A]],
          [phone, ['app:iOS']],
        ],
      )
      for (const change of changes) assert.deepEqual(change.before.sessions, [])
      assert.deepEqual(await store.sweepExpired(at + 1, 100), [])
      assert.deepEqual(await store.stats(at + 1), { sessions: 2, users: 2 })
    })

    test('a report’s leavers and a server’s end end the players’ other sessions past expiry and return them', async (t) => {
      const store = await open(t)
      const [leaves, stays, ended] = ids(31, 32, 33)
      await store.reportServer(report(GAME_A, [leaves!, stays!]), T0)
      await store.reportServer(report(GAME_B, [ended!]), T0)
      for (const userId of [leaves!, ended!]) {
        await store.heartbeat(
          {
            userId,
            key: 'app:PC',
            source: 'app',
            deviceType: 'PC',
            activity: { kind: 'online' },
            ttlMs: TTL / 2,
          },
          T0,
        )
      }
      // the PCs expired, not swept; the rosters are live: one player leaves A, B ends
      const at = T0 + TTL / 2 + 10
      const left = await store.reportServer(report(GAME_A, [stays!]), at)
      const gone = await store.endServer(GAME_B, at, 'explicit')
      const told = (changes: readonly PresenceChange[]) =>
        changes.map((c) => [
          c.userId,
          (c.ended ?? []).map((s) => s.key),
          (c.expired ?? []).map((s) => s.key),
        ])
      assert.deepEqual(told(left), [[leaves, ['server:' + GAME_A], ['app:PC']]])
      assert.deepEqual(told(gone), [[ended, ['server:' + GAME_B], ['app:PC']]])
      for (const change of [...left, ...gone]) {
        assert.equal(change.expired![0]!.expiresAt, T0 + TTL / 2)
        assert.deepEqual(
          change.before.sessions.map((s) => s.key),
          [change.ended![0]!.key],
        )
        assert.deepEqual(change.after.sessions, [])
      }
      assert.deepEqual(await store.sweepExpired(at + 1, 100), [])
      assert.deepEqual(await store.stats(at + 1), { sessions: 1, users: 1 })
    })

    test('a first report brings every player online on that server', async (t) => {
      const store = await open(t)
      const players = ids(1, 2, '9007199254740993')
      const changes = await store.reportServer(report(GAME_A, players), T0)
      assert.deepEqual(summary(changes), ['1+', '2+', '9007199254740993+'])
      for (const change of changes) {
        assert.deepEqual(change.before.sessions, [])
        assert.equal(change.reason, undefined)
        assert.deepEqual(change.after.sessions, [
          {
            userId: change.userId,
            key: serverSessionKey(GAME_A),
            source: 'server',
            deviceType: 'GameServer',
            startedAt: T0,
            updatedAt: T0,
            expiresAt: T0 + TTL,
            activity: activityOf(GAME_A),
          },
        ])
      }
      const roster = await store.getServer(GAME_A, T0 + 1)
      assert.ok(roster)
      assert.deepEqual([...roster.players].sort(), [...players].sort())
      assert.deepEqual(roster.activity, activityOf(GAME_A))
      assert.equal(roster.updatedAt, T0)
      assert.equal(roster.expiresAt, T0 + TTL)
      assert.deepEqual(await store.stats(T0 + 1), { sessions: 3, users: 3 })
    })

    test('the same report again refreshes silently: expiry and lastOnline move', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0)
      const changes = await store.reportServer(report(GAME_A, ids(2, 1)), T0 + 20_000)
      assert.deepEqual(changes, [])
      const presences = await store.getMany(ids(1, 2), T0 + 20_001)
      for (const p of presences) {
        assert.equal(p.sessions.length, 1)
        assert.equal(p.sessions[0]!.startedAt, T0)
        assert.equal(p.sessions[0]!.updatedAt, T0 + 20_000)
        assert.equal(p.sessions[0]!.expiresAt, T0 + 20_000 + TTL)
        // an adapter may move a staying player's lastOnline in steps of up to 30 s
        assert.ok(p.lastOnline! >= T0 && p.lastOnline! <= T0 + 20_000)
      }
      await store.reportServer(report(GAME_A, ids(1, 2)), T0 + 40_000)
      for (const p of await store.getMany(ids(1, 2), T0 + 40_001)) {
        assert.equal(p.lastOnline, T0 + 40_000)
      }
      // not expired at the first report's expiry
      assert.deepEqual(await store.sweepExpired(T0 + TTL + 1, 100), [])
      assert.equal((await store.getServer(GAME_A, T0 + TTL + 1))?.expiresAt, T0 + 40_000 + TTL)
    })

    test('a report adds, keeps and removes the right players', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2, 3)), T0)
      const changes = await store.reportServer(report(GAME_A, ids(2, 3, 4, 5)), T0 + 1_000)
      assert.deepEqual(summary(changes), ['1-explicit', '4+', '5+'])
      const left = changes.find((c) => c.userId === '1')!
      assert.deepEqual(
        left.ended?.map((s) => s.key),
        [serverSessionKey(GAME_A)],
      )
      assert.deepEqual(left.after.sessions, [])
      assert.equal(left.after.lastOnline, T0 + 1_000)
      const roster = await store.getServer(GAME_A, T0 + 1_001)
      assert.deepEqual([...roster!.players].sort(), ids(2, 3, 4, 5).sort())
      const presences = await store.getMany(ids(1, 2, 3, 4, 5), T0 + 1_001)
      assert.deepEqual(
        presences.map((p) => p.sessions.length),
        [0, 1, 1, 1, 1],
      )
      assert.deepEqual(await store.stats(T0 + 1_001), { sessions: 4, users: 4 })
      // the player who left is not swept again later
      const swept = await store.sweepExpired(T0 + 1_000 + TTL, 100)
      assert.deepEqual(summary(swept), [
        '2-server_lost',
        '3-server_lost',
        '4-server_lost',
        '5-server_lost',
      ])
    })

    test('a changed activity is a visible change; an empty report empties the server', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0)
      const moved = await store.reportServer(
        report(GAME_A, ids(1, 2), { activity: activityOf(GAME_A, '1819') }),
        T0 + 1_000,
      )
      assert.deepEqual(summary(moved), ['1+', '2+'])
      assert.equal(moved[0]!.before.sessions[0]!.activity.placeId, '1818')
      assert.equal(moved[0]!.after.sessions[0]!.activity.placeId, '1819')
      assert.equal(moved[0]!.after.sessions[0]!.startedAt, T0)
      const emptied = await store.reportServer(report(GAME_A, []), T0 + 2_000)
      assert.deepEqual(summary(emptied), ['1-explicit', '2-explicit'])
      const roster = await store.getServer(GAME_A, T0 + 2_001)
      assert.deepEqual(roster?.players, [])
      assert.deepEqual(await store.stats(T0 + 2_001), { sessions: 0, users: 0 })
    })

    test('players spread over many buckets: all in, then all but one out', async (t) => {
      const store = await open(t)
      const many = Array.from({ length: 300 }, (_, i) => id(700_000 + i))
      const first = await store.reportServer(report(GAME_A, many), T0)
      assert.equal(first.length, 300)
      const kept = many[150]!
      const changes = await store.reportServer(report(GAME_A, [kept]), T0 + 1_000)
      assert.equal(changes.length, 299)
      assert.ok(changes.every((c) => c.reason === 'explicit' && c.after.sessions.length === 0))
      assert.ok(!changes.some((c) => c.userId === kept))
      assert.deepEqual((await store.getServer(GAME_A, T0 + 1_001))?.players, [kept])
      assert.deepEqual(await store.stats(T0 + 1_001), { sessions: 1, users: 1 })
    })

    test('a server that stops reporting: its players expire on time as server_lost', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0 + 10_000)
      const expiry = T0 + 10_000 + TTL
      assert.deepEqual(await store.sweepExpired(expiry - 1, 100), [])
      assert.equal((await store.getMany(ids(1), expiry - 1))[0]!.sessions.length, 1)
      // reads never show them past expiry, swept or not
      assert.deepEqual((await store.getMany(ids(1), expiry))[0]!.sessions, [])
      assert.equal(await store.getServer(GAME_A, expiry), undefined)
      const swept = await store.sweepExpired(expiry, 100)
      assert.deepEqual(summary(swept), ['1-server_lost', '2-server_lost'])
      for (const change of swept) {
        assert.equal(change.after.lastOnline, T0 + 10_000)
        assert.deepEqual(change.after.sessions, [])
      }
      assert.deepEqual(await store.sweepExpired(expiry + 1, 100), [])
      assert.deepEqual(await store.stats(expiry), { sessions: 0, users: 0 })
    })

    test('an app session expiring alone is still a timeout', async (t) => {
      const store = await open(t)
      const user = id(7)
      await store.heartbeat(
        {
          userId: user,
          key: 'app:iOS',
          source: 'app',
          deviceType: 'iOS',
          activity: { kind: 'online' },
          ttlMs: TTL / 2,
        },
        T0,
      )
      await store.reportServer(report(GAME_A, [user]), T0)
      const first = await store.sweepExpired(T0 + TTL / 2, 100)
      assert.deepEqual(summary(first), ['7-timeout'])
      assert.equal(first[0]!.after.sessions.length, 1)
      assert.deepEqual(summary(await store.sweepExpired(T0 + TTL, 100)), ['7-server_lost'])
    })

    test('server sessions combine with the player’s own app session', async (t) => {
      const store = await open(t)
      const user = id(8)
      await store.heartbeat(
        {
          userId: user,
          key: 'app:Web',
          source: 'app',
          deviceType: 'Web',
          activity: { kind: 'online' },
          ttlMs: TTL,
        },
        T0,
      )
      const [joined] = await store.reportServer(report(GAME_A, [user]), T0 + 1)
      assert.deepEqual(joined!.after.sessions.map((s) => s.key).sort(), [
        'app:Web',
        serverSessionKey(GAME_A),
      ])
      const [left] = await store.reportServer(report(GAME_A, []), T0 + 2)
      assert.deepEqual(
        left!.after.sessions.map((s) => s.key),
        ['app:Web'],
      )
      assert.deepEqual(
        left!.ended?.map((s) => s.key),
        [serverSessionKey(GAME_A)],
      )
    })

    test('teleport: the new server reporting first leaves the player never without a session', async (t) => {
      const store = await open(t)
      const user = id(9)
      await store.reportServer(report(GAME_A, [user]), T0)
      const [arrived] = await store.reportServer(report(GAME_B, [user]), T0 + 100)
      assert.equal(arrived!.after.sessions.length, 2)
      const [leftA] = await store.reportServer(report(GAME_A, []), T0 + 200)
      assert.deepEqual(
        leftA!.after.sessions.map((s) => s.activity.gameId),
        [GAME_B],
      )
    })

    test('endServer ends the server and all its players at once', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2, 3)), T0)
      await store.reportServer(report(GAME_B, ids(4)), T0)
      const changes = await store.endServer(GAME_A, T0 + 5_000, 'explicit')
      assert.deepEqual(summary(changes), ['1-explicit', '2-explicit', '3-explicit'])
      assert.ok(changes.every((c) => c.after.lastOnline === T0 + 5_000))
      assert.equal(await store.getServer(GAME_A, T0 + 5_001), undefined)
      assert.deepEqual(await store.endServer(GAME_A, T0 + 5_002, 'explicit'), [])
      assert.deepEqual(await store.stats(T0 + 5_001), { sessions: 1, users: 1 })
      assert.ok(await store.getServer(GAME_B, T0 + 5_001))
      // ended sessions are not swept later
      assert.deepEqual(summary(await store.sweepExpired(T0 + 2 * TTL, 100)), ['4-server_lost'])
    })

    test('a late report after expiry, before the sweep, restarts who is listed', async (t) => {
      const store = await open(t)
      await store.reportServer(report(GAME_A, ids(1, 2)), T0)
      const late = T0 + TTL + 1_000
      const changes = await store.reportServer(report(GAME_A, ids(1)), late)
      // 1 comes back (a new session); 2's expired session is the sweep's to report
      assert.deepEqual(summary(changes), ['1+'])
      assert.equal(changes[0]!.after.sessions[0]!.startedAt, late)
      assert.deepEqual(summary(await store.sweepExpired(late, 100)), ['2-server_lost'])
      assert.deepEqual((await store.getServer(GAME_A, late + 1))?.players, ['1'])
    })
  })
}
