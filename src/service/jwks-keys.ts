import {
  createLocalJWKSet,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose'
import { reasonOf } from './jwks-sources.js'

/** Where the log says that a platform's JWKS cannot be loaded, and when it loads again. */
export interface JwksLog {
  warn(details: object, message: string): void
  info(details: object, message: string): void
}

/**
 * The share of `maxAgeMs` after a load at which `keepFresh` loads the set again, and the jitter
 * around it (a share too): between 65 % and 85 % of the max age, so the set is loaded again
 * well before it expires (time left for a few retries, one per cooldown, should that load
 * fail), and the nodes of a fleet started together do not fetch it in step.
 */
const REFRESH_AT = 0.75
const REFRESH_JITTER = 0.1
/** After a failed load, the next background load comes up to this share of the cooldown late. */
const RETRY_JITTER = 0.1
/** A timer's longest delay: a longer one fires at once (Node's TimeoutOverflowWarning). */
const TIMER_MAX_MS = 2_147_483_647

/** How long a platform's JWKS is used, and how often it may be loaded (see ExternalTokenOptions). */
export interface JwksTimes {
  cooldownMs: number
  /**
   * ms a loaded set is fresh; past it, a token still verifies against it (within `maxStaleMs`)
   * while it is loaded again behind. Infinity: loaded only on demand (a file).
   */
  maxAgeMs: number
  /** ms past maxAgeMs the last good set is still used while loads fail. */
  maxStaleMs: number
}

/**
 * A platform's JWKS, from a URL or a file, loaded and kept: the last good set is used while
 * loads fail (a file mid-write, an endpoint down), past its max age for at most `maxStaleMs`
 * more. A load that fails is not tried again until `cooldownMs` has passed, whatever the tokens,
 * and a token the set kept cannot tell (its key is not there) is refused as JwksUnavailable: not
 * the caller's fault, so never counted as a wrong credential. (A signature a kept key refuses is
 * refused as such, load or no load: see verifyWithKeySet.) Anyone can send a token naming an unknown key: each must not load the set,
 * so after a load that succeeded another waits for the cooldown too (only the set's age loads it
 * sooner). A load under way is joined, not repeated.
 *
 * A token waits for a load only when no set may be used (none loaded yet, or the one kept is
 * past its stale limit) or the set cannot tell (an unknown `kid`, a refused signature): a set
 * past its max age but within its stale limit verifies at once while it is loaded again behind.
 * `keepFresh` (a URL's set, from the start) loads it again in the background before it expires,
 * so that no token pays for the age of the set, and a key published meanwhile (a new `kid`) is
 * in it before its first token comes; a load that fails is tried again once per cooldown.
 *
 * The log says once when loads start failing (and again if the set kept runs out meanwhile),
 * and once when one succeeds again; the reason it gives never quotes the set, the URL or the
 * reply.
 */
export class JwksKeys {
  readonly #read: () => Promise<JSONWebKeySet>
  readonly #times: JwksTimes
  readonly #what: string
  readonly #log: JwksLog | undefined
  /** The last good set and when it was loaded. */
  #keys: { getKey: JWTVerifyGetKey; loadedAt: number } | undefined
  #loads = 0
  /** When the last load began, or failed. */
  #triedAt = -Infinity
  /** Since when loads fail, and what the log said of it: the set kept, or none to keep. */
  #failing: { since: number; said: 'kept' | 'none' } | undefined
  #pending: Promise<void> | undefined
  /** Whether `keepFresh` runs, and the timer of its next load. */
  #fresh = false
  #timer: NodeJS.Timeout | undefined

  /**
   * @param what says which source failed, in the log: `JWKS URL` or `JWKS file`
   * @param initial a set read already (at start), loaded now
   */
  constructor(
    read: () => Promise<JSONWebKeySet>,
    what: string,
    times: JwksTimes,
    log: JwksLog | undefined,
    initial?: JSONWebKeySet,
  ) {
    this.#read = read
    this.#what = what
    this.#times = times
    this.#log = log
    if (initial) {
      this.#triedAt = Date.now()
      this.#keys = { getKey: createLocalJWKSet(initial), loadedAt: this.#triedAt }
    }
  }

  /** The key a token's header names, for jwtVerify; loads the set again for an unknown `kid`. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const getKey = await this.#current()
    try {
      return await getKey(header, token)
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !(await this.refresh())) throw error
      return this.#keys!.getKey(header, token)
    }
  }

  /**
   * ms until a load may be tried again: the rest of the cooldown after a load that failed; 0
   * when one may be tried now (loads do not fail, or the cooldown has passed). What a token
   * refused as unavailable is told to wait (Retry-After).
   */
  retryAfterMs(): number {
    if (!this.#failing) return 0
    return Math.max(0, this.#times.cooldownMs - this.#sinceTry())
  }

  /**
   * Loads the set now (unless a load succeeded within the cooldown: see `refresh`), then keeps
   * it fresh in the background until `stop`: loaded again at 65-85 % of its max age after each
   * load, and once per cooldown after one that failed (the set kept meanwhile, as for a token's
   * load: until its stale limit). Resolves once the first load is done, loaded or not; never
   * rejects (a failure is said in the log). The timer never keeps the process alive.
   *
   * @example
   * const keys = new JwksKeys(() => jwksFromUrl(url, limits), 'JWKS URL', times, log)
   * await keys.keepFresh() // at start
   * keys.stop() // at shutdown
   */
  async keepFresh(): Promise<void> {
    this.#fresh = true
    await this.refresh().catch(() => undefined)
    // refresh loaded nothing (one succeeded within the cooldown): the timer runs from that one
    this.#schedule()
  }

  /** Stops `keepFresh`: no load is begun in the background any more (one under way ends). */
  stop(): void {
    this.#fresh = false
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Changes whenever the set is loaded anew (by `refresh`, an unknown `kid` or its age). */
  loads(): number {
    return this.#loads
  }

  /**
   * Loads the set again (joining a load under way), unless one succeeded within the cooldown:
   * then false, the set being as current as it may be. Throws JwksUnavailable when the load
   * fails, or when one failed within the cooldown (then none is tried).
   */
  async refresh(): Promise<boolean> {
    if (!this.#pending && !this.#failing && this.#sinceTry() < this.#times.cooldownMs) {
      return false
    }
    await this.#load()
    return true
  }

  /**
   * The set to verify with: the one kept while it may be used (past `maxAgeMs` it is loaded
   * again behind, the token not waiting for it); else loaded first.
   */
  async #current(): Promise<JWTVerifyGetKey> {
    const keys = this.#keys
    if (keys && Date.now() - keys.loadedAt < this.#times.maxAgeMs) return keys.getKey
    const kept = this.#kept()
    if (kept) {
      // the background timer is late or not running (a load failed: then within the cooldown
      // none is begun, as ever), or this JwksKeys is not kept fresh
      if (!this.#pending && !(this.#failing && this.#sinceTry() < this.#times.cooldownMs)) {
        this.#load().catch(() => undefined)
      }
      return kept
    }
    await this.#load()
    return this.#keys!.getKey
  }

  /**
   * Sets the timer of `keepFresh`'s next load: at a share of the max age after the last load
   * that succeeded, or at the end of the cooldown after one that failed (with jitter, each).
   */
  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (!this.#fresh) return
    const { cooldownMs, maxAgeMs } = this.#times
    const delay =
      this.#failing || !this.#keys
        ? this.retryAfterMs() + cooldownMs * RETRY_JITTER * Math.random()
        : this.#keys.loadedAt +
          maxAgeMs * (REFRESH_AT + REFRESH_JITTER * (2 * Math.random() - 1)) -
          Date.now()
    // a file's set has no age: it is never loaded on a timer
    if (!Number.isFinite(delay)) return
    this.#timer = setTimeout(
      () => this.#loadBehind(),
      // a max age or cooldown of years (the config sets no maximum) loads sooner, not at once
      Math.min(TIMER_MAX_MS, Math.max(1, delay)),
    )
    // prevents the timer from keeping the process alive: a node stops when its server closes
    this.#timer.unref()
  }

  /** `keepFresh`'s load: a failure is said in the log by the load, and kept as a token's is. */
  #loadBehind(): void {
    this.#timer = undefined
    this.#load()
      .catch(() => undefined)
      // a load that was not tried (the cooldown not quite over) sets no timer of its own
      .finally(() => this.#timer ?? this.#schedule())
  }

  /** The last good set while it may still be used: up to `maxStaleMs` past its max age. */
  #kept(): JWTVerifyGetKey | undefined {
    const keys = this.#keys
    const { maxAgeMs, maxStaleMs } = this.#times
    return keys && Date.now() - keys.loadedAt < maxAgeMs + maxStaleMs ? keys.getKey : undefined
  }

  #sinceTry(): number {
    return Date.now() - this.#triedAt
  }

  #load(): Promise<void> {
    if (!this.#pending) {
      const sinceTry = this.#sinceTry()
      if (this.#failing && sinceTry < this.#times.cooldownMs) {
        return Promise.reject(
          new JwksUnavailable(
            `loading failed ${sinceTry} ms ago; none until PRESENCED_JWT_JWKS_COOLDOWN ends`,
          ),
        )
      }
      this.#pending = this.#loadNow().finally(() => {
        this.#pending = undefined
        this.#schedule()
      })
    }
    return this.#pending
  }

  async #loadNow(): Promise<void> {
    this.#triedAt = Date.now()
    let getKey: JWTVerifyGetKey
    try {
      getKey = createLocalJWKSet(await this.#read())
    } catch (error) {
      // the cooldown runs from the failure: a load that took its whole timeout (an endpoint
      // that hangs) is not begun again at once, whatever the timeout and the cooldown
      this.#triedAt = Date.now()
      const reason = reasonOf(error)
      this.#failed(reason)
      throw new JwksUnavailable(reason)
    }
    this.#keys = { getKey, loadedAt: Date.now() }
    this.#loads++
    if (this.#failing) {
      const failedSeconds = Math.round((Date.now() - this.#failing.since) / 1000)
      this.#failing = undefined
      this.#log?.info(
        { failedSeconds },
        `the platform's ${this.#what} loaded again after ${failedSeconds} s`,
      )
    }
  }

  /** Says in the log that a load failed: when loads start failing, or the set kept runs out. */
  #failed(reason: string): void {
    const kept = this.#kept() !== undefined
    const said = kept ? 'kept' : 'none'
    if (this.#failing?.said === said) return
    this.#failing = { since: this.#failing?.since ?? this.#triedAt, said }
    const cannot = `the platform's ${this.#what} cannot be loaded (${reason})`
    const unavailable =
      'are refused as unavailable (503 with Retry-After, not counted as wrong credentials) until it loads'
    if (!kept) {
      this.#log?.warn({ reason }, `${cannot}: platform tokens ${unavailable}`)
      return
    }
    const { maxAgeMs, maxStaleMs } = this.#times
    const keysAgeSeconds = Math.round((Date.now() - this.#keys!.loadedAt) / 1000)
    const until = maxAgeMs + maxStaleMs
    this.#log?.warn(
      {
        reason,
        keysAgeSeconds,
        ...(Number.isFinite(until) && {
          keptUntil: new Date(this.#keys!.loadedAt + until).toISOString(),
        }),
      },
      `${cannot}: tokens are verified against the keys loaded ${keysAgeSeconds} s ago` +
        (Number.isFinite(until)
          ? ' (at most PRESENCED_JWT_JWKS_MAX_STALE past their max age)'
          : '') +
        `; tokens whose key they lack ${unavailable}`,
    )
  }
}

/** A platform's JWKS could not be loaded, or was not tried (a TokenRefusal 'unavailable'). */
export class JwksUnavailable extends Error {
  constructor(reason: string) {
    super(`the platform's JWKS is unavailable: ${reason}`)
    this.name = 'JwksUnavailable'
  }
}
