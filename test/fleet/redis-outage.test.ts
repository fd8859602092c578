import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { freePort, startRedisServer } from '../helpers/redis-cluster.js'
import { robloxCallsOf, startFleetNode } from './fleet-node.js'

/** Polls `check` until it holds: waiting for a state, with a deadline, never a fixed sleep. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('Redis stopped mid-run: fast 503s and /readyz 503, then recovery without restart', async (t) => {
  // our own Redis, durable with AOF: the machine's Redis is never stopped
  const dir = mkdtempSync(join(tmpdir(), 'presenced-outage-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const aof = ['--appendonly', 'yes', '--appendfsync', 'always']
  let redis = await startRedisServer(port, dir, aof)
  t.after(() => redis.kill())
  const node = await startFleetNode({ PRESENCED_REDIS_URL: `redis://127.0.0.1:${port}` })
  t.after(() => node.kill())

  const { register, lookup } = await robloxCallsOf(node, '9223372036854775807')
  assert.equal((await register()).status, 200)
  assert.equal((await fetch(`${node.url}/readyz`)).status, 200)

  await redis.kill()

  for (const request of [lookup, register]) {
    const started = performance.now()
    const response = await request()
    const elapsed = performance.now() - started
    t.diagnostic(`${response.status} in ${elapsed.toFixed(0)} ms while Redis is down`)
    assert.equal(response.status, 503)
    // the 500 ms command timeout, not a TCP timeout of minutes; generous for a loaded machine
    assert.ok(elapsed < 3000, `failed in ${elapsed} ms, must be under 3 s`)
    const body = (await response.json()) as { errors: Array<{ code: number; message: string }> }
    assert.equal(body.errors.length, 1)
    assert.equal(typeof body.errors[0]!.code, 'number')
    assert.match(body.errors[0]!.message, /unavailable/i)
  }
  assert.equal((await fetch(`${node.url}/readyz`)).status, 503)

  redis = await startRedisServer(port, dir, aof)
  const back = performance.now()
  await until(async () => (await fetch(`${node.url}/readyz`)).status === 200, 10_000, 'ready')
  t.diagnostic(`ready again ${(performance.now() - back).toFixed(0)} ms after Redis restarted`)
  const response = await lookup()
  assert.equal(response.status, 200)
  // the AOF kept the session written before the outage
  const [record] = ((await response.json()) as { userPresences: Array<Record<string, unknown>> })
    .userPresences
  assert.equal(record!.userPresenceType, 2)
  assert.equal((await register()).status, 200)

  // a Redis that hangs instead of closing (SIGSTOP): the command timeout still fails fast
  redis.process.kill('SIGSTOP')
  try {
    const started = performance.now()
    const hung = await lookup()
    const elapsed = performance.now() - started
    t.diagnostic(`${hung.status} in ${elapsed.toFixed(0)} ms while Redis hangs`)
    assert.equal(hung.status, 503)
    // the 500 ms command timeout, not a TCP timeout of minutes; generous for a loaded machine
    assert.ok(elapsed < 3000, `failed in ${elapsed} ms, must be under 3 s`)
  } finally {
    redis.process.kill('SIGCONT')
  }
  await until(async () => (await lookup()).status === 200, 10_000, 'serving after SIGCONT')
})
