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

/** How long a platform's JWKS is used, and how often it may be loaded (see ExternalTokenOptions). */
export interface JwksTimes {
  cooldownMs: number
  /** ms a loaded set is used before a token loads it again; Infinity: only on demand (a file). */
  maxAgeMs: number
  /** ms past maxAgeMs the last good set is still used while loads fail. */
  maxStaleMs: number
}

/**
 * A platform's JWKS, from a URL or a file, loaded when needed and kept: the last good set is
 * used while loads fail (a file mid-write, an endpoint down), past its max age for at most
 * `maxStaleMs` more. A load that fails is not tried again until `cooldownMs` has passed,
 * whatever the tokens, and a token the set kept cannot tell (its key is not there, or refuses
 * its signature and may have been replaced) is refused as JwksUnavailable: not the caller's
 * fault, so never counted as a wrong credential. Anyone can send a token naming an unknown
 * key: each must not load the set, so after a load that succeeded another waits for the
 * cooldown too (only the set's age loads it sooner). A load under way is joined, not repeated.
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

  /** The set to verify with: loaded again first once `maxAgeMs` old, else the one kept. */
  async #current(): Promise<JWTVerifyGetKey> {
    const keys = this.#keys
    if (keys && Date.now() - keys.loadedAt < this.#times.maxAgeMs) return keys.getKey
    try {
      await this.#load()
    } catch (error) {
      const kept = this.#kept()
      if (!kept) throw error
      return kept
    }
    return this.#keys!.getKey
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
      this.#pending = this.#loadNow().finally(() => (this.#pending = undefined))
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
        `; tokens whose key they lack or refuse ${unavailable}`,
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
