/**
 * The WebhookStore contract: every adapter must pass it against its real backend.
 *
 * @example
 * webhookStoreContract('sqlite', async () => {
 *   const store = new SqliteWebhookStore(new Database(':memory:'))
 *   return { store, cleanup: () => store.close() }
 * })
 *
 * The factory returns a fresh, empty store for every test; `cleanup` closes it and deletes what
 * it wrote. Leases and node announcements are timed by the backend's clock: those tests wait.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test, type TestContext } from 'node:test'
import type { UserId } from '../../core/user-id.js'
import type { Delivery, QueuedEvent, WebhookRecord, WebhookStore } from '../webhook-store.js'

export type WebhookStoreFactory = () => Promise<{ store: WebhookStore; cleanup(): Promise<void> }>

const T0 = Date.UTC(2026, 0, 1)
const BIG = '9223372036854775807' as UserId
const MAX = 100_000

function webhook(id: string, extra: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id,
    url: 'https://example.test/hooks',
    secret: 'whsec_0123456789abcdef',
    keyId: '0123456789abcdef',
    events: ['online', 'offline'],
    filter: { universes: ['13058'], titles: [], users: [BIG] },
    enabled: true,
    description: 'matchmaker',
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

function event(webhookId: string, n: number, userId: UserId = '1' as UserId): QueuedEvent {
  return {
    webhookId,
    eventId: `evt_${n}`,
    userId,
    type: n % 2 === 0 ? 'online' : 'offline',
    body: JSON.stringify({ id: `evt_${n}`, n, userId }),
    createdAt: T0 + n,
  }
}

const eventIds = (deliveries: readonly Delivery[]) => deliveries.map((d) => d.eventId)

export function webhookStoreContract(name: string, factory: WebhookStoreFactory): void {
  async function open(t: TestContext): Promise<WebhookStore> {
    const { store, cleanup } = await factory()
    t.after(cleanup)
    return store
  }

  /** A store with endpoint `w1` holding events 1..n. */
  async function withQueue(t: TestContext, n: number): Promise<WebhookStore> {
    const store = await open(t)
    await store.putWebhook(webhook('w1'))
    await store.enqueue(
      Array.from({ length: n }, (_, i) => event('w1', i + 1)),
      MAX,
    )
    return store
  }

  describe(`WebhookStore contract: ${name}`, () => {
    test('endpoints are stored whole, listed by id, replaced and deleted', async (t) => {
      const store = await open(t)
      assert.deepEqual(await store.listWebhooks(), [])
      assert.equal(await store.getWebhook('nope'), undefined)
      await store.putWebhook(webhook('w2'))
      await store.putWebhook(webhook('w1', { enabled: false }))
      assert.deepEqual(await store.getWebhook('w2'), webhook('w2'))
      assert.deepEqual(
        (await store.listWebhooks()).map((w) => w.id),
        ['w1', 'w2'],
      )
      await store.putWebhook(webhook('w1', { url: 'http://127.0.0.1:1/x', updatedAt: T0 + 5 }))
      assert.equal((await store.getWebhook('w1'))?.url, 'http://127.0.0.1:1/x')
      assert.equal(await store.deleteWebhook('w1'), true)
      assert.equal(await store.deleteWebhook('w1'), false)
      assert.deepEqual(
        (await store.listWebhooks()).map((w) => w.id),
        ['w2'],
      )
    })

    test('with a cap, creates at once never keep more than it; a replace is never refused', async (t) => {
      const store = await open(t)
      for (const id of ['w1', 'w2', 'w3'])
        assert.equal(await store.putWebhook(webhook(id), 5), true)
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => store.putWebhook(webhook(`n${i}`), 5)),
      )
      assert.equal(results.filter(Boolean).length, 2)
      const kept = (await store.listWebhooks()).map((w) => w.id)
      assert.equal(kept.length, 5)
      // a refused endpoint has no queue: its events are dropped, as an unknown endpoint's
      const refused = results.flatMap((stored, i) => (stored ? [] : [`n${i}`]))
      await store.enqueue([event(refused[0]!, 1)], MAX)
      assert.deepEqual(await store.counts(refused[0]!), { queued: 0, parked: 0 })
      // full: replacing a kept endpoint still works, a new one is refused
      const changed = webhook('w1', { description: 'edited', updatedAt: T0 + 1 })
      assert.equal(await store.putWebhook(changed, 5), true)
      assert.deepEqual(await store.getWebhook('w1'), changed)
      assert.equal(await store.putWebhook(webhook('w9'), 5), false)
      assert.equal(await store.getWebhook('w9'), undefined)
      // one deleted: one more fits
      assert.equal(await store.deleteWebhook('w2'), true)
      assert.equal(await store.putWebhook(webhook('w9'), 5), true)
      assert.equal((await store.listWebhooks()).length, 5)
    })

    test('an endpoint is replaced only while it is still the one read', async (t) => {
      const store = await open(t)
      const read = webhook('w1')
      await store.putWebhook(read)
      const disabled = webhook('w1', { enabled: false, updatedAt: T0 + 1 })
      assert.equal(await store.replaceWebhook('w1', read, disabled), true)
      assert.deepEqual(await store.getWebhook('w1'), disabled)
      // computed from what was read before `disabled` landed: refused, nothing stored
      const described = webhook('w1', { description: 'edited', updatedAt: T0 + 1 })
      assert.equal(await store.replaceWebhook('w1', read, described), false)
      assert.deepEqual(await store.getWebhook('w1'), disabled)
      // computed from what is stored now: stored
      const both = { ...disabled, description: 'edited', updatedAt: T0 + 2 }
      assert.equal(await store.replaceWebhook('w1', disabled, both), true)
      assert.deepEqual(await store.getWebhook('w1'), both)
      // deleted meanwhile: an update does not bring it back
      assert.equal(await store.deleteWebhook('w1'), true)
      assert.equal(await store.replaceWebhook('w1', both, { ...both, updatedAt: T0 + 3 }), false)
      assert.equal(await store.getWebhook('w1'), undefined)
      assert.deepEqual(await store.listWebhooks(), [])
    })

    test('claims hand out each event once, in queue order, with what was stored', async (t) => {
      const store = await open(t)
      await store.putWebhook(webhook('w1'))
      await store.enqueue([event('w1', 1, BIG), event('w1', 2), event('w1', 3)], MAX)
      const first = await store.claim('w1', 'node-a', 2)
      assert.deepEqual(eventIds(first), ['evt_1', 'evt_2'])
      const [one] = first
      assert.equal(one!.userId, BIG)
      assert.equal(one!.type, 'offline')
      assert.equal(one!.body, event('w1', 1, BIG).body)
      assert.equal(one!.createdAt, T0 + 1)
      assert.equal(one!.attempts, 0)
      assert.equal(one!.parkedAt, undefined)
      assert.deepEqual(eventIds(await store.claim('w1', 'node-a', 10)), ['evt_3'])
      assert.deepEqual(await store.claim('w1', 'node-a', 10), [])
      assert.deepEqual(await store.counts('w1'), { queued: 3, parked: 0 })
    })

    test('a completed delivery leaves the queue; other endpoints are untouched', async (t) => {
      const store = await withQueue(t, 3)
      await store.putWebhook(webhook('w2'))
      await store.enqueue([event('w2', 9)], MAX)
      const claimed = await store.claim('w1', 'node-a', 10)
      await store.complete(claimed[0]!)
      await store.complete(claimed[2]!)
      assert.deepEqual(eventIds(await store.listDeliveries('w1', 'queued', 10)), ['evt_2'])
      assert.deepEqual(await store.counts('w1'), { queued: 1, parked: 0 })
      assert.deepEqual(eventIds(await store.claim('w2', 'node-a', 10)), ['evt_9'])
    })

    test('events of an unknown or deleted endpoint are dropped, not queued', async (t) => {
      const store = await withQueue(t, 2)
      await store.deleteWebhook('w1')
      await store.enqueue([event('w1', 3), event('ghost', 1)], MAX)
      assert.deepEqual(await store.counts('w1'), { queued: 0, parked: 0 })
      assert.deepEqual(await store.claim('w1', 'node-a', 10), [])
      assert.deepEqual(await store.reclaim('w1', 'node-a', '0', 10), {
        deliveries: [],
        cursor: '0',
        done: true,
      })
      // the same id created again starts with an empty queue
      await store.putWebhook(webhook('w1'))
      assert.deepEqual(await store.claim('w1', 'node-a', 10), [])
    })

    test('an overflowing queue loses its oldest events', async (t) => {
      const store = await open(t)
      await store.putWebhook(webhook('w1'))
      await store.enqueue(
        Array.from({ length: 8 }, (_, i) => event('w1', i + 1)),
        5,
      )
      await store.enqueue([event('w1', 9)], 5)
      assert.deepEqual(await store.counts('w1'), { queued: 5, parked: 0 })
      assert.deepEqual(eventIds(await store.claim('w1', 'node-a', 10)), [
        'evt_5',
        'evt_6',
        'evt_7',
        'evt_8',
        'evt_9',
      ])
    })

    test('what an owner claimed and never finished is reclaimed by the next, in order, with its attempts', async (t) => {
      const store = await withQueue(t, 5)
      const taken = await store.claim('w1', 'dead-node', 3)
      const second = taken[1]!
      second.attempts = 2
      second.lastError = 'HTTP 503'
      second.lastAttemptAt = T0 + 100
      await store.recordFailure(second)
      await store.complete(taken[0]!)

      const all: Delivery[] = []
      let cursor = '0'
      for (;;) {
        const batch = await store.reclaim('w1', 'node-b', cursor, 1)
        all.push(...batch.deliveries)
        cursor = batch.cursor
        if (batch.done) break
      }
      assert.deepEqual(eventIds(all), ['evt_2', 'evt_3'])
      assert.equal(all[0]!.attempts, 2)
      assert.equal(all[0]!.lastError, 'HTTP 503')
      assert.equal(all[0]!.lastAttemptAt, T0 + 100)
      assert.equal(all[1]!.attempts, 0)
      // the unclaimed rest comes after, to whoever claims
      assert.deepEqual(eventIds(await store.claim('w1', 'node-b', 10)), ['evt_4', 'evt_5'])
      // reclaiming from the start again finds everything node-b holds, still in order
      const again = await store.reclaim('w1', 'node-c', '0', 10)
      assert.deepEqual(eventIds(again.deliveries), ['evt_2', 'evt_3', 'evt_4', 'evt_5'])
      assert.equal(again.done, true)
    })

    test('a parked delivery is listed with its attempts and replayed at the end of the queue', async (t) => {
      const store = await withQueue(t, 3)
      const [first] = await store.claim('w1', 'node-a', 1)
      first!.attempts = 8
      first!.lastError = 'timeout after 5000 ms'
      first!.lastAttemptAt = T0 + 500
      first!.parkedAt = T0 + 501
      await store.park(first!)
      assert.deepEqual(await store.counts('w1'), { queued: 2, parked: 1 })
      const [parked] = await store.listDeliveries('w1', 'parked', 10)
      assert.equal(parked!.eventId, 'evt_1')
      assert.equal(parked!.attempts, 8)
      assert.equal(parked!.lastError, 'timeout after 5000 ms')
      assert.equal(parked!.parkedAt, T0 + 501)
      assert.equal(parked!.body, event('w1', 1).body)
      assert.deepEqual(eventIds(await store.listDeliveries('w1', 'queued', 10)), ['evt_2', 'evt_3'])
      // a parked delivery is not reclaimed
      assert.deepEqual(eventIds((await store.reclaim('w1', 'node-b', '0', 10)).deliveries), [])

      assert.equal(await store.replay('w1', ['evt_404']), 0)
      assert.equal(await store.replay('w1'), 1)
      assert.equal(await store.replay('w1'), 0)
      assert.deepEqual(await store.counts('w1'), { queued: 3, parked: 0 })
      const claimed = await store.claim('w1', 'node-a', 10)
      assert.deepEqual(eventIds(claimed), ['evt_2', 'evt_3', 'evt_1'])
      assert.equal(claimed[2]!.attempts, 0)
      assert.equal(claimed[2]!.userId, '1')
      assert.equal(claimed[2]!.createdAt, T0 + 1)
    })

    test('replay picks parked events by id and keeps their order', async (t) => {
      const store = await withQueue(t, 4)
      for (const d of await store.claim('w1', 'node-a', 4)) {
        d.attempts = 1
        d.parkedAt = T0
        await store.park(d)
      }
      assert.deepEqual(eventIds(await store.listDeliveries('w1', 'parked', 3)), [
        'evt_1',
        'evt_2',
        'evt_3',
      ])
      assert.equal(await store.replay('w1', ['evt_3', 'evt_1']), 2)
      assert.deepEqual(eventIds(await store.claim('w1', 'node-a', 10)), ['evt_1', 'evt_3'])
      assert.deepEqual(eventIds(await store.listDeliveries('w1', 'parked', 10)), ['evt_2', 'evt_4'])
    })

    test('deleting an endpoint deletes its queue and parked events', async (t) => {
      const store = await withQueue(t, 2)
      const [first] = await store.claim('w1', 'node-a', 1)
      first!.parkedAt = T0
      await store.park(first!)
      await store.deleteWebhook('w1')
      await store.putWebhook(webhook('w1'))
      assert.deepEqual(await store.counts('w1'), { queued: 0, parked: 0 })
      assert.equal(await store.replay('w1'), 0)
    })

    test('one owner holds a lease at a time until it releases it or lets it lapse', async (t) => {
      const store = await open(t)
      await store.putWebhook(webhook('w1'))
      assert.equal(await store.acquireLease('w1', 'a', 10_000), true)
      assert.equal(await store.acquireLease('w1', 'b', 10_000), false)
      assert.equal(await store.acquireLease('w1', 'a', 10_000), true, 'the holder extends it')
      await store.releaseLease('w1', 'b')
      assert.equal(await store.acquireLease('w1', 'b', 10_000), false, 'only the holder releases')
      await store.releaseLease('w1', 'a')
      assert.equal(await store.acquireLease('w1', 'b', 200), true)
      await sleep(400)
      assert.equal(await store.acquireLease('w1', 'a', 10_000), true, 'a lapsed lease is free')
      assert.equal(await store.acquireLease('w2', 'b', 10_000), true, 'leases are per endpoint')
    })

    test('nodes count as alive while their announcement lasts', async (t) => {
      const store = await open(t)
      assert.equal(await store.announceNode('a', 10_000), 1)
      assert.equal(await store.announceNode('b', 200), 2)
      assert.equal(await store.announceNode('a', 10_000), 2)
      await sleep(400)
      assert.equal(await store.announceNode('a', 10_000), 1)
    })
  })
}
