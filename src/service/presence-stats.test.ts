import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Activity } from '../core/presence.js'
import { defaultSettings, type UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { LocalChangeBus } from '../realtime/local-change-bus.js'
import type { FleetDuties } from '../store/fleet-duties.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import { ManualClock } from './clock.js'
import { PresenceStats } from './presence-stats.js'

const T0 = 1_800_000_000_000
const HIDDEN: UserSettings = { ...defaultSettings, invisible: true }

/** One Redis as a fleet's nodes share it (no expiry: the tests move no lease past its time). */
class SharedDuties {
  holder: string | undefined
  result: string | null = null
  reads = 0
  of(node: string): FleetDuties {
    return {
      take: () => Promise.resolve((this.holder ??= node) === node),
      release: () => Promise.resolve(void (this.holder === node && (this.holder = undefined))),
      publish: (_duty, value) => Promise.resolve(void (this.result = value)),
      read: () => Promise.resolve((this.reads++, this.result)),
    }
  }
}

/** A fleet of `nodes` over one presence store and `duties`; `settings` by user id. */
function fleet(t: TestContext, duties: SharedDuties, nodes: string[], minCacheMs = 0) {
  const clock = new ManualClock(T0)
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  const settings = new Map<string, UserSettings>()
  let passes = 0
  const counted = {
    liveUsers: (now: number, batch: number) => (passes++, store.liveUsers(now, batch)),
  }
  const stats = nodes.map(
    (node) =>
      new PresenceStats(
        {
          presence: Object.assign(Object.create(store) as MemoryPresenceStore, counted),
          profiles: {
            getSettings: (ids) =>
              Promise.resolve(ids.map((id) => settings.get(id) ?? defaultSettings)),
            getPlace: () => Promise.resolve(undefined),
            getTitle: () => Promise.resolve(undefined),
          },
          bus,
          clock,
          place: () => undefined,
          duties: duties.of(node),
        },
        // the read cache goes by real time, not by this clock: none unless asked
        { sampleIntervalMs: 10_000, minCacheMs },
      ),
  )
  t.after(async () => {
    for (const s of stats) await s.stop()
    await store.close()
    await bus.close()
  })
  const beat = (userId: string, activity: Activity) =>
    store.heartbeat(
      {
        userId: userId as UserId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity,
        ttlMs: 600_000,
      },
      clock.now(),
    )
  return { clock, stats, settings, beat, passes: () => passes }
}

test('fleet stats: the holder passes and publishes; another node serves that, hidden users nowhere', async (t) => {
  const duties = new SharedDuties()
  const { stats, settings, beat, passes } = fleet(t, duties, ['a', 'b'])
  const [a, b] = stats as [PresenceStats, PresenceStats]
  await beat('1', { kind: 'inGame', universeId: '11', rootPlaceId: '111', placeId: '111' })
  await beat('2', { kind: 'inGame', universeId: '77', rootPlaceId: '777', placeId: '778' })
  settings.set('2', HIDDEN)
  await a.sample()
  await b.sample()
  assert.equal(a.leader, true)
  assert.equal(b.leader, false)
  assert.equal(passes(), 1, 'one pass for the two nodes')
  const fromB = await b.adminStats(10)
  assert.deepEqual(fromB, await a.adminStats(10))
  assert.equal(fromB.totals.online, 1)
  assert.deepEqual(fromB.top.universes, [{ id: '11', name: null, users: 1 }])
  assert.deepEqual(fromB.top.places, [{ id: '111', name: null, users: 1 }])
  assert.equal(fromB.all.totals.online, 2)
  assert.equal(fromB.all.invisibleUsers, 1)
  assert.deepEqual(
    fromB.all.top.universes.map((u) => u.id),
    ['11', '77'],
  )
  assert.deepEqual(fromB.series.samples, [[T0, 1, 1]])
  assert.equal(passes(), 1, 'serving reads no user')
})

test("fleet stats: a record older than its author's lease is not served; the node counts for itself", async (t) => {
  const duties = new SharedDuties()
  const { clock, stats, beat, passes } = fleet(t, duties, ['a', 'b'])
  const [a, b] = stats as [PresenceStats, PresenceStats]
  await beat('1', { kind: 'online' })
  await a.sample()
  assert.equal((await b.publicStats(0)).at, T0)
  // a dies holding the lease (30 s, three intervals): its record ages
  clock.advance(20_001)
  assert.equal((await b.publicStats(0)).at, T0, 'a slow holder is waited for')
  clock.advance(9_999)
  assert.equal((await b.publicStats(0)).at, T0, 'as old as the lease: still served')
  // past the lease and the pass's own time (well under a second here), b counts
  clock.advance(1_000)
  const own = await b.publicStats(0)
  assert.equal(own.at, T0 + 31_000, 'past that, b counts')
  assert.equal(own.totals.online, 1)
  assert.deepEqual(own.series.samples, [[T0, 1, 0]], 'with the last series seen')
  assert.equal(passes(), 2)
  await b.sample()
  assert.equal(b.leader, false, 'the lease is still held')
  // the holder's lease lapses (Redis drops it): b takes over and continues the series
  duties.holder = undefined
  await b.sample()
  assert.equal(b.leader, true)
  const after = await a.publicStats(0)
  assert.deepEqual(
    after.series.samples.map((s) => s[0]),
    [T0, T0 + 31_000],
  )
})

test('fleet stats: a node reads the record at most once per minCacheMs, whatever the requests', async (t) => {
  const duties = new SharedDuties()
  const { stats } = fleet(t, duties, ['a', 'b'], 200)
  const [a, b] = stats as [PresenceStats, PresenceStats]
  await a.sample()
  duties.reads = 0
  const started = performance.now()
  let requests = 0
  while (performance.now() - started < 500) {
    await Promise.all([b.publicStats(10), b.adminStats(10)])
    requests += 2
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const elapsed = performance.now() - started
  assert.ok(requests > 20)
  assert.ok(
    duties.reads >= 2 && duties.reads <= Math.ceil(elapsed / 200) + 1,
    `${duties.reads} reads`,
  )
})

test('embedded stats (no duties) still pass on their own', async (t) => {
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  t.after(async () => {
    await store.close()
    await bus.close()
  })
  const stats = new PresenceStats({
    presence: store,
    profiles: {
      getSettings: (ids) => Promise.resolve(ids.map(() => defaultSettings)),
      getPlace: () => Promise.resolve(undefined),
      getTitle: () => Promise.resolve(undefined),
    },
    bus,
    clock: new ManualClock(T0),
    place: () => undefined,
  })
  await stats.sample()
  assert.equal(stats.leader, false)
  assert.equal((await stats.publicStats(0)).series.samples.length, 1)
})

test('fleet stats: a slow pass renews the lease for the stretched interval, so it does not lapse', async (t) => {
  const store = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  const ttls: number[] = []
  const duties: FleetDuties = {
    take: (_duty, ttlMs) => {
      ttls.push(ttlMs)
      return Promise.resolve(true)
    },
    release: () => Promise.resolve(),
    publish: () => Promise.resolve(),
    read: () => Promise.resolve(null),
  }
  const stats = new PresenceStats(
    {
      presence: store,
      profiles: {
        // a pass of about 60 ms: the next sample is 20 passes' time away, 1.2 s
        getSettings: async (ids) => {
          await new Promise((resolve) => setTimeout(resolve, 60))
          return ids.map(() => defaultSettings)
        },
        getPlace: () => Promise.resolve(undefined),
        getTitle: () => Promise.resolve(undefined),
      },
      bus,
      clock: new ManualClock(T0),
      place: () => undefined,
      duties,
    },
    { sampleIntervalMs: 100, leaseMs: 100 },
  )
  t.after(async () => {
    await stats.stop()
    await store.close()
    await bus.close()
  })
  await store.heartbeat(
    {
      userId: '1' as UserId,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online' },
      ttlMs: 600_000,
    },
    T0,
  )
  await stats.sample()
  assert.equal(stats.leader, true)
  assert.equal(ttls[0], 300, 'taken for three intervals before the pass')
  // renewed after it, for three of the stretched intervals: at least 3 x 20 x 60 ms
  assert.equal(ttls.length, 2)
  assert.ok(ttls[1]! >= 3600, `renewed for ${ttls[1]} ms`)
})
