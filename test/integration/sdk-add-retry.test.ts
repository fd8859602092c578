import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import {
  createClient,
  PresencedError,
  type RetryOptions,
  type Subscription,
  type WebSocketLike,
} from '@presenced/client'
import WebSocket from 'ws'
import { settledWithin, setup } from './sdk-kit.js'

// An add() refused RATE_LIMITED on a live WebSocket subscription (the connection's subscribe
// budget spent) is tried again by the SDK after the server's retryAfterMs, with the backoff and
// the rules of a call's 429 (the client's `retry` options), and resolves once it is taken.

/** A subscribe frame the SDK sent, and when. */
type Sent = { at: number; ids: string[] }

/**
 * A subscription of WATCHER's to 500 users on a server that lets a connection subscribe and
 * unsubscribe 500 ids/s (bursts of 1000), ready; `retry` as the client's option. Its subscribe
 * frames are recorded.
 */
async function spentSubscription(t: TestContext, retry?: RetryOptions | false) {
  const { server, watcherToken } = await setup(t, {
    realtimeWatchesPerUser: 1000,
    realtimeSubscribeRate: 500,
  })
  const subscribes: Sent[] = []
  class Recording extends WebSocket {
    override send(data: string) {
      const frame = JSON.parse(data) as { type: string; ids?: string[] }
      if (frame.type === 'subscribe') subscribes.push({ at: Date.now(), ids: frame.ids ?? [] })
      super.send(data)
    }
  }
  const client = createClient({
    baseUrl: server.url,
    token: watcherToken,
    WebSocket: Recording as unknown as WebSocketLike,
    ...(retry !== undefined && { retry }),
  })
  const first = Array.from({ length: 500 }, (_, i) => String(10_000 + i))
  const sub = client.subscribe(first, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
  t.after(() => sub.close())
  const errors: unknown[] = []
  sub.on('error', (e) => errors.push(e))
  const warnings: PresencedError[] = []
  sub.on('warning', (w) => warnings.push(w))
  await sub.ready
  return { sub, first, subscribes, errors, warnings }
}

/**
 * Spends the rest of the connection's budget (an unsubscribe of the 500 watched: 1000 ids of
 * 1000 within a moment), then adds 500 others: refused RATE_LIMITED, about a second to wait.
 */
function addPastBudget(sub: Subscription, first: string[]): Promise<void> {
  sub.remove(first)
  return sub.add(Array.from({ length: 500 }, (_, i) => String(20_000 + i)))
}

test(
  "over websocket, an add() refused RATE_LIMITED is sent again after the server's retryAfterMs, and resolves once taken",
  { timeout: 60_000 },
  async (t) => {
    const { sub, first, subscribes, errors, warnings } = await spentSubscription(t)
    const added = addPastBudget(sub, first)
    assert.equal(await settledWithin(added, 20_000), 'resolved')
    const refusal = warnings.find((w) => w.code === 'RATE_LIMITED')
    assert.ok(refusal, `the first subscribe was refused: ${warnings.map((w) => w.code).join()}`)
    assert.ok(refusal.retryAfterMs !== undefined && refusal.retryAfterMs > 0)
    // the first subscribe, the add's refused one, and at least one more sent after the wait
    assert.ok(subscribes.length >= 3, String(subscribes.length))
    const [, refused, again] = subscribes
    assert.deepEqual(again!.ids, refused!.ids, 'the same ids sent again')
    assert.ok(
      again!.at - refused!.at >= refusal.retryAfterMs - 20,
      `sent again after ${again!.at - refused!.at} ms, the server asked ${refusal.retryAfterMs}`,
    )
    assert.equal(sub.ids.size, 500)
    assert.ok(sub.presences.has('20000') && sub.presences.has('20499'))
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, an add() refused RATE_LIMITED with a retryAfterMs past retry.maxDelayMs rejects at once, and says why',
  { timeout: 60_000 },
  async (t) => {
    const { sub, first, subscribes, errors } = await spentSubscription(t, { maxDelayMs: 100 })
    const outcome = await settledWithin(addPastBudget(sub, first), 20_000)
    assert.ok(outcome instanceof PresencedError, String(outcome))
    assert.equal(outcome.code, 'RATE_LIMITED')
    assert.match(
      outcome.message,
      /\(not retried: retryAfterMs asks for \d+(\.\d+)? s, more than retry\.maxDelayMs, 0\.1 s\)$/,
    )
    assert.equal(subscribes.length, 2, 'not sent again')
    assert.equal(sub.ids.size, 0, 'the refused ids are not watched')
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, with retry: false an add() refused RATE_LIMITED rejects at once, as a call would',
  { timeout: 60_000 },
  async (t) => {
    const { sub, first, subscribes, errors } = await spentSubscription(t, false)
    const outcome = await settledWithin(addPastBudget(sub, first), 20_000)
    assert.ok(outcome instanceof PresencedError, String(outcome))
    assert.equal(outcome.code, 'RATE_LIMITED')
    assert.doesNotMatch(outcome.message, /not retried/)
    assert.equal(subscribes.length, 2, 'not sent again')
    assert.deepEqual(errors, [])
  },
)
