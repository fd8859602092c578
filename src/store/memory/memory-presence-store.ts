import type { OfflineReason, Session, UserPresence } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import type { PresenceChange, PresenceStore, SessionWrite } from '../presence-store.js'
import type { LastOnlineLedger } from '../profile-store.js'
import { ExpiryHeap } from './expiry-heap.js'

export interface MemoryPresenceStoreOptions {
  /** Where lastOnline is kept durably; loaded at start, written behind in batches. */
  ledger?: LastOnlineLedger
  /** How often dirty lastOnline values are flushed to the ledger, default 1000 ms. */
  flushIntervalMs?: number
}

/**
 * The zero-setup default: sessions in this process's memory, lastOnline written behind to a
 * ledger (SQLite). One process only: for several nodes, use RedisPresenceStore.
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly #sessions = new Map<string, Session[]>()
  readonly #lastOnline = new Map<string, number>()
  readonly #dirty = new Set<string>()
  readonly #heap = new ExpiryHeap()
  readonly #ledger: LastOnlineLedger | undefined
  readonly #flushTimer: NodeJS.Timeout | undefined
  #sessionCount = 0

  constructor(options: MemoryPresenceStoreOptions = {}) {
    this.#ledger = options.ledger
    if (this.#ledger) {
      for (const [userId, at] of this.#ledger.loadLastOnline()) this.#lastOnline.set(userId, at)
      this.#flushTimer = setInterval(() => this.flush(), options.flushIntervalMs ?? 1000)
      // write-behind must not keep the process alive; close() flushes the rest
      this.#flushTimer.unref()
    }
  }

  heartbeat(write: SessionWrite, now: number): Promise<PresenceChange> {
    const before = this.#presence(write.userId, now)
    const list = this.#list(write.userId)
    const expiresAt = now + write.ttlMs
    const index = list.findIndex((s) => s.key === write.key)
    const existing = index >= 0 ? list[index] : undefined
    const session: Session = {
      userId: write.userId,
      key: write.key,
      source: write.source,
      deviceType: write.deviceType,
      startedAt: existing && existing.expiresAt > now ? existing.startedAt : now,
      updatedAt: now,
      expiresAt,
      activity: write.activity,
    }
    if (existing) list[index] = session
    else {
      list.push(session)
      this.#sessionCount++
    }
    this.#sessions.set(write.userId, list)
    this.#heap.push({ at: expiresAt, userId: write.userId, key: write.key })
    this.#touch(write.userId, now)
    return Promise.resolve({
      userId: write.userId,
      before,
      after: this.#presence(write.userId, now),
    })
  }

  end(
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): Promise<PresenceChange | undefined> {
    const before = this.#presence(userId, now)
    const list = this.#list(userId)
    const index = list.findIndex((s) => s.key === key)
    // an expired session that is not yet swept is gone already: the sweep reports its timeout
    if (index < 0 || list[index]!.expiresAt <= now) return Promise.resolve(undefined)
    const [ended] = list.splice(index, 1)
    this.#sessionCount--
    if (list.length === 0) this.#sessions.delete(userId)
    this.#touch(userId, now)
    return Promise.resolve({
      userId,
      before,
      after: this.#presence(userId, now),
      reason,
      ended: [ended!],
    })
  }

  getMany(ids: readonly UserId[], now: number): Promise<UserPresence[]> {
    return Promise.resolve(ids.map((id) => this.#presence(id, now)))
  }

  sweepExpired(now: number, limit: number): Promise<PresenceChange[]> {
    const byUser = new Map<string, { before: UserPresence; ended: Session[] }>()
    while (byUser.size < limit) {
      const top = this.#heap.peek()
      if (top === undefined || top.at > now) break
      this.#heap.pop()
      const list = this.#sessions.get(top.userId)
      const index = list ? list.findIndex((s) => s.key === top.key) : -1
      // stale entry: the session was refreshed or ended since this entry was pushed
      if (!list || index < 0 || list[index]!.expiresAt !== top.at) continue
      let entry = byUser.get(top.userId)
      if (!entry) {
        entry = {
          before: {
            userId: top.userId as UserId,
            sessions: [...list],
            lastOnline: this.#lastOnline.get(top.userId),
          },
          ended: [],
        }
        byUser.set(top.userId, entry)
      }
      const [ended] = list.splice(index, 1)
      entry.ended.push(ended!)
      this.#sessionCount--
      if (list.length === 0) this.#sessions.delete(top.userId)
    }
    const changes: PresenceChange[] = []
    for (const [userId, { before, ended }] of byUser) {
      // the user was last alive at their last heartbeat, not at the expiry instant
      const lastAlive = Math.max(...ended.map((s) => s.updatedAt))
      if ((this.#lastOnline.get(userId) ?? 0) < lastAlive) this.#touch(userId, lastAlive)
      changes.push({
        userId: userId as UserId,
        before,
        after: this.#presence(userId as UserId, now),
        reason: 'timeout',
        ended,
      })
    }
    return Promise.resolve(changes)
  }

  stats(now: number): Promise<{ sessions: number; users: number }> {
    void now
    return Promise.resolve({ sessions: this.#sessionCount, users: this.#sessions.size })
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  /** Writes dirty lastOnline values to the ledger. */
  flush(): void {
    if (!this.#ledger || this.#dirty.size === 0) return
    const batch: Array<readonly [UserId, number]> = []
    for (const id of this.#dirty) batch.push([id as UserId, this.#lastOnline.get(id)!])
    this.#dirty.clear()
    this.#ledger.saveLastOnline(batch)
  }

  close(): Promise<void> {
    clearInterval(this.#flushTimer)
    this.flush()
    return Promise.resolve()
  }

  #touch(userId: string, at: number): void {
    this.#lastOnline.set(userId, at)
    if (this.#ledger) this.#dirty.add(userId)
  }

  /** The user's stored sessions, expired ones included until the sweep takes them. */
  #list(userId: string): Session[] {
    return this.#sessions.get(userId) ?? []
  }

  #presence(userId: UserId, now: number): UserPresence {
    const list = this.#sessions.get(userId)
    const sessions = list ? list.filter((s) => s.expiresAt > now) : []
    return { userId, sessions, lastOnline: this.#lastOnline.get(userId) }
  }
}
