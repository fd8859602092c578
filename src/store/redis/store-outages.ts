/** Where StoreOutages says what it sees (the app's logger). */
export interface OutageLog {
  warn(details: Record<string, unknown>, message: string): void
  info(details: Record<string, unknown>, message: string): void
}

/** Told of every write Redis refuses (a metric counts them). */
export interface OutageObserver {
  /** `reason` is the first word of Redis's reply: OOM, MISCONF, READONLY... */
  storeRefused(reason: string): void
  /** Whether this node's change-bus subscription holds now (it hears the fleet), on each change. */
  busListening?(listening: boolean): void
}

export interface StoreOutagesOptions {
  log?: OutageLog | undefined
  observer?: OutageObserver | undefined
  /** While an outage lasts, at most one reminder per this many ms; default 60 000. */
  reminderMs?: number
  now?: () => number
}

interface Episode {
  reason: string
  since: number
  /** When the log last said something of this episode. */
  saidAt: number
  /** Refusals only: how many since the log last said something. */
  count: number
  /** Refusals only: when the last one came. */
  lastAt: number
  /** Unreachable only: the reason the log said last. */
  said?: string
}

/** At most this much of Redis's own text in a log line. */
const MAX_REASON = 200

/**
 * The refusals that last until an operator acts: a Redis full (OOM) or unable to persist
 * (MISCONF), or short of the replicas it must write to (NOREPLICAS), and any reply not known here.
 * The others a node meets (a cluster's TRYAGAIN, CLUSTERDOWN, MOVED, ASK while it
 * reshards or fails over, LOADING, BUSY) pass by themselves.
 */
const NEEDS_OPERATOR = new Set(['OOM', 'MISCONF', 'NOREPLICAS', 'other'])

/**
 * The one place that logs a Redis outage, whoever meets it (requests, sweeps, the change bus,
 * webhook polls, the connection's reconnection attempts): one warning when Redis becomes
 * unreachable or starts refusing writes, naming Redis's reason and never a stack, then at most one
 * reminder per `reminderMs` while it lasts (how long, how many refusals), and one info line when
 * Redis is reachable again. Callers that meet STORE_UNAVAILABLE therefore log nothing of their own.
 *
 * Reachability comes from the client's events (its 'error' while reconnecting, 'ready') and from
 * commands that time out on a connection that looks up (a Redis that hangs); a refusal (OOM when
 * Redis is full, MISCONF when it cannot persist) from the replies. Redis does not say when it
 * accepts writes again: a refusal after a quiet `reminderMs` starts a new episode (a new warning).
 */
export class StoreOutages {
  readonly #log: OutageLog | undefined
  readonly #observer: OutageObserver | undefined
  readonly #reminderMs: number
  readonly #now: () => number
  #unreachable: Episode | undefined
  #refusing: Episode | undefined
  /** Since when the change bus does not listen; `said` once the log told it. */
  #deaf: { since: number; said: boolean } | undefined
  #nearRefusalSaid = false

  constructor(options: StoreOutagesOptions = {}) {
    this.#log = options.log
    this.#observer = options.observer
    this.#reminderMs = options.reminderMs ?? 60_000
    this.#now = options.now ?? Date.now
  }

  /** Whether Redis is taken as unreachable now (a success then says it is back). */
  get unreachable(): boolean {
    return this.#unreachable !== undefined
  }

  /**
   * Redis could not be reached (connection refused, reset, timed out): `reason` says why. An
   * `operator`'s reason (one no retry mends: the Redis URL's database refused) is said at once
   * when the log has not said it yet in this outage, then reminded as any.
   */
  lost(reason: string, operator = false): void {
    const now = this.#now()
    const episode = this.#unreachable
    if (episode === undefined) {
      const said = clip(reason)
      this.#unreachable = {
        reason: said,
        since: now,
        saidAt: now,
        count: 0,
        lastAt: now,
        said,
      }
      this.#log?.warn(
        { reason: said },
        `Redis is unreachable (${said}): requests that need it are answered 503 until it is back`,
      )
      return
    }
    episode.reason = clip(reason)
    const news = operator && episode.reason !== episode.said
    if (now - episode.saidAt < this.#reminderMs && !news) return
    episode.saidAt = now
    episode.said = episode.reason
    const downForSeconds = Math.round((now - episode.since) / 1000)
    this.#log?.warn(
      { reason: episode.reason, downForSeconds },
      `Redis still unreachable after ${downForSeconds} s (${episode.reason})`,
    )
  }

  /** Redis answered again after `lost`. */
  back(): void {
    const episode = this.#unreachable
    if (episode === undefined) return
    this.#unreachable = undefined
    const downForSeconds = Math.round((this.#now() - episode.since) / 1000)
    this.#log?.info({ downForSeconds }, `Redis is reachable again after ${downForSeconds} s`)
  }

  /** Redis refused a command (a reply such as `OOM command not allowed...`). */
  refused(message: string): void {
    // Redis's error prefix (OOM, MISCONF...): a few known words, never free text, as a label
    const word = message.split(/[\s:]/, 1)[0]!
    const reason = /^[A-Z]{2,16}$/.test(word) ? word : 'other'
    this.#observer?.storeRefused(reason)
    const now = this.#now()
    let episode = this.#refusing
    if (episode !== undefined && now - episode.lastAt >= this.#reminderMs) episode = undefined
    if (episode === undefined) {
      const said = clip(message)
      this.#refusing = { reason: said, since: now, saidAt: now, count: 0, lastAt: now }
      this.#log?.warn(
        { reason: said },
        `Redis refuses commands (${said}): ${
          NEEDS_OPERATOR.has(reason)
            ? 'writes are answered 503 until an operator acts'
            : // a cluster resharding, failing over or loading: it passes by itself
              'requests that need it are answered 503 while it does'
        }`,
      )
      return
    }
    episode.count++
    episode.lastAt = now
    episode.reason = clip(message)
    if (now - episode.saidAt < this.#reminderMs) return
    const refusedForSeconds = Math.round((now - episode.since) / 1000)
    this.#log?.warn(
      { reason: episode.reason, refusals: episode.count, refusedForSeconds },
      `Redis still refuses commands after ${refusedForSeconds} s: ${episode.count} refused since the last warning (${episode.reason})`,
    )
    episode.saidAt = now
    episode.count = 0
  }

  /**
   * The change bus's subscription holds (true) or was lost (false). Its loss alone is not said:
   * Redis away is said by `lost`, and a subscription lost with its connection usually holds again
   * as soon as Redis answers. Its return is said when its failure was (`busFailed`).
   */
  busListening(listening: boolean): void {
    this.#observer?.busListening?.(listening)
    if (!listening) {
      this.#deaf ??= { since: this.#now(), said: false }
      return
    }
    const deaf = this.#deaf
    this.#deaf = undefined
    if (!deaf?.said) return
    const deafForSeconds = Math.round((this.#now() - deaf.since) / 1000)
    this.#log?.info(
      { deafForSeconds },
      `The change bus listens again after ${deafForSeconds} s: this node hears the fleet`,
    )
  }

  /**
   * A subscription attempt (or a check of it) failed while the bus does not listen. Said once
   * per loss, and only while Redis is taken as reachable: a subscription that still does not
   * hold after Redis answers again. Attempts are retried every 2 s at most: never each one.
   */
  /**
   * Redis refused the near cache's tracking (an ACL without `CLIENT` or `SUBSCRIBE`): the node
   * serves every read from Redis. Said once: the cache is on by default, so an operator who did
   * not turn it off learns why reads cost what they do.
   */
  nearCacheRefused(reason: string): void {
    if (this.#nearRefusalSaid) return
    this.#nearRefusalSaid = true
    const said = clip(reason)
    this.#log?.warn(
      { reason: said },
      `The near cache is off: Redis refused client-side caching (${said}); every read goes to Redis. Allow CLIENT and SUBSCRIBE to this node's Redis user, or set PRESENCED_REDIS_NEAR_CACHE=0 to silence this`,
    )
  }

  busFailed(reason: string): void {
    const deaf = this.#deaf
    if (deaf === undefined || deaf.said || this.#unreachable !== undefined) return
    deaf.said = true
    const said = clip(reason)
    this.#log?.warn(
      { reason: said },
      `The change bus cannot subscribe although Redis answers (${said}): this node does not hear the fleet (its real-time subscribers, dashboard and webhooks miss other nodes' changes) until it does; retrying`,
    )
  }
}

function clip(text: string): string {
  const line = text.split('\n', 1)[0]!
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON)}…` : line
}
