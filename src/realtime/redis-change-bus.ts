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
  /**
   * Called when a publish could not reach Redis, a message could not be read, or a subscription
   * attempt or check failed (each attempt: say it once, see `onListening`).
   */
  onError?: (error: unknown) => void
  /**
   * Called when this node starts or stops hearing the fleet: false when the subscription is lost
   * (its connection dropped, a SUBSCRIBE or a check failed), true once it holds again.
   */
  onListening?: (listening: boolean) => void
  /** How often the subscriber connection is checked (a PING on it); default 5000 ms. */
  checkMs?: number
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
 * The bus keeps its subscription itself, on a single Redis and on a cluster alike: after a
 * reconnect, or on another cluster node when its node went (RedisConnection.subscriber), it
 * subscribes again until that holds, then tells the `onResubscribed` handlers. A PING on the
 * subscriber connection every `checkMs` finds a node that hangs (its connection stays open and
 * hears nothing); on a cluster the bus then moves to another node.
 *
 * A RedisPresenceStore given this bus's channel and node id publishes presence changes from its
 * scripts (a ChangeMessage); this bus then only delivers those locally and reads them on others.
 */
export class RedisChangeBus implements ChangeBus {
  readonly nodeId = randomUUID()
  /** Resolves once this node listens on the channel. */
  readonly subscribed: Promise<void>
  readonly #connection: RedisConnection
  #subscriber: RedisClient
  readonly #handlers = new Set<(event: BusEvent) => void>()
  readonly #resubscribed = new Set<() => void>()
  readonly #options: RedisChangeBusOptions
  readonly #check: NodeJS.Timeout
  #closed = false
  #resubscribing = false
  /** The subscription held once: a connection that is ready again subscribes again. */
  #held = false
  #listening = false
  /** Delay before a cluster subscriber that ended is replaced (grows while they keep ending). */
  #replaceDelayMs = 0

  constructor(connection: RedisConnection, options: RedisChangeBusOptions) {
    this.#connection = connection.retain()
    this.#options = options
    this.#subscriber = this.#attach()
    this.subscribed = this.#subscribeUntilDone().then(() => void (this.#held = true))
    this.#check = setInterval(() => void this.#checkSubscriber(), options.checkMs ?? 5000)
    this.#check.unref()
  }

  /** Whether this node hears the fleet now (its subscription holds, as last checked). */
  get listening(): boolean {
    return this.#listening
  }

  /**
   * A subscriber connection (RedisConnection.subscriber): each time it is ready again, the bus
   * subscribes again (the messages of the gap are lost); a cluster one that ends is replaced by
   * one to another node.
   */
  #attach(): RedisClient {
    const client = this.#connection.subscriber()
    client.on('message', (channel: string, message: string) => {
      if (channel === this.#options.channel) this.#receive(message)
    })
    client.on('ready', () => {
      this.#replaceDelayMs = 0
      if (this.#held) void this.#resubscribe()
    })
    client.on('close', () => {
      if (this.#subscriber === client) this.#setListening(false)
    })
    client.on('end', () => {
      if (this.#closed || this.#subscriber !== client || !this.#connection.isCluster) return
      this.#replaceDelayMs = Math.min(Math.max(this.#replaceDelayMs * 2, 100), 2000)
      setTimeout(() => {
        if (this.#closed || this.#subscriber !== client) return
        this.#subscriber = this.#attach()
      }, this.#replaceDelayMs).unref()
    })
    return client
  }

  #setListening(listening: boolean): void {
    if (this.#listening === listening || (this.#closed && listening)) return
    this.#listening = listening
    this.#options.onListening?.(listening)
  }

  /**
   * A PING on the subscriber connection: one that does not answer (a node that hangs, the
   * connection open) hears nothing either. On a cluster the connection is dropped, for one to
   * another node; on a single Redis there is no other: the bus listens again when it answers.
   */
  async #checkSubscriber(): Promise<void> {
    const client = this.#subscriber
    if (this.#closed || !this.#held || this.#resubscribing || client.status !== 'ready') return
    try {
      await client.ping()
      if (client === this.#subscriber && client.status === 'ready' && !this.#resubscribing) {
        this.#setListening(true)
      }
    } catch (error) {
      if (this.#closed || client !== this.#subscriber) return
      this.#setListening(false)
      // a single Redis that hangs hangs for every command: the connection's outage, said there
      if (!this.#connection.isCluster) return
      this.#options.onError?.(error)
      client.disconnect()
    }
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
   * because Redis was slow once. On a cluster, a failed attempt drops the connection: the next
   * one is to another node (one that hangs would never answer).
   */
  async #subscribeUntilDone(): Promise<void> {
    for (let delayMs = 100; !this.#closed; delayMs = Math.min(delayMs * 2, 2000)) {
      const client = this.#subscriber
      try {
        await client.subscribe(this.#options.channel)
        if (client !== this.#subscriber || client.status !== 'ready') continue
        this.#setListening(true)
        return
      } catch (error) {
        if (this.#closed) return
        this.#setListening(false)
        this.#options.onError?.(error)
        if (this.#connection.isCluster && client === this.#subscriber) client.disconnect()
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref())
      }
    }
  }

  async publish(event: BusEvent, batch?: number): Promise<void> {
    this.#deliver(event)
    if (event.type === 'presence' && publishedByStore(event.change)) return
    const message = JSON.stringify({ n: this.nodeId, e: event } satisfies Envelope)
    const connection = this.#connection
    try {
      if (batch === undefined) await connection.client.publish(this.#options.channel, message)
      else {
        // one of `batch` publishes sent together: Redis runs them one after the other
        const deadline = connection.deadlineFor(batch)
        await connection.command('publish', [this.#options.channel, message], deadline)
      }
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
    clearInterval(this.#check)
    this.#handlers.clear()
    this.#listening = false
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
