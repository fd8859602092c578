import { readFileSync } from 'node:fs'
import type { Result } from 'ioredis'
import type { FleetDuties } from '../fleet-duties.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** 1 when `owner` holds the lease after the call (webhook-lease.lua) */
    presencedLease(key: string, owner: string, ttlMs: string): Result<number, Context>
    /** 1 when `owner` held the lease and gave it up */
    presencedLeaseRelease(key: string, owner: string): Result<number, Context>
  }
}

function lua(name: string): string {
  return readFileSync(new URL(`./scripts/${name}`, import.meta.url), 'utf8')
}

/**
 * Fleet duties in Redis: a duty's lease is `SET NX PX` by script (taken or renewed in one step,
 * the holder named by this node's id) and its result a plain string with a TTL (keys.ts
 * `dutyLease`, `dutyResult`). Leases expire by Redis's clock, so the nodes' clocks need not agree.
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
    const client = connection.client
    // the same lease as a webhook queue's: one script, one meaning
    client.defineCommand('presencedLease', { numberOfKeys: 1, lua: lua('webhook-lease.lua') })
    client.defineCommand('presencedLeaseRelease', {
      numberOfKeys: 1,
      lua: lua('webhook-release.lua'),
    })
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
    return this.#connection.run(() => this.#connection.client.get(key))
  }
}
