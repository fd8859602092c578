import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { UserId } from '../core/user-id.js'
import { adminAuth } from '../protocols/admin/auth.js'
import {
  apiKeyCredential,
  authorizationCredential,
  bearerHeaderCredential,
  oneCredential,
} from '../protocols/shared/credentials.js'
import { noCredential, type Credential } from '../service/authenticator.js'
import { sendAdminError } from '../protocols/admin/errors.js'
import { sendNativeError } from '../protocols/native/errors.js'
import { END_GRACE_MS } from '../protocols/native/sse.js'
import { clientOf } from '../service/client-address.js'
import { mapErrorToRecord } from '../protocols/shared/error-record.js'
import type { FeedListener } from '../service/presence-feed.js'
import type { PresenceService } from '../service/presence-service.js'
import { MAX_TOP } from '../service/presence-stats.js'
import type { Tokens } from '../service/tokens.js'
import type { Stores } from './create-stores.js'

export interface DashboardOptions {
  service: PresenceService
  tokens: Tokens
  mode: Stores['mode']
  /** Time-series sampling interval; default 10 s. */
  sampleIntervalMs?: number
  /** Fleet mode: how long the stats node's lease lasts unless renewed; default 30 s. */
  leaseMs?: number
}

/** Files under dashboard/ the page is made of: nothing else there is served. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'main.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
}

/** The page loads nothing from elsewhere, so the browser may load nothing from elsewhere. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** Public feed streams open at once, so that the feed cannot be used to exhaust a node. */
const MAX_PUBLIC_STREAMS = 200
/**
 * Public feed streams one client address (clientOf: an IPv6 one by its /64) may hold on a node:
 * without it one client, anonymous and unlimited, took all MAX_PUBLIC_STREAMS and every other
 * reader of the public dashboard got 503. A page holds one.
 */
const MAX_PUBLIC_STREAMS_PER_CLIENT = 10
const KEEPALIVE_MS = 15_000
/** The admin API's message for a key that is no longer good (see Authenticator#key). */
const KEY_GONE = 'The x-api-key is unknown, expired or revoked.'
/** A stream whose peer does not read is cut beyond this much unsent data. */
const MAX_BUFFERED = 256 * 1024

interface StaticFile {
  body: Buffer
  type: string
  etag: string
}

function loadFiles(): Map<string, StaticFile> {
  const dir = new URL('../../dashboard/', import.meta.url)
  const files = new Map<string, StaticFile>()
  for (const [name, type] of Object.entries(FILES)) {
    const body = readFileSync(new URL(name, dir))
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`
    files.set(name, { body, type, etag })
  }
  return files
}

/**
 * The operators' dashboard (docs/reference/dashboard.md): the page at `/dashboard`, aggregate
 * counts at `GET /api/v1/stats`, and a live feed of changes over SSE, public at
 * `GET /api/v1/stats/feed` and with ids at `GET /admin/v1/stats/feed` (admin key).
 */
export async function dashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { service, tokens } = options
  const files = loadFiles()
  const stats = service.createStats({
    sampleIntervalMs: options.sampleIntervalMs ?? 10_000,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
  })
  // keyed by the token secret (the same on every node), rotating daily: a pseudonym follows a
  // user through a day's changes and cannot be reversed or linked across days
  const feed = service.createFeed((userId: UserId, at: number) =>
    tokens
      .mac(`dashboard-feed:${Math.floor(at / 86_400_000)}`, userId)
      .toString('base64url')
      .slice(0, 8),
  )
  const checkAdmin = service.auth.adminEnabled ? adminAuth(service) : undefined
  /**
   * The credential presented on the dashboard's routes. `Authorization` and `x-api-key` together
   * are refused (400, as on the native routes): whichever was checked, the other went unchecked,
   * a revoked key behind a good token or a forged token behind the admin key.
   */
  const presented = (request: FastifyRequest): Credential =>
    oneCredential([
      ['Authorization', authorizationCredential(request, bearerHeaderCredential)],
      ['x-api-key', apiKeyCredential(request.headers)],
    ])
  /**
   * The public routes need no credential, but one presented is checked, never ignored: a bad,
   * expired or revoked token or key is refused (401) as on every other route, so that a client
   * learns its credential is gone here too. A good one gets what anyone gets. Cookies are not
   * read: a browser sends them unasked, and the page never needs one. Each request spends the
   * caller's request budget (a user's, else its address's), as the presence reads do.
   */
  const checkPresented = async (request: FastifyRequest): Promise<void> => {
    const caller = await service.auth.authenticate(presented(request), request.ip)
    // the caller's request budget, as every public read spends (the counts are cached, but each
    // request still costs its parse, its reply and its connection)
    await service.limits.request(caller, request.ip)
  }
  app.setErrorHandler(mapErrorToRecord)
  const streams = new Set<() => void>()
  let publicStreams = 0
  /** Open public streams by client address (clientOf), for MAX_PUBLIC_STREAMS_PER_CLIENT. */
  const byClient = new Map<string, number>()

  stats.start()
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end()
  })
  app.addHook('onClose', async () => {
    feed.stop()
    await stats.stop()
  })

  const hidden = { hide: true }
  const sendFile = (name: string, request: FastifyRequest, reply: FastifyReply) => {
    const file = files.get(name)!
    void reply
      .header('content-type', file.type)
      .header('cache-control', 'no-cache')
      .header('etag', file.etag)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CSP)
      .header('referrer-policy', 'no-referrer')
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send()
    return reply.send(file.body)
  }
  // a browser pointed at the server's address lands on the dashboard; relative, so a reverse
  // proxy's path prefix is kept
  app.get('/', { schema: hidden }, (_request, reply) => reply.redirect('dashboard', 302))
  app.get('/dashboard', { schema: hidden }, (request, reply) =>
    sendFile('index.html', request, reply),
  )
  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    { schema: hidden },
    (request, reply) => {
      const name = request.params.file === '' ? 'index.html' : request.params.file
      if (!Object.hasOwn(FILES, name)) {
        return sendNativeError(reply, 404, 'NOT_FOUND', `No dashboard file ${name.slice(0, 60)}`)
      }
      return sendFile(name, request, reply)
    },
  )

  app.get<{ Querystring: { top?: unknown } }>(
    '/api/v1/stats',
    {
      schema: {
        tags: ['native'],
        summary: 'Concurrent users: totals by state, top universes, places and titles, last hour',
        description:
          'Invisible users are counted nowhere; users whose location is not public count as online but in no breakdown. With the admin key in x-api-key, `all` adds the same numbers over every user.',
        querystring: {
          type: 'object',
          // an array (`?top=1&top=2`) reaches the handler, refused there in the route's words
          properties: { top: { type: ['integer', 'string', 'array'] } },
        },
      },
    },
    async (request, reply) => {
      const raw = request.query.top ?? 10
      if (Array.isArray(raw)) {
        return sendNativeError(reply, 400, 'TOP_INVALID', '"top" must be given once.')
      }
      const top = typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : raw
      if (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > MAX_TOP) {
        return sendNativeError(
          reply,
          400,
          'TOP_INVALID',
          `"top" must be an integer from 0 to ${MAX_TOP}.`,
        )
      }
      const admin = request.headers['x-api-key'] !== undefined
      const credential = presented(request)
      if (credential.kind === 'several') await service.auth.authenticate(credential, request.ip)
      if (admin) {
        if (!checkAdmin) {
          return sendAdminError(reply, 404, 'ADMIN_OFF', 'The admin API is off.')
        }
        await checkAdmin(request)
      } else {
        await checkPresented(request)
      }
      const body = admin ? await stats.adminStats(top) : await stats.publicStats(top)
      return reply.header('cache-control', 'no-store').send({ ...body, mode: options.mode })
    },
  )

  const serveFeed =
    (kind: FeedListener['kind']) => (request: FastifyRequest, reply: FastifyReply) => {
      if (kind === 'public' && publicStreams >= MAX_PUBLIC_STREAMS) {
        return sendNativeError(
          reply,
          503,
          'TOO_MANY_STREAMS',
          'Too many feed streams are open; try again later.',
        )
      }
      const client = clientOf(request.ip)
      if (kind === 'public' && (byClient.get(client) ?? 0) >= MAX_PUBLIC_STREAMS_PER_CLIENT) {
        return sendNativeError(
          reply.header('retry-after', '1'),
          429,
          'STREAM_LIMIT',
          `At most ${MAX_PUBLIC_STREAMS_PER_CLIENT} feed streams per client address: close one.`,
        )
      }
      const headers = {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store, no-transform',
        'x-accel-buffering': 'no',
      }
      // a HEAD drops every write, the headers' too until the response ends: answered, no stream
      if (request.method === 'HEAD') return reply.headers(headers).send()
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, { ...headers, connection: 'keep-alive' })
      res.write('retry: 2000\n\n')
      if (kind === 'public') {
        publicStreams++
        byClient.set(client, (byClient.get(client) ?? 0) + 1)
      }
      let open = true
      const write = (batch: object) => {
        if (!open) return
        if (res.writableLength > MAX_BUFFERED) return end()
        res.write(`data: ${JSON.stringify(batch)}\n\n`)
      }
      // the admin feed goes on only while its key does: each batch waits for the key's check
      // (a store read; batches come at most every 250 ms), so none leaves after a revocation;
      // while the store cannot tell (an outage), batches are held back and the stream stays
      let checked = Promise.resolve(true)
      const credential = apiKeyCredential(request.headers) ?? noCredential
      const stillAdmin = () =>
        (checked = checked.then(async () => {
          if (!open) return false
          const allowed = await service.auth.stillAllows(credential, 'admin')
          if (allowed !== false) return allowed === true
          write({ error: { code: 'API_KEY_INVALID', message: KEY_GONE } })
          end()
          return false
        }))
      const send =
        kind === 'public'
          ? write
          : (batch: object) => void stillAdmin().then((allowed) => allowed && write(batch))
      const stop = feed.listen(
        kind === 'admin' ? { kind: 'admin', send } : { kind: 'public', send },
      )
      const keepalive = setInterval(() => {
        if (open) res.write(': keepalive\n\n')
        if (kind === 'admin') void stillAdmin()
      }, KEEPALIVE_MS)
      keepalive.unref()
      const end = () => {
        if (!open) return
        open = false
        if (kind === 'public') {
          publicStreams--
          const left = byClient.get(client)! - 1
          if (left === 0) byClient.delete(client)
          else byClient.set(client, left)
        }
        stop()
        clearInterval(keepalive)
        streams.delete(end)
        res.end()
        setTimeout(() => res.destroy(), END_GRACE_MS).unref()
      }
      streams.add(end)
      request.raw.on('close', end)
      res.on('close', end)
    }

  app.get(
    '/api/v1/stats/feed',
    {
      schema: {
        tags: ['native'],
        summary:
          'Server-Sent Events: presence changes, anonymised (pseudonyms, no invisible users, places only when public)',
      },
      onRequest: checkPresented,
    },
    serveFeed('public'),
  )
  app.get(
    '/admin/v1/stats/feed',
    {
      schema: { tags: ['admin'], summary: 'Server-Sent Events: every presence change, with ids' },
      onRequest: async (request, reply) => {
        if (!checkAdmin) {
          return sendAdminError(
            reply,
            404,
            'ADMIN_OFF',
            'The admin API is off: set PRESENCED_ADMIN_KEY to turn it on.',
          )
        }
        return checkAdmin(request)
      },
    },
    serveFeed('admin'),
  )
}
