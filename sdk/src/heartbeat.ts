import { PresencedError } from './errors.js'

/** A running heartbeat: keeps a presence alive until stopped. */
export interface HeartbeatHandle {
  /** Resolves after the first beat succeeded; rejects if it failed (the loop keeps trying). */
  readonly ready: Promise<void>
  /** The interval the server asked for at the last beat, in milliseconds. */
  readonly intervalMs: number
  /** Stops beating and ends the presence on the server (waits for an in-flight beat first). */
  stop(): Promise<void>
}

export interface HeartbeatLoopOptions {
  /** One beat; resolves with the server's requested interval in ms (undefined: use fallback). */
  beat: () => Promise<number | undefined>
  /** Ends the presence (disconnect / delete); called once by stop(). */
  end: () => Promise<void>
  fallbackIntervalMs: number
  /** Called with each failed beat; the loop then retries after `retryMs`. */
  onError?: ((error: unknown) => void) | undefined
  /** Beat at this fraction of the server's interval, so one late beat never lets it lapse. */
  safety?: number
  retryMs?: number
  signal?: AbortSignal | undefined
}

/**
 * Beats at once, then again each time at the interval the server asked for (scaled down by
 * `safety`). Failures are reported and retried sooner; they never stop the loop. stop() is
 * idempotent: it cancels the timer, lets an in-flight beat finish, then calls `end` once.
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
  // a caller that never awaits `ready` must not see an unhandled rejection
  ready.catch(() => {})

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
        // a refused credential will not get better by retrying
        if (error instanceof PresencedError && (error.status === 401 || error.status === 403)) {
          return
        }
        schedule(Math.min(retryMs, intervalMs * safety))
      },
    )
  }
  const schedule = (ms: number): void => {
    if (stopped === undefined) timer = setTimeout(run, ms)
  }

  const stop = (): Promise<void> => {
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
    get intervalMs() {
      return intervalMs
    },
    stop,
  }
}
