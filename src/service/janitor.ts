import type { ChangeBus } from '../realtime/change-bus.js'
import type { DutyLease } from '../store/fleet-duties.js'
import type { PresenceStore } from '../store/presence-store.js'
import type { Clock } from './clock.js'

export interface JanitorOptions {
  /** How often due sessions are swept; bounds how late an offline event can be. */
  intervalMs: number
  /** At most this many expiries per store call, so one sweep never blocks the event loop long. */
  batchSize: number
  /** Called with how late (ms past expiresAt) each sweep's oldest expiry was processed. */
  onSweep?: (expired: number, latenessMs: number) => void
  /**
   * A slower chore beside the sweeps (pruning records no longer needed), every `intervalMs`;
   * one run at a time, a failure left to `onError` and tried again at the next interval.
   */
  chore?: {
    intervalMs: number
    run(): Promise<unknown>
    onError?(error: unknown): void
    /**
     * Fleet mode: the chore runs only on the node holding this lease, taken or renewed before
     * each run (a failure to take it is `onError`'s, and no run); given up when the janitor stops.
     */
    lease?: DutyLease
  }
}

/**
 * The background duty that turns expired sessions into "went offline" changes. Reads never
 * depend on it (liveness is computed from the clock); it only frees memory and tells watchers.
 */
export class Janitor {
  readonly #store: PresenceStore
  readonly #bus: Pick<ChangeBus, 'publish'>
  readonly #clock: Clock
  readonly #options: JanitorOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined
  #choreTimer: NodeJS.Timeout | undefined
  #chore: Promise<unknown> | undefined

  constructor(
    store: PresenceStore,
    bus: Pick<ChangeBus, 'publish'>,
    clock: Clock,
    options: JanitorOptions,
  ) {
    this.#store = store
    this.#bus = bus
    this.#clock = clock
    this.#options = options
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      if (!this.#running) {
        this.#running = this.sweepOnce()
          .catch(() => 0)
          .finally(() => (this.#running = undefined))
      }
    }, this.#options.intervalMs)
    // the janitor alone must not keep the process alive
    this.#timer.unref()
    const chore = this.#options.chore
    if (!chore) return
    const lease = chore.lease
    this.#choreTimer = setInterval(() => {
      this.#chore ??= (lease ? lease.take() : Promise.resolve(true))
        .then((held) => held && chore.run())
        .catch((error: unknown) => chore.onError?.(error))
        .finally(() => (this.#chore = undefined))
    }, chore.intervalMs)
    this.#choreTimer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    clearInterval(this.#choreTimer)
    this.#timer = undefined
    this.#choreTimer = undefined
    await Promise.all([this.#running, this.#chore])
    await this.#options.chore?.lease?.release().catch(() => undefined)
  }

  /** Sweeps until nothing is due; returns the number of users whose sessions expired. */
  async sweepOnce(): Promise<number> {
    let total = 0
    for (;;) {
      const now = this.#clock.now()
      const changes = await this.#store.sweepExpired(now, this.#options.batchSize)
      let oldest = now
      for (const change of changes) {
        for (const session of change.ended ?? []) oldest = Math.min(oldest, session.expiresAt)
        await this.#bus.publish({ type: 'presence', change })
      }
      total += changes.length
      if (changes.length > 0) this.#options.onSweep?.(changes.length, now - oldest)
      if (changes.length < this.#options.batchSize) return total
    }
  }
}
