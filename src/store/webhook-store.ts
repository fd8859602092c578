import type { UserId } from '../core/user-id.js'

export type WebhookEventType = 'online' | 'update' | 'offline'

export const webhookEventTypes: readonly WebhookEventType[] = Object.freeze([
  'online',
  'update',
  'offline',
])

/** Which changes an endpoint wants: every list given must match; an empty list matches all. */
export interface WebhookFilter {
  universes: string[]
  titles: string[]
  users: UserId[]
}

/**
 * An endpoint as stored. Unlike an API key's, the secret is kept as given: it signs every
 * delivery, so it must be at hand (it is never listed).
 */
export interface WebhookRecord {
  id: string
  url: string
  secret: string
  /** The API key whose scope decides what the endpoint sees; revoking it stops deliveries. */
  keyId: string
  /**
   * The API keys (admin scope) that made the endpoint or changed it, each once, in that order;
   * absent when only the operator's admin key did. Revoking any of them (or a key up its chain
   * of issuers) stops deliveries too: each chose where and what presence goes.
   */
  changedBy?: string[] | undefined
  events: WebhookEventType[]
  filter: WebhookFilter
  enabled: boolean
  description: string
  createdAt: number
  updatedAt: number
}

/** One event to deliver to one endpoint, as the change's node stored it. */
export interface QueuedEvent {
  webhookId: string
  /** Unique per endpoint; the same on every attempt, so a receiver can drop duplicates. */
  eventId: string
  userId: UserId
  type: WebhookEventType
  /** The exact JSON body to POST: projected and rendered when the change happened. */
  body: string
  createdAt: number
}

/** A stored event with its place in the endpoint's queue and what its attempts met. */
export interface Delivery extends QueuedEvent {
  /** Orders the endpoint's queue (a stream entry id, a row number): opaque to callers. */
  position: string
  /** Failed attempts so far. */
  attempts: number
  lastError: string | undefined
  lastAttemptAt: number | undefined
  /** When it was set aside after its last allowed attempt; undefined while queued. */
  parkedAt: number | undefined
}

export type DeliveryState = 'queued' | 'parked'

/** What one call of `reclaim` found; call again from `cursor` until `done`. */
export interface Reclaimed {
  deliveries: Delivery[]
  cursor: string
  done: boolean
}

/**
 * Endpoints and their durable delivery queues. Adapters: SqliteWebhookStore (embedded),
 * RedisWebhookStore (fleet: a stream per endpoint read through a consumer group). The contract
 * suite (contract/webhook-store.contract.ts) pins the semantics both share.
 *
 * A queue is delivered by one owner at a time, which holds the endpoint's lease. An owner first
 * `reclaim`s what earlier owners claimed and never finished, then `claim`s new events; both in
 * queue order, so per-user order survives a change of owner. Every claimed delivery ends in
 * `complete` or `park`.
 */
export interface WebhookStore {
  /**
   * Creates or replaces an endpoint; creating one creates its (empty) queue. With `max`, a new
   * endpoint is stored only while fewer than `max` are, checked and written in one step (a
   * transaction, a script), so that creates made at once, on one node or across a fleet, never
   * keep more than `max`: false, storing nothing, when it would be one too many. Replacing an
   * endpoint that exists is never refused.
   */
  putWebhook(record: WebhookRecord, max?: number): Promise<boolean>
  /**
   * Stores `next` in place of endpoint `id` if it is still `expected` (as it was read), in one
   * step; false, storing nothing, if it changed or was deleted meanwhile. An update computed from
   * what was read is written with it, so two updates at once never lose one another and an
   * update never brings back an endpoint deleted meanwhile, on one node or across a fleet.
   */
  replaceWebhook(id: string, expected: WebhookRecord, next: WebhookRecord): Promise<boolean>
  getWebhook(id: string): Promise<WebhookRecord | undefined>
  listWebhooks(): Promise<WebhookRecord[]>
  /** Deletes an endpoint with its queue and parked events; false when there was none. */
  deleteWebhook(id: string): Promise<boolean>

  /**
   * Appends events to their endpoints' queues, in the order given. An endpoint holding more than
   * `maxQueued` queued events loses its oldest (presence is about now). Events of an endpoint
   * that no longer exists are dropped.
   */
  enqueue(events: readonly QueuedEvent[], maxQueued: number): Promise<void>

  /**
   * Takes the lease of an endpoint's queue for `ttlMs`, or extends it when `owner` holds it
   * already; false while another owner holds it.
   */
  acquireLease(webhookId: string, owner: string, ttlMs: number): Promise<boolean>
  /** Gives the lease up, if `owner` still holds it. */
  releaseLease(webhookId: string, owner: string): Promise<void>
  /** Says `node` is alive for `ttlMs`; returns how many nodes are alive (this one included). */
  announceNode(node: string, ttlMs: number): Promise<number>

  /**
   * Claims, for `owner`, up to `count` deliveries that an owner claimed and neither completed
   * nor parked, in queue order, starting after `cursor` ('0' to start).
   */
  reclaim(webhookId: string, owner: string, cursor: string, count: number): Promise<Reclaimed>
  /** Claims up to `count` events nobody has claimed yet, in queue order. */
  claim(webhookId: string, owner: string, count: number): Promise<Delivery[]>
  /** Records a failed attempt (the delivery stays claimed). */
  recordFailure(delivery: Delivery): Promise<void>
  /** Removes a delivered (or dropped) event from its queue. */
  complete(delivery: Delivery): Promise<void>
  /** Moves a delivery out of the queue into the parked set, after its last allowed attempt. */
  park(delivery: Delivery): Promise<void>

  /** Queued events in queue order, or parked events oldest first; at most `limit`. */
  listDeliveries(webhookId: string, state: DeliveryState, limit: number): Promise<Delivery[]>
  /**
   * Puts parked events back at the end of the queue with no attempts (those with these event
   * ids, or all); returns how many.
   */
  replay(webhookId: string, eventIds?: readonly string[]): Promise<number>
  counts(webhookId: string): Promise<Record<DeliveryState, number>>

  close(): Promise<void>
}
