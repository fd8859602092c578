import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Cluster, Redis } from 'ioredis'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { rateLimiterContract } from '../contract/rate-limiter.contract.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { LEASES, RedisRateLimiter } from './redis-rate-limiter.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }
const T0 = Date.UTC(2026, 0, 1)
const rules = [
  { name: 'burst', max: 3, windowMs: 1_000 },
  { name: 'sustain', max: 5, windowMs: 60_000 },
]

/** One 3-master cluster for this file, started by the first test that needs it. */
const clusterTarget = clusterForThisFile()

async function open(target: RedisTarget) {
  const prefix = uniquePrefix('rate')
  const connection = new RedisConnection(target, PATIENT).retain()
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  return {
    limiter: new RedisRateLimiter(connection, keys),
    keys,
    connection,
    cleanup: async () => {
      await connection.release()
      await deleteKeys(target, prefix)
    },
  }
}

/** What `client` sends from here to the test's end, each command as `describe` gives it. */
function recordSent(
  t: TestContext,
  client: Redis,
  describe: (command: Parameters<Redis['sendCommand']>[0]) => string,
): string[] {
  const sent: string[] = []
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command, stream) => {
    sent.push(describe(command))
    return send(command, stream)
  }
  t.after(() => {
    client.sendCommand = send
  })
  return sent
}

/**
 * Two nodes' limiters on the single Redis, under one fresh prefix (deleted after the test), and
 * a window counter's value as Redis holds it.
 */
async function twoNodes(t: TestContext) {
  const prefix = uniquePrefix('rate')
  const connections = [new RedisConnection(single, PATIENT), new RedisConnection(single, PATIENT)]
  await Promise.all(connections.map((c) => c.waitReady()))
  t.after(async () => {
    await Promise.all(connections.map((c) => c.retain().release()))
    await deleteKeys(single, prefix)
  })
  const keys = new RedisKeys(prefix)
  const [a, b] = connections.map((c) => new RedisRateLimiter(c, keys))
  const counter = async (key: string, rule: string, window: number) =>
    Number(await connections[0]!.client.get(keys.rateWindow(key, rule, window)))
  return { a: a!, b: b!, counter }
}

rateLimiterContract('redis', () => open(single))
rateLimiterContract('redis cluster (3 masters)', async () => open(await clusterTarget()))

test('two nodes share one count per caller; windows reset by the clock passed in', async (t) => {
  const { a, b } = await twoNodes(t)
  const verdicts = []
  for (let i = 0; i < 4; i++) verdicts.push(await (i % 2 ? b : a).hit('user:1', rules, T0 + i))
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
  // the next burst window: the sustained limit still counts every hit
  const next = await b.hit('user:1', rules, T0 + 1_000)
  assert.equal(next.allowed, true)
  const refused = await a.hit('user:1', rules, T0 + 1_001)
  assert.equal(refused.allowed, false)
  assert.equal(refused.rule, 'sustain')
  assert.equal(refused.count, 6)
})

test('every window key expires on its own, within two of its windows', async (t) => {
  const { limiter, keys, connection, cleanup } = await open(single)
  t.after(cleanup)
  await limiter.hit('user:2', rules, T0)
  for (const rule of rules) {
    const key = keys.rateWindow('user:2', rule.name, Math.floor(T0 / rule.windowMs))
    const ttl = await connection.client.pttl(key)
    assert.ok(ttl > 0 && ttl <= 2 * rule.windowMs, `${rule.name}: PTTL ${ttl}`)
  }
})

test('on a cluster, hits of callers on every master in one tick each count', async (t) => {
  const { limiter, keys, connection, cleanup } = await open(await clusterTarget())
  t.after(cleanup)
  // ioredis auto-pipelines the tick's commands per master: each hit must join the pipeline of
  // the master of its own keys (a pipeline holding keys of two masters fails whole, as 503s)
  const callers = Array.from({ length: 12 }, (_, i) => `caller:${i}`)
  const cluster = connection.client as Cluster
  const masters = new Set<string>()
  for (const caller of callers) {
    const key = keys.rateWindow(caller, 'burst', Math.floor(T0 / 1_000))
    masters.add(String(cluster.slots[(await cluster.cluster('KEYSLOT', key)) as number]))
  }
  assert.equal(masters.size, 3, 'the callers are spread over the three masters')
  const verdicts = await Promise.all(callers.map((key) => limiter.hit(key, rules, T0)))
  assert.deepEqual(
    verdicts.map((v) => [v.allowed, v.count]),
    callers.map(() => [true, 1]),
  )
})

test('on a single Redis, a hit is SET … PX … NX and INCR per rule in the write of the tick, no script', async (t) => {
  const { limiter, keys, connection, cleanup } = await open(single)
  t.after(cleanup)
  const client = connection.client as Redis
  const sent = recordSent(t, client, (command) =>
    [command.name, ...String(command.toWritable(client.stream)).split('\r\n')].join(' '),
  )
  const [verdict, values] = await Promise.all([
    limiter.hit('user:3', rules, T0),
    connection.mget(['none']),
  ])
  assert.equal(verdict.count, 1)
  assert.deepEqual(values, [null])
  const [burst, sustain] = rules.map((rule) =>
    keys.rateWindow('user:3', rule.name, Math.floor(T0 / rule.windowMs)),
  )
  const set = (key: string, ttl: number) =>
    `set *6 $3 SET $${key.length} ${key} $1 0 $2 PX $${String(ttl).length} ${ttl} $2 NX `
  const incr = (key: string) => `incr *2 $4 INCR $${key.length} ${key} `
  assert.deepEqual(sent, [
    set(burst!, 2_000),
    incr(burst!),
    set(sustain!, 120_000),
    incr(sustain!),
    'mget *2 $4 MGET $4 none ',
  ])
  // a second hit counts on the same windows, whose expiry the first one set
  assert.equal((await limiter.hit('user:3', rules, T0 + 1)).count, 2)
  assert.equal(await connection.client.get(sustain!), '2')
  const ttl = await connection.client.pttl(sustain!)
  assert.ok(ttl > 100_000 && ttl <= 120_000, `PTTL ${ttl}`)
})

test('on a single Redis, hits of one caller in one write are one SET … NX and one INCRBY per window, each hit its own count', async (t) => {
  const { limiter, keys, connection, cleanup } = await open(single)
  t.after(cleanup)
  const sent = recordSent(t, connection.client as Redis, (command) => command.name)
  // four hits of user:4 and one of user:5 in one tick: one write
  const verdicts = await Promise.all([
    limiter.hit('user:4', rules, T0),
    limiter.hit('user:4', rules, T0 + 1),
    limiter.hit('user:5', rules, T0 + 2),
    limiter.hit('user:4', rules, T0 + 3),
    limiter.hit('user:4', rules, T0 + 4),
  ])
  assert.deepEqual(
    verdicts.map((v) => [v.allowed, v.count]),
    [
      [true, 1],
      [true, 2],
      [true, 1],
      [true, 3],
      [false, 4],
    ],
  )
  // per window (burst, sustain) of each caller, in the order of their first hits: a SET, then
  // one INCRBY of its hits (INCR for one)
  assert.equal(sent.join(' '), 'set incrby set incrby set incr set incr')
  for (const caller of ['user:4', 'user:5']) {
    for (const rule of rules) {
      const key = keys.rateWindow(caller, rule.name, Math.floor(T0 / rule.windowMs))
      const ttl = await connection.client.pttl(key)
      assert.ok(ttl > 0 && ttl <= 2 * rule.windowMs, `${caller} ${rule.name}: PTTL ${ttl}`)
    }
  }
  // the next write starts its windows again (a key gone in between is made with its expiry)
  await connection.client.del(keys.rateWindow('user:5', 'burst', Math.floor(T0 / 1_000)))
  sent.length = 0
  const again = await Promise.all([
    limiter.hit('user:5', rules, T0 + 5),
    limiter.hit('user:5', rules, T0 + 6),
  ])
  assert.deepEqual(sent, ['set', 'incrby', 'set', 'incrby'])
  // each hit sees what it would have seen counted alone: burst 1 then 2 (its key was gone)
  assert.deepEqual(
    again.map((v) => [v.allowed, v.rule, v.count]),
    [
      [true, 'burst', 1],
      [true, 'burst', 2],
    ],
  )
  const burst = keys.rateWindow('user:5', 'burst', Math.floor(T0 / 1_000))
  assert.equal(await connection.client.get(burst), '2')
  const ttl = await connection.client.pttl(burst)
  assert.ok(ttl > 0 && ttl <= 2_000, `PTTL ${ttl}`)
  // user:4's burst window is spent (Redis said 4 of 3): refused here without asking Redis again;
  // its sustained window still counts the hit (5 of 5)
  sent.length = 0
  const spent = await limiter.hit('user:4', rules, T0 + 7)
  assert.deepEqual(sent, ['set', 'incr'])
  assert.deepEqual([spent.allowed, spent.rule, spent.count], [false, 'burst', 5])
  const sustain = keys.rateWindow('user:4', 'sustain', Math.floor(T0 / 60_000))
  assert.equal(await connection.client.get(sustain), '5')
})

test('on a single Redis, a node leases counts of a window: few commands, refused exactly at max + 1', async (t) => {
  const { limiter, keys, connection, cleanup } = await open(single)
  t.after(cleanup)
  const sent = recordSent(t, connection.client as Redis, (command) => command.name)
  // max 100: leases of 1, 2, 4, then 100/16 = 6 counts
  const rule = { name: 'roblox', max: 100, windowMs: 60_000 }
  const verdicts = []
  for (let i = 0; i < 110; i++) verdicts.push(await limiter.hit('ip:1', [rule], T0 + i))
  assert.deepEqual(
    verdicts.map((v) => v.count),
    Array.from({ length: 110 }, (_, i) => i + 1),
  )
  assert.deepEqual(
    verdicts.map((v) => v.allowed),
    Array.from({ length: 110 }, (_, i) => i < 100),
  )
  assert.equal(verdicts[100]!.retryAfterMs, 60_000 - 100)
  // 1 + 2 + 4 + 6·16 = 103: 19 leases, the last past max; the 7 refusals after it ask nothing
  const incrs = sent.filter((name) => name === 'incr' || name === 'incrby')
  assert.equal(incrs.length, 19)
  assert.equal(sent.filter((name) => name === 'set').length, 19)
  const window = keys.rateWindow('ip:1', 'roblox', Math.floor(T0 / 60_000))
  assert.equal(await connection.client.get(window), '103')
  // hits of one tick share the leases they take: 50 at once, each counted once, one write
  sent.length = 0
  const big = { name: 'big', max: 1_600, windowMs: 60_000 }
  const many = await Promise.all(Array.from({ length: 50 }, () => limiter.hit('ip:2', [big], T0)))
  assert.deepEqual(
    many.map((v) => v.count),
    Array.from({ length: 50 }, (_, i) => i + 1),
  )
  // leases of 1, 2, 4, 8, 16, 32 joined in one INCRBY 63
  assert.deepEqual(sent, ['set', 'incrby'])
})

test('on a single Redis, two nodes leasing one window never allow more than max together', async (t) => {
  const { a, b, counter: counterOf } = await twoNodes(t)
  const rules = [
    { name: 'short', max: 200, windowMs: 60_000 },
    { name: 'long', max: 320, windowMs: 600_000 },
  ]
  const verdicts: Array<{ allowed: boolean }> = []
  // rounds of concurrent hits on both nodes, of varying sizes, 700 in all
  for (let round = 0; round < 100; round++) {
    const now = T0 + round
    const hits = Array.from({ length: 7 }, (_, i) =>
      ((round + i) % 3 === 0 ? b : a).hit('user:7', rules, now),
    )
    verdicts.push(...(await Promise.all(hits)))
  }
  const allowed = verdicts.filter((v) => v.allowed).length
  // each node may hold at most max/16 − 1 counts leased and unspent: 11 of the short window
  assert.ok(allowed <= 200, `${allowed} allowed`)
  assert.ok(allowed >= 200 - 2 * 11, `${allowed} allowed`)
  // every allowed hit holds a count of its own, at most max, in Redis's counter
  const counter = await counterOf('user:7', 'short', Math.floor(T0 / 60_000))
  assert.ok(counter >= allowed && counter < 700, `counter ${counter}`)
})

test('on a single Redis, leases end with their window and stay bounded in number', async (t) => {
  const { limiter, connection, cleanup } = await open(single)
  t.after(cleanup)
  const sent = recordSent(t, connection.client as Redis, (command) => command.name)
  const rule = { name: 'r', max: 1_600, windowMs: 1_000 }
  // leases of 1 and 2: 3 counts, 2 spent, one left in window T0
  await limiter.hit('ip:3', [rule], T0)
  await limiter.hit('ip:3', [rule], T0 + 1)
  sent.length = 0
  assert.equal((await limiter.hit('ip:3', [rule], T0 + 2)).count, 3)
  assert.deepEqual(sent, [], 'the lease covered it')
  // the next window: its own lease, from 1, the last one's unspent counts gone with it
  const next = await limiter.hit('ip:3', [rule], T0 + 1_000)
  assert.deepEqual([next.allowed, next.count], [true, 1])
  assert.deepEqual(sent, ['set', 'incr'])
  // the same caller under other rules in the same window: their own counters, not the last ones'
  const other = { name: 'o', max: 1_600, windowMs: 1_000 }
  sent.length = 0
  const both = await limiter.hit('ip:3', [other, rule], T0 + 1_002)
  assert.deepEqual([both.allowed, both.rule, both.count], [true, 'o', 1])
  // o's first lease (1) and r's next (2, its lease of 1 spent), in one write
  assert.deepEqual(sent, ['set', 'incr', 'set', 'incrby'])
  // a flood of callers (addresses) in one window: the leases kept stay at most LEASES
  for (let from = 0; from < 2.5 * LEASES; from += 1_000) {
    await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        limiter.hit(`ip:flood:${from + i}`, [rule], T0 + 1_001),
      ),
    )
    assert.ok(limiter.leases <= LEASES, `${limiter.leases} leases`)
    assert.ok(limiter.keysBuilt <= LEASES, `${limiter.keysBuilt} callers' keys built`)
  }
})
