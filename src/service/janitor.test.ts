import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../core/user-id.js'
import type { BusEvent } from '../realtime/change-bus.js'
import { LocalChangeBus } from '../realtime/local-change-bus.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import type { PresenceChange } from '../store/presence-store.js'
import { ManualClock } from './clock.js'
import { Janitor } from './janitor.js'

const TTL = 10_000

function setup(t: import('node:test').TestContext, batchSize = 100) {
  const clock = new ManualClock()
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  const changes: PresenceChange[] = []
  bus.subscribe((event: BusEvent) => {
    if (event.type === 'presence') changes.push(event.change)
  })
  const sweeps: Array<[number, number]> = []
  const janitor = new Janitor(store, bus, clock, {
    intervalMs: 5,
    batchSize,
    onSweep: (expired, lateness) => sweeps.push([expired, lateness]),
  })
  t.after(async () => {
    await janitor.stop()
    await store.close()
    await bus.close()
  })
  const beat = (userId: string, key = 'app:iOS') =>
    store.heartbeat(
      {
        userId: userId as UserId,
        key,
        source: 'app',
        deviceType: 'iOS',
        activity: { kind: 'online' },
        ttlMs: TTL,
      },
      clock.now(),
    )
  return { clock, store, bus, janitor, changes, sweeps, beat }
}

test('sweepOnce publishes one timeout change per expired user, once', async (t) => {
  const { clock, janitor, changes, sweeps, beat } = setup(t)
  const start = clock.now()
  await beat('1')
  await beat('1', 'app:PC')
  await beat('2')
  clock.advance(TTL - 1)
  assert.equal(await janitor.sweepOnce(), 0)
  assert.equal(changes.length, 0)
  clock.advance(251)
  assert.equal(await janitor.sweepOnce(), 2)
  assert.deepEqual(changes.map((c) => [c.userId, c.reason, c.ended?.length]).sort(), [
    ['1', 'timeout', 2],
    ['2', 'timeout', 1],
  ])
  for (const change of changes) {
    assert.deepEqual(change.after.sessions, [])
    assert.equal(change.after.lastOnline, start)
  }
  assert.deepEqual(sweeps, [[2, 250]])
  assert.equal(await janitor.sweepOnce(), 0)
  assert.equal(changes.length, 2)
})

test('sweepOnce drains every due session in batches', async (t) => {
  const { clock, janitor, changes, sweeps, beat } = setup(t, 3)
  for (let i = 1; i <= 10; i++) await beat(String(i))
  clock.advance(TTL)
  assert.equal(await janitor.sweepOnce(), 10)
  assert.equal(new Set(changes.map((c) => c.userId)).size, 10)
  assert.deepEqual(
    sweeps.map(([n]) => n),
    [3, 3, 3, 1],
  )
})

test('a started janitor sweeps on its own and stops cleanly', async (t) => {
  const { clock, bus, janitor, beat } = setup(t)
  await beat('7')
  clock.advance(TTL)
  const offline = new Promise<PresenceChange>((resolve) => {
    bus.subscribe((event) => {
      if (event.type === 'presence' && event.change.reason === 'timeout') resolve(event.change)
    })
  })
  // the janitor's timer is unref'd: this guard keeps the test process alive meanwhile
  const guard = setTimeout(() => assert.fail('the janitor did not sweep within 5 s'), 5_000)
  janitor.start()
  janitor.start()
  const change = await offline
  clearTimeout(guard)
  assert.equal(change.userId, '7')
  await janitor.stop()
  await janitor.stop()
})

test('the chore runs on its own interval, one run at a time; a failure goes to onError and it runs again', async (t) => {
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  let runs = 0
  let running = 0
  let overlapped = false
  const errors: unknown[] = []
  let third: () => void = () => {}
  const reachedThird = new Promise<void>((resolve) => (third = resolve))
  const janitor = new Janitor(store, bus, new ManualClock(), {
    intervalMs: 60_000,
    batchSize: 10,
    chore: {
      intervalMs: 2,
      run: async () => {
        runs++
        overlapped ||= running > 0
        running++
        await new Promise((resolve) => setTimeout(resolve, 10))
        running--
        if (runs === 1) throw new Error('first run fails')
        if (runs === 3) third()
      },
      onError: (error) => errors.push(error),
    },
  })
  t.after(async () => {
    await store.close()
    await bus.close()
  })
  // the janitor's timers are unref'd: this one keeps the test's process alive meanwhile
  const alive = setInterval(() => {}, 1000)
  janitor.start()
  await reachedThird
  await janitor.stop()
  clearInterval(alive)
  const stopped = runs
  assert.equal(overlapped, false)
  assert.equal(errors.length, 1)
  assert.match(String(errors[0]), /first run fails/)
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(runs, stopped, 'no run after stop')
})

test('a leased chore runs on the node holding the lease only; stopping gives the lease up', async (t) => {
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  t.after(async () => {
    await store.close()
    await bus.close()
  })
  // one lease for two nodes, as Redis holds it (no expiry needed here)
  let holder: string | undefined
  const leaseOf = (node: string) => ({
    take: () => Promise.resolve((holder ??= node) === node),
    release: () => Promise.resolve(void (holder === node && (holder = undefined))),
  })
  const runs = { a: 0, b: 0 }
  let reached: () => void = () => {}
  const janitorOf = (node: 'a' | 'b') =>
    new Janitor(store, bus, new ManualClock(), {
      intervalMs: 60_000,
      batchSize: 10,
      chore: {
        intervalMs: 2,
        lease: leaseOf(node),
        run: () => {
          if (++runs[node] === 5) reached()
          return Promise.resolve()
        },
      },
    })
  const a = janitorOf('a')
  const b = janitorOf('b')
  const alive = setInterval(() => {}, 1000)
  t.after(() => clearInterval(alive))
  let fifth = new Promise<void>((resolve) => (reached = resolve))
  a.start()
  await fifth
  b.start()
  const bBefore = runs.b
  const aBefore = runs.a
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.equal(runs.b, bBefore, 'b waits while a holds the lease')
  assert.ok(runs.a > aBefore, 'a goes on')
  fifth = new Promise<void>((resolve) => (reached = resolve))
  await a.stop()
  assert.equal(holder, undefined, 'a gave the lease up')
  await fifth
  assert.equal(holder, 'b')
  await b.stop()
})
