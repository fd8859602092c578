import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import {
  privateRedis,
  startPartlyAssignedCluster,
  startRedisCluster,
} from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { PresenceError } from '../../core/errors.js'
import { RedisConnection, mgetText } from './redis-connection.js'
import { StoreOutages } from './store-outages.js'

const target = { url: LOCAL_REDIS_URL }

async function open(t: import('node:test').TestContext) {
  const prefix = uniquePrefix('connection')
  const connection = new RedisConnection(target).retain()
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  t.after(async () => {
    await deleteKeys(target, prefix)
    await connection.release()
  })
  const client = connection.client as Redis
  let writes = 0
  const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
  const write = stream.write.bind(stream)
  stream.write = (...args: unknown[]) => {
    writes++
    return write(...args)
  }
  return { prefix, connection, client, writes: () => writes }
}

test('mgetText writes MGET in RESP: lengths in bytes, not characters', () => {
  assert.equal(
    mgetText([{ keys: ['a', '', 'é{b1}:p:12'] }, { keys: ['k'.repeat(1234)] }]),
    `*5\r\n$4\r\nMGET\r\n$1\r\na\r\n$0\r\n\r\n$11\r\né{b1}:p:12\r\n$1234\r\n${'k'.repeat(1234)}\r\n`,
  )
  // a length whose digits outgrow the characters': 60 characters, 120 bytes
  const wide = `x${'é'.repeat(58)}y`
  assert.equal(
    mgetText([{ keys: [wide, 'b'] }]),
    `*3\r\n$4\r\nMGET\r\n$118\r\n${wide}\r\n$1\r\nb\r\n`,
  )
})

// Pins what MgetCommand assumes of ioredis (that a command is written as its toWritable bytes):
// were that to change, Redis would get an MGET without keys and answer an error.
test('the joined MGET answers as ioredis own MGET does, for present, missing and non-ASCII keys', async (t) => {
  const { prefix, connection, client } = await open(t)
  const keys = Array.from({ length: 1200 }, (_, i) => `${prefix}:{b${i % 7}}:p:${i}`)
  keys.push(`${prefix}:ü:ключ`, `${prefix}:empty`)
  const pipeline = client.pipeline()
  keys.forEach((key, i) => {
    if (i % 3 !== 0) pipeline.set(key, i % 5 === 0 ? `["ü",${i}]` : `v${i}`)
  })
  pipeline.set(`${prefix}:empty`, '')
  await pipeline.exec()
  const expected = await client.mget(...keys)
  assert.ok(expected.some((v) => v === null) && expected.some((v) => v?.includes('ü')))
  // several callers in one tick share one MGET, each gets its own slice
  const [all, some, none] = await Promise.all([
    connection.mget(keys),
    connection.mget(keys.slice(5, 9)),
    connection.mget([]),
  ])
  assert.deepEqual(all, expected)
  assert.deepEqual(some, expected.slice(5, 9))
  assert.deepEqual(none, [])
})

test('mgetUsers answers as mget of the whole keys, heads given apart, ASCII or not', async (t) => {
  const { prefix, connection, client } = await open(t)
  const heads = [`${prefix}:{b0}:p:`, `${prefix}:{b1}:ü:`]
  const ids = ['1', '22', '333', 'ключ', '9223372036854775807']
  const bucketOf = (id: string) => id.length % 2
  const keys = ids.map((id) => heads[bucketOf(id)]! + id)
  await client.mset(keys[0]!, 'a', keys[1]!, 'b', keys[3]!, 'd')
  assert.equal(
    mgetText([{ keys: ['1', 'é'], heads: ['hé:', 'x'] }]),
    '*3\r\n$4\r\nMGET\r\n$5\r\nhé:1\r\n$3\r\nxé\r\n',
  )
  const [users, plain] = await Promise.all([
    connection.mgetUsers(heads, ids, { bucketOf }),
    connection.mget(keys),
  ])
  assert.deepEqual(users, ['a', 'b', null, 'd', null])
  assert.deepEqual(plain, users)
})

test('commands beside the MGET go out in its write, each with its own reply or error', async (t) => {
  const { prefix, connection, client, writes } = await open(t)
  await client.set(`${prefix}:n`, '41')
  await client.set(`${prefix}:text`, 'not a number')
  await client.set(`${prefix}:v`, 'value')
  const before = writes()
  const [incremented, refused, values] = await Promise.allSettled([
    connection.beside<number>('incr', [`${prefix}:n`], (c) => c.incr(`${prefix}:n`)),
    connection.beside<number>('incr', [`${prefix}:text`], (c) => c.incr(`${prefix}:text`)),
    connection.mget([`${prefix}:v`, `${prefix}:none`]),
  ])
  assert.equal(writes() - before, 1, 'one write for all three')
  assert.deepEqual(incremented, { status: 'fulfilled', value: 42 })
  assert.equal(refused.status, 'rejected')
  assert.match(String((refused as PromiseRejectedResult).reason), /not an integer/)
  assert.deepEqual(values, { status: 'fulfilled', value: ['value', null] })
})

test('reads of one turn go four to a write, each with what its caller asked beside it', async (t) => {
  const { prefix, connection, client, writes } = await open(t)
  const keys = Array.from({ length: 10 }, (_, i) => `${prefix}:r${i}`)
  await Promise.all(keys.map((key, i) => client.set(key, `v${i}`)))
  await client.set(`${prefix}:n`, '0')
  const before = writes()
  // ten callers, each in a callback of its own as requests come (setImmediate: microtasks run
  // between them), each with an incr beside its read (as a read's rate-limit hit is)
  const answers = await Promise.all(
    keys.map(
      (key) =>
        new Promise<[number, (string | null)[]]>((resolve, reject) =>
          setImmediate(() => {
            Promise.all([
              connection.beside<number>('incr', [`${prefix}:n`], (c) => c.incr(`${prefix}:n`)),
              connection.mget([key]),
            ]).then(resolve, reject)
          }),
        ),
    ),
  )
  // reads 1-4, 5-8 and 9-10 (those at the turn's end): three writes, not one for the turn
  assert.equal(writes() - before, 3)
  assert.deepEqual(
    answers.map(([, values]) => values),
    keys.map((_, i) => [`v${i}`]),
  )
  // each caller's incr went in the write of its read, in the callers' order
  assert.deepEqual(
    answers.map(([count]) => count),
    keys.map((_, i) => i + 1),
  )
})

test('rate-limit hits beside the MGET: one write, each window counted once with its expiry', async (t) => {
  const { prefix, connection, client, writes } = await open(t)
  const [a, b, bad] = [`${prefix}:w:a`, `${prefix}:w:b`, `${prefix}:w:bad`]
  await client.set(bad, 'not a number')
  const before = writes()
  const [two, one, refused, values] = await Promise.allSettled([
    connection.besideHits([a, b], ['60000', '1000']),
    connection.besideHits([a], ['60000']),
    connection.besideHits([bad], ['1000']),
    connection.mget([a]),
  ])
  assert.equal(writes() - before, 1, 'one write for all of it')
  assert.deepEqual(two, { status: 'fulfilled', value: [1, 1] })
  assert.deepEqual(one, { status: 'fulfilled', value: [2] })
  assert.equal(refused.status, 'rejected')
  assert.match(String((refused as PromiseRejectedResult).reason), /not an integer/)
  assert.deepEqual(values, { status: 'fulfilled', value: ['2'] })
  const [ttlA, ttlB, ttlBad] = await Promise.all([client.pttl(a), client.pttl(b), client.pttl(bad)])
  assert.ok(ttlA > 110_000 && ttlA <= 120_000, `PTTL ${ttlA}`)
  assert.ok(ttlB > 0 && ttlB <= 2_000, `PTTL ${ttlB}`)
  // a key that was there before its first hit keeps what it had (SET … NX)
  assert.equal(ttlBad, -1)
})

test('on a cluster whose slots are not all assigned: not ready until each has a master', async (t) => {
  const cluster = await startPartlyAssignedCluster()
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes }).retain()
  t.after(() => connection.release())
  // the cluster says ok (full coverage not required) and answers PING, but a third of the
  // slots have no master: a node must not call itself ready
  assert.equal(await connection.waitReady(1500), false)
  assert.equal(connection.coveredSlots(), 16384 - 5461)
  assert.equal(await connection.ready(), false)

  await cluster.assignTheRest()
  // ready() asks for the map again when it finds it incomplete
  const deadline = Date.now() + 10_000
  while (!(await connection.ready())) {
    assert.ok(Date.now() < deadline, 'ready once every slot has a master')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.equal(connection.coveredSlots(), 16384)
  assert.equal(await connection.waitReady(100), true)
  // a key of the slots assigned last ({b2} is slot 15193), through the auto-pipeline
  const key = `${uniquePrefix('connection')}:{b2}:x`
  await connection.run(() => connection.client.set(key, 'v'))
  assert.equal(await connection.client.get(key), 'v')
})

test('on a cluster, ready() asks each master CLUSTER INFO, at most once a second', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 })
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes }).retain()
  t.after(() => connection.release())
  assert.ok(await connection.waitReady())
  const masters = cluster.servers.map((server) => {
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 0 })
    t.after(() => client.disconnect())
    return client
  })
  await Promise.all(masters.map((client) => client.config('RESETSTAT')))
  // a /readyz asks both stores of a connection; probes may come from several balancers
  const answers = await Promise.all(Array.from({ length: 20 }, () => connection.ready()))
  for (let i = 0; i < 10; i++) answers.push(await connection.ready())
  assert.deepEqual(new Set(answers), new Set([true]))
  const calls = await Promise.all(
    masters.map(async (client) => {
      const stats = await client.info('commandstats')
      return Number(/^cmdstat_cluster\|info:calls=(\d+)/m.exec(stats)?.[1] ?? 0)
    }),
  )
  assert.deepEqual(calls, [1, 1, 1])
})

test("a SELECT Redis refuses (the URL's database) keeps the connection down as an outage, never on database 0", async (t) => {
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => rejections.push(reason)
  process.on('unhandledRejection', onRejection)
  t.after(() => process.off('unhandledRejection', onRejection))
  const redis = await privateRedis(t, 'select')
  const said: Array<{ level: string; message: string; reason?: unknown }> = []
  const outages = new StoreOutages({
    log: {
      warn: (details, message) => said.push({ level: 'warn', message, reason: details.reason }),
      info: (_details, message) => said.push({ level: 'info', message }),
    },
  })
  const url = redis.url
  const connection = new RedisConnection({ url: `${url}/5` }, { outages }).retain()
  t.after(() => connection.release())
  assert.ok(await connection.waitReady(), 'its Redis must be reachable')
  const set = (key: string) => connection.run(() => connection.client.set(key, 'v'))
  /** The keys of each database of the Redis, read on a connection of its own. */
  const keysByDb = async (dbs: number[]) => {
    const probe = new Redis(url, { maxRetriesPerRequest: 0 })
    try {
      const out: Record<number, string[]> = {}
      for (const db of dbs) {
        await probe.select(db)
        out[db] = (await probe.keys('*')).sort()
      }
      return out
    } finally {
      probe.disconnect()
    }
  }
  await set('before')
  assert.deepEqual(await keysByDb([0, 5]), { 0: [], 5: ['before'] })

  // restarted with 2 databases: SELECT 5 is refused on every reconnection
  await redis.stop()
  await redis.start(['--databases', '2'])
  await sleep(1500) // reconnection attempts every 0.5 s at most
  assert.notEqual(connection.client.status, 'ready')
  assert.equal(await connection.ready(), false, 'not ready (/readyz)')
  await assert.rejects(set('after'), (error: unknown) => {
    assert.ok(error instanceof PresenceError, String(error))
    assert.equal(error.code, 'STORE_UNAVAILABLE')
    return true
  })
  assert.deepEqual(await keysByDb([0, 1]), { 0: [], 1: [] }, 'nothing written elsewhere')
  assert.equal(said.at(-1)?.level, 'warn', JSON.stringify(said))
  assert.ok(outages.unreachable, 'an outage, still')
  // said at once (not with the reminder a minute on), and once
  const selects = said.filter((line) => /^SELECT 5 /.test(String(line.reason)))
  assert.equal(selects.length, 1, JSON.stringify(said))
  assert.match(
    String(selects[0]!.reason),
    /^SELECT 5 \(the database of the Redis URL\) refused: ERR DB index is out of range$/,
  )

  // back with 16 databases: ready on database 5, the outage said to be over
  await redis.stop()
  await redis.start()
  assert.ok(await connection.waitReady(), 'ready again')
  await set('again')
  assert.deepEqual(await keysByDb([0, 5]), { 0: [], 5: ['again'] })
  assert.match(said.at(-1)?.message ?? '', /^Redis is reachable again/)

  // a database out of range from the start: never ready, the reason said at once
  const early: string[] = []
  const other = new RedisConnection(
    { url: `${url}/16` },
    { outages: new StoreOutages({ log: { warn: (_d, m) => early.push(m), info: () => {} } }) },
  ).retain()
  t.after(() => other.release())
  assert.equal(await other.waitReady(1500), false)
  await assert.rejects(
    other.run(() => other.client.set('k', 'v')),
    PresenceError,
  )
  assert.match(
    early[0] ?? '',
    /^Redis is unreachable \(SELECT 16 \(the database of the Redis URL\) refused/,
  )
  assert.deepEqual(await keysByDb([0]), { 0: [] })
  assert.deepEqual(rejections, [])
})

test('script(): a command of its own deadline, not the timeout; sent again as EVAL once Redis lost the script', async (t) => {
  const redis = await privateRedis(t, 'connection-script')
  const connection = new RedisConnection({ url: redis.url }, { commandTimeoutMs: 100 }).retain()
  t.after(() => connection.release())
  assert.ok(await connection.waitReady())
  assert.equal(connection.deadlineFor(10_000), 100 + 2_000)
  const lease = (key: string, deadlineMs: number) =>
    connection.script<number>('presencedLease', [key, 'me', '60000'], deadlineMs)
  assert.equal(await lease('a', 100), 1)
  // Redis stalls 400 ms: past the 100 ms timeout, within the command's own 2 s
  redis.process().kill('SIGSTOP')
  const slow = lease('b', 2_000)
  const failed = lease('c', 100).then(
    () => 'answered',
    (error: Error) => error.message,
  )
  await sleep(400)
  redis.process().kill('SIGCONT')
  assert.equal(await slow, 1)
  assert.equal(await failed, 'Command timed out')
  // a Redis that forgot its scripts (restarted, SCRIPT FLUSH) gets the script again
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  await admin.script('FLUSH')
  assert.equal(await lease('d', 1_000), 1)
  assert.equal(await admin.exists('d'), 1)
})
