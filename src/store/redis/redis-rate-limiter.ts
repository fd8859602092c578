import type { UserId } from '../../core/user-id.js'
import {
  UNLIMITED,
  verdictOf,
  windowIndexOf,
  windowOf,
  type RateLimitHit,
  type RateLimitRule,
  type RateLimitVerdict,
  type RateLimiter,
} from '../rate-limiter.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * The share of a rule's `max` one lease may take at most (never less than one hit): with a
 * caller's hits spread over k nodes, the hits leased and not yet spent are at most
 * k·(max/LEASE_FRACTION − 1), all the caller can be refused early by (docs/decisions/0004).
 */
export const LEASE_FRACTION = 16

/** Windows whose lease one limiter keeps at most (#sweep); a few hundred bytes each. */
export const LEASES = 10_000

/**
 * A node's lease of one rate-limit window: `size` consecutive counts of the window's counter in
 * Redis, taken at once (`INCRBY <window> size`), which the node's hits of that window take one
 * by one, each answered the count it holds (allowed when it is at most the rule's max). Counts
 * are only ever handed out once, so the fleet never allows more than max hits per window.
 */
class Lease {
  /** The count of the lease's first unit, once Redis answered (`known`). */
  first = 0
  known = false
  /** Units handed out; past `size` only when every one is a refusal (RedisRateLimiter.#leaseOf). */
  claimed = 0
  readonly size: number
  /** When the lease's window ends (#sweep). */
  readonly endsAt: number
  /** Redis's answer: the count of the lease's last unit. */
  readonly last: Promise<number>

  constructor(size: number, endsAt: number, last: Promise<number>) {
    this.size = size
    this.endsAt = endsAt
    this.last = last
  }
}

/**
 * Fixed windows counted in Redis, so every node of a fleet shares one count per caller. The
 * window index comes from `now` (like MemoryRateLimiter), so windows line up across nodes and
 * tests can drive them with a manual clock. A hit is counted in the write of the tick's MGET
 * (RedisConnection.besideHits): on a single Redis as `SET <window> 0 PX <2 windows> NX` and
 * `INCRBY <window> <n>` per rule window, once for the n hits of the write that fall in it (a
 * busy caller's, the read of every request from one address), each hit answered the count it
 * would have had alone; on a cluster by limit.lua (which RedisPresenceStore's limited heartbeat
 * shares: see `countsIn`), both giving a window's counter the expiry of two windows from its
 * first hit. Each window is its own key with its own expiry, so memory follows the
 * callers of the last two windows of each rule.
 *
 * On a single Redis, a node takes counts of a window by leases (Lease, issue 19): the first hit
 * of a window takes one, and each time a lease is spent the next takes twice as many, up to
 * max/LEASE_FRACTION; a hit its lease covers is answered at once, with nothing sent (a read
 * served from the near cache then writes nothing on the connection). A lease past max grants
 * only refusals; once Redis has said a window is spent, its hits are refused here without
 * asking again (nothing allows again before the window ends). Leases are forgotten with their
 * window, and at most LEASES are kept. On a cluster every hit is still counted alone.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  /** Window key → this node's current lease of it (single Redis). */
  readonly #leases = new Map<string, Lease>()
  /**
   * Caller key → its windows' keys as last built (windowArgs), reused while the rules, `near`
   * and the windows are the same: a busy caller's hits (every read from one address) built the
   * same strings on every request (a regex replace and templates per rule, then hashed by the
   * leases' Map lookup), 6-10 µs of a 70-78 µs read in Redis mode (bench:redis-http beside the
   * code before, docs/performance.md). At most LEASES kept.
   */
  readonly #built = new Map<string, BuiltWindows>()

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection
    this.#keys = keys
  }

  hit(
    key: string,
    rules: readonly RateLimitRule[],
    now: number,
    near?: UserId,
  ): Promise<RateLimitVerdict> {
    if (rules.length === 0) return Promise.resolve(UNLIMITED)
    const { windows, lengths } = this.#windowsOf(key, rules, now, near)
    const connection = this.#connection
    // in the write of this tick's MGET: a read's rate limit adds no round trip
    if (connection.isCluster) {
      return connection.runThen(
        connection.besideHits(windows, lengths),
        verdictOfCounts,
        rules,
        now,
      )
    }
    const counts = new Array<number>(rules.length)
    let waits: Array<Promise<unknown>> | undefined
    for (let i = 0; i < rules.length; i++) {
      const lease = this.#leaseOf(windows[i]!, lengths[i]!, rules[i]!, now)
      const k = lease.claimed++
      if (lease.known) counts[i] = lease.first + k
      else
        (waits ??= []).push(lease.last.then((last) => void (counts[i] = last - lease.size + 1 + k)))
    }
    // every window's count leased already: nothing to send
    if (waits === undefined) return Promise.resolve(verdictOf(rules, counts, now))
    return connection.runThen(
      waits.length === 1 ? waits[0]! : (Promise.all(waits) as Promise<unknown>),
      () => verdictOf(rules, counts, now),
      undefined,
      undefined,
    )
  }

  /** windowArgs of one key's hit, built again only when a window changed (#built). */
  #windowsOf(
    key: string,
    rules: readonly RateLimitRule[],
    now: number,
    near: UserId | undefined,
  ): BuiltWindows {
    const built = this.#built
    const last = built.get(key)
    if (last !== undefined && last.rules === rules && last.near === near) {
      let same = true
      for (let i = 0; i < rules.length && same; i++) {
        same = windowIndexOf(rules[i]!, now) === last.indexes[i]
      }
      if (same) return last
    }
    const { windows, lengths } = windowArgs(this.#keys, { key, rules, near }, now)
    const indexes = rules.map((rule) => windowIndexOf(rule, now))
    if (last === undefined && built.size >= LEASES) built.clear()
    const fresh: BuiltWindows = { rules, near, indexes, windows, lengths }
    built.set(key, fresh)
    return fresh
  }

  /** How many windows this limiter holds a lease of (tests: memory stays bounded). */
  get leases(): number {
    return this.#leases.size
  }

  /** How many callers' window keys it keeps built (tests: memory stays bounded). */
  get keysBuilt(): number {
    return this.#built.size
  }

  /**
   * The lease a hit of `window` takes its count from: the current one while it has units left,
   * or once Redis said it is past `rule.max` (every later count is a refusal); else a new one,
   * sent in this tick's write, twice the size of the last (1 at the window's first hit here),
   * at most max/LEASE_FRACTION.
   */
  #leaseOf(window: string, length: string, rule: RateLimitRule, now: number): Lease {
    const leases = this.#leases
    const current = leases.get(window)
    if (current !== undefined) {
      if (current.claimed < current.size) return current
      if (current.known && current.first + current.size - 1 > rule.max) return current
    } else if (leases.size >= LEASES) {
      this.#sweep(now)
    }
    const cap = Math.max(1, Math.floor(rule.max / LEASE_FRACTION))
    const size = current === undefined ? 1 : Math.min(2 * current.size, cap)
    const last = this.#connection.besideHits([window], [length], [size]).then(lastOf)
    const lease = new Lease(size, windowOf(rule, now).endsAt, last)
    last.then(
      (count) => {
        lease.first = count - size + 1
        lease.known = true
      },
      // the hits waiting for it fail with the error; the next hit takes a new lease
      () => {
        if (leases.get(window) === lease) leases.delete(window)
      },
    )
    leases.set(window, lease)
    return lease
  }

  /**
   * Makes room for a new window's lease (LEASES reached): forgets the leases of ended windows and
   * those with nothing left to hand out; when that frees less than half, every lease (their
   * unspent counts are given up: their callers may be refused early, never late).
   */
  #sweep(now: number): void {
    const leases = this.#leases
    for (const [window, lease] of leases) {
      if (lease.endsAt <= now || (lease.known && lease.claimed >= lease.size)) leases.delete(window)
    }
    if (leases.size >= LEASES / 2) leases.clear()
  }

  /**
   * Whether this limiter counts on `connection` under `keys`: then a script there may count its
   * hits itself (limit.lua, with `windowArgs`), in the same budget.
   */
  countsIn(connection: RedisConnection, keys: RedisKeys): boolean {
    return connection === this.#connection && keys.prefix === this.#keys.prefix
  }
}

/** One key's windowArgs for `rules` (and `near`) in the windows `indexes` (RedisRateLimiter#built). */
interface BuiltWindows {
  readonly rules: readonly RateLimitRule[]
  readonly near: UserId | undefined
  readonly indexes: readonly number[]
  readonly windows: string[]
  readonly lengths: string[]
}

function lastOf(counts: number[]): number {
  return counts[0]!
}

/** verdictOf with the counts first, as RedisConnection.runThen hands them. */
function verdictOfCounts(
  counts: number[],
  rules: readonly RateLimitRule[],
  now: number,
): RateLimitVerdict {
  return verdictOf(rules, counts, now)
}

/**
 * A hit's window counters and their lengths in ms, as limit.lua takes them, at `now`: its `also`
 * budget's after its own (rulesOf's order).
 */
export function windowArgs(
  keys: RedisKeys,
  hit: RateLimitHit,
  now: number,
): { windows: string[]; lengths: string[] } {
  const windows: string[] = []
  const lengths: string[] = []
  for (const rule of hit.rules) {
    windows.push(keys.rateWindow(hit.key, rule.name, windowOf(rule, now).index, hit.near))
    lengths.push(String(rule.windowMs))
  }
  // a second budget of the same hit (RateLimitHit.also): its windows after, in the same slot
  for (const rule of hit.also?.rules ?? []) {
    windows.push(keys.rateWindow(hit.also!.key, rule.name, windowOf(rule, now).index, hit.near))
    lengths.push(String(rule.windowMs))
  }
  return { windows, lengths }
}
