import type { LimitedWrite, PresenceChange } from '../store/presence-store.js'
import type { RateLimitHit } from '../store/rate-limiter.js'
import type { RateLimits } from './rate-limits.js'

/** The outcome of an admission that admitted at once (runNow). */
const ADMITTED: Promise<void> = Promise.resolve()

/**
 * What is left of a request's admission once its caller is known, as data: the rate-limit hit it
 * spends, then the checks that follow it (CSRF), refusing in that order. The protocol makes it
 * (RateLimits.admission: it knows which budget and which checks) and hands it to the service
 * call; it runs once, either with a write that counts the hit in its own store step
 * (`admitWith`: one Redis round trip in fleet mode, nothing written when refused) or by `run`.
 */
export class RequestAdmission {
  readonly hit: RateLimitHit
  readonly #limits: RateLimits
  readonly #checks: (() => void) | undefined
  #outcome: Promise<void> | undefined
  /** The store's step that counted the hit with a write (admitWith), its outcome made on demand. */
  #step: Promise<LimitedWrite> | undefined
  /** The same, done at once (a store step that answered without a promise). */
  #done: LimitedWrite | undefined

  constructor(limits: RateLimits, hit: RateLimitHit, checks?: () => void) {
    this.#limits = limits
    this.hit = hit
    this.#checks = checks
  }

  /**
   * Runs it, once (later calls share the outcome): resolves when admitted, throws the refusal.
   * A method, not an arrow in a field: that field cost every request a closure (a heartbeat
   * makes one admission per request).
   */
  run(): Promise<void> {
    if (this.#outcome !== undefined) return this.#outcome
    const done = this.#done
    if (done !== undefined) {
      // a refusal becomes the outcome's rejection, as the step's would
      this.#outcome = new Promise((admitted) => {
        if ('refused' in done) this.#limits.check(done.refused)
        admitted()
      })
      return this.#outcome
    }
    const step = this.#step
    this.#outcome =
      step !== undefined
        ? step.then(
            (done) => {
              if ('refused' in done) this.#limits.check(done.refused)
            },
            // the store failed, verdict unknown: the request answers that failure
            () => {},
          )
        : this.#then(this.#limits.spend(this.hit))
    return this.#outcome
  }

  /**
   * The checks after `spent`, the hit's outcome; `spent` itself when there are none (an
   * anonymous or Bearer caller's read): no microtask turn of a `then` that does nothing.
   */
  #then(spent: Promise<void>): Promise<void> {
    const checks = this.#checks
    return checks === undefined ? spent : spent.then(checks)
  }

  /**
   * run(), done at once where it can be (a limiter that counts in the same tick, no write's step
   * counted it): nothing when admitted, the refusal thrown; else run()'s promise. A read's
   * admission on the lean path (issue 19).
   */
  runNow(): void | Promise<void> {
    if (this.#outcome !== undefined || this.#step !== undefined || this.#done !== undefined) {
      return this.run()
    }
    try {
      const spent = this.#limits.spendNow(this.hit)
      if (spent instanceof Promise) {
        this.#outcome = this.#then(spent)
        return this.#outcome
      }
      this.#checks?.()
    } catch (refusal) {
      // a later run() or refusalOr() answers the same refusal
      this.#outcome = Promise.reject(refusal)
      this.#outcome.catch(() => {})
      throw refusal
    }
    this.#outcome = ADMITTED
  }

  /**
   * The error to answer for a request that failed with `error`: the admission's refusal when it
   * refuses (run now if nothing ran it, as its refusal comes before any later step's error), else
   * `error`.
   */
  refusalOr(error: unknown): Promise<unknown> {
    return this.run().then(
      () => error,
      (refusal: unknown) => refusal,
    )
  }

  /**
   * Admits `write` in its own step: the checks run first (when one refuses, the hit is counted
   * alone and the first refusal thrown; nothing is written), then `limited(hit)` counts the hit
   * and writes only if every rule allows it. When the store cannot (`limited` answers
   * undefined), or the admission ran already, it runs and then `write`. A store whose step is
   * done at once (embedded mode) answers without a promise, and so does this: the change, or the
   * refusal thrown (issue 19: each async layer and each promise resolved with an object cost a
   * heartbeat microtask turns and a `then` lookup); a refusal or failure of anything that waits
   * comes as the promise's. `input` and `now` are handed to `limited` and `write`, so a caller
   * can pass functions made once rather than closures over them (issue 19: two closures per
   * heartbeat, each called through V8's lazy-compile entry the first time).
   */
  admitWith<T = undefined>(
    limited: (
      hit: RateLimitHit,
      input: T,
      now: number,
    ) => LimitedWrite | Promise<LimitedWrite> | undefined,
    write: (input: T, now: number) => Promise<PresenceChange>,
    input?: T,
    now = 0,
  ): PresenceChange | Promise<PresenceChange> {
    if (this.#outcome === undefined && this.#step === undefined && this.#done === undefined) {
      try {
        this.#checks?.()
      } catch (refusal) {
        return this.run().then(() => {
          throw refusal
        })
      }
      const step = limited(this.hit, input as T, now)
      if (step === undefined) {
        // the checks passed: the hit alone is left
        return (this.#outcome = this.#limits.spend(this.hit)).then(() => write(input as T, now))
      }
      // its outcome, for a later `run` or `refusalOr`, is made from it only when one asks
      // (most requests never do): two promises and two closures fewer per heartbeat
      if (step instanceof Promise) {
        this.#step = step
        return step.then((done) => this.#changeOf(done))
      }
      this.#done = step
      return this.#changeOf(step)
    }
    return this.run().then(() => write(input as T, now))
  }

  /** The change a limited write made, or its refusal thrown. */
  #changeOf(done: LimitedWrite): PresenceChange {
    if ('refused' in done) this.#limits.check(done.refused)
    return (done as { change: PresenceChange }).change
  }
}
