import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import type { ManualClock } from '../../src/service/clock.js'
import type { StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS } from '../helpers/webhook-endpoint.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { admin, beat, hook, namesPlace, startAudited } from './audit-kit.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * The fleet settings race (docs/reference/webhooks.md): a settings write that shows a user more
 * ends the user's sessions past expiry, told under the settings it replaces, and stores the
 * settings. Until 2026-12 these were two steps (PresenceStore.expire, then the settings' own
 * compare-and-set), a few ms apart in fleet mode, with awaits between them in embedded mode: a
 * session whose expiry fell between them was swept after under the new settings, and a `nobody`
 * user's game was told, to a webhook filtered on its universe and to the public, as left.
 * Here the clock reaches the game's expiry exactly there, deterministically: while the service
 * reads the user's stored presence to compute the settings (#nextSettings), after the expiry
 * step of the two-step code and before its settings write. Embedded, and in fleet mode on Redis.
 */

const TTL_MS = 10_000
const VIEWER = '9501'
const HIDDEN = '9502'
const SENTINEL = '9509'
const PLACE = '1818'

const CONFIG: Partial<Config> = {
  ...FAST_WEBHOOKS,
  sessionTtlSeconds: TTL_MS / 1000,
  sweepIntervalMs: 3_600_000,
  flapGraceMs: 0,
}

/**
 * Sets the clock to `at` when the service next reads `id`'s stored presence with every session
 * (getMany at -Infinity: #nextSettings, before the settings are stored).
 */
function expireWhileSettingsAreComputed(
  app: StartedApp,
  clock: ManualClock,
  id: string,
  at: number,
) {
  const presence = app.stores.presence
  const getMany = presence.getMany.bind(presence)
  let armed = true
  presence.getMany = (ids, now) => {
    if (armed && now === -Infinity && ids.includes(id as UserId)) {
      armed = false
      clock.set(at)
    }
    return getMany(ids, now)
  }
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  test(`${mode}: a nobody user's game expiring while they show places to everyone is never told as left`, async (t) => {
    const { app, clock } = await startAudited(t, fleet, 'settings-race', CONFIG)
    const start0 = clock.now()
    await admin(app, 'PUT', `/admin/v1/places/${PLACE}`, { universeId: 99, name: 'Crossroads' })
    await admin(app, 'PUT', `/admin/v1/users/${HIDDEN}/settings`, { visibility: 'nobody' })
    const plain = await startReceiver(t)
    await hook(app, plain)
    const placed = await startReceiver(t)
    await hook(app, placed, { universes: ['99'] })
    const token = await app.tokens.issue(VIEWER as UserId)
    const ws = await NativeClient.connect(app.url, token)
    t.after(() => ws.socket.terminate())
    ws.send({ type: 'subscribe', ids: [HIDDEN, SENTINEL] })
    await ws.waitFor((f) => f.type === 'snapshot')
    const feed = await SseClient.get(`${app.url}/api/v1/stats/feed`)
    t.after(() => feed.close())

    // in a game on the PC (expiring at start0 + TTL), online on iOS (beaten again: later)
    await beat(app, HIDDEN, 'PC', PLACE)
    await beat(app, HIDDEN, 'iOS')
    clock.set(start0 + TTL_MS / 2)
    await beat(app, HIDDEN, 'iOS')
    // the game is still alive as the settings write starts; it expires while it runs
    clock.set(start0 + TTL_MS - 1)
    expireWhileSettingsAreComputed(app, clock, HIDDEN, start0 + TTL_MS)
    await app.service.putSettings(HIDDEN as UserId, { visibility: 'everyone' })
    clock.advance(1000)
    await app.service.sweepExpired()

    // the sentinel: everything told before it has arrived
    await beat(app, SENTINEL, 'PC')
    await ws.waitFor((f) => f.type !== 'snapshot' && f.userId === SENTINEL)
    await plain.until(
      () => plain.accepted.some((r) => r.event.userId === SENTINEL),
      15_000,
      'the sentinel',
    )
    await app.service.webhooks.idle()
    await new Promise((resolve) => setTimeout(resolve, 700))

    const of = (items: readonly unknown[]) =>
      JSON.stringify(items.filter((item) => (item as { userId?: string }).userId === HIDDEN))
    const told = {
      placed: of(placed.accepted.map((r) => r.event)),
      plain: of(plain.accepted.map((r) => r.event)),
      ws: of(ws.frames),
      feed: JSON.stringify(feed.events),
    }
    // the game was hidden while it lasted: its universe's webhook hears nothing of the user,
    // and no surface names the place
    assert.equal(told.placed, '[]', `universe webhook: ${told.placed}`)
    for (const [surface, text] of Object.entries(told)) {
      assert.ok(!namesPlace(text, PLACE, 'Crossroads'), `${surface}: ${text}`)
    }
  })
}
