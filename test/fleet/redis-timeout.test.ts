import assert from 'node:assert/strict'
import { test } from 'node:test'
import { privateRedis } from '../helpers/redis-cluster.js'
import { startApp } from '../helpers/start-app.js'

/*
 * PRESENCED_REDIS_TIMEOUT: how long a request waits on a Redis that does not answer before its
 * 503. A Redis far away or under load may need more than the default 500 ms.
 */

test('fleet: a Redis that hangs is waited on for PRESENCED_REDIS_TIMEOUT, then the request is a 503', async (t) => {
  const redis = await privateRedis(t, 'redis-timeout')
  const app = await startApp(t, {
    listen: true,
    config: { redisUrl: redis.url, redisPrefix: 'redis-timeout:', redisTimeoutMs: 2500 },
  })
  const read = async () => {
    const started = performance.now()
    const response = await fetch(`${app.url}/v1/presence/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userIds: [1] }),
      signal: AbortSignal.timeout(20_000),
    })
    await response.arrayBuffer()
    return { status: response.status, ms: performance.now() - started }
  }
  assert.equal((await read()).status, 200)

  redis.process().kill('SIGSTOP')
  try {
    const { status, ms } = await read()
    t.diagnostic(`503 after ${ms.toFixed(0)} ms`)
    assert.equal(status, 503)
    // a lower bound only: a loaded machine makes it later, never sooner
    assert.ok(ms >= 2400, `answered after ${ms.toFixed(0)} ms, before the 2500 ms timeout`)
  } finally {
    redis.process().kill('SIGCONT')
  }
  let status = 0
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await read()).status
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200))
  }
  assert.equal(status, 200, 'served again once Redis answers')
})
