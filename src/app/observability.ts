import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify'
import { stdSerializers, type SerializedError } from 'pino'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import {
  apiKeyCredential,
  authorizationCredential,
  oneCredential,
} from '../protocols/shared/credentials.js'
import { mapErrorToRecord, sendErrorRecord } from '../protocols/shared/error-record.js'
import type { Authenticator, Credential } from '../service/authenticator.js'
import type { ServiceObserver } from '../service/observer.js'
import type { OutageObserver } from '../store/redis/store-outages.js'
import type { PresenceService } from '../service/presence-service.js'
import type { Config } from './config.js'
import type { Stores } from './create-stores.js'
import { RequestDurations } from './request-durations.js'

/** Headers that carry credentials: never logged, whoever logs a request's headers. */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'res.headers["x-csrf-token"]',
]

/**
 * Query parameters that carry credentials (WebSocket/SSE clients cannot always send headers),
 * by name as the router reads it: decoded, lower case, `-` as `_`.
 */
const SECRET_PARAMS = new Set([
  'access_token',
  'token',
  'api_key',
  'apikey',
  'x_api_key',
  'key',
  'csrf_token',
  'x_csrf_token',
])

/**
 * A URL as it may be logged: credential-bearing query values replaced. The query is found and
 * split as the router finds and splits it (it starts at the first `?` or `#`; pairs are split on
 * `&`; a name is percent-decoded), so a token the router hands a route as `access_token` is
 * redacted however its name was spelled on the wire (`%61ccess_token`, `/sse#access_token=`).
 */
export function redactUrl(url: string): string {
  const start = url.search(/[?#]/)
  if (start < 0) return url
  const pairs = url.slice(start + 1).split('&')
  let redacted = false
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!
    const eq = pair.indexOf('=')
    if (eq < 0 || !SECRET_PARAMS.has(paramName(pair.slice(0, eq)))) continue
    pairs[i] = pair.slice(0, eq + 1) + '[redacted]'
    redacted = true
  }
  return redacted ? url.slice(0, start + 1) + pairs.join('&') : url
}

/** A query parameter's name as the router reads it (`+` is a space, `%xx` decoded), normalized. */
function paramName(raw: string): string {
  let name = raw.replaceAll('+', ' ')
  try {
    name = decodeURIComponent(name)
  } catch {
    // the router keeps a name it cannot decode as it is; so do we
  }
  return name.toLowerCase().replaceAll('-', '_')
}

/**
 * An error as logged: pino's own serializer, less the arguments of a Redis command it carries.
 * ioredis puts the command a reply error answered on the error (`command: {name, args}`), and
 * pino logs every enumerable property: a refusal that is no outage (WRONGTYPE, NOPERM, a
 * script's error) logged the values written, such as a webhook's record with its secret. The
 * command's name is kept; so are the nested errors pino serializes (each less its arguments).
 */
export function serializeError(error: Error, depth = 0): SerializedError {
  const serialized = stdSerializers.err(error)
  // no error (pino hands it back as it is): not ours to change
  if ((serialized as unknown) === error || typeof serialized !== 'object' || serialized === null) {
    return serialized
  }
  const record = serialized as unknown as Record<string, unknown>
  const command = record.command as { name?: unknown; args?: unknown } | null | undefined
  if (command !== null && typeof command === 'object' && 'args' in command) {
    record.command = { name: command.name }
  }
  if (depth < 4) {
    // errors pino leaves as they are (ioredis's EXECABORT refusals, a cluster's last node error)
    // or serialized itself (an AggregateError's), each less its command's arguments
    for (const key of ['aggregateErrors', 'previousErrors', 'lastNodeError']) {
      if (!(key in record)) continue
      const nested = record[key]
      record[key] = Array.isArray(nested)
        ? nested.map((item: unknown) => serializeNested(item, depth))
        : serializeNested(nested, depth)
    }
  }
  return serialized
}

function serializeNested(value: unknown, depth: number): unknown {
  if (value instanceof Error) return serializeError(value, depth + 1)
  if (value === null || typeof value !== 'object' || !('command' in value)) return value
  // serialized by pino already: only its command is left to cut
  const { command, ...rest } = value as { command: { name?: unknown } | null }
  return { ...rest, command: command && { name: command.name } }
}

/**
 * pino options for the app: structured JSON, no secrets. The request serializer replaces
 * Fastify's default so the logged url never carries `access_token=` and friends; the error
 * serializer logs no Redis command's arguments (serializeError).
 */
export function loggerOptions(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: {
      err: serializeError,
      req(request: FastifyRequest) {
        return {
          method: request.method,
          url: redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort,
        }
      },
    },
  }
}

// Process metrics (CPU, memory, event loop, GC) describe the process, not an app instance: one
// collector per process, however many apps tests build, merged into each scrape.
let processRegistry: Registry | undefined
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * Increments of a counter with one label, kept as plain numbers until the counter is read (a
 * scrape): counters bumped on every write (heartbeats, bus events) cost a number's add there,
 * not prom-client's label hashing and checks. A scrape shows exactly the same series and values.
 * The latest value's increments are summed apart and put in the Map when another value comes
 * (or at the read): one label's run of increments, as a heartbeat's `app`, is no Map update at
 * all (a Map get and set were ~0.4k instructions of a heartbeat under callgrind), and each value
 * still enters the Map in the order it was first seen.
 */
class PendingCounts {
  readonly #counts = new Map<string, number>()
  readonly #label: string
  /** The value of the latest increments, not in #counts yet (undefined: none). */
  #lastValue: string | undefined = undefined
  #lastCount = 0

  constructor(label: string) {
    this.#label = label
  }

  add(value: string, count: number): void {
    if (value === this.#lastValue) {
      this.#lastCount += count
      return
    }
    this.#settle()
    this.#lastValue = value
    this.#lastCount = count
  }

  /** The latest value's increments put in #counts. */
  #settle(): void {
    const value = this.#lastValue
    if (value === undefined) return
    this.#counts.set(value, (this.#counts.get(value) ?? 0) + this.#lastCount)
    this.#lastValue = undefined
    this.#lastCount = 0
  }

  /** The counter's `collect` option (prom-client calls it on the counter before reading it). */
  collector(): (this: Counter<string>) => void {
    const settle = () => this.#settle()
    const counts = this.#counts
    const label = this.#label
    return function collect() {
      settle()
      for (const [value, count] of counts) this.inc({ [label]: value }, count)
      counts.clear()
    }
  }
}

/** The app's own metrics, in its own Registry (never prom-client's global one). */
export class Metrics {
  readonly registry = new Registry()
  readonly #heartbeats = new PendingCounts('source')
  readonly #busPublished = new PendingCounts('type')
  readonly #busReceived = new PendingCounts('type')
  readonly httpDuration = new RequestDurations({
    name: 'presenced_http_request_duration_seconds',
    help: 'HTTP requests by route pattern, method and status, with their duration.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  }).register(this.registry)
  readonly rateLimited = new Counter({
    name: 'presenced_rate_limited_requests_total',
    help: 'Requests refused with 429 by a rate limit, by route pattern.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  })
  readonly authRefused = new Counter({
    name: 'presenced_auth_failure_refusals_total',
    help: 'Requests refused with 429 because their client address sent too many guessed credentials (PRESENCED_AUTH_FAILURE_LIMIT).',
    registers: [this.registry],
  })
  readonly heartbeats = new Counter({
    name: 'presenced_heartbeats_total',
    help: 'Session heartbeats (creates and refreshes) handled by this node, by session source.',
    labelNames: ['source'] as const,
    registers: [this.registry],
    collect: this.#heartbeats.collector(),
  })
  readonly sessionsEnded = new Counter({
    name: 'presenced_sessions_ended_total',
    help: 'Sessions ended on request (not by expiry) on this node, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly expiries = new Counter({
    name: 'presenced_expiries_total',
    help: 'Users whose sessions expired, as swept by this node or ended by a write of this node that found them expired before the sweep.',
    registers: [this.registry],
  })
  readonly sweepLateness = new Histogram({
    name: 'presenced_sweep_lateness_seconds',
    help: 'How long after expiresAt the oldest expiry of each sweep was processed.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  })

  /** What the service reports of every write it makes, whatever its source. */
  readonly observer: ServiceObserver = {
    heartbeats: (source, count) => this.#heartbeats.add(source, count),
    sessionsEnded: (reason, count) => this.sessionsEnded.inc({ reason }, count),
    swept: (users, latenessMs) => {
      this.expiries.inc(users)
      this.sweepLateness.observe(latenessMs / 1000)
    },
    expiredByWrite: (users) => this.expiries.inc(users),
    busPublished: (type) => this.#busPublished.add(type, 1),
    authRefused: () => this.authRefused.inc(),
    busReceived: (type) => this.#busReceived.add(type, 1),
    webhookOutcome: (outcome, ageMs) => {
      this.webhookAttempts.inc({ outcome })
      if (outcome === 'delivered') this.webhookDeliveryAge.observe(ageMs / 1000)
    },
    webhookUnstored: (count) => this.webhookAttempts.inc({ outcome: 'unstored' }, count),
    fleetCountFailed: (operation) => this.realtimeFleetCountErrors.inc({ operation }),
  }

  readonly storeRefusals = new Counter({
    name: 'presenced_store_refusals_total',
    help: "Fleet mode: commands Redis refused with a reply that means it cannot serve now, by the reply's first word (OOM: full, maxmemory with noeviction; MISCONF: cannot persist; READONLY, CLUSTERDOWN...); each such request was answered 503 STORE_UNAVAILABLE.",
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  /** 1 unless the change bus (fleet mode) says its subscription does not hold. */
  #busListening = 1
  readonly busListening: Gauge = new Gauge({
    name: 'presenced_bus_listening',
    help: "Whether this node hears the fleet on the change bus, its Redis subscription holding (1), or not (0): its real-time subscribers, dashboard and webhooks then miss other nodes' changes. 1 for the embedded store.",
    registers: [this.registry],
    collect: (): void => this.busListening.set(this.#busListening),
  })

  /** What the Redis connection reports of the commands Redis refused (StoreOutages). */
  readonly storeObserver: OutageObserver = {
    storeRefused: (reason) => this.storeRefusals.inc({ reason }),
    busListening: (listening) => void (this.#busListening = listening ? 1 : 0),
  }

  readonly realtimeFleetCountErrors = new Counter({
    name: 'presenced_realtime_fleet_count_errors_total',
    help: 'Fleet mode: reads and writes of the fleet-wide real-time count (per-user limits) that failed, by operation (claim, read, update); the node counted alone meanwhile.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  })

  readonly webhookAttempts = new Counter({
    name: 'presenced_webhook_attempts_total',
    help: 'Webhook delivery attempts this node ended, by outcome (delivered, retrying, parked, dropped); unstored: changes of this node never stored as events, held while the webhook store failed and dropped (PRESENCED_WEBHOOK_MAX_PENDING exceeded, or the node stopped).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly webhookDeliveryAge = new Histogram({
    name: 'presenced_webhook_delivery_age_seconds',
    help: 'How long after its change each webhook event was delivered (2xx), retries included.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  })

  readonly busPublished = new Counter({
    name: 'presenced_bus_events_published_total',
    help: 'Events this node published on the change bus, by type (presence, settings, relation, revoked, auth-blocked, place).',
    labelNames: ['type'] as const,
    registers: [this.registry],
    collect: this.#busPublished.collector(),
  })
  readonly busReceived = new Counter({
    name: 'presenced_bus_events_received_total',
    help: 'Events this node received from the change bus, its own included, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
    collect: this.#busReceived.collector(),
  })
  readonly realtimeConnections = new Gauge({
    name: 'presenced_realtime_connections',
    help: 'Open native real-time connections on this node, by transport (websocket, sse).',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  })
  readonly realtimeStreams = new Gauge({
    name: 'presenced_realtime_streams',
    help: 'Real-time streams on this node: attached to a connection, or detached and kept for a resume.',
    labelNames: ['state'] as const,
    registers: [this.registry],
  })
  readonly realtimeSubscriptions = new Gauge({
    name: 'presenced_realtime_subscriptions',
    help: 'Watches on this node: one per stream and user it watches.',
    registers: [this.registry],
  })
  readonly realtimeWatchedUsers = new Gauge({
    name: 'presenced_realtime_watched_users',
    help: 'Distinct users watched by at least one stream on this node.',
    registers: [this.registry],
  })
  readonly dashboardFeedStreams = new Gauge({
    name: 'presenced_dashboard_feed_streams',
    help: 'Open dashboard live-feed streams on this node, by view (public, admin).',
    labelNames: ['view'] as const,
    registers: [this.registry],
  })

  // The gauges below are read from the shared store at scrape time. They are registered in no
  // registry: each scrape shows those read within its bound, and leaves out those it could not
  // read (a stale value would look like a fresh one), which presenced_store_reachable says.
  readonly liveSessions = new Gauge({
    name: 'presenced_live_sessions',
    help: 'Sessions alive now (every device, title and game server session).',
    registers: [],
  })
  readonly liveUsers = new Gauge({
    name: 'presenced_live_users',
    help: 'Users with at least one live session now.',
    registers: [],
  })
  readonly webhookQueued = new Gauge({
    name: 'presenced_webhook_queued_events',
    help: 'Webhook events waiting for delivery in every endpoint queue (shared store: the same on every node).',
    registers: [],
  })
  readonly webhookParked = new Gauge({
    name: 'presenced_webhook_parked_events',
    help: 'Webhook events parked after their last attempt, waiting for a replay (shared store).',
    registers: [],
  })
  readonly busNodes = new Gauge({
    name: 'presenced_bus_nodes',
    help: 'Nodes listening on the change bus (fleet mode; 1 for the embedded store).',
    registers: [],
  })
  readonly storeReachable = new Gauge({
    name: 'presenced_store_reachable',
    help: 'Whether this scrape read every gauge it takes from the store in time (1), or left some out (0).',
    registers: [],
  })
  #service: Pick<PresenceService, 'liveCounts' | 'census' | 'nodes' | 'webhooks'> | undefined

  /** Live counts and open connections are read at scrape time, not kept up on every change. */
  track(service: Pick<PresenceService, 'liveCounts' | 'census' | 'nodes' | 'webhooks'>): void {
    this.#service = service
  }

  /**
   * Sets this node's own gauges, then those the store gives within `timeoutMs`, and returns the
   * latter (with presenced_store_reachable) for this scrape to show.
   */
  async #readGauges(
    service: Pick<PresenceService, 'liveCounts' | 'census' | 'nodes' | 'webhooks'>,
    timeoutMs: number,
  ): Promise<Gauge[]> {
    const realtime = service.census.counts()
    for (const [transport, open] of Object.entries(realtime.connections)) {
      this.realtimeConnections.set({ transport }, open)
    }
    this.realtimeStreams.set({ state: 'attached' }, realtime.streams.attached)
    this.realtimeStreams.set({ state: 'detached' }, realtime.streams.detached)
    this.realtimeSubscriptions.set(realtime.subscriptions)
    this.realtimeWatchedUsers.set(realtime.watchedUsers)
    this.dashboardFeedStreams.set({ view: 'public' }, realtime.feedStreams.public)
    this.dashboardFeedStreams.set({ view: 'admin' }, realtime.feedStreams.admin)

    const [counts, nodes, backlog] = await Promise.all([
      settleWithin(() => service.liveCounts(), timeoutMs),
      settleWithin(async () => (await service.nodes()) ?? 1, timeoutMs),
      settleWithin(() => service.webhooks.backlog(), timeoutMs),
    ])
    const read: Gauge[] = []
    if (counts) {
      this.liveSessions.set(counts.sessions)
      this.liveUsers.set(counts.users)
      read.push(this.liveSessions, this.liveUsers)
    }
    if (nodes !== undefined) {
      this.busNodes.set(nodes)
      read.push(this.busNodes)
    }
    if (backlog) {
      this.webhookQueued.set(backlog.queued)
      this.webhookParked.set(backlog.parked)
      read.push(this.webhookQueued, this.webhookParked)
    }
    this.storeReachable.set(counts && nodes !== undefined && backlog ? 1 : 0)
    read.push(this.storeReachable)
    return read
  }

  /**
   * The exposition text: this app's metrics and the process's. It never fails for the store:
   * a gauge the store does not give within `storeTimeoutMs` is left out of this scrape.
   */
  async scrape(storeTimeoutMs = 2000): Promise<{ contentType: string; body: string }> {
    const fromStore = new Registry()
    if (this.#service) {
      for (const gauge of await this.#readGauges(this.#service, storeTimeoutMs)) {
        fromStore.registerMetric(gauge)
      }
    }
    const merged = Registry.merge([this.registry, fromStore, processMetrics()])
    return { contentType: merged.contentType, body: await merged.metrics() }
  }
}

/** What `read` resolves to within `ms`, or undefined when it fails or takes longer. */
async function settleWithin<T>(read: () => Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  try {
    return await Promise.race([
      Promise.resolve()
        .then(read)
        .catch(() => undefined),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

export interface ObservabilityDeps {
  metrics: Metrics
  stores: Stores
  /**
   * Who may read /metrics: the metrics key, the admin key or an API key with the `admin` scope
   * (the service's Authenticator); neither key
   * configured turns /metrics off. Live user counts beside the dashboard's public ones would
   * count invisible users, and per-route counters would show settings changes: only the
   * operator may read them.
   */
  auth: Pick<Authenticator, 'metricsEnabled' | 'allowsMetrics'>
  /**
   * How long /readyz waits for a store before calling it unavailable, and /metrics before
   * leaving out the gauges it reads from the store.
   */
  readyTimeoutMs?: number
}

/**
 * The credential of a scrape: `Authorization: Bearer <key>` (Prometheus) or `x-api-key`; both
 * together are several (refused 400 by the authenticator), not one of them picked.
 */
function scrapeCredentialOf(request: FastifyRequest): Credential {
  return oneCredential([
    ['Authorization', authorizationCredential(request)],
    ['x-api-key', apiKeyCredential(request.headers)],
  ])
}

/**
 * Request metrics for every route, `/healthz`, `/readyz` and `/metrics`. Call on the root
 * instance before the protocols are registered, so its hooks cover their routes.
 */
export function registerObservability(app: FastifyInstance, deps: ObservabilityDeps): void {
  const { metrics, stores } = deps
  const readyTimeoutMs = deps.readyTimeoutMs ?? 2000

  app.addHook('onResponse', async function observeResponse(request, reply) {
    const route = request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched')
    const status = reply.statusCode
    metrics.httpDuration.observe(request.method, route, status, reply.elapsedTime / 1000)
    if (status === 429) metrics.rateLimited.inc({ route })
  })

  const hidden = { hide: true }

  app.get('/healthz', { schema: hidden, logLevel: 'warn' }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: hidden, logLevel: 'warn' }, async (_request, reply) => {
    const check = async (store: { ready(): Promise<boolean> }): Promise<boolean> =>
      (await settleWithin(() => store.ready(), readyTimeoutMs)) ?? false
    const [presence, profiles] = await Promise.all([check(stores.presence), check(stores.profiles)])
    const ready = presence && profiles
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'unavailable', mode: stores.mode, presence, profiles })
  })

  const { auth } = deps
  app.get('/metrics', { schema: hidden, logLevel: 'warn' }, async (request, reply) => {
    if (!auth.metricsEnabled) {
      return sendErrorRecord(
        reply,
        404,
        'METRICS_OFF',
        'Metrics are off: set PRESENCED_METRICS_KEY and scrape with it as a bearer token.',
      )
    }
    let allowed = false
    try {
      allowed = await auth.allowsMetrics(scrapeCredentialOf(request), request.ip)
    } catch (error) {
      // an address refused for guessing: 429 with Retry-After; several credentials: 400
      return mapErrorToRecord(error as Error, request, reply)
    }
    if (!allowed) {
      void reply.header('www-authenticate', 'Bearer realm="metrics"')
      return sendErrorRecord(
        reply,
        401,
        'UNAUTHENTICATED',
        'Metrics need the metrics key, the admin key or an API key with the admin scope, as a bearer token.',
      )
    }
    const { contentType, body } = await metrics.scrape(readyTimeoutMs)
    return reply.type(contentType).header('cache-control', 'no-store').send(body)
  })
}
