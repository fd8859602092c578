import type {
  Activity,
  OfflineReason,
  Session,
  SessionSource,
  UserPresence,
} from '../../core/presence.js'
import {
  PresenceType,
  inheritActivity,
  stateOfKind,
  titleIdsFound,
  titleSessionsOn,
} from '../../core/presence.js'
import type { PresenceSummary } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type {
  LimitedTitlesEnd,
  LimitedWrite,
  LiveUser,
  PresenceChange,
  PresenceStore,
  SessionWrite,
  SettingsReplaced,
  SettingsReplacement,
  TitleEnd,
  TitlesEnded,
} from '../presence-store.js'
import type { PrivacyStore } from '../privacy-store.js'
import { MAX_SESSIONS_PER_USER } from '../presence-store.js'
import {
  hitAllNow,
  titleHit,
  type RateLimitHit,
  type RateLimitVerdict,
  type RateLimiter,
  type TitleBudget,
} from '../rate-limiter.js'
import { MemoryRateLimiter } from './memory-rate-limiter.js'
import type { LastOnlineLedger } from '../profile-store.js'
import {
  rosterWritable,
  serverSessionKey,
  ServerUniverseRefused,
  sweepReason,
  type ServerReport,
  type ServerRoster,
} from '../presence-store.js'
import { ExpiryHeap } from './expiry-heap.js'
import { InternPool } from './intern-pool.js'
import { SessionSlab } from './session-slab.js'
import { UserTable } from './user-table.js'

export interface MemoryPresenceStoreOptions {
  /** Where lastOnline is kept durably; loaded at start, written behind in batches. */
  ledger?: LastOnlineLedger
  /** How often dirty lastOnline values are flushed to the ledger, default 1000 ms. */
  flushIntervalMs?: number
  /**
   * How long the ledger may lag the lastOnline of a user still online, default 60 000 ms: a
   * user's heartbeats are written at most once per this lag (not once per flush), the value of
   * a session that ended at the next flush. Reads are answered from memory, never from the
   * ledger; a crash loses at most this lag (plus one flush interval) of an online user's
   * lastOnline, and close() writes everything.
   */
  lastOnlineLagMs?: number
  /**
   * A flush the ledger refused (a locked or failing database): told once until a flush works
   * again; the values stay dirty and go with the next flush.
   */
  onFlushError?: (error: unknown) => void
  /** The live sessions a user may hold (MAX_SESSIONS_PER_USER by default). */
  maxSessions?: number
}

const NONE = -1
const SOURCES: readonly SessionSource[] = ['app', 'title', 'server']
const SOURCE_INDEX: Record<SessionSource, number> = { app: 0, title: 1, server: 2 }

/** How stale the lastOnline of a player staying on a game server may get (see reportServer). */
const LAST_ONLINE_STEP_MS = 30_000

/** A game server's roster: its players' user slots. Every report refreshes them all at once. */
interface MemoryRoster {
  players: Set<number>
  activity: Activity
  updatedAt: number
  expiresAt: number
}

/**
 * The zero-setup default: sessions in this process's memory, lastOnline written behind to a
 * ledger (SQLite). One process only: for several nodes, use RedisPresenceStore.
 *
 * Built to hold millions of sessions: a user is one 24-byte row and a session one 48-byte row,
 * each kind in one buffer (UserTable, SessionSlab), so reading an id costs a bucket, a user row
 * and a session row, a cache line or two each; repeated strings and activities are interned
 * once (InternPool), expiry is an indexed heap; `Session` objects are made only when read. Activities come back frozen and
 * shared between sessions: copy one to change it.
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly #users = new UserTable()
  readonly #sessions = new SessionSlab()
  readonly #heap = new ExpiryHeap()
  /** Session keys and device types. */
  readonly #strings = new InternPool<string>((key) => key)
  /**
   * Activities: a few thousand nobody holds are kept, so a place whose last player leaves is not
   * parsed again when the next one comes (each idle one is a frozen object, ~0.2 kB).
   */
  readonly #activities = new InternPool<Activity>(parseActivity, { idle: 4096 })
  /** Place id (else title id, else kind) → the activity last interned for it (#acquireActivity). */
  readonly #recentActivities = new Map<string, number>()
  /**
   * User slots whose lastOnline the ledger has not seen yet → the timer flush count when each
   * first moved since its last write (insertion order: that count's order).
   */
  readonly #dirty = new Map<number, number>()
  /** User slots whose session ended since the last write: written by the next flush. */
  readonly #ended = new Set<number>()
  /** Timer flushes so far: a lag counted in flushes, so it needs no clock. */
  #flushes = 0
  /** Timer flushes a heartbeat's lastOnline may wait (lastOnlineLagMs over the interval). */
  readonly #lagFlushes: number
  /** Game servers by gameId; a roster past its expiry is dropped by the sweep. */
  readonly #servers = new Map<string, MemoryRoster>()
  /** No roster expires before this instant: the sweep looks at rosters only from then on. */
  #rosterCheckAt = Number.POSITIVE_INFINITY
  readonly #ledger: LastOnlineLedger | undefined
  readonly #maxSessions: number
  readonly #flushTimer: NodeJS.Timeout | undefined
  readonly #onFlushError: ((error: unknown) => void) | undefined
  /** The last flush failed: the next failure is not told again. */
  #flushFailing = false
  #sessionCount = 0
  #userCount = 0
  /** getMany's and summarize's scratch: the user row of each id, and each user's first session. */
  #readUsers = new Int32Array(64)
  #readHeads = new Int32Array(64)

  constructor(options: MemoryPresenceStoreOptions = {}) {
    this.#maxSessions = options.maxSessions ?? MAX_SESSIONS_PER_USER
    this.#ledger = options.ledger
    this.#onFlushError = options.onFlushError
    const interval = options.flushIntervalMs ?? 1000
    this.#lagFlushes = Math.max(0, Math.floor((options.lastOnlineLagMs ?? 60_000) / interval))
    if (this.#ledger) {
      for (const [userId, at] of this.#ledger.loadLastOnline()) {
        const user = this.#users.findOrAdd(userId)
        if (user !== NONE) this.#users.setLastOnline(user, at)
      }
      // a timer's throw would end the process: a refused flush is told and tried again instead
      this.#flushTimer = setInterval(() => this.#flushOrTell(), interval)
      // write-behind must not keep the process alive; close() flushes the rest
      this.#flushTimer.unref()
    }
  }

  heartbeat(write: SessionWrite, now: number): Promise<PresenceChange> {
    const user = this.#users.findOrAdd(write.userId)
    if (user === NONE) return notAUser(write.userId)
    return Promise.resolve(this.#write(user, write, now))
  }

  /**
   * With a MemoryRateLimiter: the hit is counted in the same tick as the write, atomically, and
   * nothing is written when a rule refuses. Measured: counting it first through the limiter's
   * promise (RateLimits.spend) cost a heartbeat a chain of promises as long as its write. Done
   * at once, so answered without a promise (issue 19: a promise resolved with the answer was a
   * `then` lookup and a microtask turn per heartbeat).
   */
  limitedHeartbeat(
    write: SessionWrite,
    now: number,
    hit: RateLimitHit,
    limiter: RateLimiter,
  ): LimitedWrite | Promise<LimitedWrite> | undefined {
    if (!(limiter instanceof MemoryRateLimiter)) return undefined
    const verdict = hitAllNow(limiter, hit, now)
    if (!verdict.allowed) return { refused: verdict }
    const user = this.#users.findOrAdd(write.userId)
    if (user === NONE) return notAUser(write.userId)
    return { change: this.#write(user, write, now) }
  }

  /** A heartbeat of a known user, applied at once (a report applies many without yielding). */
  #write(user: number, write: SessionWrite, now: number): PresenceChange {
    const rows = this.#sessions
    let slot = this.#find(user, write.key)
    // whether the session holds the very text of the written activity (sameJsonText), asked
    // once: a refresh is told by it, and a change writes the activity only when it is not
    const same =
      slot !== NONE &&
      write.inherit === undefined &&
      sameJsonText(write.activity, this.#activities.value(rows.activity(slot)))
    if (
      same &&
      write.refreshUnread === true &&
      rows.expiresAt(slot) > now &&
      rows.source(slot) === SOURCE_INDEX[write.source] &&
      this.#strings.value(rows.deviceType(slot)) === write.deviceType &&
      !this.#anyExpired(user, now)
    ) {
      // a refresh whose change nobody reads (SessionWrite.refreshUnread): the same sessions,
      // expiry and update time moved; the state before (a UserPresence, its sessions array and
      // sessions, ~0.25 KB) is not made, `after` stands for it
      const expiresAt = now + write.ttlMs
      rows.setUpdatedAt(slot, now)
      rows.setExpiresAt(slot, expiresAt)
      this.#heap.set(slot, expiresAt)
      this.#touch(user, now)
      const after = this.#presence(write.userId, user, now)
      return { userId: write.userId, before: after, after }
    }
    const before = this.#presence(write.userId, user, now)
    // sessions expired and not swept yet end here, told first (PresenceChange.expired): the
    // written key's is started again below, the others are removed
    const expired = this.#endExpired(write.userId, user, slot, now)
    const written = write.inherit
      ? inheritActivity(
          write.activity,
          before.sessions.find((s) => s.key === write.key)?.activity,
          write.inherit,
        )
      : write.activity
    if (slot === NONE) {
      this.#makeRoom(user, now)
      slot = rows.alloc()
      rows.setUser(slot, user)
      rows.setNext(slot, NONE)
      rows.setKey(slot, this.#strings.acquire(write.key))
      rows.setStartedAt(slot, now)
      rows.setActivity(slot, this.#acquireActivity(written))
      rows.setDeviceType(slot, this.#strings.acquire(write.deviceType))
      this.#append(user, slot)
    } else {
      // Most heartbeats repeat the session's activity: when the written one would serialize to
      // the very text the session holds (sameJsonText), neither its JSON nor an interning is
      // made. Otherwise the new references are taken before the old ones are dropped, which
      // may be the same values.
      const held = rows.activity(slot)
      if (
        !(write.inherit === undefined ? same : sameJsonText(written, this.#activities.value(held)))
      ) {
        rows.setActivity(slot, this.#acquireActivity(written))
        this.#activities.release(held)
      }
      const device = rows.deviceType(slot)
      if (this.#strings.value(device) !== write.deviceType) {
        rows.setDeviceType(slot, this.#strings.acquire(write.deviceType))
        this.#strings.release(device)
      }
      // an expired session that was not swept yet is over: this heartbeat starts a new one
      if (!(rows.expiresAt(slot) > now)) rows.setStartedAt(slot, now)
    }
    const expiresAt = now + write.ttlMs
    rows.setUpdatedAt(slot, now)
    rows.setExpiresAt(slot, expiresAt)
    rows.setSource(slot, SOURCE_INDEX[write.source])
    this.#heap.set(slot, expiresAt)
    this.#touch(user, now)
    const after = this.#presence(write.userId, user, now)
    return expired === undefined
      ? { userId: write.userId, before, after }
      : { userId: write.userId, before, after, expired }
  }

  /** Whether the user holds a session past its expiry (not swept yet). */
  #anyExpired(user: number, now: number): boolean {
    const rows = this.#sessions
    for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
      if (!(rows.expiresAt(slot) > now)) return true
    }
    return false
  }

  /**
   * The user's sessions past expiry, as they were, each removed but `keep` (the slot a write
   * starts again); undefined when there is none.
   */
  #endExpired(userId: UserId, user: number, keep: number, now: number): Session[] | undefined {
    const rows = this.#sessions
    let expired: Session[] | undefined
    for (let slot = this.#users.head(user); slot !== NONE;) {
      const next = rows.next(slot)
      if (!(rows.expiresAt(slot) > now)) {
        ;(expired ??= []).push(this.#session(userId, slot))
        if (slot !== keep) this.#remove(user, slot)
      }
      slot = next
    }
    return expired
  }

  /**
   * A reference to the interned activity `written` serializes to. Players move between a few
   * places: the activity last interned for the same place (or kind) is tried first, and when
   * it would serialize to the same text (sameJsonText) it is taken as it is, with no JSON made
   * nor hashed (JSON.stringify and the lookup were ~4k instructions of such a heartbeat).
   */
  #acquireActivity(written: Activity): number {
    const hint = written.placeId ?? written.titleId ?? written.kind
    const recent = this.#recentActivities.get(hint)
    // an id dropped since holds no value, or another one: sameJsonText tells
    if (recent !== undefined) {
      const value = this.#activities.value(recent)
      if (value !== undefined && sameJsonText(written, value)) return this.#activities.take(recent)
    }
    const id = this.#activities.acquire(JSON.stringify(written))
    // bounded: a store seeing more places than this starts over, as a cache may
    if (this.#recentActivities.size >= RECENT_ACTIVITIES) this.#recentActivities.clear()
    this.#recentActivities.set(hint, id)
    return id
  }

  end(
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): Promise<PresenceChange | undefined> {
    const user = this.#users.find(userId)
    return Promise.resolve(user === NONE ? undefined : this.#end(user, userId, key, now, reason))
  }

  endTitles(end: TitleEnd, now: number): Promise<TitlesEnded> {
    // without `admit` nothing refuses
    return Promise.resolve(this.#endTitles(end, now) as TitlesEnded)
  }

  /** With a MemoryRateLimiter: its hits are counted in the same tick as the end, atomically. */
  limitedEndTitles(
    end: TitleEnd,
    now: number,
    budget: TitleBudget,
    limiter: RateLimiter,
  ): Promise<LimitedTitlesEnd> | undefined {
    if (!(limiter instanceof MemoryRateLimiter)) return undefined
    return Promise.resolve(
      this.#endTitles(
        end,
        now,
        (titleId) => {
          const hit = titleHit(budget, titleId)
          const verdict = limiter.hitNow(hit.key, hit.rules, now)
          return verdict.allowed ? undefined : verdict
        },
        budget.idleTitleId,
      ),
    )
  }

  /** endTitles, each counted title first passed to `admit` (a refusal ends nothing). */
  #endTitles(
    end: TitleEnd,
    now: number,
    admit?: (titleId: string) => RateLimitVerdict | undefined,
    idleTitleId?: string,
  ): LimitedTitlesEnd {
    const { userId, deviceType, titleId, reason } = end
    const user = this.#users.find(userId)
    const found = titleSessionsOn(this.#presence(userId, user, now).sessions, deviceType, titleId)
    // a named title the device does not run is not counted (idleTitleId's is), as end-titles.lua
    const titleIds = titleIdsFound(found, titleId)
    if (admit) {
      for (const counted of titleIds.length > 0 ? titleIds : [idleTitleId!]) {
        const refused = admit(counted)
        if (refused) return { refused }
      }
    }
    const changes: PresenceChange[] = []
    for (const session of found) {
      const change = this.#end(user, userId, session.key, now, reason)
      if (change) changes.push(change)
    }
    return { titleIds, changes }
  }

  #end(
    user: number,
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): PresenceChange | undefined {
    const slot = this.#find(user, key)
    // an expired session that is not yet swept is gone already: the sweep reports its timeout
    if (slot === NONE || !(this.#sessions.expiresAt(slot) > now)) return undefined
    const before = this.#presence(userId, user, now)
    // every end (end(), titles, a game server's end, a report's leavers) ends the user's other
    // sessions past expiry too, told first (as Redis end.lua, end-titles.lua, server-report.lua)
    const expired = this.#endExpired(userId, user, NONE, now)
    const ended = this.#session(userId, slot)
    this.#remove(user, slot)
    this.#touch(user, now, true)
    const after = this.#presence(userId, user, now)
    return expired === undefined
      ? { userId, before, after, reason, ended: [ended] }
      : { userId, before, after, reason, ended: [ended], expired }
  }

  getMany(ids: readonly UserId[], now: number): Promise<UserPresence[]> {
    const n = ids.length
    const users = this.#findAll(ids)
    const presences = new Array<UserPresence>(n)
    for (let i = 0; i < n; i++) presences[i] = this.#presence(ids[i]!, users[i]!, now)
    return Promise.resolve(presences)
  }

  /** getMany's answer as summaries, read from the rows: no Session, no sessions array. */
  summarize(
    ids: readonly UserId[],
    now: number,
    values?: readonly number[],
    device = true,
  ): Promise<PresenceSummary[]> {
    return Promise.resolve(this.summarizeNow(ids, now, values, device))
  }

  /** summarize(), without a promise (PresenceService.lookupSummariesNow). */
  summarizeNow(
    ids: readonly UserId[],
    now: number,
    values?: readonly number[],
    device = true,
  ): PresenceSummary[] {
    const n = ids.length
    const summaries = new Array<PresenceSummary>(n)
    for (let from = 0; from < n; from += READ_CHUNK) {
      const to = Math.min(n, from + READ_CHUNK)
      const whole = from === 0 && to === n
      const users = this.#findAll(
        whole ? ids : ids.slice(from, to),
        whole || values === undefined ? values : values.slice(from, to),
      )
      for (let i = from; i < to; i++) {
        summaries[i] = this.#summary(ids[i]!, users[i - from]!, now, device)
      }
    }
    return summaries
  }

  /**
   * The user row of each id (-1: unknown), with each user's first session row read ahead;
   * `values` as for summarize().
   */
  #findAll(ids: readonly UserId[], values?: readonly number[]): Int32Array {
    const n = ids.length
    if (this.#readUsers.length < n) {
      this.#readUsers = new Int32Array(n)
      this.#readHeads = new Int32Array(n)
    }
    const users = this.#readUsers
    this.#users.findMany(ids, users, values)
    // Read ahead: every user's row and first session row are loaded in passes, so that their
    // cache misses overlap; #presence and #summary then find them in cache.
    this.#users.headsOf(users, n, this.#readHeads)
    this.#sessions.readAhead(this.#readHeads, n)
    return users
  }

  sweepExpired(now: number, limit: number): Promise<PresenceChange[]> {
    if (now >= this.#rosterCheckAt) this.#dropExpiredRosters(now)
    const byUser = new Map<number, { before: UserPresence; ended: Session[] }>()
    while (byUser.size < limit && this.#heap.peekAt() <= now) {
      const slot = this.#heap.pop()
      const user = this.#sessions.user(slot)
      let entry = byUser.get(user)
      if (!entry) {
        const userId = this.#users.idOf(user)
        entry = {
          // as stored before this sweep: the sessions it ends are still in
          before: {
            userId,
            sessions: this.#stored(userId, user),
            lastOnline: this.#users.lastOnline(user),
          },
          ended: [],
        }
        byUser.set(user, entry)
      }
      entry.ended.push(this.#session(entry.before.userId, slot))
      this.#remove(user, slot)
    }
    const changes: PresenceChange[] = []
    for (const [user, { before, ended }] of byUser) {
      changes.push(this.#expiryChange(user, before, ended, now))
    }
    return Promise.resolve(changes)
  }

  // expire - see PresenceStore interface description.
  expire(userId: UserId, now: number): Promise<PresenceChange | undefined> {
    return Promise.resolve(this.#expire(userId, now))
  }

  #expire(userId: UserId, now: number): PresenceChange | undefined {
    const user = this.#users.find(userId)
    if (user === NONE || !this.#anyExpired(user, now)) return undefined
    // as stored before: the sessions it ends are still in
    const before = {
      userId,
      sessions: this.#stored(userId, user),
      lastOnline: this.#users.lastOnline(user),
    }
    const ended = this.#endExpired(userId, user, NONE, now)!
    return this.#expiryChange(user, before, ended, now)
  }

  // replaceSettingsAfterExpiry - see PresenceStore interface description.
  async replaceSettingsAfterExpiry(
    writes: readonly SettingsReplacement[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<SettingsReplaced[]> {
    const expiries: (PresenceChange | undefined)[] = []
    const landed: Promise<boolean>[] = []
    for (const { userId, expected, next } of writes) {
      // read at once where the store can (SQLite): then nothing awaits between the expiry and the
      // write, which that store makes before its promise returns (one process, one thread)
      const settings =
        privacy.getSettingsNow?.([userId])[0] ?? (await privacy.getSettings([userId]))[0]!
      const expired = this.#expire(userId, now)
      // judged by these (WebhookOutbox), not by what a read finds once the write below landed
      if (expired) expired.settings = settings
      expiries.push(expired)
      landed.push(privacy.replaceSettings(userId, expected, next))
    }
    const done = await Promise.all(landed)
    return done.map((landed, i) => {
      const expired = expiries[i]
      return expired ? { landed, expired } : { landed }
    })
  }

  /**
   * The change of an expiry that removed `ended` (a sweep's, or expire()'s): lastOnline moved to
   * the last heartbeat of the sessions ended, never back.
   */
  #expiryChange(user: number, before: UserPresence, ended: Session[], now: number): PresenceChange {
    // the user was last alive at their last heartbeat, not at the expiry instant
    const lastAlive = Math.max(...ended.map((s) => s.updatedAt))
    if (!((this.#users.lastOnline(user) ?? 0) >= lastAlive)) this.#touch(user, lastAlive, true)
    // a value a heartbeat left waiting is the last one now: written by the next flush too
    else if (this.#dirty.delete(user)) this.#ended.add(user)
    return {
      userId: before.userId,
      before,
      after: this.#presence(before.userId, user, now),
      reason: sweepReason(ended),
      ended,
    }
  }

  /**
   * Walks the user table: user slots are never freed or moved, so a walk that yields between
   * batches (letting writes in) still visits each user once. Activities are the shared, frozen
   * interned values: no copies.
   */
  async *liveUsers(now: number, batchSize: number): AsyncIterable<LiveUser[]> {
    let batch: LiveUser[] = []
    for (let user = 0; user < this.#users.size; user++) {
      const rows = this.#sessions
      let sessions: Array<LiveUser['sessions'][number]> | undefined
      for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
        if (!(rows.expiresAt(slot) > now)) continue
        ;(sessions ??= []).push({
          source: SOURCES[rows.source(slot)]!,
          deviceType: this.#strings.value(rows.deviceType(slot)),
          activity: this.#activities.value(rows.activity(slot)),
        })
      }
      if (!sessions) continue
      batch.push({ userId: this.#users.idOf(user), sessions })
      if (batch.length >= batchSize) {
        yield batch
        batch = []
      }
    }
    if (batch.length > 0) yield batch
  }

  reportServer(report: ServerReport, now: number): Promise<PresenceChange[]> {
    // every id is resolved before anything is written: one bad id refuses the whole report
    const users = new Int32Array(report.players.length)
    for (let i = 0; i < users.length; i++) {
      const user = this.#users.findOrAdd(report.players[i]!)
      if (user === NONE) {
        return notAUser(report.players[i]!)
      }
      users[i] = user
    }
    const key = serverSessionKey(report.gameId)
    const activityJson = JSON.stringify(report.activity)
    const expiresAt = now + report.ttlMs
    const previous = this.#servers.get(report.gameId)
    // checked in the step that writes: nothing awaits between them
    if (
      previous &&
      previous.expiresAt > now &&
      !rosterWritable(report.universes, previous.activity.universeId)
    ) {
      return Promise.reject(new ServerUniverseRefused(previous.activity.universeId))
    }
    const roster: MemoryRoster = {
      players: new Set(),
      activity: report.activity,
      updatedAt: now,
      expiresAt,
    }
    const rows = this.#sessions
    const changes: PresenceChange[] = []
    // interned ids of what an unchanged session holds; a write may intern them, so re-read then
    let keyId = this.#strings.find(key)
    let activityId = this.#activities.find(activityJson)
    let deviceTypeId = this.#strings.find(report.deviceType)
    for (let i = 0; i < users.length; i++) {
      const user = users[i]!
      roster.players.add(user)
      const slot = keyId === undefined ? NONE : this.#findKeyId(user, keyId)
      if (
        slot !== NONE &&
        rows.expiresAt(slot) > now &&
        rows.source(slot) === SOURCE_INDEX.server &&
        rows.activity(slot) === activityId &&
        rows.deviceType(slot) === deviceTypeId &&
        !this.#anyExpired(user, now)
      ) {
        // the common case, a player still there: only the expiry moves, nobody can see it
        rows.setUpdatedAt(slot, now)
        rows.setExpiresAt(slot, expiresAt)
        this.#heap.set(slot, expiresAt)
        // lastOnline of a player who stays moves in steps: marking thousands of players dirty
        // per report made the ledger's write-behind the bottleneck of the whole node. It is
        // exact again when the player leaves or expires (from updatedAt).
        if (!(now - (this.#users.lastOnline(user) ?? 0) < LAST_ONLINE_STEP_MS)) {
          this.#touch(user, now)
        }
        continue
      }
      const write: SessionWrite = {
        userId: report.players[i]!,
        key,
        source: 'server',
        deviceType: report.deviceType,
        activity: report.activity,
        ttlMs: report.ttlMs,
      }
      changes.push(this.#write(user, write, now))
      keyId = this.#strings.find(key)
      activityId = this.#activities.find(activityJson)
      deviceTypeId = this.#strings.find(report.deviceType)
    }
    for (const user of previous?.players ?? []) {
      if (roster.players.has(user)) continue
      const change = this.#end(user, this.#users.idOf(user), key, now, 'explicit')
      if (change) changes.push(change)
    }
    this.#servers.set(report.gameId, roster)
    if (expiresAt < this.#rosterCheckAt) this.#rosterCheckAt = expiresAt
    return Promise.resolve(changes)
  }

  endServer(
    gameId: string,
    now: number,
    reason: OfflineReason,
    universes?: readonly string[],
  ): Promise<PresenceChange[]> {
    const roster = this.#servers.get(gameId)
    if (!roster) return Promise.resolve([])
    if (!rosterWritable(universes, roster.activity.universeId)) {
      if (!(roster.expiresAt > now)) return Promise.resolve([])
      return Promise.reject(new ServerUniverseRefused(roster.activity.universeId))
    }
    this.#servers.delete(gameId)
    const key = serverSessionKey(gameId)
    const changes: PresenceChange[] = []
    for (const user of roster.players) {
      const change = this.#end(user, this.#users.idOf(user), key, now, reason)
      if (change) changes.push(change)
    }
    return Promise.resolve(changes)
  }

  getServer(gameId: string, now: number): Promise<ServerRoster | undefined> {
    const roster = this.#servers.get(gameId)
    if (!roster || !(roster.expiresAt > now)) return Promise.resolve(undefined)
    return Promise.resolve({
      gameId,
      players: Array.from(roster.players, (user) => this.#users.idOf(user)),
      activity: roster.activity,
      updatedAt: roster.updatedAt,
      expiresAt: roster.expiresAt,
    })
  }

  /**
   * Forgets the rosters of servers that stopped reporting. Their players' sessions expired at
   * the same instant (each report refreshes them all), and the sweep ends them as server_lost.
   */
  #dropExpiredRosters(now: number): void {
    let next = Number.POSITIVE_INFINITY
    for (const [gameId, roster] of this.#servers) {
      if (!(roster.expiresAt > now)) this.#servers.delete(gameId)
      else if (roster.expiresAt < next) next = roster.expiresAt
    }
    this.#rosterCheckAt = next
  }

  stats(now: number): Promise<{ sessions: number; users: number }> {
    void now
    return Promise.resolve({ sessions: this.#sessionCount, users: this.#userCount })
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  /**
   * Writes every dirty lastOnline value to the ledger (close() does too); throws what the ledger
   * threw, the values kept dirty (its write is one transaction: none of them was written).
   */
  flush(): void {
    this.#save(Number.NEGATIVE_INFINITY)
  }

  /**
   * Writes the values of sessions that ended, and of users online whose value first moved at
   * least `lag` timer flushes ago; the others wait (lastOnlineLagMs). The dirty users are in the
   * order they first moved in, so the walk stops at the first one not due.
   */
  #save(lag: number): void {
    if (!this.#ledger || (this.#dirty.size === 0 && this.#ended.size === 0)) return
    const users = [...this.#ended]
    for (const [user, movedAt] of this.#dirty) {
      if (this.#flushes - movedAt < lag) break
      users.push(user)
    }
    if (users.length === 0) return
    const batch = users.map(
      (user) => [this.#users.idOf(user), this.#users.lastOnline(user)!] as const,
    )
    this.#ledger.saveLastOnline(batch)
    for (const user of users) {
      this.#dirty.delete(user)
      this.#ended.delete(user)
    }
  }

  close(): Promise<void> {
    clearInterval(this.#flushTimer)
    try {
      this.flush()
      return Promise.resolve()
    } catch (error) {
      return Promise.reject(error as Error)
    }
  }

  #flushOrTell(): void {
    this.#flushes++
    try {
      this.#save(this.#lagFlushes)
      this.#flushFailing = false
    } catch (error) {
      if (!this.#flushFailing) this.#onFlushError?.(error)
      this.#flushFailing = true
    }
  }

  /**
   * Sets the user's lastOnline; `ended`: a session of the user ended, so the ledger gets the
   * value at the next flush, else (a heartbeat) within the lag.
   */
  #touch(user: number, at: number, ended = false): void {
    this.#users.setLastOnline(user, at)
    if (!this.#ledger) return
    // in one of the two at most: the next flush writes the value memory holds then
    if (ended) {
      this.#dirty.delete(user)
      this.#ended.add(user)
    } else if (!this.#dirty.has(user) && !this.#ended.has(user)) {
      this.#dirty.set(user, this.#flushes)
    }
  }

  /** The user's session slot with this key, expired ones included until swept; -1 if none. */
  #find(user: number, key: string): number {
    const keyId = this.#strings.find(key)
    return keyId === undefined ? NONE : this.#findKeyId(user, keyId)
  }

  #findKeyId(user: number, keyId: number): number {
    const rows = this.#sessions
    for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
      if (rows.key(slot) === keyId) return slot
    }
    return NONE
  }

  /**
   * Room for one more session of `user` (MAX_SESSIONS_PER_USER): while the user holds the most
   * live sessions it may, the live one that expires first (beaten least recently) is removed.
   * Expired ones are left for the sweep, which reports their timeout.
   */
  #makeRoom(user: number, now: number): void {
    const rows = this.#sessions
    for (;;) {
      let live = 0
      let oldest = NONE
      for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
        const expiresAt = rows.expiresAt(slot)
        if (!(expiresAt > now)) continue
        live++
        if (oldest === NONE || expiresAt < rows.expiresAt(oldest)) oldest = slot
      }
      if (live < this.#maxSessions) return
      this.#remove(user, oldest)
    }
  }

  /** Links a new session last, so reads list a user's sessions in the order they started. */
  #append(user: number, slot: number): void {
    const rows = this.#sessions
    let tail = this.#users.head(user)
    if (tail === NONE) {
      this.#users.setHead(user, slot)
      this.#userCount++
    } else {
      while (rows.next(tail) !== NONE) tail = rows.next(tail)
      rows.setNext(tail, slot)
    }
    this.#sessionCount++
  }

  /** Unlinks and frees a session, releasing what it held. */
  #remove(user: number, slot: number): void {
    const rows = this.#sessions
    const head = this.#users.head(user)
    if (head === slot) {
      this.#users.setHead(user, rows.next(slot))
      if (rows.next(slot) === NONE) this.#userCount--
    } else {
      let prev = head
      while (rows.next(prev) !== slot) prev = rows.next(prev)
      rows.setNext(prev, rows.next(slot))
    }
    this.#heap.remove(slot)
    this.#strings.release(rows.key(slot))
    this.#strings.release(rows.deviceType(slot))
    this.#activities.release(rows.activity(slot))
    rows.free(slot)
    this.#sessionCount--
  }

  #session(userId: UserId, slot: number): Session {
    const rows = this.#sessions
    return {
      userId,
      key: this.#strings.value(rows.key(slot)),
      source: SOURCES[rows.source(slot)]!,
      deviceType: this.#strings.value(rows.deviceType(slot)),
      startedAt: rows.startedAt(slot),
      updatedAt: rows.updatedAt(slot),
      expiresAt: rows.expiresAt(slot),
      activity: this.#activities.value(rows.activity(slot)),
    }
  }

  /** Every stored session of the user, expired ones included. */
  #stored(userId: UserId, user: number): Session[] {
    const sessions: Session[] = []
    const rows = this.#sessions
    for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
      sessions.push(this.#session(userId, slot))
    }
    return sessions
  }

  /**
   * summaryOf(#presence(userId, user, now), now), from the rows; without `device`, deviceType
   * and source left '' and 'app' (summarize()).
   */
  #summary(userId: UserId, user: number, now: number, device: boolean): PresenceSummary {
    if (user === NONE) {
      return {
        userId,
        state: PresenceType.Offline,
        activity: undefined,
        updatedAt: 0,
        lastOnline: undefined,
        sessions: 0,
        deviceType: '',
        source: 'app',
        activityId: -1,
      }
    }
    const rows = this.#sessions
    // primarySession's choice: the highest state, then the latest updatedAt, the first on ties
    let state: PresenceType = PresenceType.Offline
    let activity: Activity | undefined
    let activityId = -1
    let updatedAt = 0
    let primary = NONE
    let live = 0
    for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
      if (!(rows.expiresAt(slot) > now)) continue
      live++
      const candidateId = rows.activity(slot)
      const candidate = this.#activities.value(candidateId)
      const rank = stateOfKind(candidate.kind)
      const updated = rows.updatedAt(slot)
      if (activity === undefined || rank > state || (rank === state && updated > updatedAt)) {
        state = rank
        activity = candidate
        activityId = candidateId
        updatedAt = updated
        primary = slot
      }
    }
    return {
      userId,
      state,
      activity,
      updatedAt,
      lastOnline: this.#users.lastOnline(user),
      sessions: live,
      deviceType: !device || primary === NONE ? '' : this.#strings.value(rows.deviceType(primary)),
      source: !device || primary === NONE ? 'app' : SOURCES[rows.source(primary)]!,
      activityId,
    }
  }

  /** The user's presence at `now`: live sessions only. */
  #presence(userId: UserId, user: number, now: number): UserPresence {
    if (user === NONE) return { userId, sessions: [], lastOnline: undefined }
    const rows = this.#sessions
    // most users have one session: no array is grown for it
    let first: Session | undefined
    let more: Session[] | undefined
    for (let slot = this.#users.head(user); slot !== NONE; slot = rows.next(slot)) {
      if (!(rows.expiresAt(slot) > now)) continue
      const session = this.#session(userId, slot)
      if (first === undefined) first = session
      else if (more === undefined) more = [first, session]
      else more.push(session)
    }
    const sessions = more ?? (first === undefined ? [] : [first])
    return { userId, sessions, lastOnline: this.#users.lastOnline(user) }
  }
}

function notAUser(userId: UserId): Promise<never> {
  return Promise.reject(new TypeError(`not a user id: ${JSON.stringify(userId)}`))
}

/** summarizeNow reads this many ids at a time: what it brought into cache is still there. */
const READ_CHUNK = 128

/** Places (or titles, or kinds) #acquireActivity remembers an activity for, at most. */
const RECENT_ACTIVITIES = 4096

/** Each interned activity's own keys, in order (see sameJsonText). */
const keysOfHeld = new WeakMap<Activity, readonly string[]>()

/**
 * Whether JSON.stringify(`written`) would be exactly the text `held` was interned by (held is
 * that text parsed, so it has no undefined member): the same keys in the same order, each
 * value the same (===). A nested object (rich presence) is the same only if it is the very
 * object; a new one, or a key order that differs, answers false and the caller serializes as
 * before, so the stored text, and the key order reads give back, is always the written one's.
 */
export function sameJsonText(written: Activity, held: Activity): boolean {
  if (written === held) return true
  let keys = keysOfHeld.get(held)
  if (keys === undefined) {
    keys = Object.keys(held)
    keysOfHeld.set(held, keys)
  }
  const a = written as unknown as Record<string, unknown>
  const b = held as unknown as Record<string, unknown>
  let i = 0
  for (const key in a) {
    if (keys[i] !== key || a[key] !== b[key]) return false
    i++
  }
  return i === keys.length
}

/** Activities are shared by every session that reports the same one, so they are frozen. */
function parseActivity(json: string): Activity {
  const activity = JSON.parse(json) as Activity
  if (activity.richPresence) {
    Object.freeze(activity.richPresence.params)
    Object.freeze(activity.richPresence)
  }
  return Object.freeze(activity)
}
