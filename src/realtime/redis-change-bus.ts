import { randomUUID } from 'node:crypto'
import { changeOfMessage, type ChangeMessage } from '../store/redis/presence-codec.js'
import type { RedisClient, RedisConnection } from '../store/redis/redis-connection.js'
import { publishedByStore } from '../store/redis/redis-presence-store.js'
import type { BusEvent, ChangeBus } from './change-bus.js'

interface Envelope {
  /** The publishing node: a node skips its own messages, it delivered them already. */
  n: string
  e: BusEvent
}

export interface RedisChangeBusOptions {
  channel: string
  /** Called when a publish could not reach Redis or a message could not be read. */
  onError?: (error: unknown) => void
}

/**
 * Carries BusEvents between nodes over Redis pub/sub, on a subscriber connection of its own.
 *
 * Each event reaches the handlers of every node exactly once. The publishing node delivers to
 * its own handlers at once, in `publish`, and skips its own message when Redis echoes it: local
 * watchers do not wait for a round trip, and still hear local changes while Redis is away.
 *
 * Events of one node arrive everywhere in the order it published them; events of different nodes
 * may interleave differently on each node (on a cluster they enter Redis at different shards).
 * Pub/sub is at most once: a node that is disconnected when an event is published misses it.
 * Watchers resynchronise by reading current presence when they (re)subscribe.
 *
 * A RedisPresenceStore given this bus's channel and node id publishes presence changes from its
 * scripts (a ChangeMessage); this bus then only delivers those locally and reads them on others.
 */
export class RedisChangeBus implements ChangeBus {
  readonly nodeId = randomUUID()
  /** Resolves once this node listens on the channel. */
  readonly subscribed: Promise<void>
  readonly #connection: RedisConnection
  readonly #subscriber: RedisClient
  readonly #handlers = new Set<(event: BusEvent) => void>()
  readonly #resubscribed = new Set<() => void>()
  readonly #options: RedisChangeBusOptions
  #closed = false
  #resubscribing = false

  constructor(connection: RedisConnection, options: RedisChangeBusOptions) {
    this.#connection = connection.retain()
    this.#options = options
    this.#subscriber = connection.subscriber()
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === options.channel) this.#receive(message)
    })
    this.subscribed = this.#subscribeUntilDone()
    // each reconnect subscribes again here, not in ioredis (see RedisConnection.subscriber);
    // the messages of the gap are lost
    let connected = false
    this.#subscriber.on('ready', () => {
      if (connected) void this.#resubscribe()
      connected = true
    })
  }

  /**
   * Subscribes again after a reconnect, until it holds (one attempt at a time: a reconnect
   * meanwhile leaves it to the one under way), then tells the `onResubscribed` handlers. Never
   * rejects.
   */
  async #resubscribe(): Promise<void> {
    if (this.#resubscribing) return
    this.#resubscribing = true
    try {
      await this.#subscribeUntilDone()
    } finally {
      this.#resubscribing = false
    }
    if (this.#closed) return
    for (const handler of this.#resubscribed) {
      try {
        handler()
      } catch (error) {
        this.#options.onError?.(error)
      }
    }
  }

  /**
   * SUBSCRIBE until it succeeds or the bus closes; never rejects. A refused or timed-out
   * subscription (a busy Redis at start, or just back) is not retried by ioredis unless the
   * connection drops, and a node must not start, or go on, without hearing the fleet, nor fail
   * because Redis was slow once.
   */
  async #subscribeUntilDone(): Promise<void> {
    for (let delayMs = 100; !this.#closed; delayMs = Math.min(delayMs * 2, 2000)) {
      try {
        await this.#subscriber.subscribe(this.#options.channel)
        return
      } catch (error) {
        if (this.#closed) return
        this.#options.onError?.(error)
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref())
      }
    }
  }

  async publish(event: BusEvent): Promise<void> {
    this.#deliver(event)
    if (event.type === 'presence' && publishedByStore(event.change)) return
    const envelope: Envelope = { n: this.nodeId, e: event }
    try {
      await this.#connection.client.publish(this.#options.channel, JSON.stringify(envelope))
    } catch (error) {
      // the change itself is stored; only other nodes' watchers miss this event (see above)
      this.#options.onError?.(error)
    }
  }

  subscribe(handler: (event: BusEvent) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  onResubscribed(handler: () => void): () => void {
    this.#resubscribed.add(handler)
    return () => this.#resubscribed.delete(handler)
  }

  /**
   * Every node keeps one subscriber connection on the channel, so its subscriber count is the
   * number of live nodes. On a cluster each node counts only its own clients: summed.
   */
  async nodes(): Promise<number> {
    const client = this.#connection.client
    const servers = 'nodes' in client ? client.nodes('all') : [client]
    const counts = await this.#connection.run(() =>
      Promise.all(servers.map((server) => server.pubsub('NUMSUB', this.#options.channel))),
    )
    return counts.reduce<number>((sum, reply) => sum + Number((reply as unknown[])[1] ?? 0), 0)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#handlers.clear()
    this.#subscriber.disconnect()
    await this.#connection.release()
  }

  #receive(message: string): void {
    let event: BusEvent
    try {
      const envelope = JSON.parse(message) as Envelope | ChangeMessage
      if (envelope.n === this.nodeId) return
      event = 'c' in envelope ? { type: 'presence', change: changeOfMessage(envelope) } : envelope.e
    } catch (error) {
      this.#options.onError?.(error)
      return
    }
    this.#deliver(event)
  }

  #deliver(event: BusEvent): void {
    for (const handler of this.#handlers) {
      try {
        handler(event)
      } catch (error) {
        // one failing watcher must not keep the event from the others
        this.#options.onError?.(error)
      }
    }
  }
}
