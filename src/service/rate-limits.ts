import type { Caller, UserCaller } from '../core/caller.js'
import { fail } from '../core/errors.js'
import type { UserId } from '../core/user-id.js'
import {
  hitAllNow,
  titleHit,
  worseOf,
  type RateLimitHit,
  type RateLimiter,
  type RateLimitRule,
  type RateLimitVerdict,
  type TitleBudget,
} from '../store/rate-limiter.js'
import { RequestAdmission } from './admission.js'
import type { Clock } from './clock.js'
import { clientOf } from './client-address.js'

export interface RateLimitSettings {
  /** Requests per window per caller on the Roblox and companion routes. */
  requestMax: number
  requestWindowMs: number
  /** Xbox title writes per user and title: burst (15 s) and sustain (300 s) windows. */
  titleBurstMax: number
  titleSustainMax: number
  /** Xbox presence reads per caller (batch, one user, People): burst (15 s) and sustain (300 s). */
  xboxReadBurstMax: number
  xboxReadSustainMax: number
  /**
   * Requests per window per API key and game server on `/api/v1/servers/{gameId}` (reports,
   * shutdowns and roster reads together); optional for callers built before it (default 120 per
   * 60 s, see DEFAULT_SERVER_LIMIT).
   */
  serverMax?: number
  serverWindowMs?: number
  /**
   * Requests per `serverWindowMs` per API key on `/api/v1/servers/{gameId}`, all its servers
   * together: the per-server budget alone let one key spread unlimited requests over as many
   * gameIds as it liked. Default SERVER_KEY_LIMIT_FACTOR times `serverMax`.
   */
  serverKeyMax?: number
}

/**
 * A game server reporting every second, and reading its roster as often, stays under it: real
 * servers report every few seconds (within the session TTL, 60 s by default).
 */
export const DEFAULT_SERVER_LIMIT = { max: 120, windowMs: 60_000 } as const

/**
 * The default budget of one API key over all its game servers, as a multiple of one server's:
 * 50 servers at the full per-server rate, or 1000 servers reporting every 10 s (6000 per 60 s
 * with the defaults), before a key is refused. A bigger fleet on one key sets it
 * (PRESENCED_SERVER_KEY_RATE_LIMIT) or uses more keys.
 */
export const SERVER_KEY_LIMIT_FACTOR = 50

/**
 * A user's budget of Xbox title writes over all titles, as a multiple of one title's (burst and
 * sustain alike): 10 titles written at the full per-title rate (30 per 15 s, 300 per 300 s with
 * the defaults) before a user is refused.
 */
export const TITLE_USER_LIMIT_FACTOR = 10

/** Users whose request hit RateLimits keeps made (~100 B each). */
const USER_HITS = 10_000

const BURST_WINDOW_MS = 15_000
const SUSTAIN_WINDOW_MS = 300_000

/**
 * Every rate limit of the service, counted by the shared RateLimiter (in Redis in fleet mode,
 * so the fleet shares one budget). A refusal is a RATE_LIMITED error carrying the rule and the
 * seconds to wait; each protocol renders it in its own 429.
 */
export class RateLimits {
  readonly #limiter: RateLimiter
  readonly #clock: Clock
  readonly #request: RateLimitRule[]
  readonly #titleWrite: RateLimitRule[]
  /** A user's title writes over all titles: #titleWrite's windows, TITLE_USER_LIMIT_FACTOR × max. */
  readonly #titleUser: RateLimitRule[]
  readonly #xboxRead: RateLimitRule[]
  readonly #server: RateLimitRule[]
  readonly #serverKey: RateLimitRule[]
  /** User id → that user's `requestHit`, for at most USER_HITS users. */
  readonly #userHits = new Map<UserId, RateLimitHit>()
  /**
   * Client address → an anonymous caller's `requestHit`, for at most USER_HITS addresses: its
   * key, built and hashed again by the limiter on every anonymous read, and the hit object were
   * most of what the rate limit allocated per request (bench/read-costs.ts, issue 19). The
   * address string is the socket's own (Node keeps it per connection), so its hash is kept too.
   */
  readonly #addressHits = new Map<string, RateLimitHit>()

  constructor(limiter: RateLimiter, clock: Clock, settings: RateLimitSettings) {
    this.#limiter = limiter
    this.#clock = clock
    this.#request = [
      { name: 'roblox', max: settings.requestMax, windowMs: settings.requestWindowMs },
    ]
    this.#titleWrite = [
      { name: 'burst', max: settings.titleBurstMax, windowMs: BURST_WINDOW_MS },
      { name: 'sustain', max: settings.titleSustainMax, windowMs: SUSTAIN_WINDOW_MS },
    ]
    this.#titleUser = this.#titleWrite.map((rule) => ({
      ...rule,
      max: rule.max * TITLE_USER_LIMIT_FACTOR,
    }))
    this.#xboxRead = [
      { name: 'burst', max: settings.xboxReadBurstMax, windowMs: BURST_WINDOW_MS },
      { name: 'sustain', max: settings.xboxReadSustainMax, windowMs: SUSTAIN_WINDOW_MS },
    ]
    const serverMax = settings.serverMax ?? DEFAULT_SERVER_LIMIT.max
    const serverWindowMs = settings.serverWindowMs ?? DEFAULT_SERVER_LIMIT.windowMs
    this.#server = [{ name: 'server', max: serverMax, windowMs: serverWindowMs }]
    this.#serverKey = [
      {
        name: 'server-key',
        max: settings.serverKeyMax ?? serverMax * SERVER_KEY_LIMIT_FACTOR,
        windowMs: serverWindowMs,
      },
    ]
  }

  /** One request of the per-caller budget: per user, per key, else per client address. */
  request(caller: Caller, address: string): Promise<void> {
    return this.spend(this.requestHit(caller, address))
  }

  /**
   * The hit `request` counts, for a write to count it in its own step (RequestAdmission). A
   * user's is made once and kept (up to USER_HITS users): its key, a new string on every
   * request, was built and hashed again by the limiter's lookup each time.
   */
  requestHit(caller: Caller, address: string): RateLimitHit {
    if (caller.kind === 'user') {
      const kept = this.#userHits.get(caller.userId)
      if (kept !== undefined) return kept
      const hit: RateLimitHit = Object.freeze({
        key: `roblox:${subjectOf(caller, address)}`,
        rules: this.#request,
        near: caller.userId,
      })
      return keep(this.#userHits, caller.userId, hit)
    }
    if (caller.kind === 'anonymous') {
      const kept = this.#addressHits.get(address)
      if (kept !== undefined) return kept
      const hit: RateLimitHit = Object.freeze({
        key: `roblox:${subjectOf(caller, address)}`,
        rules: this.#request,
      })
      // an address rotated through many (IPv6) is merely built again
      return keep(this.#addressHits, address, hit)
    }
    return { key: `roblox:${subjectOf(caller, address)}`, rules: this.#request }
  }

  /**
   * The admission of one write of a user's own presence made on a surface with no request of its
   * own to count (a WebSocket heartbeat frame): a request of the user's budget, the one
   * register-app-presence spends, so that a user's heartbeats share one budget whichever surface
   * (and, in fleet mode, node) they come by. Counted in the write's own step (admitWith).
   */
  heartbeat(caller: UserCaller, address: string): RequestAdmission {
    return new RequestAdmission(this, this.requestHit(caller, address))
  }

  /**
   * One Xbox presence read (a batch of up to 1100 users counts once), on its own budget: Xbox
   * limits each service apart, and a reader of Xbox presence may also call the Roblox API.
   */
  xboxRead(caller: Caller, address: string): Promise<void> {
    return this.spend({ key: `xbox-read:${subjectOf(caller, address)}`, rules: this.#xboxRead })
  }

  /**
   * One request of a game server on `/api/v1/servers/{gameId}` with API key `keyId`: each server
   * (its canonical `gameId`) has a budget of its own per key, so a key shared by a whole fleet of
   * servers does not make them share one, and a server looping on its reports cannot take
   * another's. The key also has a budget over all its servers together (`serverKeyMax`), so
   * that a key cannot spread unlimited requests over made-up gameIds. Both are counted, side by
   * side in the same tick (RedisRateLimiter puts a tick's hits in one write), refused or not; the
   * refusal that waits longest is thrown.
   */
  async gameServer(keyId: string, gameId: string): Promise<void> {
    const now = this.#clock.now()
    const [server, key] = await Promise.all([
      this.#limiter.hit(`server:${keyId}:${gameId}`, this.#server, now),
      this.#limiter.hit(`server-key:${keyId}`, this.#serverKey, now),
    ])
    this.check(
      !key.allowed && (server.allowed || key.retryAfterMs > server.retryAfterMs) ? key : server,
    )
  }

  /** One Xbox title write (or delete) by a user for a title. */
  titleWrite(userId: UserId, titleId: string): Promise<void> {
    return this.spend(this.titleWriteHit(userId, titleId))
  }

  /**
   * The hit `titleWrite` counts, for a write to count it in its own step: the title's budget,
   * and the user's over all titles (TITLE_USER_LIMIT_FACTOR times the title's rules): presenced
   * tokens name no title, so a client naming a new title at each write would otherwise spend a
   * fresh budget each time (and make a session each time).
   */
  titleWriteHit(userId: UserId, titleId: string): RateLimitHit {
    const hit = titleHit(this.titleWrites(userId, titleId), titleId)
    hit.also = { key: `xbox-titles:${userId}`, rules: this.#titleUser }
    return hit
  }

  /**
   * A user's title-write budgets, one per title, for a write that learns its titles as it runs
   * (PresenceService.endTitles): each title it counts spends that title's `titleWrite` budget,
   * and one that finds none spends `idleTitleId`'s.
   */
  titleWrites(userId: UserId, idleTitleId: string): TitleBudget {
    return { key: `xbox:${userId}:`, rules: this.#titleWrite, near: userId, idleTitleId }
  }

  /**
   * One Xbox state write (`PUT /users/{me}/state`, Cloaked or not) by a user: a durable settings
   * write and a privacy change for every watcher, on the title writes' burst and sustain rules
   * but a budget of its own (per user; no title is named).
   */
  stateWrite(userId: UserId): Promise<void> {
    return this.spend({ key: `xbox-state:${userId}`, rules: this.#titleWrite, near: userId })
  }

  /** A request's admission: `hit`, then `checks` (see RequestAdmission). */
  admission(hit: RateLimitHit, checks?: () => void): RequestAdmission {
    return new RequestAdmission(this, hit, checks)
  }

  /** Counts `hit`; throws the refusal (`check`) when a rule refuses. */
  async spend(hit: RateLimitHit): Promise<void> {
    const limiter = this.#limiter
    const now = this.#clock.now()
    const also = hit.also
    if (also === undefined) return this.check(await limiter.hit(hit.key, hit.rules, now, hit.near))
    // both in the same tick: one write to Redis (RedisRateLimiter)
    const [own, other] = await Promise.all([
      limiter.hit(hit.key, hit.rules, now, hit.near),
      limiter.hit(also.key, also.rules, now, hit.near),
    ])
    this.check(worseOf(own, other))
  }

  /**
   * spend(), done at once when the limiter counts in the same tick (embedded mode): nothing, or
   * the refusal thrown; else spend()'s promise (issue 19: the async layer and its promise were
   * microtask turns of every read).
   */
  spendNow(hit: RateLimitHit): void | Promise<void> {
    const limiter = this.#limiter
    if (limiter.hitNow === undefined) return this.spend(hit)
    this.check(
      hit.also === undefined
        ? limiter.hitNow(hit.key, hit.rules, this.#clock.now())
        : hitAllNow(limiter as Required<Pick<RateLimiter, 'hitNow'>>, hit, this.#clock.now()),
    )
  }

  /** Throws a refusing verdict as RATE_LIMITED with the rule and the seconds to wait. */
  check(verdict: RateLimitVerdict): void {
    if (verdict.allowed) return
    throw fail('RATE_LIMITED', 'Too many requests', {
      retryAfter: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)),
      rateLimit: {
        rule: verdict.rule,
        count: verdict.count,
        max: verdict.max,
        windowMs: verdict.windowMs,
      },
    })
  }
}

/**
 * Whose budget a request spends: the user's, the key's, else the client's (its address, an IPv6
 * one by its /64: clientOf).
 */
function subjectOf(caller: Caller, address: string): string {
  return caller.kind === 'user'
    ? `user:${caller.userId}`
    : caller.kind === 'key'
      ? `key:${caller.keyId}`
      : `ip:${clientOf(address)}`
}

/**
 * Keeps `hit` for `id`, at most USER_HITS of them: full, the map starts over (deleting the oldest
 * key each time would walk a Map's deleted entries, see MemoryRateLimiter; a hit is cheap to
 * make again).
 */
function keep<K>(hits: Map<K, RateLimitHit>, id: K, hit: RateLimitHit): RateLimitHit {
  if (hits.size >= USER_HITS) hits.clear()
  hits.set(id, hit)
  return hit
}
