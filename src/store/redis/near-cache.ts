import type { Redis } from 'ioredis'

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

/** Redis's channel of invalidation messages for a client in RESP2 (CLIENT TRACKING REDIRECT). */
const INVALIDATE = '__redis__:invalidate'

/**
 * A read of one MGET waiter through the cache (NearCache.plan): the keys it takes from Redis
 * (`keys`/`heads`, an MgetKeys), and where each of its ids' values comes from.
 */
export interface NearPlan {
  /** The ids to read from Redis, and their key heads. */
  keys: string[]
  heads: string[]
  /** The ids asked for. */
  ids: readonly string[]
  /** Per id: the index of its value among `keys` (a miss), or -1 (a hit). */
  from: Int32Array
  /** Per id: its value held here (a hit), as the plan found it. */
  held: Array<Buffer | null | undefined>
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
 * A node-local copy of presence values (the stored bytes, settings folded in: never a derived
 * state, so liveness is still computed from each session's expiresAt at read time), kept exact by
 * Redis server-assisted client-side caching on a single Redis:
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
 * Bounded by `maxEntries`: at the cap, the oldest entry (insertion order) goes.
 */
export class NearCache {
  /** By user id: every key it caches is `<one of the heads><id>` (RedisKeys.userKeyHeads). */
  readonly #entries = new Map<string, Buffer | null>()
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
  ) {
    this.subscriber = subscriber
    this.#prefixes = prefixes
    this.#heads = new Set(prefixes)
    this.#headLengths = [...new Set(prefixes.map((head) => head.length))]
    this.maxEntries = maxEntries
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
    return this.#entries.size
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
    } catch {
      // the connection dropped (cleared on 'close'; tried again on 'ready'), or Redis refused
      // tracking (an ACL without CLIENT): the cache stays off
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
    this.#entries.clear()
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
      this.#entries.delete(id)
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
   * How a read of `ids` (keys `heads[i] + ids[i]`) goes: the ones held here are hits, the others
   * are read (their flights started). Only when `usable`.
   */
  plan(ids: readonly string[], heads: ReadonlyArray<string | undefined>): NearPlan {
    const n = ids.length
    const plan: NearPlan = {
      keys: [],
      heads: [],
      ids,
      from: new Int32Array(n),
      held: new Array<Buffer | null | undefined>(n),
      flights: [],
      hits: 0,
      generation: this.#generation,
    }
    const entries = this.#entries
    for (let i = 0; i < n; i++) {
      const id = ids[i]!
      const held = entries.get(id)
      if (held !== undefined) {
        plan.from[i] = -1
        plan.held[i] = held
        plan.hits++
        continue
      }
      plan.from[i] = plan.keys.length
      plan.keys.push(id)
      plan.heads.push(heads[i] ?? '')
      let flight = this.#flights.get(id)
      if (flight === undefined) this.#flights.set(id, (flight = { dead: false, readers: 0 }))
      flight.readers++
      plan.flights.push(flight)
    }
    this.stats.hits += plan.hits
    this.stats.misses += plan.keys.length
    return plan
  }

  /**
   * A plan's answer once its MGET replied (`values`, per miss) and, when it had hits, its
   * barrier arrived: each miss's value (kept when no invalidation of it came meanwhile), each
   * hit's value as held now; `lost` lists the hits dropped since the plan (to read again), every
   * hit when `hitsTrusted` is false (the barrier failed).
   */
  finish(
    plan: NearPlan,
    values: readonly (Buffer | null)[],
    hitsTrusted: boolean,
  ): { values: (Buffer | null)[]; lost: number[] | undefined } {
    const n = plan.ids.length
    const out = new Array<Buffer | null>(n)
    let lost: number[] | undefined
    const entries = this.#entries
    // no invalidation since the plan: every hit still holds, no lookup again
    const unchanged = plan.generation === this.#generation
    for (let i = 0; i < n; i++) {
      const j = plan.from[i]!
      const id = plan.ids[i]!
      if (j < 0) {
        const held = !hitsTrusted ? undefined : unchanged ? plan.held[i] : entries.get(id)
        if (held === undefined) (lost ??= []).push(i)
        else out[i] = held
        continue
      }
      const value = values[j] ?? null
      out[i] = value
      const flight = plan.flights[j]!
      if (!flight.dead && this.#subscribed) {
        // a copy: the reply's Buffer is a slice of the socket's chunk, which it would keep
        this.#keep(id, value === null ? null : Buffer.from(value))
      }
      this.#land(id, flight)
    }
    return { values: out, lost }
  }

  /** A plan's flights ended without values (its MGET failed). */
  abandon(plan: NearPlan): void {
    for (let j = 0; j < plan.keys.length; j++) this.#land(plan.keys[j]!, plan.flights[j]!)
  }

  #land(id: string, flight: Flight): void {
    if (--flight.readers === 0 && this.#flights.get(id) === flight) this.#flights.delete(id)
  }

  #keep(id: string, value: Buffer | null): void {
    const entries = this.#entries
    if (entries.size >= this.maxEntries && !entries.has(id)) {
      // the oldest entry: the first of the Map's insertion order
      const oldest = entries.keys().next()
      if (!oldest.done) entries.delete(oldest.value)
    }
    entries.set(id, value)
  }

  /**
   * Resolves once the subscriber has answered a PING sent now: every invalidation Redis had
   * queued for it before has arrived (see the class). Rejects when it cannot (the connection is
   * down), after which nothing here is to be trusted.
   */
  barrier(): Promise<unknown> {
    return this.subscriber.ping().catch((error: unknown) => {
      // a subscriber that does not answer may hold invalidations back: start it over
      if (!this.#closed && this.#subscribed) {
        this.clear()
        this.subscriber.disconnect(true)
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
