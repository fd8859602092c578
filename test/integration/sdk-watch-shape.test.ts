import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, type Presence, type PresenceEvent } from '@presenced/client'
import WebSocket from 'ws'
import type { Activity } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'

const WATCHER = '500' as UserId
const NEVER_SEEN = '601' as UserId
const SIGNED_OUT = '602' as UserId
const WEBSITE = '603' as UserId
const IN_GAME = '604' as UserId
const PLAYING = '605' as UserId
const HIDDEN = '606' as UserId
const STUDIO = '607' as UserId
const LATER = '9007199254740993' as UserId
const USERS = [NEVER_SEEN, SIGNED_OUT, WEBSITE, IN_GAME, PLAYING, HIDDEN, STUDIO, LATER]

/**
 * What a Presence says, as compared between the two surfaces. The native stream leaves out an
 * online user's lastOnline (it moves with every heartbeat), so it is compared while offline only.
 */
function shape(p: Presence | undefined): Record<string, unknown> | undefined {
  if (p === undefined) return undefined
  return {
    userId: p.userId,
    type: p.type,
    lastLocation: p.lastLocation,
    place: p.place,
    rootPlace: p.rootPlace,
    universe: p.universe,
    job: p.job,
    ...(p.type === 0 && { lastOnline: p.lastOnline.toISOString() }),
  }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(`a watched user's Presence over ${transport} is the one getUserPresences gives (lastLocation "Offline", "Website", "Playing", "Studio", place ids, hidden location)`, async (t) => {
    const server = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
    const beat = (userId: UserId, activity: Activity) =>
      server.service.heartbeat({ userId, key: 'app', source: 'app', deviceType: 'Web', activity })
    await beat(SIGNED_OUT, { kind: 'online', location: 'Lobby' })
    await server.service.endSession(SIGNED_OUT, 'app')
    await beat(WEBSITE, { kind: 'online' })
    await beat(IN_GAME, {
      kind: 'inGame',
      placeId: '1818',
      rootPlaceId: '1819',
      universeId: '13058',
      gameId: '7b1a5e4c-0000-4000-8000-000000000001',
      location: 'Crossroads',
    })
    await beat(PLAYING, { kind: 'inGame', placeId: '1818' })
    await server.service.putSettings(HIDDEN, { visibility: 'nobody' })
    await beat(HIDDEN, { kind: 'inGame', placeId: '1818', location: 'Crossroads' })
    await beat(STUDIO, { kind: 'inStudio', placeId: '1818' })

    const client = createClient({
      baseUrl: server.url,
      token: await server.tokens.issue(WATCHER),
      WebSocket,
    })
    const sub = client.subscribe(USERS, { transport })
    t.after(() => sub.close())
    const events: PresenceEvent[] = []
    sub.on('event', (e) => events.push(e))
    await sub.ready

    const looked = await client.getUserPresences(USERS)
    assert.deepEqual(
      USERS.map((id) => shape(sub.presences.get(id))),
      looked.map(shape),
    )
    // the ones this test is about, spelled out (the lookup's own answer)
    assert.deepEqual(
      looked.map((p) => p.lastLocation),
      ['Offline', 'Offline', 'Website', 'Crossroads', 'Playing', 'Playing', 'Studio', 'Offline'],
    )

    // events are translated the same way as the snapshot
    await beat(LATER, { kind: 'online' })
    await new Promise<void>((resolve) => sub.once('online', () => resolve()))
    await server.service.endSession(LATER, 'app')
    const offline = await new Promise<PresenceEvent>((resolve) => sub.once('offline', resolve))
    const [after] = await client.getUserPresences([LATER])
    assert.deepEqual(shape(offline.type === 'offline' ? offline.presence : undefined), shape(after))
    const online = events.find((e) => e.type === 'online')
    assert.equal(online?.type === 'online' && online.presence.lastLocation, 'Website')
  })
}
