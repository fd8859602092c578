import Fastify, { type FastifyInstance } from 'fastify'
import { parse as parseQuery } from 'node:querystring'
import { adminProtocol } from '../protocols/admin/plugin.js'
import type { ProtocolContext } from '../protocols/context.js'
import { nativeProtocol } from '../protocols/native/plugin.js'
import { robloxProtocol } from '../protocols/roblox/plugin.js'
import { parseJsonLossless } from '../protocols/shared/lossless-json.js'
import { xboxProtocol } from '../protocols/xbox/plugin.js'
import { systemClock, type Clock } from '../service/clock.js'
import { Janitor } from '../service/janitor.js'
import { PresenceService } from '../service/presence-service.js'
import { Tokens } from '../service/tokens.js'
import { createStores, type Stores } from '../store/create-stores.js'
import type { Config } from './config.js'
import { resolveTokenSecret } from './token-secret.js'

export interface AppOverrides {
  clock?: Clock
  stores?: Stores
}

export interface PresencedApp {
  app: FastifyInstance
  service: PresenceService
  tokens: Tokens
  stores: Stores
  janitor: Janitor
  config: Config
}

/** Headers that carry credentials: never logged. */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-csrf-token"]',
]

/**
 * Builds presenced without listening: tests call this and `inject`, `server.ts` listens.
 * Closing the app stops the janitor and closes the stores (flushing durable data).
 */
export async function buildApp(
  config: Config,
  overrides: AppOverrides = {},
): Promise<PresencedApp> {
  const clock = overrides.clock ?? systemClock
  const stores = overrides.stores ?? (await createStores(config))
  const tokens = new Tokens(resolveTokenSecret(config.tokenSecret, config.dataDir))
  const service = new PresenceService({
    presence: stores.presence,
    profiles: stores.profiles,
    bus: stores.bus,
    clock,
    sessionTtlMs: config.sessionTtlSeconds * 1000,
  })
  const janitor = new Janitor(stores.presence, stores.bus, clock, {
    intervalMs: config.sweepIntervalMs,
    batchSize: 1000,
  })

  const app = Fastify({
    logger: { level: config.logLevel, redact: REDACT },
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // slow or abusive clients must not hold sockets forever
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    ajv: {
      customOptions: {
        // a member a schema forbids is an error, never silently dropped
        removeAdditional: false,
        coerceTypes: 'array',
        allErrors: false,
      },
    },
  })

  // Ids are int64: integer literals too long for a JS number are kept exact (as strings).
  app.addContentTypeParser(
    ['application/json', 'text/json'],
    { parseAs: 'string' },
    (_request, body, done) => {
      if (body === '') return done(null, undefined)
      try {
        done(null, parseJsonLossless(body as string))
      } catch {
        const error = new Error('The request body is not valid JSON.') as Error & {
          statusCode: number
          code: string
        }
        error.statusCode = 400
        error.code = 'INVALID_JSON'
        done(error, undefined)
      }
    },
  )
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, parseQuery(body as string)),
  )

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const ready = await Promise.all([stores.presence.ready(), stores.profiles.ready()]).then(
      (r) => r.every(Boolean),
      () => false,
    )
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable' })
  })

  const context: ProtocolContext = {
    service,
    tokens,
    rateLimiter: stores.rateLimiter,
    settings: config,
  }
  await app.register(robloxProtocol, context)
  await app.register(xboxProtocol, context)
  await app.register(nativeProtocol, context)
  await app.register(adminProtocol, context)

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      errors: [{ code: 0, message: `No route for ${request.method} ${request.url.split('?')[0]}` }],
    })
  })

  app.addHook('onClose', async () => {
    await janitor.stop()
    await stores.presence.close()
    await stores.profiles.close()
    await stores.bus.close()
  })
  janitor.start()

  return { app, service, tokens, stores, janitor, config }
}
