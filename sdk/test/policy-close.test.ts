import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { createClient, PresencedError, type WebSocketLike } from '@presenced/client'
import WebSocket, { WebSocketServer } from 'ws'

// A server from before the error frame that announces a close for subscribing too fast (presenced
// sends `{"type":"error","code":"RATE_LIMITED","close":1008,"retryAfterMs":…}` first, which
// test/integration/sdk-realtime-refusals.test.ts covers against the real server): the close alone
// must be read as presenced means it. A real `ws` server that answers every connection's first
// frame with a snapshot and then closes it 1008 with `reason`.
async function closingServer(t: TestContext, reason: string) {
  const frames: string[] = []
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => server.once('listening', resolve))
  let seq = 0
  server.on('connection', (socket) => {
    socket.once('message', (data: Buffer) => {
      frames.push(String(JSON.parse(data.toString()).type))
      seq++
      socket.send(
        JSON.stringify({
          type: 'snapshot',
          seq,
          resume: 'stream-1',
          presences: [{ userId: '42', state: 'offline', lastOnline: null, sessions: [] }],
        }),
      )
      socket.close(1008, reason)
    })
  })
  t.after(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, frames }
}

/** A subscription to user 42 at `url` over `ws`, reconnecting within 20-200 ms, no jitter. */
function subscribed(t: TestContext, url: string) {
  const client = createClient({
    baseUrl: url,
    token: 't',
    WebSocket: WebSocket as unknown as WebSocketLike,
    random: () => 0,
  })
  const sub = client.subscribe([42], { reconnect: { minDelayMs: 20, maxDelayMs: 200 } })
  t.after(() => sub.close())
  return sub
}

test(
  'a close for subscribing too fast is not fatal: reconnected and resumed, the backoff doubling while it goes on though each connection delivered',
  { timeout: 10_000 },
  async (t) => {
    const { url, frames } = await closingServer(t, 'subscribing too fast')
    const sub = subscribed(t, url)
    const errors: unknown[] = []
    const waits: number[] = []
    await new Promise<void>((resolve) => {
      sub.on('error', (e) => resolve(void errors.push(e)))
      sub.on('reconnecting', ({ delayMs, error }) => {
        assert.ok(error instanceof PresencedError)
        assert.equal(error.code, 1008)
        assert.equal(error.message, 'subscribing too fast')
        waits.push(delayMs)
        if (waits.length === 5) resolve()
      })
    })
    assert.deepEqual(errors, [], 'not fatal')
    // every connection's snapshot reset the usual attempt count: these closes are counted apart
    assert.deepEqual(waits, [20, 40, 80, 160, 200])
    assert.deepEqual(frames.slice(0, 3), ['subscribe', 'resume', 'resume'])
  },
)

test(
  'a close for too many malformed frames stays fatal: the subscription fails with it, not reconnected',
  { timeout: 10_000 },
  async (t) => {
    const { url, frames } = await closingServer(t, 'too many malformed frames')
    const sub = subscribed(t, url)
    let reconnects = 0
    sub.on('reconnecting', () => reconnects++)
    const failed = await new Promise<unknown>((resolve) => sub.on('error', resolve))
    assert.ok(failed instanceof PresencedError)
    assert.equal(failed.code, 1008)
    assert.equal(failed.message, 'too many malformed frames')
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(reconnects, 0)
    assert.deepEqual(frames, ['subscribe'])
  },
)
