import { createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  EXTERNAL_ALGORITHMS,
  type ExternalKeySource,
  type ExternalTokenOptions,
} from '../service/external-tokens.js'
import { readJwksFile } from '../service/jwks-sources.js'
import { CHECKPOINT_MAX_IDS } from '../service/presence-service.js'
import { DEFAULT_SERVER_LIMIT } from '../service/rate-limits.js'
import { MAX_SESSIONS_PER_USER } from '../store/presence-store.js'
import { invisibleSelfViews, type InvisibleSelfView } from '../protocols/roblox/view.js'
import { trustsHop, type TrustedProxies } from './trusted-proxies.js'

/**
 * Every setting of presenced, read once from the environment. Each default is documented here
 * and in the README's configuration table; nothing below app/ reads process.env.
 */
export interface Config {
  /** PORT, default 8080. */
  port: number
  /** HOST, default 0.0.0.0. */
  host: string
  /** PRESENCED_DATA_DIR, default ./data: the SQLite file and the generated token secret. */
  dataDir: string
  /** PRESENCED_SESSION_TTL seconds, default 60: a session lives this long after each heartbeat. */
  sessionTtlSeconds: number
  /**
   * PRESENCED_MAX_SESSIONS, default 32: the live sessions one user may hold; a write that would
   * start one more ends the user's session beaten least recently (MAX_SESSIONS_PER_USER).
   */
  maxSessionsPerUser: number
  /**
   * PRESENCED_PLACE_TTL seconds, default 60: a place read from the catalogue is used for
   * heartbeats this long before it is read again (a change heard on the change bus applies at
   * once; this bounds how long a lost announcement goes unhealed in writes).
   */
  placeTtlSeconds: number
  /** PRESENCED_ADMIN_KEY: the admin API is off while unset. */
  adminKey: string | undefined
  /**
   * PRESENCED_METRICS_KEY: the bearer token (or x-api-key) /metrics requires; the admin key is
   * accepted too. /metrics is off while neither is set: its counts would tell hidden users apart.
   */
  metricsKey: string | undefined
  /** PRESENCED_TOKEN_SECRET: HS256 secret; when unset, one is generated once into the data dir. */
  tokenSecret: string | undefined
  /**
   * PRESENCED_JWT_*: a platform's own tokens, accepted besides presenced's; unset by default.
   * See externalTokens() below and docs/reference/config.md.
   */
  jwt: ExternalTokenOptions | undefined
  /** PRESENCED_REDIS_URL, e.g. redis://127.0.0.1:6379: fleet mode on one Redis. */
  redisUrl: string | undefined
  /** PRESENCED_REDIS_CLUSTER, host:port,host:port: fleet mode on a Redis Cluster. */
  redisCluster: string[] | undefined
  /** PRESENCED_REDIS_PREFIX, default presenced: prefix of every Redis key and channel. */
  redisPrefix: string
  /**
   * PRESENCED_REDIS_TIMEOUT, default 500: ms a Redis command may take before the request it
   * serves is answered 503 (Redis hanging, or too far or too busy to answer in time).
   */
  redisTimeoutMs: number
  /**
   * PRESENCED_REDIS_NEAR_CACHE, default DEFAULT_REDIS_NEAR_CACHE (100,000; 0: off): users whose
   * presence values a node keeps in memory, kept exact by Redis's client-side caching (single
   * Redis; off on a cluster). See docs/decisions/0005-near-cache-on-by-default.md.
   */
  redisNearCache: number
  /** LOG_LEVEL, default info (silent in tests). */
  logLevel: string
  /** PRESENCED_RATE_LIMIT requests per PRESENCED_RATE_WINDOW seconds per caller; default 600 per 60. */
  rateLimitMax: number
  rateLimitWindowSeconds: number
  /**
   * PRESENCED_SERVER_RATE_LIMIT requests per PRESENCED_SERVER_RATE_WINDOW seconds per API key and
   * game server on /api/v1/servers/{gameId}; default 120 per 60.
   */
  serverRateLimitMax: number
  serverRateLimitWindowSeconds: number
  /**
   * PRESENCED_SERVER_KEY_RATE_LIMIT requests per PRESENCED_SERVER_RATE_WINDOW seconds per API key
   * over all its game servers; unset: SERVER_KEY_LIMIT_FACTOR (50) times serverRateLimitMax.
   */
  serverKeyRateLimitMax: number | undefined
  /**
   * PRESENCED_AUTH_FAILURE_LIMIT guessed credentials (an unknown key, a bad signature, a
   * malformed token) per PRESENCED_AUTH_FAILURE_WINDOW seconds per client address; default 20
   * per 60. Past it, every credential from that address is refused with 429 until the window
   * ends (expired or revoked tokens do not count).
   */
  authFailureLimit: number
  authFailureWindowSeconds: number
  /**
   * PRESENCED_TRUST_PROXY: whose X-Forwarded-For/-Proto/-Host to honour. `1` (or `true`): the
   * front proxy presenced is connected to; `N`: that many proxies in a row; a comma-separated
   * list of addresses, CIDR ranges or `loopback`/`linklocal`/`uniquelocal`: peers at those.
   */
  trustProxy: TrustedProxies | undefined
  /** PRESENCED_BODY_LIMIT bytes, default 1 MiB: larger bodies get 413. */
  bodyLimit: number
  /** PRESENCED_SWEEP_INTERVAL ms, default 250: how often expired sessions are cleaned up. */
  sweepIntervalMs: number
  /** PRESENCED_FLAP_GRACE ms, default 3000: a session replaced within this time makes no offline/online pair. */
  flapGraceMs: number
  /** PRESENCED_XBOX_HEARTBEAT seconds, default 300: X-Heartbeat-After for Xbox title writes. */
  xboxHeartbeatSeconds: number
  /** PRESENCED_XBOX_BURST, default 3 (as Xbox): title writes per user and title per 15 s. */
  xboxBurstMax: number
  /** PRESENCED_XBOX_SUSTAIN, default 30: Xbox title writes per user and title per 300 s. */
  xboxSustainMax: number
  /** PRESENCED_XBOX_TITLE_ID, default 1: the title of an Xbox write naming none (uint32). */
  xboxDefaultTitleId: string
  /** PRESENCED_XBOX_READ_BURST, default 30: Xbox presence reads per caller per 15 s. */
  xboxReadBurstMax: number
  /** PRESENCED_XBOX_READ_SUSTAIN, default 300: Xbox presence reads per caller per 300 s. */
  xboxReadSustainMax: number
  /**
   * PRESENCED_INVISIBLE_SELF_VIEW, default `state`: what an invisible user reading their own
   * Roblox presence is shown: their real state 0-3 (`state`), 4 (`invisible`, which clients
   * knowing only Roblox's 0-3 cannot parse), or 0 (`offline`; the old
   * PRESENCED_INVISIBLE_AS_OFFLINE=1).
   */
  invisibleSelfView: InvisibleSelfView
  /** PRESENCED_REALTIME_QUEUE_BYTES, default 1 MiB: a real-time connection buffering more is cut off as a slow consumer. */
  realtimeQueueBytes: number
  /** PRESENCED_REALTIME_REPLAY frames, default 256: how far back a reconnecting subscriber can resume. */
  realtimeReplayFrames: number
  /** PRESENCED_REALTIME_RESUME ms, default 60000: how long a dropped real-time stream stays resumable. */
  realtimeResumeMs: number
  /** PRESENCED_REALTIME_HISTORY, default 32: recent changes kept per user, so a stream resumes on any node. */
  realtimeHistory: number
  /** PRESENCED_REALTIME_HISTORY_AGE seconds, default 300: changes older than this leave the history. */
  realtimeHistoryAgeSeconds: number
  /** PRESENCED_REALTIME_STREAMS_PER_USER, default 10: open real-time connections per user (and dropped streams kept). */
  realtimeStreamsPerUser: number
  /** PRESENCED_REALTIME_WATCHES_PER_USER, default 5000: users watched across one user's streams, open and dropped. */
  realtimeWatchesPerUser: number
  /** PRESENCED_REALTIME_LEASE ms, default 30000: in a fleet, how long a node's count of a user's streams lasts unless renewed (a crashed node's stops counting within it). */
  realtimeLeaseMs: number
  /** PRESENCED_REALTIME_DETACHED_WATCHES, default 200000: watches dropped streams keep on a node; the oldest go beyond. */
  realtimeDetachedWatches: number
  /** PRESENCED_REALTIME_SUBSCRIBE_RATE ids/s, default 1000: ids one connection may subscribe and unsubscribe (bursts of 2 s). */
  realtimeSubscribeRate: number
  /** PRESENCED_REALTIME_MAX_IDS, default 1000 (also the most): users one real-time stream may watch, ids per frame (told in `x-presenced-max-ids`). */
  realtimeMaxIds: number
  /** PRESENCED_STATS_INTERVAL ms, default 10000: how often the dashboard's stats are counted and sampled (in a fleet, by one node for all). */
  statsIntervalMs: number
  /** PRESENCED_STATS_LEASE ms, default 30000: in a fleet, how long the node that counts the stats holds that duty unless renewed (another takes over within it when it dies). */
  statsLeaseMs: number
  /** PRESENCED_SHUTDOWN_TIMEOUT ms, default 10000: after SIGTERM, exit 1 if draining takes longer. */
  shutdownTimeoutMs: number
  /** PRESENCED_HEADERS_TIMEOUT ms, default 10000: a client slower to send its headers gets 408 and is cut off. */
  headersTimeoutMs: number
  /** PRESENCED_REQUEST_TIMEOUT ms, default 30000: the same for the whole request, body included (>= the headers timeout). */
  requestTimeoutMs: number
  /** PRESENCED_WEBHOOK_ATTEMPTS, default 8: tries of a webhook event before it is parked. */
  webhookAttempts: number
  /** PRESENCED_WEBHOOK_BACKOFF ms, default 1000: wait after a first failed try, doubled after each (jittered). */
  webhookBackoffMs: number
  /** PRESENCED_WEBHOOK_BACKOFF_MAX ms, default 60000: the longest wait between two tries. */
  webhookBackoffMaxMs: number
  /** PRESENCED_WEBHOOK_TIMEOUT ms, default 5000: a try without a 2xx answer by then has failed. */
  webhookTimeoutMs: number
  /** PRESENCED_WEBHOOK_CONCURRENCY, default 16: requests in flight per endpoint (a user's events stay in order). */
  webhookConcurrency: number
  /** PRESENCED_WEBHOOK_LEASE ms, default 15000 (> 2x the timeout): how long a dead node's endpoints wait for another node. */
  webhookLeaseMs: number
  /** PRESENCED_WEBHOOK_MAX_QUEUE, default 100000: events queued per endpoint; beyond it the oldest are dropped. */
  webhookMaxQueued: number
  /** PRESENCED_WEBHOOK_MAX_PENDING, default 10000: changes held in memory while the webhook store fails; beyond it the oldest are dropped. */
  webhookMaxPending: number
  /** PRESENCED_WEBHOOK_POLL ms, default 100: how often an idle endpoint looks for events stored by other nodes. */
  webhookPollMs: number
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>

/** HS256 wants a key at least as long as its hash (RFC 7518 §3.2): 256 bits. */
export const MIN_TOKEN_SECRET_BYTES = 32

/**
 * PRESENCED_REDIS_NEAR_CACHE's default: users' presence values a node keeps (NearCache), ~126 B
 * each (bench/near-cache-memory.ts), ~12 MB for 100,000, allocated at the start (decision 0005).
 */
export const DEFAULT_REDIS_NEAR_CACHE = 100_000

/**
 * The token secret, refused when shorter than MIN_TOKEN_SECRET_BYTES: every access token is an
 * HMAC of known text under it, so a short one is found offline from any single token, and with
 * it tokens for every user. `source` names where it came from (a variable or a file).
 */
export function checkTokenSecret<T extends string | undefined>(secret: T, source: string): T {
  if (secret === undefined) return secret
  const bytes = Buffer.byteLength(secret)
  if (bytes < MIN_TOKEN_SECRET_BYTES) {
    throw new ConfigError(
      `${source} must be at least ${MIN_TOKEN_SECRET_BYTES} bytes (a shorter HS256 secret can be guessed from any token it signed), got ${bytes}: make one with \`openssl rand -base64 32\`, or leave PRESENCED_TOKEN_SECRET unset and presenced generates one`,
    )
  }
  return secret
}

function int(env: Env, name: string, fallback: number, min = 0, max?: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  // decimal digits only: Number() would read ' ' as 0 (PORT=' ' on a random port), ' 5' as 5,
  // '1e3' as 1000 and '0x10' as 16
  const value = /^-?[0-9]+$/.test(raw) ? Number(raw) : NaN
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  }
  const most = max ?? Number.MAX_SAFE_INTEGER
  if (value > most) {
    throw new ConfigError(`${name} must be an integer <= ${most}, got ${JSON.stringify(raw)}`)
  }
  return value
}

/** An integer setting that may be left unset (its default then follows other settings). */
function optionalInt(env: Env, name: string, min = 0): number | undefined {
  const raw = env[name]
  return raw === undefined || raw === '' ? undefined : int(env, name, 0, min)
}

/**
 * The longest delay of a Node timer (setTimeout, AbortSignal.timeout): a longer one fires after
 * 1 ms (setTimeout, with a warning) or throws (AbortSignal.timeout past 2^32 - 1), so a timeout
 * set past it would time out everything at once.
 */
const TIMER_MAX_MS = 2_147_483_647

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.toLowerCase()
  return raw === '1' || raw === 'true' || raw === 'yes'
}

function trustedProxies(env: Env): TrustedProxies | undefined {
  const raw = env.PRESENCED_TRUST_PROXY?.trim() ?? ''
  const lower = raw.toLowerCase()
  if (lower === '' || lower === '0' || lower === 'false' || lower === 'no') return undefined
  if (lower === 'true' || lower === 'yes') return { hops: 1 }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw)
    if (hops > 0 && hops <= 16) return { hops }
  } else {
    const addresses = raw.split(',').map((address) => address.trim())
    try {
      trustsHop({ addresses })
      return { addresses }
    } catch {
      // said below
    }
  }
  throw new ConfigError(
    `PRESENCED_TRUST_PROXY must be 1 (the front proxy), a number of proxies up to 16, or a comma-separated list of addresses, CIDR ranges, loopback, linklocal or uniquelocal; got ${JSON.stringify(raw)}`,
  )
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function logLevel(env: Env): string {
  const raw = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(raw)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`,
    )
  }
  return raw
}

function invisibleSelfView(env: Env): InvisibleSelfView {
  const raw = env.PRESENCED_INVISIBLE_SELF_VIEW?.toLowerCase() || undefined
  if (raw !== undefined && !(invisibleSelfViews as readonly string[]).includes(raw)) {
    throw new ConfigError(
      `PRESENCED_INVISIBLE_SELF_VIEW must be one of ${invisibleSelfViews.join(', ')}, got ${JSON.stringify(env.PRESENCED_INVISIBLE_SELF_VIEW)}`,
    )
  }
  // the variable this one replaced keeps its meaning; unset or off, it says nothing
  const legacy = env.PRESENCED_INVISIBLE_AS_OFFLINE
  if (legacy === undefined || legacy === '')
    return (raw as InvisibleSelfView | undefined) ?? 'state'
  if (!flag(env, 'PRESENCED_INVISIBLE_AS_OFFLINE') && !/^(0|false|no)$/i.test(legacy)) {
    throw new ConfigError(
      `PRESENCED_INVISIBLE_AS_OFFLINE must be 1 or 0, got ${JSON.stringify(legacy)}; it is replaced by PRESENCED_INVISIBLE_SELF_VIEW=offline`,
    )
  }
  const implied = flag(env, 'PRESENCED_INVISIBLE_AS_OFFLINE') ? 'offline' : undefined
  if (raw !== undefined && implied !== undefined && raw !== implied) {
    throw new ConfigError(
      `PRESENCED_INVISIBLE_AS_OFFLINE=1 (the same as PRESENCED_INVISIBLE_SELF_VIEW=offline) contradicts PRESENCED_INVISIBLE_SELF_VIEW=${raw}: set only PRESENCED_INVISIBLE_SELF_VIEW`,
    )
  }
  return (raw as InvisibleSelfView | undefined) ?? implied ?? 'state'
}

function titleId(env: Env, name: string, fallback: number): string {
  const value = int(env, name, fallback, 1)
  if (value > 0xffffffff) throw new ConfigError(`${name} must be a 32-bit title id, got ${value}`)
  return String(value)
}

export function loadConfig(env: Env = process.env): Config {
  const cluster = env.PRESENCED_REDIS_CLUSTER?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const port = int(env, 'PORT', 8080)
  if (port > 65535) throw new ConfigError(`PORT must be at most 65535, got ${port}`)
  return Object.freeze({
    port,
    host: env.HOST || '0.0.0.0',
    dataDir: resolve(env.PRESENCED_DATA_DIR || './data'),
    sessionTtlSeconds: int(env, 'PRESENCED_SESSION_TTL', 60, 1),
    maxSessionsPerUser: int(env, 'PRESENCED_MAX_SESSIONS', MAX_SESSIONS_PER_USER, 1),
    placeTtlSeconds: int(env, 'PRESENCED_PLACE_TTL', 60, 1),
    adminKey: env.PRESENCED_ADMIN_KEY || undefined,
    metricsKey: env.PRESENCED_METRICS_KEY || undefined,
    tokenSecret: checkTokenSecret(
      env.PRESENCED_TOKEN_SECRET || undefined,
      'PRESENCED_TOKEN_SECRET',
    ),
    jwt: externalTokens(env),
    redisUrl: env.PRESENCED_REDIS_URL || undefined,
    redisCluster: cluster && cluster.length > 0 ? cluster : undefined,
    redisPrefix: env.PRESENCED_REDIS_PREFIX || 'presenced',
    redisTimeoutMs: int(env, 'PRESENCED_REDIS_TIMEOUT', 500, 10, TIMER_MAX_MS),
    redisNearCache: int(env, 'PRESENCED_REDIS_NEAR_CACHE', DEFAULT_REDIS_NEAR_CACHE, 0),
    logLevel: logLevel(env),
    rateLimitMax: int(env, 'PRESENCED_RATE_LIMIT', 600, 1),
    rateLimitWindowSeconds: int(env, 'PRESENCED_RATE_WINDOW', 60, 1),
    serverRateLimitMax: int(env, 'PRESENCED_SERVER_RATE_LIMIT', DEFAULT_SERVER_LIMIT.max, 1),
    serverRateLimitWindowSeconds: int(
      env,
      'PRESENCED_SERVER_RATE_WINDOW',
      DEFAULT_SERVER_LIMIT.windowMs / 1000,
      1,
    ),
    serverKeyRateLimitMax: optionalInt(env, 'PRESENCED_SERVER_KEY_RATE_LIMIT', 1),
    authFailureLimit: int(env, 'PRESENCED_AUTH_FAILURE_LIMIT', 20, 1),
    authFailureWindowSeconds: int(env, 'PRESENCED_AUTH_FAILURE_WINDOW', 60, 1),
    trustProxy: trustedProxies(env),
    bodyLimit: int(env, 'PRESENCED_BODY_LIMIT', 1024 * 1024, 1024),
    sweepIntervalMs: int(env, 'PRESENCED_SWEEP_INTERVAL', 250, 10),
    flapGraceMs: int(env, 'PRESENCED_FLAP_GRACE', 3000, 0),
    xboxHeartbeatSeconds: int(env, 'PRESENCED_XBOX_HEARTBEAT', 300, 1),
    xboxBurstMax: int(env, 'PRESENCED_XBOX_BURST', 3, 1),
    xboxSustainMax: int(env, 'PRESENCED_XBOX_SUSTAIN', 30, 1),
    xboxDefaultTitleId: titleId(env, 'PRESENCED_XBOX_TITLE_ID', 1),
    xboxReadBurstMax: int(env, 'PRESENCED_XBOX_READ_BURST', 30, 1),
    xboxReadSustainMax: int(env, 'PRESENCED_XBOX_READ_SUSTAIN', 300, 1),
    invisibleSelfView: invisibleSelfView(env),
    realtimeQueueBytes: int(env, 'PRESENCED_REALTIME_QUEUE_BYTES', 1024 * 1024, 1024),
    realtimeReplayFrames: int(env, 'PRESENCED_REALTIME_REPLAY', 256, 0),
    realtimeResumeMs: int(env, 'PRESENCED_REALTIME_RESUME', 60_000, 0),
    realtimeHistory: int(env, 'PRESENCED_REALTIME_HISTORY', 32, 0),
    realtimeHistoryAgeSeconds: int(env, 'PRESENCED_REALTIME_HISTORY_AGE', 300, 1),
    realtimeStreamsPerUser: int(env, 'PRESENCED_REALTIME_STREAMS_PER_USER', 10, 1),
    realtimeWatchesPerUser: int(env, 'PRESENCED_REALTIME_WATCHES_PER_USER', 5000, 1),
    realtimeLeaseMs: int(env, 'PRESENCED_REALTIME_LEASE', 30_000, 1000),
    realtimeDetachedWatches: int(env, 'PRESENCED_REALTIME_DETACHED_WATCHES', 200_000, 0),
    realtimeSubscribeRate: int(env, 'PRESENCED_REALTIME_SUBSCRIBE_RATE', 1000, 1),
    // no more than a stream's checkpoint holds (every user it watches), 1000
    realtimeMaxIds: int(env, 'PRESENCED_REALTIME_MAX_IDS', 1000, 1, CHECKPOINT_MAX_IDS),
    statsIntervalMs: int(env, 'PRESENCED_STATS_INTERVAL', 10_000, 100, TIMER_MAX_MS),
    statsLeaseMs: int(env, 'PRESENCED_STATS_LEASE', 30_000, 1000, TIMER_MAX_MS),
    shutdownTimeoutMs: int(env, 'PRESENCED_SHUTDOWN_TIMEOUT', 10_000, 1, TIMER_MAX_MS),
    ...timeouts(env),
    ...webhooks(env),
  })
}

type WebhookConfig = Pick<
  Config,
  | 'webhookAttempts'
  | 'webhookBackoffMs'
  | 'webhookBackoffMaxMs'
  | 'webhookTimeoutMs'
  | 'webhookConcurrency'
  | 'webhookLeaseMs'
  | 'webhookMaxQueued'
  | 'webhookMaxPending'
  | 'webhookPollMs'
>

/** Webhook delivery; a lease must outlive a try started just before its renewal was due. */
function webhooks(env: Env): WebhookConfig {
  const webhookTimeoutMs = int(env, 'PRESENCED_WEBHOOK_TIMEOUT', 5000, 100, TIMER_MAX_MS)
  const webhookLeaseMs = int(
    env,
    'PRESENCED_WEBHOOK_LEASE',
    Math.max(15_000, 3 * webhookTimeoutMs),
    200,
  )
  if (webhookLeaseMs <= 2 * webhookTimeoutMs) {
    throw new ConfigError(
      `PRESENCED_WEBHOOK_LEASE (${webhookLeaseMs}) must exceed twice PRESENCED_WEBHOOK_TIMEOUT (${webhookTimeoutMs})`,
    )
  }
  const webhookConcurrency = int(env, 'PRESENCED_WEBHOOK_CONCURRENCY', 16, 1)
  if (webhookConcurrency > 256) {
    throw new ConfigError(
      `PRESENCED_WEBHOOK_CONCURRENCY must be at most 256, got ${webhookConcurrency}`,
    )
  }
  return {
    webhookAttempts: int(env, 'PRESENCED_WEBHOOK_ATTEMPTS', 8, 1),
    webhookBackoffMs: int(env, 'PRESENCED_WEBHOOK_BACKOFF', 1000, 1),
    webhookBackoffMaxMs: int(env, 'PRESENCED_WEBHOOK_BACKOFF_MAX', 60_000, 1),
    webhookTimeoutMs,
    webhookConcurrency,
    webhookLeaseMs,
    webhookMaxQueued: int(env, 'PRESENCED_WEBHOOK_MAX_QUEUE', 100_000, 1),
    webhookMaxPending: int(env, 'PRESENCED_WEBHOOK_MAX_PENDING', 10_000, 1),
    webhookPollMs: int(env, 'PRESENCED_WEBHOOK_POLL', 100, 10),
  }
}

/** Slow-client limits; Node refuses a headers timeout longer than the request timeout. */
function timeouts(env: Env): Pick<Config, 'headersTimeoutMs' | 'requestTimeoutMs'> {
  const requestTimeoutMs = int(env, 'PRESENCED_REQUEST_TIMEOUT', 30_000, 100)
  const headersTimeoutMs = int(
    env,
    'PRESENCED_HEADERS_TIMEOUT',
    Math.min(10_000, requestTimeoutMs),
    100,
  )
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(
      `PRESENCED_HEADERS_TIMEOUT (${headersTimeoutMs}) must not exceed PRESENCED_REQUEST_TIMEOUT (${requestTimeoutMs})`,
    )
  }
  return { headersTimeoutMs, requestTimeoutMs }
}

/** The least PRESENCED_JWT_JWKS_COOLDOWN accepted, in ms. */
export const JWKS_COOLDOWN_MIN_MS = 1000

/**
 * A platform's token verification. The keys are one of PRESENCED_JWT_PUBLIC_KEY (a PEM public
 * key, inline or a file path) and PRESENCED_JWT_JWKS (an http(s) URL or a file path); the rest
 * only refine them: PRESENCED_JWT_ISSUER and PRESENCED_JWT_AUDIENCE (comma-separated) unset
 * means not checked, PRESENCED_JWT_USER_CLAIM defaults to sub, PRESENCED_JWT_ALGORITHMS to
 * RS256,ES256,EdDSA, PRESENCED_JWT_JWKS_COOLDOWN to 30000 ms and PRESENCED_JWT_JWKS_MAX_AGE to
 * 600000 ms (jose's own defaults), PRESENCED_JWT_JWKS_MAX_STALE to a day,
 * PRESENCED_JWT_JWKS_MAX_BYTES to 1 MiB, PRESENCED_JWT_JWKS_TIMEOUT to 5000 ms. Keys are read and
 * checked here, so a bad one stops the start.
 */
function externalTokens(env: Env): ExternalTokenOptions | undefined {
  const pem = env.PRESENCED_JWT_PUBLIC_KEY || undefined
  const jwks = env.PRESENCED_JWT_JWKS || undefined
  const refinements = [
    'PRESENCED_JWT_ISSUER',
    'PRESENCED_JWT_AUDIENCE',
    'PRESENCED_JWT_USER_CLAIM',
    'PRESENCED_JWT_ALGORITHMS',
    'PRESENCED_JWT_JWKS_COOLDOWN',
    'PRESENCED_JWT_JWKS_MAX_AGE',
    'PRESENCED_JWT_JWKS_MAX_STALE',
    'PRESENCED_JWT_JWKS_MAX_BYTES',
    'PRESENCED_JWT_JWKS_TIMEOUT',
  ].filter((name) => env[name])
  if (!pem && !jwks) {
    if (refinements.length > 0) {
      throw new ConfigError(
        `${refinements[0]} is set but no keys are: set PRESENCED_JWT_PUBLIC_KEY or PRESENCED_JWT_JWKS`,
      )
    }
    return undefined
  }
  if (pem && jwks) {
    throw new ConfigError('set one of PRESENCED_JWT_PUBLIC_KEY and PRESENCED_JWT_JWKS, not both')
  }
  const algorithms = list(env.PRESENCED_JWT_ALGORITHMS) ?? ['RS256', 'ES256', 'EdDSA']
  const unknown = algorithms.filter(
    (alg) => !(EXTERNAL_ALGORITHMS as readonly string[]).includes(alg),
  )
  if (unknown.length > 0 || algorithms.length === 0) {
    throw new ConfigError(
      `PRESENCED_JWT_ALGORITHMS must name some of ${EXTERNAL_ALGORITHMS.join(', ')}, got ${JSON.stringify(env.PRESENCED_JWT_ALGORITHMS)}`,
    )
  }
  const keys = pem ? pemKey(pem, algorithms) : { source: jwksSource(jwks!), algorithms }
  return Object.freeze({
    keys: keys.source,
    issuer: env.PRESENCED_JWT_ISSUER || undefined,
    audience: list(env.PRESENCED_JWT_AUDIENCE),
    userClaim: env.PRESENCED_JWT_USER_CLAIM || 'sub',
    algorithms: keys.algorithms,
    // at least a second: with none, every token naming an unknown kid (anyone can make one)
    // would fetch the platform's JWKS again, a refetch storm at the attacker's pace
    jwksCooldownMs: int(env, 'PRESENCED_JWT_JWKS_COOLDOWN', 30_000, JWKS_COOLDOWN_MIN_MS),
    jwksMaxAgeMs: int(env, 'PRESENCED_JWT_JWKS_MAX_AGE', 600_000, 1000),
    // an identity provider's outage of up to a day does not log its users out of presence
    jwksMaxStaleMs: int(env, 'PRESENCED_JWT_JWKS_MAX_STALE', 86_400_000, 0),
    // a JWKS of a few keys is a few KB: a reply past this is a broken or hostile endpoint
    jwksMaxBytes: int(env, 'PRESENCED_JWT_JWKS_MAX_BYTES', 1024 * 1024, 1024),
    // a token that finds no set loaded waits for the fetch: at most this long (jose's default)
    jwksTimeoutMs: int(env, 'PRESENCED_JWT_JWKS_TIMEOUT', 5000, 100, TIMER_MAX_MS),
  })
}

function list(raw: string | undefined): string[] | undefined {
  const items = raw
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  return items && items.length > 0 ? items : undefined
}

/** The algorithms a public key can verify, by its type (and curve). */
const KEY_ALGORITHMS: Record<string, string[]> = {
  rsa: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'rsa-pss': ['PS256', 'PS384', 'PS512'],
  'ec:prime256v1': ['ES256'],
  'ec:secp384r1': ['ES384'],
  'ec:secp521r1': ['ES512'],
  ed25519: ['EdDSA', 'Ed25519'],
}

/** The key, and those of the configured algorithms that it can verify. */
function pemKey(
  value: string,
  algorithms: string[],
): { source: ExternalKeySource; algorithms: string[] } {
  let pem = value
  if (!value.trimStart().startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8')
    } catch (error) {
      throw new ConfigError(
        `PRESENCED_JWT_PUBLIC_KEY: cannot read ${value}: ${(error as Error).message}`,
      )
    }
  } else {
    // a PEM passed through a one-line env file often has its newlines written as \n
    pem = value.replaceAll('\\n', '\n')
  }
  if (/PRIVATE KEY/.test(pem)) {
    throw new ConfigError('PRESENCED_JWT_PUBLIC_KEY must be a public key, not a private one')
  }
  let kind: string
  try {
    const key = createPublicKey(pem)
    const curve = key.asymmetricKeyDetails?.namedCurve
    kind = curve ? `${key.asymmetricKeyType}:${curve}` : String(key.asymmetricKeyType)
  } catch (error) {
    throw new ConfigError(
      `PRESENCED_JWT_PUBLIC_KEY is not a PEM public key: ${(error as Error).message}`,
    )
  }
  const usable = KEY_ALGORITHMS[kind] ?? []
  const matching = algorithms.filter((alg) => usable.includes(alg))
  if (matching.length === 0) {
    throw new ConfigError(
      `PRESENCED_JWT_PUBLIC_KEY is a ${kind} key, which verifies ${usable.join(', ') || 'none of the supported algorithms'}: ` +
        `PRESENCED_JWT_ALGORITHMS (${algorithms.join(',')}) names none of them`,
    )
  }
  return { source: { kind: 'pem', pem }, algorithms: matching }
}

function jwksSource(value: string): ExternalKeySource {
  if (/^https?:/i.test(value)) {
    try {
      return { kind: 'jwks-url', url: new URL(value).href }
    } catch {
      throw new ConfigError(`PRESENCED_JWT_JWKS is not a valid URL: ${JSON.stringify(value)}`)
    }
  }
  const path = resolve(value)
  try {
    readJwksFile(path)
  } catch (error) {
    throw new ConfigError(`PRESENCED_JWT_JWKS: ${(error as Error).message}`)
  }
  return { kind: 'jwks-file', path }
}

/** A config for tests: an isolated data dir, quiet logs, everything else default. */
export function testConfig(overrides: Partial<Config> & { dataDir: string }): Config {
  return Object.freeze({ ...loadConfig({ LOG_LEVEL: 'silent' }), ...overrides })
}
