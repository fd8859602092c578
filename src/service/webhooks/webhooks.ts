import { randomBytes } from 'node:crypto'
import {
  beyondUniverses,
  expiresWithin,
  isScope,
  universesWithin,
  type ApiKeyInfo,
} from '../../core/api-key.js'
import type { Issuer } from '../../core/caller.js'
import { fail } from '../../core/errors.js'
import type { UserPresence } from '../../core/presence.js'
import type { Scope, UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { BusEvent } from '../../realtime/change-bus.js'
import type {
  Delivery,
  DeliveryState,
  WebhookRecord,
  WebhookStore,
} from '../../store/webhook-store.js'
import type { ApiKeys } from '../api-keys.js'
import type { Clock } from '../clock.js'
import type { DeliveryOutcome, DeliverySettings } from './endpoint-worker.js'
import { HttpSender } from './http-sender.js'
import { WebhookDispatcher } from './webhook-dispatcher.js'
import type { PresenceView } from './webhook-events.js'
import {
  checkDescription,
  checkEvents,
  checkFilter,
  checkSecret,
  checkUrl,
  type CreateWebhookInput,
  type UpdateWebhookInput,
} from './webhook-input.js'
import { WebhookOutbox } from './webhook-outbox.js'
import { WebhookRegistry, readScopes, stands } from './webhook-registry.js'
import { LOST_TO_ANOTHER, retryLostWrites } from '../conflicting-writes.js'

export type { Delivery, DeliveryState, WebhookEventType } from '../../store/webhook-store.js'
export type { CreateWebhookInput, UpdateWebhookInput } from './webhook-input.js'

export interface WebhookSettings extends DeliverySettings {
  /** How long a node's endpoints wait after it died before another node takes them over. */
  leaseMs: number
  /** Queued events kept per endpoint; beyond it the oldest are dropped. */
  maxQueued: number
  /**
   * Changes this node holds in memory while the webhook store fails, tried again with the
   * delivery backoff until it answers; beyond it the oldest are dropped.
   */
  maxPending: number
  /** How often each node reloads endpoints and keys (changes made on other nodes); default 1 s. */
  refreshMs?: number
}

export const defaultWebhookSettings: Readonly<WebhookSettings> = Object.freeze({
  maxAttempts: 8,
  backoffMs: 1000,
  backoffMaxMs: 60_000,
  timeoutMs: 5000,
  concurrency: 16,
  pollMs: 100,
  leaseMs: 15_000,
  maxQueued: 100_000,
  maxPending: 10_000,
  refreshMs: 1000,
})

export interface WebhooksDeps {
  /** Undefined: webhooks are off (hand-assembled stores in some tests and benches). */
  store: WebhookStore | undefined
  keys: ApiKeys
  clock: Clock
  settings: WebhookSettings
  view: PresenceView
  settingsOf(ids: readonly UserId[]): Promise<UserSettings[]>
  /** Optional: settingsOf(), answered at once (WebhookOutboxDeps.settingsNow). */
  settingsNow?(ids: readonly UserId[]): readonly UserSettings[]
  presencesOf(ids: readonly UserId[]): Promise<UserPresence[]>
  onError(error: unknown, duty: string): void
  /** Each delivery's outcome (tests and benchmarks watch them). */
  onOutcome?(outcome: DeliveryOutcome, delivery: Delivery): void
  /** Changes dropped before their events were stored (the store failed too long). */
  onUnstored?(count: number): void
}

/** An endpoint as operators see it: never its secret. */
export interface WebhookInfo extends Omit<WebhookRecord, 'secret'> {
  /**
   * The read scope its key gives it, or null when it delivers nothing: the key is gone, revoked,
   * expired or cannot read, or an API key that made or changed it (`changedBy`) is revoked.
   */
  scope: Scope | null
}

export interface WebhookDetails extends WebhookInfo {
  queued: number
  parked: number
  /** Whether this node delivers the endpoint now (it holds its lease). */
  delivering: boolean
}

/** The most endpoints a server keeps: every change is projected for each of them. */
export const MAX_WEBHOOKS = 100

const invalid = (message: string) => fail('INVALID_REQUEST', message)

/**
 * Webhooks, the use case: endpoints bound to API keys (their CRUD, for the admin API), the
 * outbox every change of the service passes through, and the delivery of the queues this node
 * holds the lease of. Behaviour for receivers: docs/reference/webhooks.md.
 *
 * @example
 * const { webhook, secret } = await service.webhooks.create({
 *   url: 'https://matchmaker.example/presence', keyId: key.id, events: ['online', 'offline'],
 * })
 */
export class Webhooks {
  readonly #deps: WebhooksDeps
  readonly #store: WebhookStore | undefined
  readonly #registry: WebhookRegistry | undefined
  readonly #outbox: WebhookOutbox | undefined
  readonly #dispatcher: WebhookDispatcher | undefined
  readonly #sender = new HttpSender()
  #refresher: NodeJS.Timeout | undefined

  constructor(deps: WebhooksDeps) {
    this.#deps = deps
    const { store, settings } = deps
    this.#store = store
    if (!store) return
    const registry = (this.#registry = new WebhookRegistry(store, deps.keys))
    this.#dispatcher = new WebhookDispatcher({
      store,
      registry,
      leaseMs: settings.leaseMs,
      onError: (error) => deps.onError(error, 'webhook leases'),
      worker: {
        store,
        clock: deps.clock,
        settings,
        send: (request) => this.#sender.send(request),
        random: Math.random,
        onError: (error) => deps.onError(error, 'webhook delivery'),
        ...(deps.onOutcome && { onOutcome: deps.onOutcome }),
      },
    })
    const dispatcher = this.#dispatcher
    this.#outbox = new WebhookOutbox({
      store,
      registry,
      clock: deps.clock,
      view: deps.view,
      settings: deps.settingsOf,
      ...(deps.settingsNow && { settingsNow: deps.settingsNow }),
      presences: deps.presencesOf,
      maxQueued: settings.maxQueued,
      maxPending: settings.maxPending,
      backoffMs: settings.backoffMs,
      backoffMaxMs: settings.backoffMaxMs,
      random: Math.random,
      stored: (ids) => dispatcher.wake(ids),
      onError: (error) => deps.onError(error, 'webhook enqueue'),
      dropped: (count) => deps.onUnstored?.(count),
    })
  }

  /** Whether this server has a webhook store (a real app always has). */
  get available(): boolean {
    return this.#store !== undefined
  }

  async start(): Promise<void> {
    if (!this.#registry || this.#refresher) return
    await this.#refresh()
    this.#refresher = setInterval(
      () => void this.#refresh(),
      this.#deps.settings.refreshMs ?? defaultWebhookSettings.refreshMs,
    )
    this.#refresher.unref()
    this.#dispatcher!.start()
  }

  async stop(): Promise<void> {
    clearInterval(this.#refresher)
    this.#refresher = undefined
    await this.#outbox?.idle()
    this.#outbox?.stop()
    await this.#dispatcher?.stop()
    this.#sender.close()
  }

  /**
   * A change made through the service (on this node): its events are stored before this
   * resolves, or held in memory after a failed try and stored when the store answers again.
   * Never rejects: a failure to store is reported (once per outage), the change itself stands.
   * `seen`, with a settings change: the presence read beside its write (WebhookOutbox).
   */
  record(event: BusEvent, seen?: UserPresence): Promise<void> {
    return this.#outbox ? this.#outbox.record(event, seen) : Promise.resolve()
  }

  /** record(), undefined when there is nothing to wait for (WebhookOutbox.recordNow). */
  recordNow(event: BusEvent): Promise<void> | undefined {
    return this.#outbox?.recordNow(event)
  }

  /** Settles once every change recorded so far is stored, or held for a retry (tests). */
  async idle(): Promise<void> {
    await this.#outbox?.idle()
  }

  /** The endpoints this node delivers now (tests, diagnostics). */
  get delivering(): string[] {
    return this.#dispatcher?.owned ?? []
  }

  /**
   * Creates an endpoint bound to `input.keyId`'s key. `issuer`: the API key making it, when not
   * the operator's admin key (see `#outlives`); the endpoint records it (`changedBy`) and
   * delivers only while it stands, so revoking a leaked admin key stops the endpoints it made.
   */
  async create(
    input: CreateWebhookInput,
    issuer?: Issuer,
  ): Promise<{ webhook: WebhookInfo; secret: string }> {
    const store = this.#required()
    const url = checkUrl(input.url)
    const events = checkEvents(input.events)
    const filter = checkFilter(input.filter)
    if (issuer) this.#within(filter, issuer)
    const description = checkDescription(input.description)
    const secret = input.secret === undefined ? generateSecret() : checkSecret(input.secret)
    const scope = await this.#checkKey(input.keyId, issuer)
    const now = this.#deps.clock.now()
    const record: WebhookRecord = {
      id: randomBytes(8).toString('hex'),
      url,
      secret,
      keyId: input.keyId,
      events,
      filter,
      enabled: input.enabled ?? true,
      description,
      createdAt: now,
      updatedAt: now,
      ...(issuer && { changedBy: [issuer.keyId] }),
    }
    // nothing is read after the write: once stored, the endpoint is answered 201, so a client
    // retrying a failure does not register it twice. The cap is counted in the store's own step
    // of the write: creates at once, on one node or across a fleet, never keep one too many
    if (!(await store.putWebhook(record, MAX_WEBHOOKS))) {
      throw invalid(`A server keeps at most ${MAX_WEBHOOKS} webhooks; delete one first.`)
    }
    await this.#changed()
    return { webhook: infoOf(record, scope), secret }
  }

  async list(): Promise<WebhookInfo[]> {
    const webhooks = await this.#required().listWebhooks()
    const scopeOf = await this.#scopes()
    return webhooks.map((w) => infoOf(w, scopeOf(w)))
  }

  /**
   * Events waiting in every endpoint's queue (in flight included) and parked, as the shared
   * store holds them: the same on every node. Zero when webhooks are off.
   */
  async backlog(): Promise<Record<DeliveryState, number>> {
    const total = { queued: 0, parked: 0 }
    if (!this.#store) return total
    const store = this.#store
    const webhooks = await store.listWebhooks()
    for (const counts of await Promise.all(webhooks.map((w) => store.counts(w.id)))) {
      total.queued += counts.queued
      total.parked += counts.parked
    }
    return total
  }

  async get(id: string): Promise<WebhookDetails | undefined> {
    const store = this.#required()
    const record = await store.getWebhook(id)
    if (!record) return undefined
    const [info, counts] = await Promise.all([this.#info(record), store.counts(id)])
    return { ...info, ...counts, delivering: this.delivering.includes(id) }
  }

  /**
   * Undefined when there is no such endpoint; `secret` only when a new one was generated.
   * `issuer` as for `create`: an expiring key changes only endpoints whose key it outlives, and
   * the endpoint it changed adds it to its `changedBy`: revoking it stops the endpoint, as one it
   * made, and so does revoking any key before it there (a change by another key, a secret rotated
   * say, does not revive an endpoint a leaked key pointed at its own address). The operator's
   * admin key is recorded nowhere, and revives nothing either.
   */
  async update(
    id: string,
    input: UpdateWebhookInput,
    issuer?: Issuer,
  ): Promise<{ webhook: WebhookInfo; secret?: string } | undefined> {
    const store = this.#required()
    if (input.secret !== undefined && input.rotateSecret) {
      throw invalid('Give secret or rotateSecret, not both.')
    }
    // written only if unchanged since read (replaceWebhook), else computed again: an update never
    // undoes another made at once, nor brings back an endpoint deleted meanwhile
    return retryLostWrites(async () => {
      const current = await store.getWebhook(id)
      if (!current) return undefined
      if (issuer?.expiresAt !== undefined) {
        const key = (await this.#deps.keys.list()).find((k) => k.id === current.keyId)
        this.#outlives(key, issuer)
      }
      const next: WebhookRecord = {
        ...current,
        updatedAt: this.#deps.clock.now(),
        ...(issuer && { changedBy: withChanger(current.changedBy, issuer.keyId) }),
      }
      if (input.url !== undefined) next.url = checkUrl(input.url)
      if (input.events !== undefined) next.events = checkEvents(input.events)
      if (input.filter !== undefined) next.filter = checkFilter(input.filter)
      if (input.description !== undefined) next.description = checkDescription(input.description)
      if (input.enabled !== undefined) next.enabled = input.enabled
      if (input.secret !== undefined) next.secret = checkSecret(input.secret)
      if (input.rotateSecret) next.secret = generateSecret()
      if (issuer) {
        this.#within(current.filter, issuer)
        this.#within(next.filter, issuer)
      }
      // read before the write: once stored, the change is answered (a rotated secret is shown)
      const webhook = await this.#info(next)
      if (!(await store.replaceWebhook(id, current, next))) return LOST_TO_ANOTHER
      await this.#changed()
      return input.rotateSecret ? { webhook, secret: next.secret } : { webhook }
    })
  }

  /** `issuer` as for `create`: a universe-limited key deletes only endpoints within its own. */
  async delete(id: string, issuer?: Issuer): Promise<boolean> {
    const store = this.#required()
    if (issuer && issuer.universes.length > 0) {
      const current = await store.getWebhook(id)
      if (!current) return false
      this.#within(current.filter, issuer)
    }
    const deleted = await store.deleteWebhook(id)
    if (deleted) await this.#changed()
    return deleted
  }

  /** Undefined when there is no such endpoint. */
  async deliveries(
    id: string,
    state: DeliveryState,
    limit: number,
  ): Promise<Delivery[] | undefined> {
    const store = this.#required()
    if (!(await store.getWebhook(id))) return undefined
    return store.listDeliveries(id, state, limit)
  }

  /** Puts parked events back in the queue (these, or all); undefined when no such endpoint. */
  async replay(id: string, eventIds?: readonly string[]): Promise<number | undefined> {
    const store = this.#required()
    if (!(await store.getWebhook(id))) return undefined
    const replayed = await store.replay(id, eventIds)
    this.#dispatcher?.wake([id])
    return replayed
  }

  #required(): WebhookStore {
    if (!this.#store)
      throw fail('UNAVAILABLE', 'Webhooks are off on this server (no webhook store).')
    return this.#store
  }

  /**
   * Refuses (403 FORBIDDEN) an endpoint bound to `key` for an `issuer` that expires before it: an
   * expiring API key (on-call access, say) that made or redirected one bound to a key that lives
   * on would have presence delivered where it chose after its own expiry. A key gone (revoked,
   * deleted) outlives nothing. The operator's admin key and keys that never expire bind nothing.
   */
  #outlives(key: Pick<ApiKeyInfo, 'id' | 'expiresAt'> | undefined, issuer: Issuer): void {
    const until = issuer.expiresAt
    if (key === undefined || until === undefined || expiresWithin(key.expiresAt, until)) return
    throw fail(
      'FORBIDDEN',
      `The API key making this change expires at ${new Date(until).toISOString()}: it may only bind webhooks to keys that expire no later, and API key ${key.id} ${key.expiresAt === undefined ? 'never expires' : `expires at ${new Date(key.expiresAt).toISOString()}`}.`,
    )
  }

  /**
   * Refuses (403 FORBIDDEN) an endpoint whose filter reaches past a universe-limited `issuer`'s
   * universes (core `universesWithin`): one it makes, changes or deletes must be filtered to some
   * of them, as it is before and after a change. An endpoint without a universe filter sees every
   * user's changes; one the operator made for everyone, pointed elsewhere or narrowed by such a
   * key, would hand it (or take from its owners) what its list does not cover.
   */
  #within(filter: WebhookRecord['filter'], issuer: Issuer): void {
    if (universesWithin(filter.universes, issuer.universes)) return
    throw beyondUniverses(
      issuer.universes,
      `it makes, changes or deletes only webhooks whose filter.universes names some of these, and this one's ${filter.universes.length === 0 ? 'names none (it sees every user)' : `names ${filter.universes.join(', ')}`}.`,
    )
  }

  /** The read scope `keyId`'s key gives a webhook; throws INVALID_REQUEST when it gives none. */
  async #checkKey(keyId: unknown, issuer?: Issuer): Promise<Scope> {
    const key =
      typeof keyId === 'string' && /^[0-9a-f]{16}$/.test(keyId)
        ? (await this.#deps.keys.list()).find((k) => k.id === keyId)
        : undefined
    if (!key) {
      throw invalid(`keyId ${JSON.stringify(String(keyId)).slice(0, 40)} names no API key.`)
    }
    if (!this.#deps.keys.isActive(key)) throw invalid(`API key ${key.id} is revoked or expired.`)
    if (issuer) this.#outlives(key, issuer)
    const scope = readScopes.find((s) => key.scopes.filter(isScope).includes(s))
    if (!scope) {
      throw invalid(
        `API key ${key.id} cannot read presence: a webhook's key needs presence:read or presence:read:private.`,
      )
    }
    return scope
  }

  /** What an endpoint's key lets it read, null when it delivers nothing (WebhookInfo.scope). */
  async #scopes(): Promise<(webhook: WebhookRecord) => Scope | null> {
    const keys = new Map((await this.#deps.keys.list()).map((k) => [k.id, k]))
    return (webhook) => {
      if (!stands(webhook, keys, this.#deps.keys)) return null
      const granted = keys.get(webhook.keyId)!.scopes.filter(isScope)
      return readScopes.find((s) => granted.includes(s)) ?? null
    }
  }

  async #info(record: WebhookRecord): Promise<WebhookInfo> {
    return infoOf(record, (await this.#scopes())(record))
  }

  /** A change made here applies on this node at once (others reload within `refreshMs`). */
  async #changed(): Promise<void> {
    await this.#refresh()
    await this.#dispatcher?.tick()
  }

  async #refresh(): Promise<void> {
    try {
      await this.#registry?.refresh()
    } catch (error) {
      this.#deps.onError(error, 'webhook refresh')
    }
  }
}

function infoOf(record: WebhookRecord, scope: Scope | null): WebhookInfo {
  const { secret, ...info } = record
  void secret
  return { ...info, scope }
}

/** `changedBy` with `keyId` added, once. */
function withChanger(changedBy: readonly string[] | undefined, keyId: string): string[] {
  const keys = [...(changedBy ?? [])]
  if (!keys.includes(keyId)) keys.push(keyId)
  return keys
}

function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`
}
