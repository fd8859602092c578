import { randomBytes } from 'node:crypto'
import type { Activity, OfflineReason } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'

/**
 * The presence a real-time connection carries for its own user: one session keyed
 * `rt:<connection id>`, written on each heartbeat frame and refreshed while the connection is
 * alive, ended when it closes. At most one write is in flight; frames arriving meanwhile are
 * coalesced into the next write, so a chatty client costs at most one write at a time.
 */
export class ConnectionPresence {
  readonly key = `rt:${randomBytes(9).toString('base64url')}`
  readonly #service: PresenceService
  readonly #userId: UserId
  #current: { deviceType: string; activity: Activity } | undefined
  #writing: Promise<void> | undefined
  #dirty = false
  #ended = false

  constructor(service: PresenceService, userId: UserId) {
    this.#service = service
    this.#userId = userId
  }

  get active(): boolean {
    return this.#current !== undefined && !this.#ended
  }

  /** A heartbeat frame: sets what the session shows and writes it. */
  set(deviceType: string, activity: Activity): Promise<void> {
    this.#current = { deviceType, activity }
    return this.refresh()
  }

  /** Writes the current presence again (moving its expiry), if there is one. */
  refresh(): Promise<void> {
    if (!this.active) return Promise.resolve()
    if (this.#writing) {
      this.#dirty = true
      return this.#writing
    }
    this.#writing = this.#write().finally(() => {
      this.#writing = undefined
      if (this.#dirty) {
        this.#dirty = false
        void this.refresh().catch(() => {})
      }
    })
    return this.#writing
  }

  /** The connection is gone: the session ends now. */
  async end(reason: OfflineReason): Promise<void> {
    if (this.#ended || this.#current === undefined) return
    this.#ended = true
    // let a write in flight land first, or it would recreate the session after the end
    await this.#writing?.catch(() => {})
    await this.#service.endSession(this.#userId, this.key, reason)
  }

  async #write(): Promise<void> {
    const current = this.#current
    if (!current || this.#ended) return
    await this.#service.heartbeat({
      userId: this.#userId,
      key: this.key,
      source: 'app',
      deviceType: current.deviceType,
      activity: current.activity,
    })
  }
}
