import type { Delivery, WebhookRecord, WebhookStore } from '../../store/webhook-store.js'
import type { Clock } from '../clock.js'
import type { OutgoingRequest, SendResult } from './http-sender.js'
import { retryDelay } from './retry-delay.js'
import { signWebhook, webhookHeaders } from './webhook-signature.js'

export interface DeliverySettings {
  /** Tries of one event before it is parked. */
  maxAttempts: number
  /** Wait after the first failed try; doubled after each further one, jittered. */
  backoffMs: number
  backoffMaxMs: number
  /** A try gets no 2xx within this long: failed. */
  timeoutMs: number
  /** Requests in flight per endpoint; each user's events stay on one of these lanes. */
  concurrency: number
  /** How often an idle endpoint's queue is read for events stored on other nodes. */
  pollMs: number
}

export interface CurrentEndpoint {
  webhook: WebhookRecord
  /** Its key is live, and so is every API key that made or changed it (`changedBy`). */
  keyActive: boolean
}

export type DeliveryOutcome = 'delivered' | 'retrying' | 'parked' | 'dropped'

export interface EndpointWorkerDeps {
  store: WebhookStore
  clock: Clock
  settings: DeliverySettings
  /** This node's id: the owner of what it claims. */
  owner: string
  /**
   * The endpoint as its store has it now (undefined: deleted) and whether its key is live, read
   * before every try: a URL or secret change, a disable, or a key revoked or expired, made on any
   * node, applies from the next try, not from this node's next registry refresh.
   */
  current(): Promise<CurrentEndpoint | undefined>
  send(request: OutgoingRequest): Promise<SendResult>
  random(): number
  onError(error: unknown): void
  onOutcome?(outcome: DeliveryOutcome, delivery: Delivery): void
}

/** Events buffered in memory per lane before the worker stops claiming. */
const BUFFER_PER_LANE = 64
/** Wait before retrying a store operation that failed (the store is down). */
const STORE_RETRY_MS = 500

interface Lane {
  queue: Delivery[]
  running: boolean
}

/**
 * Delivers one endpoint's queue while this node holds its lease. It first takes over what earlier
 * owners claimed and never finished (a node killed mid-delivery), then claims new events; both in
 * queue order. Events are spread over `concurrency` lanes by user, each lane delivering one event
 * at a time and retrying it until it succeeds or is parked before the next: so a user's events
 * are never delivered out of order, and a failing receiver holds back only the users of its lane
 * while it retries.
 *
 * It delivers only while its lease is valid (`leaseUntil`, set by the dispatcher well inside the
 * lease's real lifetime), so a node that can no longer renew stops before another may take over.
 */
export class EndpointWorker {
  readonly webhookId: string
  readonly #deps: EndpointWorkerDeps
  readonly #lanes: Lane[]
  readonly #maxBuffered: number
  readonly #drains = new Set<Promise<void>>()
  readonly #sleeps = new Set<() => void>()
  #buffered = 0
  #active = true
  #leaseUntil = 0
  readonly #waiters = new Set<() => void>()
  #loop: Promise<void> | undefined

  constructor(webhookId: string, deps: EndpointWorkerDeps) {
    this.webhookId = webhookId
    this.#deps = deps
    const lanes = Math.max(1, deps.settings.concurrency)
    this.#lanes = Array.from({ length: lanes }, () => ({ queue: [], running: false }))
    this.#maxBuffered = lanes * BUFFER_PER_LANE
  }

  /** The lease is good until `until` (performance.now() time). */
  extendLease(until: number): void {
    this.#leaseUntil = Math.max(this.#leaseUntil, until)
    if (this.#leaseValid) this.wake()
  }

  get #leaseValid(): boolean {
    return performance.now() < this.#leaseUntil
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  /** Events were stored for this endpoint: read them now rather than at the next poll. */
  wake(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }

  /**
   * Stops claiming, lets each try in flight finish (bounded by the timeout), and drops what is
   * buffered: it stays claimed in the store, for the next owner to reclaim in order.
   */
  async stop(): Promise<void> {
    this.#active = false
    this.wake()
    for (const cancel of [...this.#sleeps]) cancel()
    await this.#loop
    await Promise.all([...this.#drains])
  }

  async #run(): Promise<void> {
    let cursor = '0'
    let reclaiming = true
    while (this.#active) {
      try {
        await this.#roomAndLease()
        if (!this.#active) break
        const room = this.#maxBuffered - this.#buffered
        if (reclaiming) {
          const batch = await this.#deps.store.reclaim(
            this.webhookId,
            this.#deps.owner,
            cursor,
            room,
          )
          this.#dispatch(batch.deliveries)
          cursor = batch.cursor
          reclaiming = !batch.done
          continue
        }
        const claimed = await this.#deps.store.claim(this.webhookId, this.#deps.owner, room)
        if (claimed.length > 0) this.#dispatch(claimed)
        else await this.#idle(this.#deps.settings.pollMs)
      } catch (error) {
        this.#deps.onError(error)
        await this.#sleep(STORE_RETRY_MS)
      }
    }
  }

  /**
   * Waits until the buffer is at most half full and the lease is valid (or the worker stops):
   * claims then come in batches rather than one event per delivery.
   */
  async #roomAndLease(): Promise<void> {
    while (this.#active && (this.#buffered > this.#maxBuffered / 2 || !this.#leaseValid)) {
      await this.#idle(this.#deps.settings.pollMs)
    }
  }

  #dispatch(deliveries: readonly Delivery[]): void {
    for (const delivery of deliveries) {
      const lane = this.#lanes[laneOf(delivery.userId, this.#lanes.length)]!
      lane.queue.push(delivery)
      this.#buffered++
      if (lane.running) continue
      lane.running = true
      const drain = this.#drain(lane).finally(() => {
        lane.running = false
        this.#drains.delete(drain)
      })
      this.#drains.add(drain)
    }
  }

  async #drain(lane: Lane): Promise<void> {
    while (this.#active && lane.queue.length > 0) {
      const left = await this.#deliver(lane.queue[0]!)
      if (!left) return
      lane.queue.shift()
      if (--this.#buffered === Math.floor(this.#maxBuffered / 2)) this.wake()
    }
  }

  /** Tries until the delivery leaves the queue (true), or the worker stops first (false). */
  async #deliver(delivery: Delivery): Promise<boolean> {
    const { settings, clock } = this.#deps
    for (;;) {
      if (!this.#active) return false
      if (!this.#leaseValid) {
        await this.#idle(settings.pollMs)
        continue
      }
      let current: CurrentEndpoint | undefined
      try {
        current = await this.#deps.current()
      } catch (error) {
        this.#deps.onError(error)
        await this.#sleep(STORE_RETRY_MS)
        continue
      }
      // deleted: its queue went with it
      if (!current) return true
      const { webhook } = current
      // events projected for a revoked key are never delivered, to anyone
      if (!current.keyActive) {
        if (!(await this.#storeOp(() => this.#deps.store.complete(delivery)))) return false
        this.#deps.onOutcome?.('dropped', delivery)
        return true
      }
      // disabled (on any node; this node's dispatcher retires the worker at its next visit): the
      // event waits in the queue, and is tried once the endpoint is enabled again
      if (!webhook.enabled) {
        await this.#idle(settings.pollMs)
        continue
      }
      const timestamp = Math.floor(clock.now() / 1000)
      const result = await this.#deps.send({
        url: webhook.url,
        body: delivery.body,
        timeoutMs: settings.timeoutMs,
        headers: {
          'user-agent': 'presenced-webhooks',
          [webhookHeaders.eventId]: delivery.eventId,
          [webhookHeaders.webhookId]: webhook.id,
          [webhookHeaders.attempt]: String(delivery.attempts + 1),
          [webhookHeaders.timestamp]: String(timestamp),
          [webhookHeaders.signature]: signWebhook(webhook.secret, timestamp, delivery.body),
        },
      })
      if (result.ok) {
        // once sent, the outcome is recorded even while stopping, else it would be sent again
        if (!(await this.#storeOp(() => this.#deps.store.complete(delivery), true))) return false
        this.#deps.onOutcome?.('delivered', delivery)
        return true
      }
      delivery.attempts++
      delivery.lastError = result.error
      delivery.lastAttemptAt = clock.now()
      if (delivery.attempts >= settings.maxAttempts) {
        delivery.parkedAt = delivery.lastAttemptAt
        if (!(await this.#storeOp(() => this.#deps.store.park(delivery), true))) return false
        this.#deps.onOutcome?.('parked', delivery)
        return true
      }
      await this.#storeOp(() => this.#deps.store.recordFailure(delivery), true)
      this.#deps.onOutcome?.('retrying', delivery)
      await this.#sleep(
        retryDelay(delivery.attempts, settings.backoffMs, settings.backoffMaxMs, this.#deps.random),
      )
    }
  }

  /**
   * Runs a store operation until it succeeds; false when the worker stopped first. `once`: try
   * at least once even when stopping.
   */
  async #storeOp(op: () => Promise<void>, once = false): Promise<boolean> {
    let first = once
    while (this.#active || first) {
      first = false
      try {
        await op()
        return true
      } catch (error) {
        this.#deps.onError(error)
        await this.#sleep(STORE_RETRY_MS)
      }
    }
    return false
  }

  /** Waits for `wake()` or `ms`, whichever first. */
  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#waiters.add(done)
    })
  }

  /** Waits `ms`, or less if the worker stops. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = () => {
        clearTimeout(timer)
        this.#sleeps.delete(cancel)
        resolve()
      }
      const timer = setTimeout(cancel, ms)
      this.#sleeps.add(cancel)
    })
  }
}

/** FNV-1a of the decimal id: a user's events always take the same lane. */
function laneOf(userId: string, lanes: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % lanes
}
