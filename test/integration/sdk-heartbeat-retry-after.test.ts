/**
 * A keepAlive beat refused 429 with a Retry-After longer than the client's retry cap (so the
 * call itself gave up) is tried again no sooner than the server asked: every earlier try is
 * refused the same way, and spends the caller's budget.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, PresencedError } from '@presenced/client'
import { ManualClock } from '../../src/service/clock.js'
import { startApp } from '../helpers/start-app.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test('keepAlive: a beat refused 429 waits for its Retry-After before the next try', async (t) => {
  const server = await startApp(t, {
    listen: true,
    // beats every 0.8 s; the third request of a minute is refused with a Retry-After of ~60 s
    config: { sessionTtlSeconds: 2, rateLimitMax: 2, rateLimitWindowSeconds: 60 },
    // the server's clock held 1 s into a window, where the wall clock's falls anywhere (the
    // Retry-After was as short as 2 s when a run began near a window's end)
    clock: new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 1)),
  })
  let beats = 0
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue('81' as never),
    fetch: (input, init) => {
      beats++
      return fetch(input, init)
    },
    // the call gives a wait past 1 s up at once: the loop decides when to beat again
    retry: { maxDelayMs: 1000 },
  })
  const errors: unknown[] = []
  const alive = client.keepAlive({ placeId: 1818, onError: (error) => errors.push(error) })
  try {
    await alive.ready
    while (errors.length === 0) await sleep(50)
    const refused = errors[0]
    assert.ok(refused instanceof PresencedError && refused.status === 429, String(refused))
    assert.ok(refused.retryAfterMs !== undefined && refused.retryAfterMs > 10_000)
    const before = beats
    await sleep(3000)
    assert.equal(beats - before, 0, 'no beat within 3 s of a refusal that asked for ~60 s')
    assert.equal(errors.length, 1)
  } finally {
    // the disconnect is refused as well (429): the test is over either way
    await alive.stop().catch(() => {})
  }
})
