import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prometheusSamples } from '../helpers/prometheus.js'
import { freePort, privateRedis, startRedisServer } from '../helpers/redis-cluster.js'
import { robloxCallsOf, startFleetNode, type FleetNode } from './fleet-node.js'

/*
 * What an operator reads in a fleet node's log while Redis is down or full: one warning naming
 * Redis's reason (never a stack), not one per reconnection attempt, background duty or request;
 * one info line when Redis is back; and, for a full Redis, a counter by reason on /metrics.
 */

const METRICS_KEY = 'metrics-key-of-the-outage-logs-test'

interface Line {
  level: number
  msg: string
  time: number
  [key: string]: unknown
}

function linesOf(node: FleetNode): Line[] {
  return node
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Line)
}

/** Warnings and errors (pino 40 and up) logged from `since` (epoch ms) on. */
function warnings(node: FleetNode, since = 0): Line[] {
  return linesOf(node).filter((line) => line.level >= 40 && line.time >= since)
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

test('fleet: Redis down at start, then back, then full: one warning each with the reason, no stack, never per request', async (t) => {
  const redis = await privateRedis(t, 'outage-logs')
  const port = new URL(redis.url).port
  await redis.stop()
  const node = await startFleetNode({
    PRESENCED_REDIS_URL: redis.url,
    PRESENCED_REDIS_PREFIX: 'outage-logs:',
    PRESENCED_METRICS_KEY: METRICS_KEY,
  })
  t.after(() => node.kill())
  const { token, register, lookup } = await robloxCallsOf(node, '9223372036854775806')

  // a few seconds of outage, with requests in them: reconnection attempts (every 0.5 s), the
  // sweeps and webhook polls (every second) and each 503 meet it
  for (let i = 0; i < 8; i++) {
    assert.equal((await (i % 2 ? register() : lookup())).status, 503)
    await sleep(500)
  }
  const down = warnings(node)
  t.diagnostic(`warnings while down: ${JSON.stringify(down.map((line) => line.msg))}`)
  for (const line of down) {
    assert.ok(!JSON.stringify(line).includes('"stack"'), `a stack in ${JSON.stringify(line)}`)
  }
  const unreachable = down.filter((line) => /unreachable/.test(line.msg))
  assert.equal(unreachable.length, 1, 'one warning that Redis is unreachable')
  assert.equal(unreachable[0]!.reason, `connect ECONNREFUSED 127.0.0.1:${port}`)
  // that one and the startup's "not ready": nothing per attempt, duty or request
  assert.equal(down.length, 2, JSON.stringify(down.map((line) => line.msg)))
  assert.match(down[1]!.msg, /did not answer at start/)

  await redis.start()
  await until(async () => (await fetch(`${node.url}/readyz`)).status === 200, 15_000, 'ready')
  await until(
    () => linesOf(node).some((line) => /Redis is reachable again/.test(line.msg)),
    5000,
    'the line saying Redis is back',
  )
  const back = linesOf(node).filter((line) => /Redis is reachable again/.test(line.msg))
  assert.equal(back.length, 1)
  assert.equal(back[0]!.level, 30)
  assert.equal(typeof back[0]!.downForSeconds, 'number')
  assert.equal((await register()).status, 200)

  // a full Redis (maxmemory reached, noeviction): writes refused with OOM, a 503 each, and one
  // warning for them all; a read is served (its rate limit counted by the node meanwhile), though
  // its limit's refused write is counted too
  const admin = new Redis(redis.url)
  admin.on('error', () => {})
  t.after(() => admin.disconnect())
  const fullSince = Date.now()
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  const refused = 6
  for (let i = 0; i < refused; i++) {
    assert.equal((await (i % 2 ? register() : lookup())).status, i % 2 ? 503 : 200)
  }
  // the sweeps and polls of a few more seconds
  await sleep(2500)
  const full = warnings(node, fullSince)
  t.diagnostic(`warnings while full: ${JSON.stringify(full.map((line) => line.msg))}`)
  assert.equal(full.length, 1, JSON.stringify(full.map((line) => line.msg)))
  assert.match(String(full[0]!.reason), /^OOM command not allowed/)
  assert.match(full[0]!.msg, /OOM/)
  assert.ok(!JSON.stringify(full[0]).includes('"stack"'))

  const metrics = await fetch(`${node.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_KEY}` },
  })
  const text = await metrics.text()
  const counted = /^presenced_store_refusals_total\{reason="OOM"\} (\d+)$/m.exec(text)
  assert.ok(counted, 'presenced_store_refusals_total{reason="OOM"} on /metrics')
  assert.ok(Number(counted[1]) >= refused, `${counted[1]} refusals counted, ${refused} made`)
  // the node stays in its load balancer: every node shares this Redis (docs/guides/operations.md)
  assert.equal((await fetch(`${node.url}/readyz`)).status, 200)

  await admin.config('SET', 'maxmemory', '0')
  assert.equal((await register()).status, 200)

  // a Redis that hangs (SIGSTOP): commands time out on a connection that stays open
  const hungSince = Date.now()
  redis.process().kill('SIGSTOP')
  try {
    for (let i = 0; i < 4; i++) assert.equal((await lookup()).status, 503)
    await sleep(1500)
  } finally {
    redis.process().kill('SIGCONT')
  }
  const hung = warnings(node, hungSince)
  t.diagnostic(`warnings while hung: ${JSON.stringify(hung.map((line) => line.msg))}`)
  assert.equal(hung.length, 1, JSON.stringify(hung.map((line) => line.msg)))
  assert.equal(hung[0]!.reason, 'Command timed out')
  await until(async () => (await lookup()).status === 200, 10_000, 'served after SIGCONT')
  // the node's log reaches this process through a pipe: on a loaded machine, after the reply
  await until(
    () => linesOf(node).filter((line) => /Redis is reachable again/.test(line.msg)).length >= 2,
    5000,
    'the second line saying Redis is back',
  )
  const backAgain = linesOf(node).filter((line) => /Redis is reachable again/.test(line.msg))
  assert.equal(backAgain.length, 2, 'a second line saying Redis is back')
  // nothing secret in the log: the token never appears
  assert.ok(!node.output().includes(token))
})

test('fleet: a change-bus subscription Redis refuses while it answers: said once, the metric 0, then said back once it holds', async (t) => {
  // a Redis that serves every command but SUBSCRIBE (renamed): the node cannot hear the fleet
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bus-deaf-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  let redis = await startRedisServer(port, dir, ['--rename-command', 'SUBSCRIBE', 'NOT-SUBSCRIBE'])
  t.after(() => redis.kill())
  const node = await startFleetNode({
    PRESENCED_REDIS_URL: `redis://127.0.0.1:${port}`,
    PRESENCED_REDIS_PREFIX: 'bus-deaf:',
    PRESENCED_METRICS_KEY: METRICS_KEY,
  })
  t.after(() => node.kill())
  const listening = async () => {
    const response = await fetch(`${node.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_KEY}` },
    })
    return prometheusSamples(await response.text()).get('presenced_bus_listening')
  }
  const deaf = () => warnings(node).filter((line) => /change bus cannot subscribe/.test(line.msg))
  await until(() => deaf().length > 0, 15_000, 'a warning that the bus cannot subscribe')
  // the bus tries again (every 2 s at most) for a few seconds more: still one warning
  await sleep(5000)
  assert.equal(deaf().length, 1, JSON.stringify(warnings(node).map((line) => line.msg)))
  assert.match(String(deaf()[0]!.reason), /unknown command/i)
  assert.equal(await listening(), 0)

  // Redis restarted with SUBSCRIBE: the bus subscribes on reconnect, and says so once
  await redis.kill()
  redis = await startRedisServer(port, dir)
  await until(
    () => linesOf(node).some((line) => /change bus listens again/.test(line.msg)),
    15_000,
    'the line saying the bus listens again',
  )
  await until(async () => (await listening()) === 1, 5000, 'presenced_bus_listening 1')
  assert.equal(deaf().length, 1, 'no new warning about the bus')
})

test("fleet: the Redis URL's database refused after a restart: 503 and not ready, the reason said at once, nothing written to database 0", async (t) => {
  const redis = await privateRedis(t, 'select')
  const port = Number(new URL(redis.url).port)
  const node = await startFleetNode({
    PRESENCED_REDIS_URL: `${redis.url}/3`,
    PRESENCED_REDIS_PREFIX: 'select:',
  })
  t.after(() => node.kill())
  const { register, lookup } = await robloxCallsOf(node, '9223372036854775806')
  assert.equal((await register()).status, 200)
  /** How many keys each database holds, read on a connection of the test's own. */
  const keysIn = async (dbs: number[]) => {
    const probe = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    try {
      const counts: number[] = []
      for (const db of dbs) {
        await probe.select(db)
        counts.push(await probe.dbsize())
      }
      return counts
    } finally {
      probe.disconnect()
    }
  }
  const [db0, db3] = await keysIn([0, 3])
  assert.equal(db0, 0)
  assert.ok(db3! > 0, 'the heartbeat went to database 3')

  // restarted with 2 databases: every reconnection's SELECT 3 is refused
  const restartedAt = Date.now()
  await redis.stop()
  await redis.start(['--databases', '2'])
  const refused = () =>
    warnings(node, restartedAt).filter((line) => /^SELECT 3 /.test(String(line.reason)))
  await until(() => refused().length > 0, 10_000, 'a warning naming the SELECT refused')
  for (let i = 0; i < 4; i++) {
    assert.equal((await (i % 2 ? register() : lookup())).status, 503)
    await sleep(300)
  }
  assert.equal((await fetch(`${node.url}/readyz`)).status, 503)
  assert.deepEqual(await keysIn([0, 1]), [0, 0], 'nothing read or written elsewhere')
  const since = warnings(node, restartedAt)
  t.diagnostic(`warnings: ${JSON.stringify(since.map((line) => line.msg))}`)
  assert.equal(refused().length, 1, 'said once')
  assert.match(String(refused()[0]!.reason), /refused: ERR DB index is out of range$/)
  assert.ok(!since.some((line) => /unhandled/i.test(line.msg)), 'no unhandled rejection')
  assert.ok(
    !linesOf(node).some((line) => line.time >= restartedAt && /reachable again/.test(line.msg)),
  )

  // Redis restarted with its 16 databases: served again, on database 3
  await redis.stop()
  await redis.start()
  await until(async () => (await fetch(`${node.url}/readyz`)).status === 200, 15_000, 'ready')
  assert.equal((await register()).status, 200)
  const [after0, after3] = await keysIn([0, 3])
  assert.equal(after0, 0)
  assert.ok(after3! > 0)
})

test('fleet: a Redis whose ACL refuses client-side caching: one warning that the near cache is off, and reads and writes served from Redis', async (t) => {
  const redis = await privateRedis(t, 'near-refused')
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  // everything but CLIENT: the node's own connections and the change bus work, tracking cannot
  await admin.call('ACL', 'SETUSER', 'default', '-client')
  const node = await startFleetNode({
    PRESENCED_REDIS_URL: redis.url,
    PRESENCED_REDIS_PREFIX: 'near-refused:',
  })
  t.after(() => node.kill())
  const user = '9223372036854775805'
  const { register, lookup } = await robloxCallsOf(node, user)

  assert.equal((await register()).status, 200)
  for (let i = 0; i < 3; i++) {
    const response = await lookup()
    assert.equal(response.status, 200)
    const body = await response.text()
    assert.match(body, /"userPresenceType":2/)
    assert.match(body, new RegExp(`"userId":${user}`))
  }
  await until(
    () => warnings(node).some((line) => line.msg.startsWith('The near cache is off')),
    5000,
    'the near cache warning',
  )
  const said = warnings(node).filter((line) => line.msg.startsWith('The near cache is off'))
  assert.equal(said.length, 1, JSON.stringify(said))
  assert.match(String(said[0]!.reason), /NOPERM|no permissions/i)
})
