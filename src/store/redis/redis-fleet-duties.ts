import type { FleetDuties } from '../fleet-duties.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Fleet duties in Redis: a duty's lease is `SET NX PX` by script (lease.lua, the webhook queues'
 * lease too: taken or renewed in one step, the holder named by this node's id) and its result a
 * plain string with a TTL (keys.ts `dutyLease`, `dutyResult`). Leases expire by Redis's clock, so the nodes' clocks need not agree.
 * It uses the stores' connection, which they close.
 */
export class RedisFleetDuties implements FleetDuties {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  readonly #nodeId: string

  constructor(connection: RedisConnection, keys: RedisKeys, nodeId: string) {
    this.#connection = connection
    this.#keys = keys
    this.#nodeId = nodeId
  }

  async take(duty: string, ttlMs: number): Promise<boolean> {
    const key = this.#keys.dutyLease(duty)
    const held = await this.#connection.run(() =>
      this.#connection.client.presencedLease(key, this.#nodeId, String(Math.ceil(ttlMs))),
    )
    return held === 1
  }

  async release(duty: string): Promise<void> {
    const key = this.#keys.dutyLease(duty)
    await this.#connection.run(() =>
      this.#connection.client.presencedLeaseRelease(key, this.#nodeId),
    )
  }

  async publish(duty: string, value: string, ttlMs: number): Promise<void> {
    const key = this.#keys.dutyResult(duty)
    await this.#connection.run(() =>
      this.#connection.client.set(key, value, 'PX', Math.ceil(ttlMs)),
    )
  }

  read(duty: string): Promise<string | null> {
    const key = this.#keys.dutyResult(duty)
    const connection = this.#connection
    return connection.run(() => connection.read('get', [key], (c) => c.get(key)))
  }
}
