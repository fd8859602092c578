import { randomUUID } from 'node:crypto'
import {
  PresenceType,
  deriveUserState,
  expiredAt,
  expiryOf,
  instantBefore,
  instantBeforeUnswept,
  type UserPresence,
} from '../../core/presence.js'
import { settingsAt, settingsOfChangeAt, type UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { BusEvent } from '../../realtime/change-bus.js'
import type { QueuedEvent, WebhookStore } from '../../store/webhook-store.js'
import type { Clock } from '../clock.js'
import { eventsOf, type Judged, type PresenceView, type Subscriber } from './webhook-events.js'
import type { WebhookRegistry } from './webhook-registry.js'
import { retryDelay } from './retry-delay.js'

export interface WebhookOutboxDeps {
  store: WebhookStore
  registry: WebhookRegistry
  clock: Clock
  view: PresenceView
  /** Current settings and presences, read through the service. */
  settings(ids: readonly UserId[]): Promise<UserSettings[]>
  /**
   * Optional: current settings, answered at once (a store holding them in this process): a
   * presence change recorded right after it was stored is judged by those in force then.
   */
  settingsNow?(ids: readonly UserId[]): readonly UserSettings[]
  /** With every session stored: those expired and not swept yet too (instantBeforeUnswept). */
  presences(ids: readonly UserId[]): Promise<UserPresence[]>
  maxQueued: number
  /** Changes held while the store fails; beyond it the oldest are dropped. */
  maxPending: number
  /** Waits between tries of a store that failed: doubled from `backoffMs` up to `backoffMaxMs`. */
  backoffMs: number
  backoffMaxMs: number
  random(): number
  /** Endpoints that just got events (the local deliverer is woken for them). */
  stored(webhookIds: ReadonlySet<string>): void
  /** Once per outage: the store failed, the changes are held and tried again. */
  onError(error: unknown): void
  /** Changes held too long to keep, the oldest first: their events are never stored. */
  dropped(count: number): void
}

type Change = Extract<BusEvent, { type: 'presence' | 'settings' }>

interface Pending {
  event: Change
  at: number
  /** A settings change's presence as the service read it beside the settings write (`record`). */
  seen?: UserPresence | undefined
  /** A presence change's settings as they stood when it was stored, where known (`record`). */
  settings?: UserSettings | undefined
  /** Its events once projected: a store that failed is given the same ones (ids) again. */
  events?: QueuedEvent[]
}

/**
 * Where changes become stored webhook events: on the node that made the change, once per change
 * (the service hands every write here, never the bus, which would repeat it on every node).
 *
 * Changes that arrive together are projected as one batch, with one read of settings and
 * presences, and stored with one store call; batches are stored one after the other, so the
 * events of one user keep the order of the changes on this node. Each change is judged by the
 * settings in force when it happened: a presence change by those stored with it (fleet mode) or
 * read when it was recorded (embedded), else by the settings as of the next settings change of
 * the same user in the batch (its `before`), else as read now; a settings change by the presence
 * the service read beside its write, or the one in force later (see #judged).
 *
 * When the store fails (to read or to store), the batch is held in memory and tried again with
 * backoff until the store answers; changes recorded meanwhile wait behind it and join it, so the
 * order holds and each is still judged by the settings of its time. At most `maxPending` changes
 * are held (the oldest are dropped beyond it); they are lost if the process ends first.
 */
export class WebhookOutbox {
  readonly #deps: WebhookOutboxDeps
  /** Changes recorded and not stored yet, oldest first (a batch being stored is not here). */
  #waiting: Pending[] = []
  /** A batch is chained that has not started yet: changes recorded now join it. */
  #scheduled = false
  #tail: Promise<void> = Promise.resolve()
  /** `#tail` is settled: nothing recorded is being stored or waiting to be. */
  #idle = true
  /** Failed tries in a row (the backoff grows with them). */
  #failures = 0
  /** An outage: the held changes are tried again when it fires. */
  #retry: NodeJS.Timeout | undefined
  /** Changes dropped during this outage (reported once, when it begins to drop). */
  #droppedInOutage = 0

  constructor(deps: WebhookOutboxDeps) {
    this.#deps = deps
  }

  /**
   * Resolves once the change's events (if any) are stored, or held after a failed try (then
   * tried again until stored); never rejects. `seen`, with a settings change: the user's presence
   * as the service read it beside the settings write, just before it (every session stored).
   */
  record(event: BusEvent, seen?: UserPresence): Promise<void> {
    if (event.type !== 'presence' && event.type !== 'settings') return this.#tail
    if (this.#deps.registry.subscribers.length === 0) return this.#tail
    const settings =
      event.type === 'presence'
        ? (event.change.settings ?? this.#deps.settingsNow?.([event.change.userId])[0])
        : undefined
    const at = this.#deps.clock.now()
    // an expiry the write told first (a heartbeat before the sweep): its own change, at its time
    if (event.type === 'presence') {
      const expiry = expiryOf(event.change)
      if (expiry) {
        const ended: Change = { type: 'presence', change: expiry }
        this.#waiting.push({ event: ended, at: expiredAt(event.change, at), settings })
      }
    }
    this.#waiting.push({ event, at, seen, settings })
    if (this.#retry) {
      // an outage: held behind what failed, stored by the retry
      this.#bound()
      return this.#tail
    }
    if (!this.#scheduled) this.#chain()
    return this.#tail
  }

  /**
   * record(), with nothing to wait for answered as undefined instead of a settled promise: a
   * change no webhook takes while nothing earlier is being stored (issue 19: a heartbeat's await
   * of it was a microtask turn).
   */
  recordNow(event: BusEvent): Promise<void> | undefined {
    if (
      this.#idle &&
      ((event.type !== 'presence' && event.type !== 'settings') ||
        this.#deps.registry.subscribers.length === 0)
    ) {
      return undefined
    }
    return this.record(event)
  }

  /** A pass chained after what is being stored; idle again once the last one chained settles. */
  #chain(): void {
    this.#scheduled = true
    this.#idle = false
    const tail = this.#tail.then(() => this.#pass())
    this.#tail = tail
    void tail.then(() => {
      if (this.#tail === tail) this.#idle = true
    })
  }

  /** Settles once everything recorded so far is stored, or held for a retry. */
  idle(): Promise<void> {
    return this.#tail
  }

  /** Stops retrying (shutdown): what is still held is lost, reported and counted as dropped. */
  stop(): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
    const lost = this.#waiting.length
    if (lost === 0) return
    this.#waiting = []
    this.#deps.onError(new Error(`${lost} changes held for webhooks are lost: the node stops`))
    this.#deps.dropped(lost)
  }

  /** Stores every change waiting, as one batch; on failure holds it and plans a retry. */
  async #pass(): Promise<void> {
    this.#scheduled = false
    // an outage began meanwhile: the retry takes them
    if (this.#retry) return this.#bound()
    const batch = this.#waiting
    if (batch.length === 0) return
    this.#waiting = []
    try {
      await this.#store(batch)
      this.#failures = 0
      this.#droppedInOutage = 0
    } catch (error) {
      // changes recorded during the try are younger: they stay behind the batch
      this.#waiting = batch.concat(this.#waiting)
      if (this.#failures++ === 0) this.#deps.onError(error)
      this.#bound()
      this.#plan()
    }
  }

  #plan(): void {
    const delay = retryDelay(
      this.#failures,
      this.#deps.backoffMs,
      this.#deps.backoffMaxMs,
      this.#deps.random,
    )
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      // changes recorded until the retry starts join it
      this.#chain()
    }, delay)
    this.#retry.unref()
  }

  /** Drops the oldest changes held beyond `maxPending`. */
  #bound(): void {
    const excess = this.#waiting.length - this.#deps.maxPending
    if (excess <= 0) return
    this.#waiting.splice(0, excess)
    if (this.#droppedInOutage === 0) {
      this.#deps.onError(
        new Error(
          `the webhook store is failing and more than ${this.#deps.maxPending} changes wait: the oldest are dropped (PRESENCED_WEBHOOK_MAX_PENDING)`,
        ),
      )
    }
    this.#droppedInOutage += excess
    this.#deps.dropped(excess)
  }

  async #store(batch: readonly Pending[]): Promise<void> {
    const subscribers = this.#deps.registry.subscribers
    if (subscribers.length === 0) return
    // a batch that failed to store comes first, projected already; what joined it after, not
    const fresh = batch.filter((pending) => !pending.events)
    if (fresh.length > 0) await this.#project(fresh, subscribers)
    const events = batch.flatMap((pending) => pending.events!)
    if (events.length === 0) return
    await this.#deps.store.enqueue(events, this.#deps.maxQueued)
    this.#deps.stored(new Set(events.map((e) => e.webhookId)))
  }

  /** Sets the events of each change of `batch`, judged together (one read of each kind). */
  async #project(batch: readonly Pending[], subscribers: readonly Subscriber[]): Promise<void> {
    const settingsIds = new Set<UserId>()
    const presenceIds = new Set<UserId>()
    for (const { event, settings } of batch) {
      if (event.type === 'settings') presenceIds.add(event.userId)
      else if (!settings) settingsIds.add(event.change.userId)
    }
    const [settings, presences] = await Promise.all([
      this.#deps.settings([...settingsIds]),
      this.#deps.presences([...presenceIds]),
    ])
    const settingsNow = new Map([...settingsIds].map((id, i) => [id, settings[i]!]))
    const presenceNow = new Map([...presenceIds].map((id, i) => [id, presences[i]!]))

    // what was in force for each change: the next change of the same user in the batch says
    const settingsThen: Array<UserSettings | undefined> = []
    const presenceThen: Array<UserPresence | undefined> = []
    const nextSettings = new Map<UserId, UserSettings | undefined>()
    const nextPresence = new Map<UserId, UserPresence>()
    for (let i = batch.length - 1; i >= 0; i--) {
      const { event, settings } = batch[i]!
      if (event.type === 'presence') {
        const id = event.change.userId
        settingsThen[i] =
          settings ?? (nextSettings.has(id) ? nextSettings.get(id) : settingsNow.get(id))
        nextPresence.set(id, event.change.before)
      } else {
        presenceThen[i] = nextPresence.get(event.userId) ?? presenceNow.get(event.userId)
        nextSettings.set(event.userId, event.before)
      }
    }

    batch.forEach((pending, i) => {
      const { event, at, seen } = pending
      const judged = this.#judged(event, at, settingsThen[i], presenceThen[i], seen)
      pending.events = judged ? eventsOf(judged, subscribers, this.#deps.view, eventId, at) : []
    })
  }

  #judged(
    event: Change,
    at: number,
    settings: UserSettings | undefined,
    presence: UserPresence | undefined,
    seen: UserPresence | undefined,
  ): Judged | undefined {
    if (event.type === 'presence') {
      const { change } = event
      if (!settings) return undefined
      // `before` may be earlier than a settings change told already (a sweep's expiry)
      const beforeAt = instantBefore(change, at)
      return {
        userId: change.userId,
        before: { presence: change.before, settings: settingsAt(settings, beforeAt), at: beforeAt },
        after: { presence: change.after, settings, at },
        reason: change.reason ?? 'explicit',
      }
    }
    // a settings change without both sides (none today) cannot be judged
    if (!event.before || !event.after || !presence) return undefined
    // `before`: what receivers may have been told just before the change. The presence read now
    // misses a sign-out stored after the change: a user who hid while online must read as
    // offline, and the sign-out, judged by the new settings, is hidden and says nothing. The one
    // the service read beside the settings write is the presence as they were stored (embedded:
    // in the same turn; fleet: read just before the write), so a sign-out stored before them,
    // told `offline` by the settings before, is in it and hiding says nothing more. Where a
    // write lands between that read and the settings write (fleet, within milliseconds), either
    // may be what receivers were told last: the online one is taken, so that hiding a user who
    // may show online always says `offline` (one too many says nothing untrue).
    const before = seen && onlineIn(seen, at) ? seen : presence
    const beforeAt = instantBeforeUnswept(before, at)
    return {
      userId: event.userId,
      before: { presence: before, settings: settingsAt(event.before, beforeAt), at: beforeAt },
      // at the same instant: the sweep tells the expiry itself, judged by these settings (an
      // offline here too made two), unless they hide the user then (turning invisible); never
      // showing there more than the settings of that instant did (a place left while hidden)
      after: {
        presence,
        settings: settingsOfChangeAt(event.before, event.after, beforeAt, at),
        at: beforeAt,
      },
      // what a real sign-out at this instant would say: hiding never tells a receiver it was hidden
      reason: 'explicit',
    }
  }
}

/** Whether `presence` has a session alive at `at`, or expired and not swept yet (a change's view). */
function onlineIn(presence: UserPresence, at: number): boolean {
  return (
    deriveUserState(presence.sessions, instantBeforeUnswept(presence, at)) !== PresenceType.Offline
  )
}

function eventId(): string {
  return `evt_${randomUUID().replaceAll('-', '')}`
}
