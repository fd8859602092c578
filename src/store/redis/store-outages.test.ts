import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StoreOutages } from './store-outages.js'

function harness() {
  const said: Array<{ level: 'warn' | 'info'; details: Record<string, unknown>; message: string }> =
    []
  const refusals: string[] = []
  const listening: boolean[] = []
  let now = 1_000_000
  const outages = new StoreOutages({
    log: {
      warn: (details, message) => said.push({ level: 'warn', details, message }),
      info: (details, message) => said.push({ level: 'info', details, message }),
    },
    observer: {
      storeRefused: (reason) => refusals.push(reason),
      busListening: (value) => listening.push(value),
    },
    reminderMs: 60_000,
    now: () => now,
  })
  return { outages, said, refusals, listening, advance: (ms: number) => (now += ms) }
}

test('unreachable: one warning, then a reminder a minute at most, then one info line when back', () => {
  const { outages, said, advance } = harness()
  const reason = 'connect ECONNREFUSED 127.0.0.1:6390'
  // a reconnection attempt every 0.5 s for 2.5 minutes
  for (let i = 0; i < 300; i++) {
    outages.lost(reason)
    advance(500)
  }
  assert.deepEqual(
    said.map((s) => [s.level, s.details.reason, s.details.downForSeconds]),
    [
      ['warn', reason, undefined],
      ['warn', reason, 60],
      ['warn', reason, 120],
    ],
  )
  assert.match(said[0]!.message, /Redis is unreachable \(connect ECONNREFUSED 127\.0\.0\.1:6390\)/)
  assert.equal(outages.unreachable, true)
  outages.back()
  outages.back()
  assert.equal(said.length, 4)
  assert.deepEqual([said[3]!.level, said[3]!.details.downForSeconds], ['info', 150])
  assert.equal(outages.unreachable, false)
  // a new outage is said again
  outages.lost(reason)
  assert.equal(said.length, 5)
  assert.equal(said[4]!.level, 'warn')
})

test("unreachable for an operator's reason (a database refused): said at once, once, within an outage begun otherwise", () => {
  const { outages, said, advance } = harness()
  const refused = 'connect ECONNREFUSED 127.0.0.1:6390'
  const select = 'SELECT 5 (the database of the Redis URL) refused: ERR DB index is out of range'
  outages.lost(refused)
  advance(500)
  outages.lost(refused)
  // Redis is back, but refuses the database, on every attempt
  for (let i = 0; i < 10; i++) {
    advance(500)
    outages.lost(select, true)
  }
  assert.deepEqual(
    said.map((s) => [s.level, s.details.reason, s.details.downForSeconds]),
    [
      ['warn', refused, undefined],
      ['warn', select, 1],
    ],
  )
  // then reminded as any, a minute after it was said
  for (let i = 0; i < 120; i++) {
    advance(500)
    outages.lost(select, true)
  }
  assert.deepEqual(
    said.slice(2).map((s) => [s.details.reason, s.details.downForSeconds]),
    [[select, 61]],
  )
  // an ordinary reason that changes is not said at once
  outages.lost(refused)
  assert.equal(said.length, 3)
})

test('refusals: each counted by reason, one warning, reminders with the count, a new episode after a quiet minute', () => {
  const { outages, said, refusals, advance } = harness()
  const oom = "OOM command not allowed when used memory > 'maxmemory'."
  for (let i = 0; i < 100; i++) {
    outages.refused(oom)
    advance(700)
  }
  assert.equal(refusals.length, 100)
  assert.ok(refusals.every((reason) => reason === 'OOM'))
  assert.equal(said.length, 2)
  assert.deepEqual(said[0]!.details, { reason: oom })
  assert.match(said[0]!.message, /^Redis refuses commands \(OOM command not allowed/)
  // the reminder counts the refusals since the warning: 0.7 s apart, the 86th is 60.2 s later
  assert.deepEqual(said[1]!.details, { reason: oom, refusals: 86, refusedForSeconds: 60 })
  advance(61_000)
  outages.refused('MISCONF Redis is configured to save RDB snapshots, but it is currently not able')
  assert.equal(said.length, 3)
  assert.match(said[2]!.message, /^Redis refuses commands \(MISCONF/)
  assert.equal(refusals.at(-1), 'MISCONF')
  // a reply's first word is the label, never free text
  outages.refused('weird: text')
  assert.equal(refusals.at(-1), 'other')
})

test('a reason is one line of at most 200 characters', () => {
  const { outages, said } = harness()
  outages.lost(`${'x'.repeat(300)}\nsecond line`)
  const reason = String(said[0]!.details.reason)
  assert.equal(reason, `${'x'.repeat(200)}…`)
})

test('the change bus: a subscription lost during an outage is not said; one still failing once Redis answers is said once, then its return', () => {
  const { outages, said, listening, advance } = harness()
  // Redis away: the bus loses its subscription, its attempts fail; only Redis's outage is said
  outages.lost('connect ECONNREFUSED 127.0.0.1:6390')
  outages.busListening(false)
  for (let i = 0; i < 10; i++) {
    outages.busFailed('Connection is closed.')
    advance(2000)
  }
  assert.deepEqual(
    said.map((s) => s.level),
    ['warn'],
  )
  // Redis answers again, the subscription still fails: said once, however many attempts
  outages.back()
  for (let i = 0; i < 100; i++) {
    outages.busFailed("ERR unknown command 'subscribe'")
    advance(2000)
  }
  assert.deepEqual(
    said.map((s) => s.level),
    ['warn', 'info', 'warn'],
  )
  assert.match(said[2]!.message, /change bus cannot subscribe although Redis answers/)
  assert.equal(said[2]!.details.reason, "ERR unknown command 'subscribe'")
  // it holds again: said once, with how long the node did not hear the fleet
  outages.busListening(true)
  outages.busListening(true)
  assert.equal(said.length, 4)
  assert.equal(said[3]!.level, 'info')
  assert.equal(said[3]!.details.deafForSeconds, 220)
  assert.deepEqual(listening, [false, true, true])
  // a loss that holds again at once (a reconnect) says nothing
  outages.busListening(false)
  outages.busListening(true)
  assert.equal(said.length, 4)
})

test("a cluster's passing refusal (TRYAGAIN, CLUSTERDOWN, MOVED...) is not said to need an operator", () => {
  const { outages, said } = harness()
  outages.refused('TRYAGAIN Multiple keys request during rehashing of slot')
  assert.equal(said.length, 1)
  assert.match(said[0]!.message, /^Redis refuses commands \(TRYAGAIN/)
  assert.doesNotMatch(said[0]!.message, /operator/)
  assert.match(said[0]!.message, /answered 503 while it does/)
  // a full Redis still is
  const full = harness()
  full.outages.refused("OOM command not allowed when used memory > 'maxmemory'.")
  assert.match(full.said[0]!.message, /writes are answered 503 until an operator acts/)
})
