import { LocalChangeBus } from '../realtime/local-change-bus.js'
import type { ChangeBus } from '../realtime/change-bus.js'
import { MemoryHistory, type History, type HistoryBounds } from '../realtime/history.js'
import { RedisHistory } from '../realtime/redis-history.js'
import { RedisChangeBus } from '../realtime/redis-change-bus.js'
import { RedisStreamCheckpoints } from '../realtime/redis-stream-checkpoints.js'
import type { StreamCheckpoints } from '../realtime/stream-checkpoints.js'
import { RedisStreamHoldings } from '../realtime/redis-stream-holdings.js'
import type { StreamHoldings } from '../realtime/stream-holdings.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import type { PresenceStore } from '../store/presence-store.js'
import type { ProfileStore } from '../store/profile-store.js'
import type { RateLimiter } from '../store/rate-limiter.js'
import { RedisKeys } from '../store/redis/keys.js'
import {
  CLUSTER_SLOTS,
  RedisConnection,
  type RedisTarget,
} from '../store/redis/redis-connection.js'
import { StoreOutages, type OutageObserver } from '../store/redis/store-outages.js'
import { isStoreUnavailable } from '../core/errors.js'
import { RedisPresenceStore } from '../store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../store/redis/redis-profile-store.js'
import { RedisRateLimiter } from '../store/redis/redis-rate-limiter.js'
import { SqliteProfileStore } from '../store/sqlite/sqlite-profile-store.js'
import { SqliteWebhookStore } from '../store/sqlite/sqlite-webhook-store.js'
import { RedisWebhookStore } from '../store/redis/redis-webhook-store.js'
import { RedisFleetDuties } from '../store/redis/redis-fleet-duties.js'
import type { FleetDuties } from '../store/fleet-duties.js'
import { systemClock, type Clock } from '../service/clock.js'
import { DEFAULT_REDIS_NEAR_CACHE } from './config.js'
import type { WebhookStore } from '../store/webhook-store.js'

export interface StoreOptions {
  dataDir: string
  redisUrl?: string | undefined
  redisCluster?: readonly string[] | undefined
  redisPrefix?: string
  /** PRESENCED_REDIS_TIMEOUT: ms a Redis command may take before it fails (a 503). */
  redisTimeoutMs?: number
  /** PRESENCED_MAX_SESSIONS: the live sessions one user may hold (MAX_SESSIONS_PER_USER). */
  maxSessionsPerUser?: number
  /**
   * PRESENCED_REDIS_NEAR_CACHE: users' presence values a node keeps (NearCache); 0: none;
   * absent: DEFAULT_REDIS_NEAR_CACHE (on a single Redis; a cluster has none).
   */
  redisNearCache?: number
  /** PRESENCED_REALTIME_HISTORY / _AGE: each user's recent changes kept for resume. */
  realtimeHistory?: number
  realtimeHistoryAgeSeconds?: number
  /** PRESENCED_REALTIME_LEASE: how long a node's share of a user's real-time holdings counts. */
  realtimeLeaseMs?: number
}

/** The history bounds of the options, with the config's defaults. */
function historyBounds(options: StoreOptions): HistoryBounds {
  return {
    entries: options.realtimeHistory ?? 32,
    ageSeconds: options.realtimeHistoryAgeSeconds ?? 300,
  }
}

export interface Stores {
  mode: 'embedded' | 'redis' | 'cluster'
  presence: PresenceStore
  profiles: ProfileStore
  bus: ChangeBus
  /** Each user's recent changes (epoch, offsets): where real-time streams resume. */
  history?: History
  /** Fleet mode only: where a shutting-down node leaves its SSE streams for another to continue. */
  checkpoints?: StreamCheckpoints
  /** Fleet mode only: each user's real-time streams and watches summed over the nodes. */
  holdings?: StreamHoldings
  /** Fleet mode only: duties one node does for all (the dashboard's pass, pruning), by lease. */
  duties?: FleetDuties
  rateLimiter: RateLimiter
  /**
   * Fleet mode: counts a hit in this process when Redis refuses the shared count's write (full,
   * or unable to persist), so that reads, which Redis still serves then, are served too, each
   * node holding its own budget meanwhile. Absent: such a hit is a 503.
   */
  localRateLimiter?: RateLimiter
  /** Absent in stores assembled by hand (some tests and benches): webhooks are then off. */
  webhooks?: WebhookStore
}

/** Where createStores says that the node starts not ready, and Redis's outages (the app's logger). */
export interface StartupLog {
  warn(details: Record<string, unknown>, message: string): void
  info(details: Record<string, unknown>, message: string): void
}

/**
 * Options → adapters: the only place that chooses a backend. `clock` is the service's: the
 * embedded history ages and forgets by it (Redis by its own).
 */
export async function createStores(
  options: StoreOptions,
  log?: StartupLog,
  clock: Clock = systemClock,
  observer?: OutageObserver,
): Promise<Stores> {
  if (options.redisCluster && options.redisCluster.length > 0) {
    return createRedisStores({ cluster: options.redisCluster }, options, log, observer)
  }
  if (options.redisUrl) {
    return createRedisStores({ url: options.redisUrl }, options, log, observer)
  }
  const profiles = new SqliteProfileStore(options.dataDir)
  const presence = new MemoryPresenceStore({
    ledger: profiles,
    ...(options.maxSessionsPerUser === undefined
      ? {}
      : { maxSessions: options.maxSessionsPerUser }),
    onFlushError: (error) =>
      log?.warn(
        { err: error },
        'lastOnline not written to the embedded database (tried again each second)',
      ),
  })
  return {
    mode: 'embedded',
    presence,
    profiles,
    bus: new LocalChangeBus(),
    history: new MemoryHistory(historyBounds(options), () => clock.now()),
    rateLimiter: new MemoryRateLimiter(),
    webhooks: new SqliteWebhookStore(profiles.db),
  }
}

/**
 * Fleet mode: every store on one Redis connection per node (plus a subscriber for the bus).
 * Waits a few seconds for Redis at start (on a cluster, for a master of every slot) but does not
 * fail without it: the node starts not ready (/readyz 503, requests 503), says why in the log,
 * and serves as soon as Redis answers.
 */
async function createRedisStores(
  target: RedisTarget,
  options: StoreOptions,
  log: StartupLog | undefined,
  observer: OutageObserver | undefined,
): Promise<Stores> {
  const outages = new StoreOutages({ log, observer })
  const connection = new RedisConnection(target, {
    outages,
    ...(options.redisTimeoutMs !== undefined && { commandTimeoutMs: options.redisTimeoutMs }),
  })
  const keys = new RedisKeys(options.redisPrefix ?? 'presenced')
  outages.busListening(false)
  const bus = new RedisChangeBus(connection, {
    channel: keys.channel(),
    // a subscription that fails while Redis answers is said once (StoreOutages), never each try
    onListening: (listening) => outages.busListening(listening),
    onError: (error) => {
      if (!bus.listening) outages.busFailed(error instanceof Error ? error.message : String(error))
    },
  })
  if (!(await connection.waitReady(5000))) {
    // never the target itself: a URL may hold a password
    const covered = connection.coveredSlots()
    if (connection.client.status === 'ready' && covered < CLUSTER_SLOTS) {
      log?.warn(
        { coveredSlots: covered, slots: CLUSTER_SLOTS },
        'Redis Cluster: not every slot has a master yet; not ready (/readyz 503) until each has',
      )
    } else {
      log?.warn({}, 'Redis did not answer at start; not ready (/readyz 503) until it does')
    }
  }
  // the bus cannot subscribe before Redis answers: no wait for it then (it subscribes later)
  if (connection.client.status === 'ready') {
    await Promise.race([bus.subscribed, new Promise((r) => setTimeout(r, 2000).unref())])
  }
  const profiles = new RedisProfileStore(connection, keys)
  // a fresh or folded Redis answers at once; an older version's data is folded before serving
  // when that takes a moment, else (or while Redis is out of reach) reads take the settings
  // keys until it is done
  const folding = foldStoredSettings(profiles, connection, log)
  if (connection.client.status === 'ready') {
    await Promise.race([folding, new Promise((r) => setTimeout(r, 10_000).unref())])
  }
  return {
    mode: 'cluster' in target ? 'cluster' : 'redis',
    presence: new RedisPresenceStore(connection, keys, {
      changes: { channel: keys.channel(), nodeId: bus.nodeId },
      history: historyBounds(options),
      nearCache: options.redisNearCache ?? DEFAULT_REDIS_NEAR_CACHE,
      ...(options.maxSessionsPerUser === undefined
        ? {}
        : { maxSessions: options.maxSessionsPerUser }),
    }),
    history: new RedisHistory(connection, keys, historyBounds(options)),
    checkpoints: new RedisStreamCheckpoints(connection, keys),
    holdings: new RedisStreamHoldings(connection, keys, {
      nodeId: bus.nodeId,
      leaseMs: options.realtimeLeaseMs ?? 30_000,
    }),
    duties: new RedisFleetDuties(connection, keys, bus.nodeId),
    profiles,
    bus,
    rateLimiter: new RedisRateLimiter(connection, keys),
    localRateLimiter: new MemoryRateLimiter(),
    webhooks: new RedisWebhookStore(connection, keys),
  }
}

/**
 * Folds the settings an older version stored into the presence values, in the background, once
 * per Redis (RedisProfileStore.foldStoredSettings); tried again every 10 s while Redis fails it,
 * until the connection is closed. Resolves when the first attempt ends, folded or not.
 */
function foldStoredSettings(
  profiles: RedisProfileStore,
  connection: RedisConnection,
  log: StartupLog | undefined,
): Promise<unknown> {
  const attempt = (): Promise<unknown> => {
    if (connection.client.status === 'end') return Promise.resolve()
    return profiles.foldStoredSettings().catch((error: unknown) => {
      if (connection.client.status === 'end') return
      // Redis away or refusing: StoreOutages says so (once), not every attempt
      if (isStoreUnavailable(error)) return void setTimeout(attempt, 10_000).unref()
      log?.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'Redis: folding stored privacy settings into presence values failed; trying again in 10 s',
      )
      setTimeout(attempt, 10_000).unref()
    })
  }
  return attempt()
}
