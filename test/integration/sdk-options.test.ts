/**
 * Numeric client options that cannot work are refused when the client (or subscription) is
 * created, naming the option, rather than bending its behaviour silently. A `NaN` comes easily
 * from `Number(process.env.SOMETHING)`; before, `maxConcurrency: NaN` answered every lookup
 * Offline without sending a request, and `retry.maxAttempts: NaN` retried a 429 for ever.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, type ClientOptions } from '@presenced/client'
import { startApp } from '../helpers/start-app.js'

test('createClient refuses a numeric option that cannot work, naming it', async (t) => {
  const server = await startApp(t, { listen: true })
  const baseUrl = server.url
  const bad: [Partial<ClientOptions>, RegExp][] = [
    [{ maxConcurrency: NaN }, /maxConcurrency must be a number, got NaN/],
    [{ maxConcurrency: '4' as never }, /maxConcurrency must be a number, got "4"/],
    [{ retry: { maxAttempts: NaN } }, /retry\.maxAttempts must be a number, got NaN/],
    [{ retry: { baseDelayMs: NaN } }, /retry\.baseDelayMs must be a number of 0 or more, got NaN/],
    [{ retry: { maxDelayMs: -1 } }, /retry\.maxDelayMs must be a number of 0 or more, got -1/],
    [{ retry: { jitter: NaN } }, /retry\.jitter must be a number, got NaN/],
    [{ timeoutMs: NaN }, /timeoutMs must be a number or false, got NaN/],
  ]
  for (const [options, message] of bad) {
    assert.throws(
      () => createClient({ baseUrl, ...options }),
      (error: unknown) => error instanceof TypeError && message.test(error.message),
      JSON.stringify(options, (_k, v: unknown) => (Number.isNaN(v) ? 'NaN' : v)),
    )
  }
  // what stays accepted: the documented values and their edges
  for (const options of [
    { maxConcurrency: 1 },
    { maxConcurrency: 0 },
    { maxConcurrency: Infinity },
    { retry: false as const },
    { retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, jitter: 0 } },
    { retry: { jitter: 1 } },
    { retry: { jitter: 2, maxAttempts: 0 } },
    { timeoutMs: false as const },
    { timeoutMs: Infinity },
  ]) {
    const client = createClient({ baseUrl, ...options })
    const [presence] = await client.getUserPresences([1])
    assert.equal(presence?.userId, '1', JSON.stringify(options))
  }
})

test('subscribe refuses reconnect and idleTimeoutMs values that cannot work, naming them', async (t) => {
  const server = await startApp(t, { listen: true })
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue('80' as never),
  })
  const bad: [Parameters<typeof client.subscribe>[1], RegExp][] = [
    [
      { reconnect: { minDelayMs: NaN } },
      /reconnect\.minDelayMs must be a number of 0 or more, got NaN/,
    ],
    [
      { reconnect: { maxDelayMs: -5 } },
      /reconnect\.maxDelayMs must be a number of 0 or more, got -5/,
    ],
    [{ idleTimeoutMs: NaN }, /idleTimeoutMs must be a number or false, got NaN/],
  ]
  for (const [options, message] of bad) {
    let error: unknown
    try {
      // one accepted by mistake is closed, so that the test still ends
      client.subscribe([1], options).close()
    } catch (thrown) {
      error = thrown
    }
    assert.ok(error instanceof TypeError && message.test(error.message), String(error))
  }
  const sub = client.subscribe([1], { transport: 'sse', reconnect: { minDelayMs: 0 } })
  await sub.ready
  sub.close()
})
