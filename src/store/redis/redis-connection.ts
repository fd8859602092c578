import { readFileSync } from 'node:fs'
import { Cluster, Redis, type ClusterOptions, type RedisOptions, type Result } from 'ioredis'
import { errors } from '../../core/errors.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    presencedHeartbeat(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string, Context>
    presencedEnd(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string | null, Context>
    presencedDue(timer: string, ...args: string[]): Result<number, Context>
    presencedSweep(timer: string, counts: string, ...args: string[]): Result<string[], Context>
    presencedServerReport(
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string[], Context>
    presencedHistoryAppend(
      position: string,
      list: string,
      ...args: string[]
    ): Result<[string, number] | null, Context>
    presencedHistoryRead(position: string, list: string, from: string): Result<string[], Context>
    presencedRateLimit(...keysThenArgs: string[]): Result<number[], Context>
  }
}

export type RedisClient = Redis | Cluster

/** Where to connect: one Redis by URL, or a cluster by its seed nodes (host:port). */
export type RedisTarget = { url: string } | { cluster: readonly string[] }

export interface RedisConnectionOptions {
  /** A command that gets no reply within this many ms fails (as unavailable); default 500. */
  commandTimeoutMs?: number
  /** A connection attempt gives up after this many ms; default 1000. */
  connectTimeoutMs?: number
  /** Upper bound of the delay between reconnection attempts; default 500 ms. */
  maxReconnectDelayMs?: number
}

const scriptsDir = new URL('./scripts/', import.meta.url)

function lua(name: string): string {
  return readFileSync(new URL(name, scriptsDir), 'utf8')
}

/** A presence script with the functions it shares with the others in front of it. */
function presenceLua(name: string): string {
  return lua('presence.lua') + lua(name)
}

/** Keys of one joined MGET at most (see RedisConnection.mget): a bigger batch starts another. */
const MAX_JOINED_KEYS = 5000

interface MgetWaiter {
  from: number
  count: number
  resolve: (values: (string | null)[]) => void
  reject: (error: unknown) => void
}

/** Reply errors that mean "Redis cannot serve now", not "this command is wrong". */
const TRANSIENT_REPLY =
  /^(MOVED|ASK|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|BUSY)\b/

/**
 * One ioredis client (single Redis or Cluster) set up to fail fast: no offline queue, a command
 * timeout, no retries of a request, and reconnection forever in the background. A request made
 * while Redis is away therefore fails at once with STORE_UNAVAILABLE (503) instead of hanging,
 * and the node serves again as soon as the client reconnects, with no restart.
 *
 * Shared by the adapters of one node: each `retain`s it and `release`s it on close; the last
 * release disconnects.
 */
export class RedisConnection {
  readonly client: RedisClient
  readonly isCluster: boolean
  readonly #target: RedisTarget
  readonly #options: Required<RedisConnectionOptions>
  #users = 0
  #closed = false
  #refreshing = false

  constructor(target: RedisTarget, options: RedisConnectionOptions = {}) {
    this.#target = target
    this.#options = {
      commandTimeoutMs: options.commandTimeoutMs ?? 500,
      connectTimeoutMs: options.connectTimeoutMs ?? 1000,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 500,
    }
    this.isCluster = 'cluster' in target
    this.client = this.#create(false)
    // errors surface through the commands that hit them; an unhandled 'error' would crash
    this.client.on('error', () => {})
    this.client.defineCommand('presencedHeartbeat', {
      numberOfKeys: 4,
      lua: presenceLua('heartbeat.lua'),
    })
    this.client.defineCommand('presencedEnd', { numberOfKeys: 4, lua: presenceLua('end.lua') })
    this.client.defineCommand('presencedDue', { numberOfKeys: 1, lua: lua('due.lua') })
    this.client.defineCommand('presencedSweep', { numberOfKeys: 2, lua: presenceLua('sweep.lua') })
    this.client.defineCommand('presencedServerReport', {
      numberOfKeys: 2,
      lua: presenceLua('server-report.lua'),
    })
    this.client.defineCommand('presencedHistoryAppend', {
      numberOfKeys: 2,
      lua: presenceLua('history-append.lua'),
    })
    this.client.defineCommand('presencedHistoryRead', {
      numberOfKeys: 2,
      lua: lua('history-read.lua'),
    })
    // the number of keys varies with the number of rules: passed as the first argument
    this.client.defineCommand('presencedRateLimit', { lua: lua('rate-limit.lua') })
  }

  /**
   * A new client to the same Redis for pub/sub. It keeps an offline queue, so that subscribing
   * before the connection is up (or while it is re-established) waits instead of failing.
   */
  subscriber(): RedisClient {
    const client = this.#create(true)
    client.on('error', () => {})
    return client
  }

  #create(offlineQueue: boolean): RedisClient {
    const o = this.#options
    const retryStrategy = (times: number) => Math.min(times * 100, o.maxReconnectDelayMs)
    const common: RedisOptions = {
      connectTimeout: o.connectTimeoutMs,
      commandTimeout: o.commandTimeoutMs,
      maxRetriesPerRequest: 0,
      // commands issued in the same tick go out together: one round trip per node for a batch
      enableAutoPipelining: true,
    }
    if ('url' in this.#target) {
      return new Redis(this.#target.url, {
        ...common,
        enableOfflineQueue: offlineQueue,
        retryStrategy,
      })
    }
    const nodes = this.#target.cluster.map((seed) => {
      const at = seed.lastIndexOf(':')
      return at < 0
        ? { host: seed, port: 6379 }
        : { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) }
    })
    const options: ClusterOptions = {
      enableOfflineQueue: offlineQueue,
      enableAutoPipelining: true,
      clusterRetryStrategy: retryStrategy,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      slotsRefreshTimeout: o.connectTimeoutMs,
      redisOptions: common,
    }
    return new Cluster(nodes, options)
  }

  retain(): this {
    this.#users++
    return this
  }

  async release(): Promise<void> {
    if (--this.#users > 0 || this.#closed) return
    this.#closed = true
    await this.client.quit().catch(() => this.client.disconnect())
  }

  /** Resolves once connected, or after `timeoutMs` regardless (ready() tells the truth). */
  async waitReady(timeoutMs = 5000): Promise<boolean> {
    if (this.client.status === 'ready') return true
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer)
        this.client.off('ready', onReady)
        resolve(ready)
      }
      const onReady = () => done(true)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.client.once('ready', onReady)
    })
  }

  /** True when Redis answers a PING now (fails fast while disconnected). */
  async ready(): Promise<boolean> {
    if (this.#closed) return false
    try {
      return (await this.client.ping()) === 'PONG'
    } catch {
      return false
    }
  }

  /**
   * One MGET on a single Redis, joined with the other MGETs of the same tick. On a cluster, MGET only spans one slot, so keys are grouped by
   * hash tag (a user's bucket is one slot) and the MGETs, issued together, are auto-pipelined per node.
   */
  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    const client = this.client
    if (!this.isCluster) return this.#joinedMget(keys)
    const groups = new Map<string, number[]>()
    keys.forEach((key, i) => {
      const open = key.indexOf('{')
      const close = key.indexOf('}', open + 1)
      const tag = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key
      const group = groups.get(tag)
      if (group) group.push(i)
      else groups.set(tag, [i])
    })
    const out = new Array<string | null>(keys.length).fill(null)
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const values = await client.mget(...indexes.map((i) => keys[i]!))
        indexes.forEach((index, j) => (out[index] = values[j] ?? null))
      }),
    )
    return out
  }

  /** MGETs asked for in this tick, not yet sent: one command for all of them. */
  #mgets: { keys: string[]; waiters: MgetWaiter[] } | undefined

  /**
   * The MGETs of one tick (a lookup's presences and settings, and other requests' in flight) go
   * as one MGET, whose reply is split among them. Measured on the Redis HTTP bench: each command
   * costs the node a Command, a timeout timer, a pipeline slot and a reply frame, more than its
   * keys do.
   */
  #joinedMget(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return Promise.resolve([])
    let batch = this.#mgets
    if (batch === undefined || batch.keys.length + keys.length > MAX_JOINED_KEYS) {
      batch = this.#mgets = { keys: [], waiters: [] }
      const sending = batch
      process.nextTick(() => this.#sendMgets(sending))
    }
    const from = batch.keys.length
    for (const key of keys) batch.keys.push(key)
    return new Promise((resolve, reject) => {
      batch.waiters.push({ from, count: keys.length, resolve, reject })
    })
  }

  #sendMgets(batch: { keys: string[]; waiters: MgetWaiter[] }): void {
    if (this.#mgets === batch) this.#mgets = undefined
    if (batch.waiters.length === 1) {
      const [only] = batch.waiters
      this.client.mget(...batch.keys).then(only!.resolve, only!.reject)
      return
    }
    this.client.mget(...batch.keys).then(
      (values) => {
        for (const w of batch.waiters) w.resolve(values.slice(w.from, w.from + w.count))
      },
      (error: unknown) => {
        for (const w of batch.waiters) w.reject(error)
      },
    )
  }

  /** Runs Redis commands, turning "Redis is not there" into STORE_UNAVAILABLE. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      const mapped = toStoreError(error)
      if (this.isCluster && mapped !== error) this.#refreshSlots()
      throw mapped
    }
  }

  /**
   * After a failover, ioredis follows MOVED for a lone command but not inside an auto-pipelined
   * batch of mixed commands: the batch fails and the slot map stays stale. Refreshing it here
   * lets the next request reach the new master. The failed request is not retried, since part
   * of it may have been applied; the caller retries (a 503 says so).
   */
  #refreshSlots(): void {
    if (this.#refreshing) return
    this.#refreshing = true
    ;(this.client as Cluster).refreshSlotsCache(() => {
      this.#refreshing = false
    })
  }
}

/**
 * Connection failures, timeouts and cluster outages become STORE_UNAVAILABLE (503 in every
 * protocol); a reply error that is not transient is a bug and stays what it is.
 */
export function toStoreError(error: unknown): unknown {
  if (
    error instanceof Error &&
    error.name === 'ReplyError' &&
    !TRANSIENT_REPLY.test(error.message)
  ) {
    return error
  }
  return errors.storeUnavailable()
}
