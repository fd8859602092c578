import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisRateLimiter } from './redis-rate-limiter.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }
const T0 = Date.UTC(2026, 0, 1)
const rules = [
  { name: 'burst', max: 3, windowMs: 1_000 },
  { name: 'sustain', max: 5, windowMs: 60_000 },
]

test('two nodes share one count per caller; windows reset by the clock passed in', async (t) => {
  const prefix = uniquePrefix('rate')
  const connections = [new RedisConnection(single), new RedisConnection(single)]
  await Promise.all(connections.map((c) => c.waitReady()))
  t.after(async () => {
    await Promise.all(connections.map((c) => c.retain().release()))
    await deleteKeys(single, prefix)
  })
  const [a, b] = connections.map((c) => new RedisRateLimiter(c, new RedisKeys(prefix)))
  const verdicts = []
  for (let i = 0; i < 4; i++) verdicts.push(await (i % 2 ? b! : a!).hit('user:1', rules, T0 + i))
  assert.deepEqual(
    verdicts.map((v) => [v.allowed, v.rule, v.count]),
    [
      [true, 'burst', 1],
      [true, 'burst', 2],
      [true, 'burst', 3],
      [false, 'burst', 4],
    ],
  )
  assert.equal(verdicts[3]!.retryAfterMs, 1_000 - 3)
  // another caller has its own count; braces in a key cannot break the hash tag
  assert.equal((await a!.hit('{ip}:::1', rules, T0)).count, 1)
  // the next burst window: the sustained limit still counts every hit
  const next = await b!.hit('user:1', rules, T0 + 1_000)
  assert.equal(next.allowed, true)
  const refused = await a!.hit('user:1', rules, T0 + 1_001)
  assert.equal(refused.allowed, false)
  assert.equal(refused.rule, 'sustain')
  assert.equal(refused.count, 6)
})
