import { randomBytes } from 'node:crypto'
import type { UserCaller } from '../../core/caller.js'
import { PresenceError, fail } from '../../core/errors.js'
import type { Activity, OfflineReason } from '../../core/presence.js'
import type { PresenceService } from '../../service/presence-service.js'

interface Shown {
  deviceType: string
  activity: Activity
}

/**
 * The presence a real-time connection carries for its own user: one session keyed
 * `rt:<connection id>`, written on each heartbeat frame and refreshed while the connection is
 * alive, ended when it closes. At most one write is in flight; frames arriving meanwhile are
 * coalesced into the next write, so a chatty client costs at most one write at a time.
 *
 * Each write a frame asks for is a request of the user's heartbeat budget
 * (RateLimits.heartbeat, the one register-app-presence spends: shared by every surface and, in
 * fleet mode, every node), counted in the write's own step. A refused write writes nothing and
 * `refused` is told; until the refusal's wait is over, frames are refused here without asking
 * the store. The keepalive's refreshes (the server's, at a fixed period) spend nothing and write
 * only what an admitted frame set.
 */
export class ConnectionPresence {
  readonly key = `rt:${randomBytes(9).toString('base64url')}`
  readonly #service: PresenceService
  readonly #caller: UserCaller
  readonly #address: string
  readonly #refused: (error: unknown) => void
  /** What the session shows: the last frame written. */
  #shown: Shown | undefined
  /** A frame not yet written (the latest: earlier ones are coalesced into it). */
  #next: Shown | undefined
  #refreshWanted = false
  #writing: Promise<void> | undefined
  #ended = false
  /**
   * A frame's write failed otherwise than refused (the store's error, or announcing the change
   * failed after it was stored): it may have written the session, which the end must then end.
   */
  #maybeWritten = false
  /** `Date.now()` until which frames are refused without asking (a refusal's wait). */
  #refusedUntil = 0

  /** `refused`: a frame's write failed (RATE_LIMITED, or the store's error). */
  constructor(
    service: PresenceService,
    caller: UserCaller,
    address: string,
    refused: (error: unknown) => void,
  ) {
    this.#service = service
    this.#caller = caller
    this.#address = address
    this.#refused = refused
  }

  get active(): boolean {
    return this.#shown !== undefined && !this.#ended
  }

  /** A heartbeat frame: sets what the session shows and writes it, if the budget allows. */
  set(deviceType: string, activity: Activity): void {
    if (this.#ended) return
    const wait = this.#refusedUntil - Date.now()
    if (wait > 0) return this.#refused(refusal(wait))
    this.#next = { deviceType, activity }
    this.#pump()
  }

  /** Writes the shown presence again (moving its expiry), if there is one. */
  refresh(): Promise<void> {
    if (!this.active) return Promise.resolve()
    this.#refreshWanted = true
    this.#pump()
    return this.#writing ?? Promise.resolve()
  }

  /** The connection is gone: the session ends now. */
  async end(reason: OfflineReason): Promise<void> {
    if (this.#ended) return
    this.#ended = true
    this.#next = undefined
    // let a write in flight land first, or it would recreate the session after the end
    while (this.#writing) await this.#writing.catch(() => {})
    if (this.#shown === undefined && !this.#maybeWritten) return
    await this.#service.endSession(this.#caller.userId, this.key, reason)
  }

  /** Starts the next write, unless one is in flight: a frame's first, else a refresh. */
  #pump(): void {
    if (this.#writing !== undefined || this.#ended) return
    let writing: Promise<void>
    const next = this.#next
    if (next !== undefined) {
      this.#next = undefined
      writing = this.#write(next, true).then(
        () => {
          this.#shown = next
          this.#refreshWanted = false
        },
        (error: unknown) => {
          if (error instanceof PresenceError && error.code === 'RATE_LIMITED') {
            this.#refusedUntil = Date.now() + (error.retryAfter ?? 1) * 1000
          } else this.#maybeWritten = true
          this.#refused(error)
        },
      )
    } else if (this.#refreshWanted && this.#shown !== undefined) {
      this.#refreshWanted = false
      writing = this.#write(this.#shown, false)
    } else {
      return
    }
    const settled = writing.finally(() => {
      this.#writing = undefined
      this.#pump()
    })
    this.#writing = settled
    // a refresh's failure is the keepalive's to handle (it catches what `refresh` returns)
    settled.catch(() => {})
  }

  async #write(shown: Shown, counted: boolean): Promise<void> {
    const service = this.#service
    // beat, not heartbeat: awaited here, a value needs no promise made for it (a throw is this
    // method's rejection, as heartbeat's would be)
    await service.beat(
      {
        userId: this.#caller.userId,
        key: this.key,
        source: 'app',
        deviceType: shown.deviceType,
        activity: shown.activity,
        // a write queued behind another, or late on a loaded loop, is judged when it is made
        validUntil: this.#caller.expiresAt,
      },
      counted ? service.limits.heartbeat(this.#caller, this.#address) : undefined,
    )
  }
}

/** The refusal of a frame sent within a refusal's wait (`waitMs` left). */
function refusal(waitMs: number) {
  return fail('RATE_LIMITED', 'Too many requests', { retryAfter: Math.ceil(waitMs / 1000) })
}
