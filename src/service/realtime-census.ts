import type { UserId } from '../core/user-id.js'
import type { Fanout } from '../realtime/fanout.js'
import type { PresenceFeed } from './presence-feed.js'

/** How a real-time client is connected. */
export type Transport = 'websocket' | 'sse'

/** What is open on this node for real-time clients and the dashboard, now. */
export interface RealtimeCounts {
  /** Open native real-time connections, by transport. */
  connections: Record<Transport, number>
  /** Streams with a connection, and streams kept for a resume after theirs ended. */
  streams: { attached: number; detached: number }
  /** Watches: one per stream and user it watches. */
  subscriptions: number
  /** Distinct users watched by at least one stream. */
  watchedUsers: number
  /** Dashboard feed listeners, by the view they get. */
  feedStreams: { public: number; admin: number }
}

/**
 * Counts what the service's real-time surfaces hold open, for metrics. Transports report their
 * connections here; fan-outs and feeds are the ones the service built.
 */
export class RealtimeCensus {
  readonly #connections: Record<Transport, number> = { websocket: 0, sse: 0 }
  readonly #fanouts = new Set<Fanout>()
  readonly #feeds = new Set<PresenceFeed>()

  /** A connection opened; call the result (once or more) when it closes. */
  connectionOpened(transport: Transport): () => void {
    this.#connections[transport]++
    let closed = false
    return () => {
      if (closed) return
      closed = true
      this.#connections[transport]--
    }
  }

  /**
   * The same count without a closure per connection: a transport that keeps its own state
   * calls `opened` once and `closed` once.
   */
  opened(transport: Transport): void {
    this.#connections[transport]++
  }

  closed(transport: Transport): void {
    this.#connections[transport]--
  }

  track(fanout: Fanout): Fanout
  track(feed: PresenceFeed): PresenceFeed
  track(surface: Fanout | PresenceFeed): Fanout | PresenceFeed {
    if ('listenersByKind' in surface) this.#feeds.add(surface)
    else this.#fanouts.add(surface)
    return surface
  }

  /** Whether a stream of any fan-out of the service watches `userId`. */
  isWatched(userId: UserId): boolean {
    for (const fanout of this.#fanouts) if (fanout.watches(userId)) return true
    return false
  }

  counts(): RealtimeCounts {
    const counts: RealtimeCounts = {
      connections: { ...this.#connections },
      streams: { attached: 0, detached: 0 },
      subscriptions: 0,
      watchedUsers: 0,
      feedStreams: { public: 0, admin: 0 },
    }
    for (const fanout of this.#fanouts) {
      const stats = fanout.stats()
      counts.streams.attached += stats.attached
      counts.streams.detached += stats.detached
      counts.subscriptions += stats.subscriptions
      counts.watchedUsers += stats.targets
    }
    for (const feed of this.#feeds) {
      const listeners = feed.listenersByKind()
      counts.feedStreams.public += listeners.public
      counts.feedStreams.admin += listeners.admin
    }
    return counts
  }
}
