import { InvalidIdError, PresencedError } from './errors.js'
import { setTimer } from './set-timer.js'

/** A running heartbeat: keeps a presence alive until stopped. */
export interface HeartbeatHandle {
  /**
   * Resolves after the first beat succeeded; rejects if it failed (the loop keeps trying, unless
   * the failure is one retrying cannot fix: see `ended`).
   */
  readonly ready: Promise<void>
  /**
   * Resolves when stop() is called (or the signal aborts); rejects with the error when the loop
   * stopped by itself, on a failure retrying cannot fix: the server refused the credential (401,
   * 403) or the request (any other 4xx but 408 and 429), or the input was invalid. Nothing
   * beats after that, so the presence lapses at the server's TTL.
   */
  readonly ended: Promise<void>
  /** The interval the server asked for at the last beat, in milliseconds. */
  readonly intervalMs: number
  /** How often the loop beats, in milliseconds: sooner than intervalMs, so a late beat is not lost. */
  readonly beatEveryMs: number
  /** Stops beating and ends the presence on the server (waits for an in-flight beat first). */
  stop(): Promise<void>
}

export interface HeartbeatLoopOptions {
  /** One beat; resolves with the server's requested interval in ms (undefined: use fallback). */
  beat: () => Promise<number | undefined>
  /** Ends the presence (disconnect / delete); called once by stop(). */
  end: () => Promise<void>
  fallbackIntervalMs: number
  /**
   * Called with each failed beat; the loop then retries after `retryMs` (or the failure's
   * `retryAfterMs`, when longer) unless it is final.
   */
  onError?: ((error: unknown) => void) | undefined
  /** Beat at this fraction of the server's interval, so one late beat never lets it lapse. */
  safety?: number
  retryMs?: number
  signal?: AbortSignal | undefined
}

/**
 * Whether a failed beat would fail the same way however often it is sent: the server refused
 * the credential or the request itself, or the input is invalid. A 401 is final as well: with a
 * token provider, the client asked it for a fresh token before the beat failed. Timeouts (408),
 * rate limits (429), server errors and network failures may pass, and are retried.
 */
function retryCannotFix(error: unknown): boolean {
  if (error instanceof InvalidIdError) return true
  if (!(error instanceof PresencedError)) return false
  return error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429
}

/**
 * Beats at once, then again each time at the interval the server asked for (scaled down by
 * `safety`). Failures are reported and retried sooner, except those retrying cannot fix
 * (retryCannotFix), which end the loop: `ended` rejects with them. stop() is idempotent: it
 * cancels the timer, lets an in-flight beat finish, then calls `end` once.
 */
export function startHeartbeat(options: HeartbeatLoopOptions): HeartbeatHandle {
  const safety = options.safety ?? 0.8
  const retryMs = options.retryMs ?? 5000
  let intervalMs = options.fallbackIntervalMs
  let timer: ReturnType<typeof setTimeout> | undefined
  let inFlight: Promise<void> | undefined
  let stopped: Promise<void> | undefined
  let resolveReady!: () => void
  let rejectReady!: (error: unknown) => void
  let first = true
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  let resolveEnded!: () => void
  let rejectEnded!: (error: unknown) => void
  const ended = new Promise<void>((resolve, reject) => {
    resolveEnded = resolve
    rejectEnded = reject
  })
  // a caller that never awaits `ready` or `ended` must not see an unhandled rejection
  ready.catch(() => {})
  ended.catch(() => {})

  const run = (): void => {
    timer = undefined
    inFlight = options.beat().then(
      (asked) => {
        if (asked !== undefined && asked > 0) intervalMs = asked
        if (first) resolveReady()
        first = false
        schedule(intervalMs * safety)
      },
      (error: unknown) => {
        if (first) rejectReady(error)
        first = false
        options.onError?.(error)
        if (retryCannotFix(error)) {
          rejectEnded(error)
          return
        }
        // a refusal that says when to come back (a 429's or 503's Retry-After the call did not
        // wait out, being past retry.maxDelayMs) is not tried sooner: it would be refused again
        const asked = error instanceof PresencedError ? (error.retryAfterMs ?? 0) : 0
        schedule(Math.max(Math.min(retryMs, intervalMs * safety), asked))
      },
    )
  }
  const schedule = (ms: number): void => {
    if (stopped === undefined) timer = setTimer(run, ms)
  }

  const stop = (): Promise<void> => {
    resolveEnded()
    stopped ??= (async () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      await inFlight
      await options.end()
    })()
    return stopped
  }
  options.signal?.addEventListener('abort', () => void stop().catch(() => {}), { once: true })
  run()

  return {
    ready,
    ended,
    get intervalMs() {
      return intervalMs
    },
    get beatEveryMs() {
      return intervalMs * safety
    },
    stop,
  }
}
