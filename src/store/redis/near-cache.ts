import { Command, ReplyError, type Redis } from 'ioredis'
import type { Activity, PresenceType, SessionSource } from '../../core/presence.js'
import type { PresenceSummary, UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { UserBuckets } from './redis-connection.js'
import { touchRows } from '../memory/touch-rows.js'
import { NearRows } from './near-rows.js'
import { settingsOfSummarized, summarizeBytes, summarizedUntil } from './presence-codec.js'

/**
 * What every head starts with (`<prefix>:{b` for the 64 buckets' heads): the one BCAST prefix.
 * Redis matches each key it modifies against every prefix in turn: 64 prefixes cost it ~15k
 * instructions per key written (any key: a rate-limit hit's 11k became 40k, counted by
 * bench/redis-server-callgrind.ts), one prefix next to nothing. The keys of the buckets that
 * are not presence values are invalidated too, and ignored here (NearCache's #idOf).
 */
export function commonPrefix(heads: readonly string[]): string {
  let prefix = heads[0] ?? ''
  for (const head of heads) {
    let n = 0
    while (n < prefix.length && n < head.length && prefix[n] === head[n]) n++
    prefix = prefix.slice(0, n)
  }
  return prefix
}

/**
 * A row of the near cache: 64 bytes, what a hit reads in the first 48 (one cache line when the
 * buffer starts 0 or 16 bytes into one, as glibc's large allocations do), as doubles and int32s:
 *
 *   doubles 0-3  since, until (when the summary holds), updatedAt, lastOnline (NaN: undefined)
 *   int32s 8-11  activity, device type, settings (each its Interned index; 0: none), flags
 *
 * flags: the state (bits 0-2), the source (3-4), PRESENT (a value was read), HINTED (the
 * summary had the codec's activityId hint), the live session count (from bit 7).
 */
const ROW = {
  BYTES: 64,
  DOUBLES: 8,
  INTS: 16,
  SINCE: 0,
  UNTIL: 1,
  UPDATED_AT: 2,
  LAST_ONLINE: 3,
  ACTIVITY: 8,
  DEVICE_TYPE: 9,
  SETTINGS: 10,
  FLAGS: 11,
  STATE: 0b111,
  SOURCE_SHIFT: 3,
  PRESENT: 1 << 5,
  HINTED: 1 << 6,
  SESSIONS_SHIFT: 7,
  MOST_SESSIONS: 2 ** 25 - 1,
} as const

const SOURCES: readonly SessionSource[] = ['app', 'title', 'server']
const SOURCE_CODES: Readonly<Record<SessionSource, number>> = { app: 0, title: 1, server: 2 }

/**
 * Values that rows refer to by index from 1 (an activity, a device type, a settings object: a few
 * distinct ones among many rows), each index counted by the rows that hold it and given out again
 * once none does: bounded by the rows. Index 0 is none.
 */
class Interned<T> {
  readonly #indexes = new Map<T, number>()
  #values: Array<T | undefined> = [undefined]
  #holders = new Int32Array(64)
  #free: number[] = []

  /** `value`'s index (from 1), held once more. */
  acquire(value: T): number {
    let index = this.#indexes.get(value)
    if (index === undefined) {
      index = this.#free.pop() ?? this.#values.length
      if (index === this.#values.length) this.#values.push(value)
      else this.#values[index] = value
      if (index >= this.#holders.length) {
        const grown = new Int32Array(this.#holders.length * 2)
        grown.set(this.#holders)
        this.#holders = grown
      }
      this.#indexes.set(value, index)
    }
    this.#holders[index]!++
    return index
  }

  /** One holder of `index` fewer (0: none, nothing done). */
  release(index: number): void {
    if (index === 0 || --this.#holders[index]! > 0) return
    this.#indexes.delete(this.#values[index]!)
    this.#values[index] = undefined
    this.#free.push(index)
  }

  get size(): number {
    return this.#indexes.size
  }

  /** The value of `index` (undefined for 0). */
  value(index: number): T | undefined {
    return this.#values[index]
  }

  clear(): void {
    this.#indexes.clear()
    this.#values = [undefined]
    this.#holders.fill(0)
    this.#free = []
  }
}

/** Redis's channel of invalidation messages for a client in RESP2 (CLIENT TRACKING REDIRECT). */
const INVALIDATE = '__redis__:invalidate'

/** What a read of presence summaries answers (RedisConnection.mgetUsersNear), per id. */
export interface NearRead {
  summaries: PresenceSummary[]
  /**
   * Each value's folded settings (settingsOfSummarized); undefined for a value written before
   * settings were folded, and for a missing one until the fold pass has run (`foldDone`).
   */
  settings: Array<Readonly<UserSettings> | undefined>
}

/**
 * A read of one MGET waiter through the cache (NearCache.plan): the keys it takes from Redis
 * (`keys`/`heads`, an MgetKeys), and where each of its ids' summary comes from.
 */
export interface NearPlan extends NearRead {
  /** The ids to read from Redis, and their key heads. */
  keys: string[]
  heads: string[]
  /** The ids asked for. */
  ids: readonly string[]
  /** The read's time: a summary held holds from its read's time until its first expiry. */
  now: number
  foldDone: boolean
  /** Per id: the index of its value among `keys` (a miss), or -1 (a hit: its answer set). */
  from: Int32Array
  /** Per miss: its flight (a value read is kept only while no invalidation of it arrived). */
  flights: Flight[]
  hits: number
  /** The cache's generation at the plan: unchanged at the end, every hit still holds. */
  generation: number
}

/** Keys being read from Redis; `dead` once an invalidation of the key arrived meanwhile. */
interface Flight {
  dead: boolean
  readers: number
}

/**
 * A node-local copy of presence summaries as the node's reads decode them (summarizeBytes, the
 * value's folded settings beside: what a Roblox read needs, no stored bytes to decode again),
 * each kept only for the times it holds (from its read's time until its first live session
 * expires: liveness is never taken from memory past it), and kept exact by Redis server-assisted
 * client-side caching on a single Redis:
 *
 * - its own connection (`subscriber`) runs `CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX
 *   <what every presence key head starts with>` (commonPrefix) then `SUBSCRIBE __redis__:invalidate`: every write of a presence
 *   key (a script, an expiry, an eviction), by any node, sends the key here; FLUSHALL/FLUSHDB a
 *   null, which clears everything. BCAST keeps no per-key state in Redis (the default mode
 *   remembers every key each node read), and ties the tracking to this one connection: the
 *   reading connection's reconnects do not lose it.
 * - a read takes the ids it holds from here and MGETs the rest; a value read is kept unless an
 *   invalidation of its key arrived while it was in flight (`Flight`).
 * - a read that took anything from here waits for a `PING` on the subscriber, sent with its
 *   round trip (`barrier`): Redis answers it after every invalidation of a write it had run
 *   before (BCAST messages go out at the end of the event-loop turn of the write, before the
 *   writer's reply), so once it arrives, no write acknowledged before the read began is missing
 *   here. Its ids still held then are exact; the ones dropped meanwhile are read again.
 * - when either connection drops, everything is cleared and nothing is used or kept until the
 *   subscriber has tracking on and is subscribed again (`usable`).
 *
 * Rows found by the id's int64 (NearRows, no string-keyed Map). What a hit needs of its row is in
 * one 64-byte stride of one buffer (see ROW), the summary built fresh from it with the caller's id
 * string, as the memory store builds its summaries from its typed rows: a hit touches the id's
 * slot and its row, where a kept PresenceSummary (old, scattered: its userId string and its
 * numbers' heap boxes each elsewhere) and five arrays by row were about ten cache lines a hit.
 * Bounded by `maxEntries`: at the cap, the oldest row goes (NearRows' clock hand).
 */
export class NearCache {
  /** By user id: every key it caches is `<one of the heads><id>` (RedisKeys.userKeyHeads). */
  readonly #rows: NearRows
  /** By row, ROW's fields: the same bytes seen as doubles and as int32s. */
  readonly #times: Float64Array
  readonly #fields: Int32Array
  /** What rows refer to by index (Interned). */
  readonly #activities = new Interned<Activity>()
  /** Per activity index: the codec's id of it when last kept (PresenceSummary.activityId). */
  #activityIds = new Int32Array(64)
  readonly #deviceTypes = new Interned<string>()
  readonly #settingsKept = new Interned<Readonly<UserSettings>>()
  /** plan's rows of its ids, reused; and what its touches read (kept: not dropped). */
  #found = new Int32Array(64)
  // eslint-disable-next-line no-unused-private-class-members -- written, never read: see above
  #touched = 0
  readonly #flights = new Map<string, Flight>()
  readonly #prefixes: readonly string[]
  /** The heads, and their lengths: an invalidated key's head is found by its length. */
  readonly #heads: Set<string>
  readonly #headLengths: number[]
  /** Bumped by every invalidation and every drop (see NearPlan.generation). */
  #generation = 0
  /** Its own connection: tracking on, subscribed to the invalidations. */
  readonly subscriber: Redis
  readonly maxEntries: number
  /** Bumped by every clear: a setup begun before one does not make the cache usable. */
  #epoch = 0
  #subscribed = false
  #readerUp: () => boolean
  readonly #onRefused: ((reason: string) => void) | undefined
  #closed = false
  /** The subscriber's client id while tracking is on (tests). */
  clientId: number | undefined
  /** Counters (tests and the bench): values served from here, read from Redis, invalidations. */
  readonly stats = { hits: 0, misses: 0, invalidations: 0, clears: 0 }

  constructor(
    subscriber: Redis,
    prefixes: readonly string[],
    maxEntries: number,
    readerUp: () => boolean,
    onRefused?: (reason: string) => void,
  ) {
    this.subscriber = subscriber
    this.#onRefused = onRefused
    this.#prefixes = prefixes
    this.#heads = new Set(prefixes)
    this.#headLengths = [...new Set(prefixes.map((head) => head.length))]
    this.maxEntries = maxEntries
    const rows = (this.#rows = new NearRows(maxEntries))
    const buffer = new ArrayBuffer(rows.max * ROW.BYTES)
    this.#times = new Float64Array(buffer)
    this.#fields = new Int32Array(buffer)
    this.#readerUp = readerUp
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer[] | Buffer | null) => {
      if (channel.toString() === INVALIDATE) this.#invalidated(message)
    })
    subscriber.on('close', () => this.clear())
    subscriber.on('ready', () => void this.#track())
    if (subscriber.status === 'ready') void this.#track()
  }

  /** Whether reads may take values from here and keep theirs. */
  get usable(): boolean {
    return this.#subscribed && this.#readerUp()
  }

  get size(): number {
    return this.#rows.size
  }

  /** How many distinct activities, device types and settings the rows refer to (tests). */
  get held(): { activities: number; deviceTypes: number; settings: number } {
    return {
      activities: this.#activities.size,
      deviceTypes: this.#deviceTypes.size,
      settings: this.#settingsKept.size,
    }
  }

  /** Tracking on, then subscribed, on this connection of the subscriber. */
  async #track(): Promise<void> {
    const epoch = this.#epoch
    const s = this.subscriber
    let id: number
    try {
      id = Number(await s.client('ID'))
      const args = ['TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST']
      args.push('PREFIX', commonPrefix(this.#prefixes))
      await s.call('CLIENT', ...args)
      await s.subscribe(INVALIDATE)
    } catch (error) {
      // the connection dropped (cleared on 'close'; tried again on 'ready'), or Redis refused
      // tracking (an ACL without CLIENT or SUBSCRIBE): the cache stays off, which an operator
      // who did not ask for it to be off is told (on by default)
      if (error instanceof ReplyError) this.#onRefused?.((error as Error).message)
      return
    }
    if (epoch === this.#epoch && !this.#closed) {
      this.clientId = id
      this.#subscribed = true
    }
  }

  /** Everything dropped; unusable until tracking is on again on a new subscriber connection. */
  clear(): void {
    this.#subscribed = false
    this.drop()
  }

  /** Drops every entry and marks every read in flight as not to be kept. */
  drop(): void {
    this.#epoch++
    this.#generation++
    this.stats.clears++
    this.#rows.clear()
    this.#fields.fill(0)
    this.#activities.clear()
    this.#deviceTypes.clear()
    this.#settingsKept.clear()
    for (const flight of this.#flights.values()) flight.dead = true
    this.#flights.clear()
  }

  #invalidated(message: Buffer[] | Buffer | null): void {
    // null: FLUSHALL / FLUSHDB (every tracked key)
    if (message === null) return this.drop()
    const keys = Array.isArray(message) ? message : [message]
    this.#generation++
    for (const key of keys) {
      this.stats.invalidations++
      const id = this.#idOf(key.toString('utf8'))
      if (id === undefined) continue
      const row = this.#rows.delete(id)
      if (row >= 0) this.#release(row)
      const flight = this.#flights.get(id)
      if (flight !== undefined) {
        flight.dead = true
        this.#flights.delete(id)
      }
    }
  }

  /** The id of a key of one of the heads (undefined for another key: none is cached). */
  #idOf(key: string): string | undefined {
    for (const length of this.#headLengths) {
      if (key.length > length && this.#heads.has(key.slice(0, length))) return key.slice(length)
    }
    return undefined
  }

  /**
   * How a read of `ids` (keys `heads[buckets.bucketOf(id)] + id`, a head found for a miss only)
   * at `now` goes: the ones held here for `now` are hits (their summaries and settings set), the
   * others are read (their flights started). Only when `usable`.
   */
  plan(
    ids: readonly string[],
    heads: readonly string[],
    buckets: UserBuckets,
    now: number,
    foldDone: boolean,
  ): NearPlan {
    const n = ids.length
    const plan: NearPlan = {
      keys: [],
      heads: [],
      ids,
      now,
      foldDone,
      from: new Int32Array(n),
      summaries: new Array<PresenceSummary>(n),
      settings: new Array<Readonly<UserSettings> | undefined>(n),
      flights: [],
      hits: 0,
      generation: this.#generation,
    }
    if (this.#found.length < n) this.#found = new Int32Array(n)
    const found = this.#found
    this.#rows.findMany(ids, found)
    // the rows read ahead too, before the pass that reads them (their misses overlap)
    this.#touched = touchRows(this.#fields, found, n, ROW.INTS, ROW.FLAGS)
    for (let i = 0; i < n; i++) {
      const id = ids[i]!
      const row = found[i]!
      if (row >= 0 && this.#holds(row, now)) {
        plan.from[i] = -1
        plan.summaries[i] = this.#summaryOf(row, id)
        plan.settings[i] = this.#settingsOf(row, foldDone)
        plan.hits++
        continue
      }
      plan.from[i] = plan.keys.length
      plan.keys.push(id)
      plan.heads.push(heads[buckets.bucketOf(id)] ?? '')
      let flight = this.#flights.get(id)
      if (flight === undefined) this.#flights.set(id, (flight = { dead: false, readers: 0 }))
      flight.readers++
      plan.flights.push(flight)
    }
    this.stats.hits += plan.hits
    this.stats.misses += plan.keys.length
    return plan
  }

  /** Whether `row`'s summary holds at `now` (from its read's time until its first expiry). */
  #holds(row: number, now: number): boolean {
    const at = row * ROW.DOUBLES
    return now >= this.#times[at + ROW.SINCE]! && now < this.#times[at + ROW.UNTIL]!
  }

  #settingsOf(row: number, foldDone: boolean): Readonly<UserSettings> | undefined {
    const at = row * ROW.INTS
    return (this.#fields[at + ROW.FLAGS]! & ROW.PRESENT) !== 0 || foldDone
      ? this.#settingsKept.value(this.#fields[at + ROW.SETTINGS]!)
      : undefined
  }

  /**
   * The summary `row` holds, made now for `id` (the caller's string, in cache: the row's id is
   * the same number), of the same shape as summarizeBytes's (summaryOf's, without the
   * activityId hint, for a missing value).
   */
  #summaryOf(row: number, id: string): PresenceSummary {
    const times = this.#times
    const fields = this.#fields
    const at = row * ROW.DOUBLES
    const fieldsAt = row * ROW.INTS
    const flags = fields[fieldsAt + ROW.FLAGS]!
    const activity = fields[fieldsAt + ROW.ACTIVITY]!
    const lastOnline = times[at + ROW.LAST_ONLINE]!
    const state = (flags & ROW.STATE) as PresenceType
    const updatedAt = times[at + ROW.UPDATED_AT]!
    const sessions = flags >>> ROW.SESSIONS_SHIFT
    const deviceType = this.#deviceTypes.value(fields[fieldsAt + ROW.DEVICE_TYPE]!)!
    const source = SOURCES[(flags >>> ROW.SOURCE_SHIFT) & 3]!
    if ((flags & ROW.HINTED) === 0) {
      return {
        userId: id as UserId,
        state,
        activity: this.#activities.value(activity),
        updatedAt,
        // NaN: undefined (a stored lastOnline is an integer)
        lastOnline: lastOnline === lastOnline ? lastOnline : undefined,
        sessions,
        deviceType,
        source,
      }
    }
    return {
      userId: id as UserId,
      state,
      activity: this.#activities.value(activity),
      updatedAt,
      lastOnline: lastOnline === lastOnline ? lastOnline : undefined,
      sessions,
      deviceType,
      source,
      activityId: activity === 0 ? -1 : this.#activityIds[activity]!,
    }
  }

  /**
   * A plan's answer once its MGET replied (`values`, per miss) and, when it had hits, its
   * barrier arrived: each miss's value decoded (and kept when no invalidation of it came
   * meanwhile), each hit as held now; `lost` lists the hits dropped since the plan (to read
   * again, readInto), every hit when `hitsTrusted` is false (the barrier failed).
   */
  finish(
    plan: NearPlan,
    values: readonly (Buffer | null)[],
    hitsTrusted: boolean,
  ): { read: NearPlan; lost: number[] | undefined } {
    const n = plan.ids.length
    const now = plan.now
    let lost: number[] | undefined
    // no invalidation since the plan: every hit still holds, no lookup again
    const unchanged = plan.generation === this.#generation
    const rows = this.#rows
    for (let i = 0; i < n; i++) {
      const j = plan.from[i]!
      const id = plan.ids[i]!
      if (j < 0) {
        if (!hitsTrusted) (lost ??= []).push(i)
        else if (!unchanged) {
          const row = rows.find(id)
          if (row >= 0 && this.#holds(row, now)) {
            plan.summaries[i] = this.#summaryOf(row, id)
            plan.settings[i] = this.#settingsOf(row, plan.foldDone)
          } else (lost ??= []).push(i)
        }
        continue
      }
      const raw = values[j] ?? null
      const summary = summarizeBytes(id as UserId, raw, now)
      const until = summarizedUntil()
      const present = raw !== null && raw.length > 0
      const settings = present || plan.foldDone ? settingsOfSummarized(raw) : undefined
      plan.summaries[i] = summary
      plan.settings[i] = settings
      const flight = plan.flights[j]!
      if (!flight.dead && this.#subscribed && until > now) {
        this.#keep(id, summary, present ? settings : settingsOfSummarized(raw), present, now, until)
      }
      this.#land(id, flight)
    }
    return { read: plan, lost }
  }

  /** A plan's flights ended without values (its MGET failed). */
  abandon(plan: NearPlan): void {
    for (let j = 0; j < plan.keys.length; j++) this.#land(plan.keys[j]!, plan.flights[j]!)
  }

  #land(id: string, flight: Flight): void {
    if (--flight.readers === 0 && this.#flights.get(id) === flight) this.#flights.delete(id)
  }

  #keep(
    id: string,
    summary: PresenceSummary,
    settings: Readonly<UserSettings> | undefined,
    present: boolean,
    since: number,
    until: number,
  ): void {
    // a count the row cannot hold (never seen: millions of sessions) is not kept
    if (!(summary.sessions <= ROW.MOST_SESSIONS)) return
    const row = this.#rows.insert(id)
    if (row < 0) return
    // the row's id's before (kept again), the evicted id's, or nothing (a freed or fresh row)
    this.#release(row)
    const at = row * ROW.DOUBLES
    const times = this.#times
    times[at + ROW.SINCE] = since
    times[at + ROW.UNTIL] = until
    times[at + ROW.UPDATED_AT] = summary.updatedAt
    times[at + ROW.LAST_ONLINE] = summary.lastOnline ?? Number.NaN
    const fieldsAt = row * ROW.INTS
    const fields = this.#fields
    const activity = summary.activity
    if (activity !== undefined) {
      const index = this.#activities.acquire(activity)
      if (index >= this.#activityIds.length) {
        const grown = new Int32Array(this.#activityIds.length * 2)
        grown.set(this.#activityIds)
        this.#activityIds = grown
      }
      this.#activityIds[index] = summary.activityId ?? -1
      fields[fieldsAt + ROW.ACTIVITY] = index
    }
    fields[fieldsAt + ROW.DEVICE_TYPE] = this.#deviceTypes.acquire(summary.deviceType)
    if (settings !== undefined) {
      fields[fieldsAt + ROW.SETTINGS] = this.#settingsKept.acquire(settings)
    }
    fields[fieldsAt + ROW.FLAGS] =
      summary.state |
      (SOURCE_CODES[summary.source] << ROW.SOURCE_SHIFT) |
      (present ? ROW.PRESENT : 0) |
      (summary.activityId !== undefined ? ROW.HINTED : 0) |
      (summary.sessions << ROW.SESSIONS_SHIFT)
  }

  /** Drops what `row` refers to (its interned values), its fields zeroed: it holds nothing. */
  #release(row: number): void {
    const fieldsAt = row * ROW.INTS
    const fields = this.#fields
    this.#activities.release(fields[fieldsAt + ROW.ACTIVITY]!)
    this.#deviceTypes.release(fields[fieldsAt + ROW.DEVICE_TYPE]!)
    this.#settingsKept.release(fields[fieldsAt + ROW.SETTINGS]!)
    fields[fieldsAt + ROW.ACTIVITY] = 0
    fields[fieldsAt + ROW.DEVICE_TYPE] = 0
    fields[fieldsAt + ROW.SETTINGS] = 0
    fields[fieldsAt + ROW.FLAGS] = 0
  }

  /**
   * Resolves once the subscriber has answered a PING sent now: every invalidation Redis had
   * queued for it before has arrived (see the class). Rejects when it cannot (the connection is
   * down), after which nothing here is to be trusted. The PING is handed to the subscriber
   * itself (PingCommand: written at once, with the client's command timeout), not through
   * ioredis's auto-pipelining, which built a Pipeline, ran its exec and a callback wrapper for
   * the one PING of each tick.
   */
  barrier(): Promise<unknown> {
    const subscriber = this.subscriber
    const ping = new PingCommand()
    subscriber.sendCommand(ping)
    return ping.promise.catch((error: unknown) => {
      // a subscriber that does not answer may hold invalidations back: start it over
      if (!this.#closed && this.#subscribed) {
        this.clear()
        subscriber.disconnect(true)
      }
      throw error
    })
  }

  close(): void {
    this.#closed = true
    this.clear()
    this.subscriber.disconnect()
  }
}

/** `PING` as RESP, the same text for every barrier (NearCache.barrier). */
const PING = '*1\r\n$4\r\nPING\r\n'

/**
 * A PING whose text is written here (as the main connection's MgetCommand is), its reply as the
 * parser gives it: ioredis makes it the same text from its name and no arguments otherwise.
 */
class PingCommand extends Command {
  constructor() {
    super('ping')
  }

  override toWritable(): string {
    return PING
  }
}

/**
 * The values of `ids[indexes[k]]` (`values[k]`, as an MGET replied) decoded into `read` at
 * `now`, as NearCache.finish decodes a miss's, nothing kept: for reads the cache could not take
 * (not usable) and for hits lost before their barrier.
 */
export function readInto(
  read: NearRead,
  ids: readonly string[],
  indexes: readonly number[] | undefined,
  values: readonly (Buffer | null)[],
  now: number,
  foldDone: boolean,
): void {
  const n = indexes === undefined ? ids.length : indexes.length
  for (let k = 0; k < n; k++) {
    const i = indexes === undefined ? k : indexes[k]!
    const raw = values[k] ?? null
    read.summaries[i] = summarizeBytes(ids[i] as UserId, raw, now)
    read.settings[i] =
      (raw !== null && raw.length > 0) || foldDone ? settingsOfSummarized(raw) : undefined
  }
}
