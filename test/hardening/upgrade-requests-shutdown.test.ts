import assert from 'node:assert/strict'
import { createServer, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { test, type TestContext } from 'node:test'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import WebSocket, { WebSocketServer } from 'ws'
import { loadConfig } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { KeepaliveWheel } from '../../src/protocols/native/keepalive.js'
import { renderNative } from '../../src/protocols/native/view.js'
import { serveWebSocket, type RealtimeDeps } from '../../src/protocols/native/ws.js'
import { startApp } from '../helpers/start-app.js'

/*
 * A real-time connection is checked (token, rate limit, stream place) before its upgrade or
 * stream starts; the checks may wait (a platform's JWKS fetched, Redis). The app's shutdown
 * closes every connection once, in the native plugin's preClose: one whose checks ended after it
 * was opened all the same, past that shutdown. An SSE stream then held app.close() (and the
 * process) for as long as its client stayed; a WebSocket upgraded after the plugin's shutdown
 * stayed open, and one refused by `ws` (its server closed) got a text/html 503.
 */

/**
 * presenced checking a platform's tokens against a JWKS URL whose answer is held until
 * `release()`: a token's check waits on it. `fetched` resolves when the key set was asked for
 * by the token. The fetch at start is answered at once, with no keys: the token's unknown `kid`
 * fetches the set again once the (short) cooldown has passed.
 */
async function heldJwks(t: TestContext) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k-1', alg: 'ES256', use: 'sig' }
  const held: ServerResponse[] = []
  let asked!: () => void
  const fetched = new Promise<void>((resolve) => (asked = resolve))
  let prefetched!: () => void
  const started = new Promise<void>((resolve) => (prefetched = resolve))
  let requests = 0
  const jwks = createServer((_request, response) => {
    if (requests++ === 0) {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}')
      return prefetched()
    }
    held.push(response)
    asked()
  })
  await new Promise<void>((done) => jwks.listen(0, '127.0.0.1', done))
  t.after(() => {
    jwks.closeAllConnections()
    return new Promise((done) => jwks.close(done))
  })
  const { port } = jwks.address() as { port: number }
  const jwt = {
    ...loadConfig({
      LOG_LEVEL: 'silent',
      PRESENCED_JWT_JWKS: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    }).jwt!,
    jwksCooldownMs: 50,
  }
  const app = await startApp(t, { listen: true, config: { jwt } })
  await started
  await new Promise((resolve) => setTimeout(resolve, 100))
  const token = await new SignJWT({ sub: '7700' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k-1', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey)
  const release = () => {
    for (const response of held.splice(0)) {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ keys: [jwk] }))
    }
  }
  return { app, token, fetched, release }
}

interface Answer {
  text: string
  closed: boolean
}

/** Writes `request` on a raw socket; resolves when the server closes it, or after `waitMs`. */
function rawRequest(port: number, request: string, waitMs: number) {
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  socket.on('error', () => {})
  socket.write(request)
  return new Promise<Answer>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text, closed: false })
    }, waitMs)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
  })
}

/** app.close() with the checks released once it began; how long it took, or -1 (held 4 s). */
async function closeWhileChecking(app: { close(): Promise<unknown> }, release: () => void) {
  const started = Date.now()
  const closed = app.close().then(() => Date.now() - started)
  // the plugins' preClose hooks have run: app.close() waits on the server's connections
  await new Promise((resolve) => setTimeout(resolve, 200))
  release()
  let timer: NodeJS.Timeout | undefined
  const held = new Promise<number>((resolve) => (timer = setTimeout(resolve, 4000, -1)))
  // cleared once closed: an armed timer keeps the file's process alive after its last test
  return Promise.race([closed, held]).finally(() => clearTimeout(timer))
}

function assertRefused(answer: Answer, what: string) {
  const status = answer.text.slice(0, answer.text.indexOf('\r\n'))
  assert.match(status, /^HTTP\/1\.1 503 /, `${what}: ${answer.text}`)
  assert.match(answer.text, /\r\ncontent-type: application\/json/i, what)
  assert.match(answer.text, /\r\nretry-after: 1\r\n/i, what)
  assert.match(answer.text, /\r\nconnection: close\r\n/i, what)
  const body = JSON.parse(answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)) as {
    error: { code: string; message: string }
  }
  assert.equal(body.error.code, 'UNAVAILABLE', what)
  assert.match(body.error.message, /shutting down/, what)
  assert.ok(answer.closed, `${what}: the socket is closed`)
}

test('a WebSocket upgrade authenticated after app.close() began is refused 503 in the native format (was text/html)', async (t) => {
  const { app, token, fetched, release } = await heldJwks(t)
  const port = Number(new URL(app.url).port)
  const answer = rawRequest(
    port,
    `GET /api/v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      `Authorization: Bearer ${token}\r\n\r\n`,
    5000,
  )
  await fetched
  const ms = await closeWhileChecking(app.app, release)
  assertRefused(await answer, 'upgrade')
  assert.ok(ms >= 0 && ms < 2000, `app.close() took ${ms} ms (-1: held)`)
})

test('an SSE stream authenticated after app.close() began is refused 503, not opened (it held app.close())', async (t) => {
  const { app, token, fetched, release } = await heldJwks(t)
  const port = Number(new URL(app.url).port)
  const requests = {
    GET: `GET /api/v1/realtime/sse?ids=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    POST:
      `POST /api/v1/realtime/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{"ids":["1"]}',
  }
  const answers = Object.entries(requests).map(
    ([method, request]) => [method, rawRequest(port, request, 5000)] as const,
  )
  await fetched
  // the other request's check joins the same fetch
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ms = await closeWhileChecking(app.app, release)
  for (const [method, answer] of answers) assertRefused(await answer, method)
  assert.ok(ms >= 0 && ms < 2000, `app.close() took ${ms} ms (-1: held)`)
})

test('a WebSocket upgraded once the shutdown began is closed 1001 at once, its place given back', async (t) => {
  // the window between the checks and the upgrade is synchronous in the app: served here as
  // the plugin serves it, with the shutdown begun (deps.closing)
  const started = await startApp(t)
  const { service } = started
  // one place per user: a place kept would refuse the next admission
  const limits = { streamsPerUser: 1, watchesPerUser: 5000, detachedWatches: 100 }
  const windows = { replayFrames: 100, resumeWindowMs: 1000 }
  const fanout = service.createFanout({ render: renderNative, flapGraceMs: 0, limits, ...windows })
  t.after(() => fanout.stop())
  const wheel = new KeepaliveWheel(25_000)
  t.after(() => wheel.stop())
  const deps: RealtimeDeps = {
    fanout,
    service,
    log: started.app.log,
    queueBytes: 1024 * 1024,
    maxIds: 1000,
    resumeWindowMs: 1000,
    limits: { streamsPerUser: 1, watchesPerUser: 5000, subscribeRate: 1000 },
    wheel,
    closing: true,
  }
  const token = await started.tokens.issue('7701' as UserId)
  const caller = service.auth.requireUser(
    await service.auth.authenticate({ kind: 'token', token, via: 'bearer' }, '127.0.0.1'),
  )
  const admission = await fanout.admit(caller.userId)
  assert.ok(admission)
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => {
    for (const socket of server.clients) socket.terminate()
    return new Promise((resolve) => server.close(resolve))
  })
  server.on('connection', (socket) => serveWebSocket(socket, caller, deps, '127.0.0.1', admission))
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  const client = new WebSocket(`ws://127.0.0.1:${port}/`)
  client.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  const [code, reason] = await Promise.race([
    new Promise<[number, string]>((resolve) =>
      client.on('close', (code, reason) => resolve([code, reason.toString()])),
    ),
    new Promise<[number, string]>(
      (resolve) => (timer = setTimeout(resolve, 3000, [-1, 'still open'])),
    ),
  ])
  clearTimeout(timer)
  client.terminate()
  assert.deepEqual([code, reason], [1001, 'server shutting down'])
  assert.equal([...wheel.members()].length, 0, 'nothing kept on the keepalive wheel')
  // the user's one place was given back: another connection is admitted
  assert.ok(await fanout.admit(caller.userId), 'the place was given back')
})
