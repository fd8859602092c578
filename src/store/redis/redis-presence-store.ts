import type { Activity, OfflineReason, Session, UserPresence } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import type { LiveUser, PresenceChange, PresenceStore, SessionWrite } from '../presence-store.js'
import {
  serverSessionKey,
  sweepReason,
  type ServerReport,
  type ServerRoster,
} from '../presence-store.js'
import type { RedisKeys } from './keys.js'
import { decodePresence } from './presence-codec.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Fleet mode: every session in Redis (or a Redis Cluster), shared by any number of stateless
 * nodes. A user's presence is one JSON value, so a batch read is one MGET on a single Redis, and
 * one pipelined round trip per shard on a cluster. Heartbeat, end and the expiry claim are Lua
 * scripts (./scripts) that update the value and its bucket's expiry index atomically.
 * lastOnline lives in the same value and is as durable as Redis is (run it with AOF).
 */
export class RedisPresenceStore implements PresenceStore {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  /** The bucket a sweep starts from, rotating so no bucket waits behind busier ones. */
  #nextBucket = 0

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection.retain()
    this.#keys = keys
  }

  heartbeat(write: SessionWrite, now: number): Promise<PresenceChange> {
    const k = this.#keys
    const bucket = k.bucketOf(write.userId)
    return this.#connection.run(async () => {
      const [before, after] = await this.#connection.client.presencedHeartbeat(
        k.presence(write.userId),
        k.due(bucket),
        k.sessionCount(bucket),
        write.userId,
        String(now),
        write.key,
        write.source,
        write.deviceType,
        JSON.stringify(write.activity),
        String(write.ttlMs),
      )
      return {
        userId: write.userId,
        before: decodePresence(write.userId, before, now),
        after: decodePresence(write.userId, after, now),
      }
    })
  }

  end(
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): Promise<PresenceChange | undefined> {
    const k = this.#keys
    const bucket = k.bucketOf(userId)
    return this.#connection.run(async () => {
      const reply = await this.#connection.client.presencedEnd(
        k.presence(userId),
        k.due(bucket),
        k.sessionCount(bucket),
        userId,
        String(now),
        key,
      )
      if (!reply) return undefined
      const before = decodePresence(userId, reply[0], now)
      return {
        userId,
        before,
        after: decodePresence(userId, reply[1], now),
        reason,
        ended: before.sessions.filter((s) => s.key === key),
      }
    })
  }

  getMany(ids: readonly UserId[], now: number): Promise<UserPresence[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.#connection.run(async () => {
      const raws = await this.#connection.mget(ids.map((id) => this.#keys.presence(id)))
      return ids.map((id, i) => decodePresence(id, raws[i], now))
    })
  }

  sweepExpired(now: number, limit: number): Promise<PresenceChange[]> {
    const k = this.#keys
    const client = this.#connection.client
    return this.#connection.run(async () => {
      // which buckets have anything due: one cheap round trip (per node) when nothing is
      const buckets = this.#bucketOrder()
      const counts = await Promise.all(buckets.map((b) => client.zcount(k.due(b), '-inf', now)))
      let budget = limit
      const claims: Array<Promise<string[]>> = []
      buckets.forEach((bucket, i) => {
        const take = Math.min(counts[i]!, budget)
        if (take <= 0) return
        budget -= take
        claims.push(
          client.presencedSweep(
            k.due(bucket),
            k.sessionCount(bucket),
            String(now),
            String(take),
            k.presencePrefix(bucket),
          ),
        )
      })
      // a bucket that failed (e.g. its shard is failing over) is tried again next sweep, but
      // what other buckets claimed is already removed from Redis and must be reported now
      const settled = await Promise.allSettled(claims)
      const failed = settled.find((r) => r.status === 'rejected')
      if (failed && settled.every((r) => r.status === 'rejected')) throw failed.reason
      const changes: PresenceChange[] = []
      for (const result of settled) {
        if (result.status === 'rejected') continue
        const reply = result.value
        for (let i = 0; i + 2 < reply.length; i += 3) {
          const userId = reply[i] as UserId
          const before = decodePresence(userId, reply[i + 1])
          const after = decodePresence(userId, reply[i + 2])
          const kept = new Set(after.sessions.map((s) => s.key))
          const ended: Session[] = before.sessions.filter((s) => !kept.has(s.key))
          changes.push({
            userId,
            before,
            after: decodePresence(userId, reply[i + 2], now),
            reason: sweepReason(ended),
            ended,
          })
        }
      }
      return changes
    })
  }

  /**
   * One script per bucket the roster touches, all issued together with the swap of the server's
   * index (its last report), so they are auto-pipelined: one round trip per shard. Buckets that
   * only the previous roster had (all their players left) take a second round trip.
   * A report that fails midway (Redis unavailable) may be partly applied; reports are
   * idempotent, so the server's retry converges.
   */
  reportServer(report: ServerReport, now: number): Promise<PresenceChange[]> {
    const k = this.#keys
    const byBucket = new Map<number, UserId[]>()
    for (const id of report.players) {
      const bucket = k.bucketOf(id)
      const ids = byBucket.get(bucket)
      if (ids) ids.push(id)
      else byBucket.set(bucket, [id])
    }
    const expiresAt = now + report.ttlMs
    // the roster outlives its sessions, so a late report still finds who left
    const keepMs = String(2 * report.ttlMs)
    const activity = JSON.stringify(report.activity)
    const index: StoredServer = {
      b: [...byBucket.keys()],
      a: activity,
      d: report.deviceType,
      up: now,
      ex: expiresAt,
    }
    const apply = this.#applyRoster(report.gameId, now, {
      deviceType: report.deviceType,
      activity,
      ttlMs: report.ttlMs,
      keepMs,
    })
    const client = this.#connection.client
    return this.#connection.run(async () => {
      const [previous, ...replies] = await Promise.all([
        client.set(k.server(report.gameId), JSON.stringify(index), 'PX', keepMs, 'GET'),
        ...[...byBucket].map(([bucket, ids]) => apply(bucket, ids)),
      ])
      const emptied = bucketsOf(previous as string | null).filter((b) => !byBucket.has(b))
      replies.push(...(await Promise.all(emptied.map((bucket) => apply(bucket, [])))))
      return replies.flatMap((reply) => this.#changes(report.gameId, reply as string[], now))
    })
  }

  endServer(gameId: string, now: number, reason: OfflineReason): Promise<PresenceChange[]> {
    const client = this.#connection.client
    return this.#connection.run(async () => {
      const previous = await client.getdel(this.#keys.server(gameId))
      const apply = this.#applyRoster(gameId, now, {
        deviceType: '',
        activity: '',
        ttlMs: 0,
        keepMs: '1',
      })
      const replies = await Promise.all(bucketsOf(previous).map((bucket) => apply(bucket, [])))
      return replies.flatMap((reply) => this.#changes(gameId, reply, now, reason))
    })
  }

  getServer(gameId: string, now: number): Promise<ServerRoster | undefined> {
    const k = this.#keys
    const client = this.#connection.client
    return this.#connection.run(async () => {
      const raw = await client.get(k.server(gameId))
      if (!raw) return undefined
      const stored = JSON.parse(raw) as StoredServer
      if (!(stored.ex > now)) return undefined
      const members = await Promise.all(
        stored.b.map((bucket) => client.smembers(k.serverRoster(bucket, gameId))),
      )
      return {
        gameId,
        players: members.flat() as UserId[],
        activity: JSON.parse(stored.a) as Activity,
        updatedAt: stored.up,
        expiresAt: stored.ex,
      }
    })
  }

  #applyRoster(
    gameId: string,
    now: number,
    how: { deviceType: string; activity: string; ttlMs: number; keepMs: string },
  ): (bucket: number, ids: readonly UserId[]) => Promise<Array<string | null>> {
    const k = this.#keys
    const client = this.#connection.client
    const key = serverSessionKey(gameId)
    return (bucket, ids) =>
      client.presencedServerReport(
        k.due(bucket),
        k.sessionCount(bucket),
        k.serverRoster(bucket, gameId),
        String(now),
        key,
        how.deviceType,
        how.activity,
        String(how.ttlMs),
        k.presencePrefix(bucket),
        how.keepMs,
        ...ids,
      )
  }

  /** The changes of one server-report reply; a player whose session is gone left (`reason`). */
  #changes(
    gameId: string,
    reply: ReadonlyArray<string | null>,
    now: number,
    reason: OfflineReason = 'explicit',
  ): PresenceChange[] {
    const key = serverSessionKey(gameId)
    const changes: PresenceChange[] = []
    for (let i = 0; i + 2 < reply.length; i += 3) {
      const userId = reply[i] as UserId
      const before = decodePresence(userId, reply[i + 1], now)
      const after = decodePresence(userId, reply[i + 2], now)
      if (after.sessions.some((s) => s.key === key)) {
        changes.push({ userId, before, after })
      } else {
        const ended = before.sessions.filter((s) => s.key === key)
        changes.push({ userId, before, after, reason, ended })
      }
    }
    return changes
  }

  #bucketOrder(): number[] {
    const n = this.#keys.buckets
    const start = this.#nextBucket
    this.#nextBucket = (start + 1) % n
    return Array.from({ length: n }, (_, i) => (start + i) % n)
  }

  /**
   * Every bucket's expiry index lists the users holding sessions (live, or expired and not yet
   * swept): read it, then their values by MGET in batches, keeping the live sessions. One bucket
   * at a time, so a node never holds more than a bucket's ids.
   */
  async *liveUsers(now: number, batchSize: number): AsyncIterable<LiveUser[]> {
    const k = this.#keys
    const client = this.#connection.client
    for (let bucket = 0; bucket < k.buckets; bucket++) {
      const ids = (await this.#connection.run(() =>
        client.zrange(k.due(bucket), 0, -1),
      )) as UserId[]
      for (let i = 0; i < ids.length; i += batchSize) {
        const chunk = ids.slice(i, i + batchSize)
        const raws = await this.#connection.run(() =>
          this.#connection.mget(chunk.map((id) => k.presence(id))),
        )
        const batch: LiveUser[] = []
        chunk.forEach((id, j) => {
          const presence = decodePresence(id, raws[j], now)
          if (presence.sessions.length > 0) batch.push(presence)
        })
        if (batch.length > 0) yield batch
      }
    }
  }

  /** Sessions and users stored (live, or expired and awaiting the sweep), like the memory store. */
  stats(now: number): Promise<{ sessions: number; users: number }> {
    void now
    const k = this.#keys
    const client = this.#connection.client
    return this.#connection.run(async () => {
      const all = Array.from({ length: k.buckets }, (_, b) => b)
      const [counts, users] = await Promise.all([
        Promise.all(all.map((b) => client.get(k.sessionCount(b)))),
        Promise.all(all.map((b) => client.zcard(k.due(b)))),
      ])
      return {
        sessions: counts.reduce((sum, n) => sum + Number(n ?? 0), 0),
        users: users.reduce((sum, n) => sum + n, 0),
      }
    })
  }

  ready(): Promise<boolean> {
    return this.#connection.ready()
  }

  close(): Promise<void> {
    return this.#connection.release()
  }
}

/** A game server's last report as kept in Redis (see RedisKeys.server). */
interface StoredServer {
  /** The buckets holding part of its roster. */
  b: number[]
  /** Activity JSON. */
  a: string
  d: string
  up: number
  ex: number
}

function bucketsOf(raw: string | null): number[] {
  return raw ? (JSON.parse(raw) as StoredServer).b : []
}
