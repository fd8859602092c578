import './tick-shape.js'
import compress from '@fastify/compress'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Ajv } from 'ajv'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { warnFailure } from '../protocols/shared/warn-failure.js'
import { readFileSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { adminProtocol } from '../protocols/admin/plugin.js'
import { companionProtocol } from '../protocols/companion/plugin.js'
import type { ProtocolContext } from '../protocols/context.js'
import { nativeProtocol } from '../protocols/native/plugin.js'
import { robloxProtocol } from '../protocols/roblox/plugin.js'
import { serversProtocol } from '../protocols/servers/plugin.js'
import { contentLength, LeanRoutes } from '../protocols/shared/lean-routes.js'
import {
  clientErrors,
  frameworkErrors,
  unservedPath,
} from '../protocols/shared/framework-errors.js'
import { int64Keyword } from '../protocols/shared/int64-keyword.js'
import { xboxProtocol } from '../protocols/xbox/plugin.js'
import { fail } from '../core/errors.js'
import { systemClock, type Clock } from '../service/clock.js'
import type { PresenceService } from '../service/presence-service.js'
import { Tokens } from '../service/tokens.js'
import type { Config } from './config.js'
import { createService } from './create-service.js'
import { createStores, type Stores } from './create-stores.js'
import { dashboard } from './dashboard.js'
import { Metrics, loggerOptions, registerObservability } from './observability.js'
import { resolveTokenSecret } from './token-secret.js'
import { forwardedClientAddress, trustsHop } from './trusted-proxies.js'
import { addBodyParsers } from '../protocols/shared/body-parsers.js'
import { closeUpgradeRequests } from '../protocols/shared/upgrade-requests.js'

export interface AppOverrides {
  clock?: Clock
  stores?: Stores
  /** ms a socket may stay idle (CONNECTION_TIMEOUT_MS): shorter in tests of what outlasts it. */
  connectionTimeoutMs?: number
}

export interface PresencedApp {
  app: FastifyInstance
  service: PresenceService
  tokens: Tokens
  /** The adapters, for tests and benchmarks; protocols reach them only through the service. */
  stores: Stores
  config: Config
  metrics: Metrics
  /** The hot read routes answered on node:http when the app listens. */
  lean: LeanRoutes
}

/** A socket idle this long is closed (Node's server timeout; a request asking for an upgrade's too). */
const CONNECTION_TIMEOUT_MS = 60_000

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string }

/**
 * Builds presenced without listening: tests call this and `inject`, `server.ts` listens.
 * Closing the app stops the janitor and closes the stores (flushing durable data).
 */
export async function buildApp(
  config: Config,
  overrides: AppOverrides = {},
): Promise<PresencedApp> {
  const clock = overrides.clock ?? systemClock
  const metrics = new Metrics()

  // Hot read routes (POST /v1/presence/users) are answered on node:http before Fastify when
  // nothing about the request needs it: measured, Fastify cost more than the lookup. The routes
  // stay in Fastify for OpenAPI, inject and unusual requests (protocols/shared/lean-routes.ts).
  const trusts = config.trustProxy && trustsHop(config.trustProxy)
  const lean = new LeanRoutes({
    bodyLimit: config.bodyLimit,
    headersTimeoutMs: config.headersTimeoutMs,
    ...(trusts && { clientAddress: (request) => forwardedClientAddress(request, trusts) }),
  })
  const app = Fastify({
    serverFactory: lean.serverFactory,
    logger: loggerOptions(config),
    bodyLimit: config.bodyLimit,
    trustProxy: trusts || false,
    // a URL refused by the router still gets the owning protocol's error format
    frameworkErrors,
    // and so does a request Node's HTTP parser refuses (its framing, its headers)
    clientErrorHandler: clientErrors,
    // and a request that arrives while the app closes (the `closing` hook below)
    return503OnClosing: false,
    // slow or abusive clients must not hold sockets forever (headers: see LeanRoutes)
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: overrides.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    ajv: {
      customOptions: {
        // a member a schema forbids is an error, never silently dropped
        removeAdditional: false,
        // no coercion: `true` must never become user 1, `null` never a flag, `5` never `[5]`
        coerceTypes: false,
        // int64 ids are `type: ['integer', 'string']` on purpose
        allowUnionTypes: true,
        allErrors: false,
      },
      plugins: [(ajv: Ajv) => ajv.addKeyword(int64Keyword)],
    },
  })

  // before any route: a request asking for an upgrade that is not one is answered, then closed
  closeUpgradeRequests(app, {
    idleMs: overrides.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: config.requestTimeoutMs,
  })

  warnUncheckedPlatformTokens(config, app.log)
  const tokens = new Tokens(resolveTokenSecret(config.tokenSecret, config.dataDir), {
    external: config.jwt,
    // a platform's JWKS that cannot be loaded is said once, and once when it loads again
    log: app.log,
  })
  // A platform's JWKS URL is fetched as the app gets ready, in the background: the first token
  // after a start does not wait for it, and neither the start nor readiness do (presenced's own
  // tokens and anonymous reads need no JWKS; an identity provider's outage must not keep a node
  // out of its balancer). A failed fetch is said once and starts the cooldown, as a token's would.
  // From then on the set is fetched again in the background before it expires, until close (its
  // timer never holds a stopping process open, but a closed app fetches nothing more).
  app.addHook('onReady', async () => void tokens.prefetchKeys())
  app.addHook('onClose', async () => tokens.stopKeyRefresh())

  // after the app, whose logger says why a node starts not ready
  const stores =
    overrides.stores ?? (await createStores(config, app.log, clock, metrics.storeObserver))

  addBodyParsers(app)

  const service = createService(stores, config, {
    clock,
    tokens,
    observer: {
      ...metrics.observer,
      // the address, never the credential
      authLimitReached: (address, limit) =>
        app.log.warn(
          { address, limit: limit.max, windowSeconds: limit.windowMs / 1000 },
          'client address crossed the limit of failed authentications: its credentials are refused until the window ends',
        ),
    },
    // Redis away or refusing: its StoreOutages says so once (with the reason), not every duty
    // every second
    onBackgroundError: (error, duty) => warnFailure(app.log, error, `${duty} failed`),
  })
  metrics.track(service)

  registerObservability(app, {
    metrics,
    stores,
    auth: service.auth,
  })
  lean.observe(
    {
      onResponse: (method, route, status, seconds) => {
        metrics.httpDuration.observe(method, route, status, seconds)
        if (status === 429) metrics.rateLimited.inc({ route })
      },
    },
    app.log,
  )

  // Root onClose hooks added before the protocols run after theirs (and after Fastify has
  // drained the server): the stores close last, once nothing can use them.
  app.addHook('onClose', async () => {
    await service.stop()
    await stores.presence.close()
    // before the profiles: the embedded webhook store shares their database
    await stores.webhooks?.close()
    await stores.profiles.close()
    await stores.bus.close()
    await stores.history?.close?.()
  })

  try {
    return await registerRoutes(app, { config, stores, service, tokens, metrics, lean })
  } catch (error) {
    // a node that cannot start must not hang on what it opened (Redis connections, timers)
    await app.close().catch(() => undefined)
    throw error
  }
}

async function registerRoutes(
  app: FastifyInstance,
  parts: Omit<PresencedApp, 'app'>,
): Promise<PresencedApp> {
  const { config, stores, service, tokens, lean } = parts
  // Draining: a response finished during close would leave its keep-alive socket idle and open
  // (Node closes only the sockets idle when close starts), holding the process until the
  // keep-alive timeout. Responses sent while closing say `Connection: close` instead.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
    lean.close()
  })
  // A request that arrives while the app closes (on a connection opened before) is refused, as
  // Fastify would refuse it, but in its protocol's format and with Retry-After: another node
  // answers it at once
  app.addHook('onRequest', async function refuseWhileClosing() {
    if (closing) {
      throw fail('UNAVAILABLE', 'The server is shutting down: try again shortly.', {
        retryAfter: 1,
      })
    }
  })
  const drainLimit = DRAIN_LIMIT_FACTOR * config.bodyLimit
  app.addHook('onSend', async function connectionAfterReply(request, reply) {
    if (closing) void reply.header('connection', 'close')
    else if (reply.statusCode === 413 && drainable(request.headers, drainLimit)) {
      // A body refused by its Content-Length, before it was read: Fastify closes the connection
      // after its 413, and a client or proxy still writing that body meets the closed socket
      // (EPIPE, a reset) before it reads the 413: nginx in front answered 502. A body of a
      // known, bounded length is read on and dropped instead (Node dumps a body nobody read),
      // the 413 kept and the connection with it, as Go's HTTP server does.
      reply.removeHeader('connection')
    }
  })

  // gzip/deflate when the client asks (big Xbox batches shrink ~10x); small replies stay as they
  // are. Registered before the routes: it hooks each route as it is added.
  await app.register(compress, { threshold: 1024, encodings: ['gzip', 'deflate'] })

  // Swagger collects routes as they are added: it must be registered before the protocols.
  await app.register(swagger, {
    openapi: {
      // 3.1: schemas are JSON Schema 2020-12, so `type: ['integer', 'string']` ids are valid
      openapi: '3.1.0',
      info: {
        title: 'presenced',
        version,
        description:
          'User presence: the Roblox presence API v1, the Xbox Live presence API, the native API and the admin API.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          robloxCookie: { type: 'apiKey', in: 'cookie', name: '.ROBLOSECURITY' },
          xblAuth: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description: 'XBL3.0 x=<userhash>;<token>',
          },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        },
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  const context: ProtocolContext = { service, lean, settings: config }
  await app.register(robloxProtocol, context)
  await app.register(companionProtocol, context)
  await app.register(xboxProtocol, context)
  await app.register(nativeProtocol, context)
  await app.register(adminProtocol, context)
  await app.register(serversProtocol, context)
  await app.register(dashboard, {
    service,
    tokens,
    mode: stores.mode,
    sampleIntervalMs: config.statsIntervalMs,
    leaseMs: config.statsLeaseMs,
  })

  app.setNotFoundHandler(unservedPath)

  await service.start()

  return { app, ...parts }
}

/**
 * Without PRESENCED_JWT_ISSUER and PRESENCED_JWT_AUDIENCE, every token the platform's keys sign
 * is taken as a presenced login, those it issued to its other services (a store, a chat) too:
 * allowed, since some platforms put no `aud` in their tokens, but said once at start.
 */
function warnUncheckedPlatformTokens(config: Config, log: FastifyBaseLogger): void {
  if (!config.jwt) return
  const unchecked: Array<[claim: string, variable: string]> = []
  if (config.jwt.issuer === undefined) unchecked.push(['iss', 'PRESENCED_JWT_ISSUER'])
  if (config.jwt.audience === undefined) unchecked.push(['aud', 'PRESENCED_JWT_AUDIENCE'])
  if (unchecked.length === 0) return
  const claims = unchecked.map(([claim]) => claim).join(' and ')
  const unset = unchecked.map(([, variable]) => variable)
  log.warn(
    { unset },
    `platform tokens are accepted whatever their ${claims}, those the platform issued for its other services too: set ${unset.join(' and ')}`,
  )
}

/** How many times the body limit a refused body may be long and still be read to its end. */
const DRAIN_LIMIT_FACTOR = 4

/** A request whose body has a Content-Length of at most `limit` bytes (and no other framing). */
function drainable(headers: IncomingHttpHeaders, limit: number): boolean {
  const length = headers['content-length']
  if (length === undefined || headers['transfer-encoding'] !== undefined) return false
  // NaN (not a length) is not at most anything
  return contentLength(length) <= limit
}
