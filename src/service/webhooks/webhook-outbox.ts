import { randomUUID } from 'node:crypto'
import type { UserPresence } from '../../core/presence.js'
import type { UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { BusEvent } from '../../realtime/change-bus.js'
import type { QueuedEvent, WebhookStore } from '../../store/webhook-store.js'
import type { Clock } from '../clock.js'
import { eventsOf, instantBefore, type Judged, type PresenceView } from './webhook-events.js'
import type { WebhookRegistry } from './webhook-registry.js'

export interface WebhookOutboxDeps {
  store: WebhookStore
  registry: WebhookRegistry
  clock: Clock
  view: PresenceView
  /** Current settings and presences, read through the service. */
  settings(ids: readonly UserId[]): Promise<UserSettings[]>
  presences(ids: readonly UserId[]): Promise<UserPresence[]>
  maxQueued: number
  /** Endpoints that just got events (the local deliverer is woken for them). */
  stored(webhookIds: ReadonlySet<string>): void
  onError(error: unknown): void
}

type Change = Extract<BusEvent, { type: 'presence' | 'settings' }>

interface Pending {
  event: Change
  at: number
}

/**
 * Where changes become stored webhook events: on the node that made the change, once per change
 * (the service hands every write here, never the bus, which would repeat it on every node).
 *
 * Changes that arrive together are projected as one batch, with one read of settings and
 * presences, and stored with one store call; batches are stored one after the other, so the
 * events of one user keep the order of the changes on this node. Each change is judged by the
 * settings in force when it happened: a presence change by the settings as of the next settings
 * change of the same user in the batch (its `before`), else as read now.
 */
export class WebhookOutbox {
  readonly #deps: WebhookOutboxDeps
  #batch: Pending[] | undefined
  #tail: Promise<void> = Promise.resolve()

  constructor(deps: WebhookOutboxDeps) {
    this.#deps = deps
  }

  /** Resolves once the change's events (if any) are stored, or their storing failed (reported). */
  record(event: BusEvent): Promise<void> {
    if (event.type !== 'presence' && event.type !== 'settings') return this.#tail
    if (this.#deps.registry.subscribers.length === 0) return this.#tail
    const pending = { event, at: this.#deps.clock.now() }
    if (this.#batch) {
      this.#batch.push(pending)
      return this.#tail
    }
    const batch = [pending]
    this.#batch = batch
    this.#tail = this.#tail.then(async () => {
      // changes recorded until this batch starts join it
      if (this.#batch === batch) this.#batch = undefined
      try {
        await this.#store(batch)
      } catch (error) {
        this.#deps.onError(error)
      }
    })
    return this.#tail
  }

  /** Settles once everything recorded so far is stored. */
  idle(): Promise<void> {
    return this.#tail
  }

  async #store(batch: readonly Pending[]): Promise<void> {
    const subscribers = this.#deps.registry.subscribers
    if (subscribers.length === 0) return
    const settingsIds = new Set<UserId>()
    const presenceIds = new Set<UserId>()
    for (const { event } of batch) {
      if (event.type === 'presence') settingsIds.add(event.change.userId)
      else presenceIds.add(event.userId)
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
      const { event } = batch[i]!
      if (event.type === 'presence') {
        const id = event.change.userId
        settingsThen[i] = nextSettings.has(id) ? nextSettings.get(id) : settingsNow.get(id)
        nextPresence.set(id, event.change.before)
      } else {
        presenceThen[i] = nextPresence.get(event.userId) ?? presenceNow.get(event.userId)
        nextSettings.set(event.userId, event.before)
      }
    }

    const events: QueuedEvent[] = []
    batch.forEach(({ event, at }, i) => {
      const judged = this.#judged(event, at, settingsThen[i], presenceThen[i])
      if (judged) events.push(...eventsOf(judged, subscribers, this.#deps.view, eventId, at))
    })
    if (events.length === 0) return
    await this.#deps.store.enqueue(events, this.#deps.maxQueued)
    this.#deps.stored(new Set(events.map((e) => e.webhookId)))
  }

  #judged(
    event: Change,
    at: number,
    settings: UserSettings | undefined,
    presence: UserPresence | undefined,
  ): Judged | undefined {
    if (event.type === 'presence') {
      const { change } = event
      if (!settings) return undefined
      return {
        userId: change.userId,
        before: { presence: change.before, settings, at: instantBefore(change, at) },
        after: { presence: change.after, settings, at },
        reason: change.reason ?? 'explicit',
      }
    }
    // a settings change without both sides (none today) cannot be judged
    if (!event.before || !event.after || !presence) return undefined
    return {
      userId: event.userId,
      before: { presence, settings: event.before, at },
      after: { presence, settings: event.after, at },
      // what a real sign-out at this instant would say: hiding never tells a receiver it was hidden
      reason: 'explicit',
    }
  }
}

function eventId(): string {
  return `evt_${randomUUID().replaceAll('-', '')}`
}
