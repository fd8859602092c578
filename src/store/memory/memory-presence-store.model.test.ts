/**
 * The compact MemoryPresenceStore against a plain model of the port (objects in Maps, as the
 * first version of the store kept them): any sequence of operations must give the same answers.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { Activity, Session, UserPresence } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import type { PresenceChange, SessionWrite } from '../presence-store.js'
import { MemoryPresenceStore } from './memory-presence-store.js'

class Model {
  readonly sessions = new Map<string, Session[]>()
  readonly lastOnline = new Map<string, number>()

  presence(userId: UserId, now: number): UserPresence {
    const list = this.sessions.get(userId) ?? []
    return {
      userId,
      sessions: list.filter((s) => s.expiresAt > now),
      lastOnline: this.lastOnline.get(userId),
    }
  }

  heartbeat(w: SessionWrite, now: number): PresenceChange {
    const before = this.presence(w.userId, now)
    // sessions past expiry end with the write (the written key's is started again)
    const stored = this.sessions.get(w.userId) ?? []
    const expired = stored.filter((s) => s.expiresAt <= now)
    const list = stored.filter((s) => s.expiresAt > now || s.key === w.key)
    this.sessions.set(w.userId, list)
    const i = list.findIndex((s) => s.key === w.key)
    const old = list[i]
    const session: Session = {
      userId: w.userId,
      key: w.key,
      source: w.source,
      deviceType: w.deviceType,
      startedAt: old && old.expiresAt > now ? old.startedAt : now,
      updatedAt: now,
      expiresAt: now + w.ttlMs,
      activity: w.activity,
    }
    if (old) list[i] = session
    else list.push(session)
    this.lastOnline.set(w.userId, now)
    const after = this.presence(w.userId, now)
    return expired.length > 0
      ? { userId: w.userId, before, after, expired }
      : { userId: w.userId, before, after }
  }

  end(userId: UserId, key: string, now: number): PresenceChange | undefined {
    const list = this.sessions.get(userId) ?? []
    const i = list.findIndex((s) => s.key === key)
    if (i < 0 || list[i]!.expiresAt <= now) return undefined
    const before = this.presence(userId, now)
    const [ended] = list.splice(i, 1)
    // the user's other sessions past expiry end with it
    const expired = list.filter((s) => s.expiresAt <= now)
    this.sessions.set(
      userId,
      list.filter((s) => s.expiresAt > now),
    )
    this.lastOnline.set(userId, now)
    const change: PresenceChange = {
      userId,
      before,
      after: this.presence(userId, now),
      reason: 'explicit',
      ended: [ended!],
    }
    if (expired.length > 0) change.expired = expired
    return change
  }

  sweep(now: number): PresenceChange[] {
    const changes: PresenceChange[] = []
    for (const [userId, list] of this.sessions) {
      const ended = list.filter((s) => s.expiresAt <= now)
      if (ended.length === 0) continue
      const before = {
        userId: userId as UserId,
        sessions: [...list],
        lastOnline: this.lastOnline.get(userId),
      }
      this.sessions.set(
        userId,
        list.filter((s) => s.expiresAt > now),
      )
      const lastAlive = Math.max(...ended.map((s) => s.updatedAt))
      if ((this.lastOnline.get(userId) ?? 0) < lastAlive) this.lastOnline.set(userId, lastAlive)
      changes.push({
        userId: userId as UserId,
        before,
        after: this.presence(userId as UserId, now),
        // a game server's session that expires means the server was lost
        reason: ended.some((s) => s.source === 'server') ? 'server_lost' : 'timeout',
        ended,
      })
    }
    return changes
  }
}

/** Sweeps may end a user's sessions in any order and list users in any order. */
function normalised(changes: PresenceChange[]): PresenceChange[] {
  return changes
    .map((c) => ({ ...c, ended: [...(c.ended ?? [])].sort((a, b) => a.key.localeCompare(b.key)) }))
    .sort((a, b) => a.userId.localeCompare(b.userId))
}

const users = ['1', '2', '9007199254740993', '9223372036854775807'] as UserId[]
const activities: Activity[] = [
  { kind: 'online' },
  { kind: 'online', location: 'Website' },
  { kind: 'inGame', placeId: '1818', universeId: '9007199254740993', gameId: 'g1' },
  { kind: 'inStudio', location: 'Studio' },
  {
    kind: 'online',
    titleId: '1144039928',
    placement: 'full',
    titleState: 'active',
    richPresence: { id: 'playing', params: ['a', 'b'] },
  },
]

const operation = fc.oneof(
  fc.record({
    type: fc.constant('heartbeat' as const),
    user: fc.constantFrom(...users),
    key: fc.constantFrom('app:iOS', 'app:PC', 'server:g1'),
    source: fc.constantFrom('app' as const, 'title' as const, 'server' as const),
    deviceType: fc.constantFrom('iOS', 'PC', 'XboxOne'),
    activity: fc.constantFrom(...activities),
    ttlMs: fc.integer({ min: 1, max: 100 }),
  }),
  fc.record({
    type: fc.constant('end' as const),
    user: fc.constantFrom(...users),
    key: fc.constantFrom('app:iOS', 'app:PC', 'server:g1', 'never'),
  }),
  fc.record({ type: fc.constant('sweep' as const) }),
  fc.record({ type: fc.constant('read' as const) }),
  fc.record({ type: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 60 }) }),
)

test('MemoryPresenceStore answers like the plain model under any sequence', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { maxLength: 150, size: 'max' }), async (ops) => {
      const store = new MemoryPresenceStore()
      const model = new Model()
      let now = 1_000
      for (const op of ops) {
        switch (op.type) {
          case 'heartbeat': {
            const w: SessionWrite = {
              userId: op.user,
              key: op.key,
              source: op.source,
              deviceType: op.deviceType,
              activity: op.activity,
              ttlMs: op.ttlMs,
            }
            assert.deepEqual(await store.heartbeat(w, now), model.heartbeat(w, now))
            break
          }
          case 'end':
            assert.deepEqual(
              await store.end(op.user, op.key, now, 'explicit'),
              model.end(op.user, op.key, now),
            )
            break
          case 'sweep':
            assert.deepEqual(
              normalised(await store.sweepExpired(now, 1_000)),
              normalised(model.sweep(now)),
            )
            break
          case 'read':
            assert.deepEqual(
              await store.getMany(users, now),
              users.map((u) => model.presence(u, now)),
            )
            break
          case 'wait':
            now += op.ms
            break
        }
      }
      const stored = [...model.sessions.values()].flat()
      assert.deepEqual(await store.stats(now), {
        sessions: stored.length,
        users: [...model.sessions.values()].filter((l) => l.length > 0).length,
      })
      await store.close()
    }),
    { numRuns: 300 },
  )
})

test('activities are frozen and shared between sessions reporting the same one', async () => {
  const store = new MemoryPresenceStore()
  const write = (userId: string, activity: Activity): SessionWrite => ({
    userId: userId as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity,
    ttlMs: 1_000,
  })
  await store.heartbeat(write('1', { kind: 'inGame', placeId: '5', gameId: 'g' }), 0)
  await store.heartbeat(write('2', { kind: 'inGame', placeId: '5', gameId: 'g' }), 0)
  const [a, b] = await store.getMany(['1', '2'] as UserId[], 1)
  const activity = a!.sessions[0]!.activity
  assert.equal(activity, b!.sessions[0]!.activity)
  assert.ok(Object.isFrozen(activity))
  assert.throws(() => {
    ;(activity as { location?: string }).location = 'x'
  }, TypeError)
  await store.close()
})

test('a write with an id that is not an int64 decimal is refused', async () => {
  const store = new MemoryPresenceStore()
  await assert.rejects(
    store.heartbeat(
      {
        userId: '01' as UserId,
        key: 'k',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'online' },
        ttlMs: 1,
      },
      0,
    ),
    TypeError,
  )
  assert.deepEqual(await store.getMany(['01' as UserId], 0), [
    { userId: '01', sessions: [], lastOnline: undefined },
  ])
})
