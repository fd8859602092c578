import type { UserId } from '../core/user-id.js'
import type { RedisKeys } from '../store/redis/keys.js'
import type { RedisConnection } from '../store/redis/redis-connection.js'
import type { Holdings, HoldingsVerdict, StreamHoldings } from './stream-holdings.js'

/**
 * Fleet mode's holdings: per user one hash in the user's slot (keys.ts `streamHoldings`), a field
 * per node with its share and the instant its lease ends, read, compared and written by one
 * script (stream-holdings.lua) in one round trip. Lapsed fields are judged by Redis's clock, so
 * the nodes' clocks need not agree. It uses the stores' connection, which they close.
 */
export class RedisStreamHoldings implements StreamHoldings {
  readonly leaseMs: number
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  readonly #nodeId: string

  constructor(
    connection: RedisConnection,
    keys: RedisKeys,
    options: { nodeId: string; leaseMs: number },
  ) {
    this.#connection = connection
    this.#keys = keys
    this.#nodeId = options.nodeId
    this.leaseMs = options.leaseMs
  }

  async set(viewer: UserId, share: Holdings, max?: Partial<Holdings>): Promise<HoldingsVerdict> {
    const [ok, streams, watches] = await this.#call(
      viewer,
      String(share.streams),
      String(share.watches),
      max,
    )
    return ok === 1 ? { ok: true } : { ok: false, others: { streams, watches } }
  }

  async others(viewer: UserId): Promise<Holdings> {
    const [, streams, watches] = await this.#call(viewer, '-', '0')
    return { streams, watches }
  }

  #call(
    viewer: UserId,
    streams: string,
    watches: string,
    max?: Partial<Holdings>,
  ): Promise<[number, number, number]> {
    return this.#connection.run(() =>
      this.#connection.client.presencedStreamHoldings(
        this.#keys.streamHoldings(viewer),
        this.#nodeId,
        String(this.leaseMs),
        streams,
        watches,
        String(max?.streams ?? 0),
        String(max?.watches ?? 0),
      ),
    )
  }
}
