import { resolve } from 'node:path'

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
  /** PRESENCED_ADMIN_KEY: the admin API is off while unset. */
  adminKey: string | undefined
  /** PRESENCED_TOKEN_SECRET: HS256 secret; when unset, one is generated once into the data dir. */
  tokenSecret: string | undefined
  /** PRESENCED_REDIS_URL, e.g. redis://127.0.0.1:6379: fleet mode on one Redis. */
  redisUrl: string | undefined
  /** PRESENCED_REDIS_CLUSTER, host:port,host:port: fleet mode on a Redis Cluster. */
  redisCluster: string[] | undefined
  /** PRESENCED_REDIS_PREFIX, default presenced: prefix of every Redis key and channel. */
  redisPrefix: string
  /** LOG_LEVEL, default info (silent in tests). */
  logLevel: string
  /** PRESENCED_RATE_LIMIT requests per PRESENCED_RATE_WINDOW seconds per caller; default 600 per 60. */
  rateLimitMax: number
  rateLimitWindowSeconds: number
  /** PRESENCED_TRUST_PROXY=1: honour X-Forwarded-For/-Proto/-Host from the front proxy. */
  trustProxy: boolean
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
  /** PRESENCED_INVISIBLE_AS_OFFLINE=1: show a user's own Invisible state as 0 for old clients. */
  invisibleAsOffline: boolean
  /** PRESENCED_REALTIME_QUEUE_BYTES, default 1 MiB: a real-time connection buffering more is cut off as a slow consumer. */
  realtimeQueueBytes: number
  /** PRESENCED_REALTIME_REPLAY frames, default 256: how far back a reconnecting subscriber can resume. */
  realtimeReplayFrames: number
  /** PRESENCED_REALTIME_RESUME ms, default 60000: how long a dropped real-time stream stays resumable. */
  realtimeResumeMs: number
  /** PRESENCED_SHUTDOWN_TIMEOUT ms, default 10000: after SIGTERM, exit 1 if draining takes longer. */
  shutdownTimeoutMs: number
  /** PRESENCED_HEADERS_TIMEOUT ms, default 10000: a client slower to send its headers gets 408 and is cut off. */
  headersTimeoutMs: number
  /** PRESENCED_REQUEST_TIMEOUT ms, default 30000: the same for the whole request, body included (>= the headers timeout). */
  requestTimeoutMs: number
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  }
  return value
}

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.toLowerCase()
  return raw === '1' || raw === 'true' || raw === 'yes'
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
    adminKey: env.PRESENCED_ADMIN_KEY || undefined,
    tokenSecret: env.PRESENCED_TOKEN_SECRET || undefined,
    redisUrl: env.PRESENCED_REDIS_URL || undefined,
    redisCluster: cluster && cluster.length > 0 ? cluster : undefined,
    redisPrefix: env.PRESENCED_REDIS_PREFIX || 'presenced',
    logLevel: logLevel(env),
    rateLimitMax: int(env, 'PRESENCED_RATE_LIMIT', 600, 1),
    rateLimitWindowSeconds: int(env, 'PRESENCED_RATE_WINDOW', 60, 1),
    trustProxy: flag(env, 'PRESENCED_TRUST_PROXY'),
    bodyLimit: int(env, 'PRESENCED_BODY_LIMIT', 1024 * 1024, 1024),
    sweepIntervalMs: int(env, 'PRESENCED_SWEEP_INTERVAL', 250, 10),
    flapGraceMs: int(env, 'PRESENCED_FLAP_GRACE', 3000, 0),
    xboxHeartbeatSeconds: int(env, 'PRESENCED_XBOX_HEARTBEAT', 300, 1),
    xboxBurstMax: int(env, 'PRESENCED_XBOX_BURST', 3, 1),
    xboxSustainMax: int(env, 'PRESENCED_XBOX_SUSTAIN', 30, 1),
    xboxDefaultTitleId: titleId(env, 'PRESENCED_XBOX_TITLE_ID', 1),
    invisibleAsOffline: flag(env, 'PRESENCED_INVISIBLE_AS_OFFLINE'),
    realtimeQueueBytes: int(env, 'PRESENCED_REALTIME_QUEUE_BYTES', 1024 * 1024, 1024),
    realtimeReplayFrames: int(env, 'PRESENCED_REALTIME_REPLAY', 256, 0),
    realtimeResumeMs: int(env, 'PRESENCED_REALTIME_RESUME', 60_000, 0),
    shutdownTimeoutMs: int(env, 'PRESENCED_SHUTDOWN_TIMEOUT', 10_000, 1),
    ...timeouts(env),
  })
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

/** A config for tests: an isolated data dir, quiet logs, everything else default. */
export function testConfig(overrides: Partial<Config> & { dataDir: string }): Config {
  return Object.freeze({ ...loadConfig({ LOG_LEVEL: 'silent' }), ...overrides })
}
