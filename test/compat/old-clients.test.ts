import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { InvisibleSelfView } from '../../src/protocols/roblox/view.js'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { json, send } from './wire.js'

/*
 * ro.py (roblox/presence.py) maps userPresenceType through `PresenceType(IntEnum)` with members
 * 0..3 only: a 4 (Invisible) raises ValueError and the whole get_user_presences call fails. The
 * signed-in user reading their own presence while invisible is where a 4 could appear: by
 * default they see their real state (0..3); 4 only where the operator opts in
 * (PRESENCED_INVISIBLE_SELF_VIEW=invisible), and 0 with the old PRESENCED_INVISIBLE_AS_OFFLINE=1.
 */

const ALICE = '123' as UserId
const RO_PY_PRESENCE_TYPES = new Set([0, 1, 2, 3])

interface Record {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
  userId: number
}

/** Alice in place 1818 and invisible; then ro.py, signed in as Alice, reads her presence. */
async function roPyReadsItselfWhileInvisible(
  invisibleSelfView: InvisibleSelfView,
  t: Parameters<typeof startApp>[0],
) {
  const { url, tokens } = await startApp(t, { listen: true, config: { invisibleSelfView } })
  const settings = await send(url, {
    method: 'PUT',
    path: '/admin/v1/users/123/settings',
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['Content-Type', 'application/json'],
    ],
    body: '{"invisible":true}',
  })
  assert.ok(settings.status < 300, settings.text)
  const beat = await send(url, {
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    headers: [
      ['Authorization', `Bearer ${await tokens.issue(ALICE)}`],
      ['Content-Type', 'application/json'],
    ],
    body: '{"location":"Game","placeId":1818,"disconnect":false}',
  })
  assert.equal(beat.status, 200, beat.text)

  // roblox/utilities/requests.py: httpx defaults, User-Agent Roblox/WinInet, the cookie jar
  const session: [string, string][] = [
    ['accept', '*/*'],
    ['accept-encoding', 'gzip, deflate'],
    ['user-agent', 'Roblox/WinInet'],
    ['referer', 'www.roblox.com'],
    ['cookie', `.ROBLOSECURITY=${await tokens.issue(ALICE, { name: 'alice' })}`],
  ]
  // client.get_authenticated_user(): who am I
  const me = json(
    await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: session }),
  ) as { id: number }
  // client.presence.get_user_presences([me.id]): the read needs no CSRF token (its Requests
  // wrapper would store one from a 403 and retry once; none comes)
  const payload = `{"userIds": [${me.id}]}`
  const read = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [...session, ['content-type', 'application/json']],
    body: payload,
  })
  assert.equal(read.status, 200, read.text)
  const self = (json(read) as { userPresences: Record[] }).userPresences[0]!

  const anonymous = (
    json(
      await send(url, {
        method: 'POST',
        path: '/v1/presence/users',
        headers: [['content-type', 'application/json']],
        body: payload,
      }),
    ) as { userPresences: Record[] }
  ).userPresences[0]!
  return { self, anonymous }
}

test('ro.py: by default an invisible user reading themself gets their real state, which PresenceType parses', async (t) => {
  const { self, anonymous } = await roPyReadsItselfWhileInvisible('state', t)
  assert.ok(RO_PY_PRESENCE_TYPES.has(self.userPresenceType), String(self.userPresenceType))
  assert.deepEqual(
    { type: self.userPresenceType, placeId: self.placeId, userId: self.userId },
    { type: 2, placeId: 1818, userId: 123 },
  )
  assert.deepEqual([anonymous.userPresenceType, anonymous.placeId], [0, null])
})

test('PRESENCED_INVISIBLE_SELF_VIEW=invisible: the operator opted in to 4, which ro.py cannot parse', async (t) => {
  const { self, anonymous } = await roPyReadsItselfWhileInvisible('invisible', t)
  assert.equal(self.userPresenceType, 4)
  assert.ok(!RO_PY_PRESENCE_TYPES.has(self.userPresenceType))
  assert.equal(self.placeId, 1818)
  assert.equal(anonymous.userPresenceType, 0)
})

test('PRESENCED_INVISIBLE_SELF_VIEW=offline (the old PRESENCED_INVISIBLE_AS_OFFLINE=1): 0, as others see it', async (t) => {
  const { self, anonymous } = await roPyReadsItselfWhileInvisible('offline', t)
  assert.deepEqual(
    { type: self.userPresenceType, location: self.lastLocation, placeId: self.placeId },
    { type: 0, location: 'Offline', placeId: null },
  )
  assert.equal(anonymous.userPresenceType, 0)
})
