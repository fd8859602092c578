/**
 * The baseline of bench/heartbeat.ts: the obvious Fastify handler a user would write for
 * POST /v1/presence/register-app-presence. A body schema; the Bearer token's HS256 signature
 * checked with node:crypto (no library, no expiry or revocation check); the presence kept as an
 * object in a `Map<string, object>` per user; `{}` answered. No catalogue, no change bus, no
 * expiry, no rate limit, no metrics.
 *
 *   naive-heartbeat-server.ts --secret <HS256 secret>     prints {"port":…}
 */
import Fastify from 'fastify'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, { options: { secret: { type: 'string' } } })
const secret = values.secret!
const presences = new Map<string, object>()

const app = Fastify()
app.post<{ Body: { location?: string; placeId?: number; disconnect?: boolean } }>(
  '/v1/presence/register-app-presence',
  {
    schema: {
      body: {
        type: 'object',
        properties: {
          location: { type: 'string', maxLength: 200 },
          placeId: { type: ['integer', 'null'] },
          disconnect: { type: 'boolean' },
        },
      },
    },
  },
  async (request, reply) => {
    const token = request.headers.authorization?.slice('Bearer '.length) ?? ''
    const [head, payload, signature] = token.split('.')
    const expected = createHmac('sha256', secret).update(`${head}.${payload}`).digest()
    const given = Buffer.from(signature ?? '', 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return reply.code(401).send({ errors: [{ code: 0, message: 'Unauthorized' }] })
    }
    const { sub } = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { sub: string }
    const { location, placeId, disconnect } = request.body
    if (disconnect) presences.delete(sub)
    else presences.set(sub, { location, placeId, at: Date.now() })
    return {}
  },
)
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ port: Number(new URL(address).port) }))
