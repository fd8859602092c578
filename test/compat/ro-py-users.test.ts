import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { json, send } from './wire.js'

/*
 * ro.py (roblox/client.py) from names to presence, as a script does it: get_users_by_usernames,
 * get_users, then client.presence.get_user_presences with the ids it got. Every POST of its
 * Requests wrapper is refused once with an x-csrf-token, which it stores and retries with.
 */

const ALICE = '123' as UserId
const BOB = '9007199254740993' as UserId

test('ro.py: get_users_by_usernames and get_users, then get_user_presences of those ids', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const catalogue: [UserId, string][] = [
    [ALICE, 'Alice'],
    [BOB, 'bob_the_builder'],
  ]
  for (const [id, name] of catalogue) {
    const put = await send(url, {
      method: 'PUT',
      path: `/admin/v1/users/${id}`,
      headers: [
        ['x-api-key', ADMIN_KEY],
        ['content-type', 'application/json'],
      ],
      body: JSON.stringify({ name, displayName: name.toUpperCase() }),
    })
    assert.ok(put.status < 300, put.text)
  }
  const beat = await send(url, {
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    headers: [
      ['authorization', `Bearer ${await tokens.issue(BOB)}`],
      ['content-type', 'application/json'],
    ],
    body: '{"location":"Game","placeId":1818,"disconnect":false}',
  })
  assert.equal(beat.status, 200, beat.text)

  // roblox/utilities/requests.py: the session and its cookie jar
  const session: [string, string][] = [
    ['accept', '*/*'],
    ['accept-encoding', 'gzip, deflate'],
    ['user-agent', 'Roblox/WinInet'],
    ['referer', 'www.roblox.com'],
    ['cookie', `.ROBLOSECURITY=${await tokens.issue(ALICE, { name: 'Alice' })}`],
  ]
  /** Requests.request: a 403 with X-CSRF-Token is stored on the session and retried once. */
  const post = async (host: string, path: string, body: string) => {
    const request = () =>
      send(url, {
        method: 'POST',
        path,
        headers: [['host', host], ...session, ['content-type', 'application/json']],
        body,
      })
    let response = await request()
    if (response.status === 403 && response.headers['x-csrf-token']) {
      session.push(['X-CSRF-Token', response.headers['x-csrf-token'] as string])
      response = await request()
    }
    assert.equal(response.status, 200, `${path}: ${response.text}`)
    return json(response)
  }

  // get_users_by_usernames(["alice", "BOB_THE_BUILDER", "nobody"]): json.dumps spacing
  const byName = (await post(
    'users.roblox.com',
    '/v1/usernames/users',
    '{"usernames": ["alice", "BOB_THE_BUILDER", "nobody"], "excludeBannedUsers": false}',
  )) as { data: { requestedUsername: string; id: string | number; name: string }[] }
  // RequestedUsernamePartialUser(data): requestedUsername, id, name, displayName
  assert.deepEqual(
    byName.data.map((u) => [u.requestedUsername, String(u.id), u.name]),
    [
      ['alice', ALICE, 'Alice'],
      ['BOB_THE_BUILDER', BOB, 'bob_the_builder'],
    ],
  )
  // get_user_by_username("nobody") is users[0] or None: an unknown name is simply absent
  assert.ok(
    session.some(([name]) => name === 'X-CSRF-Token'),
    'the cookie POST was refused once with a token',
  )

  // get_users([...]): PartialUser(data) for each entry of "data"
  const ids = byName.data.map((u) => u.id)
  const byId = (await post(
    'users.roblox.com',
    '/v1/users',
    `{"userIds": [${ids.join(', ')}], "excludeBannedUsers": false}`,
  )) as { data: { id: string | number; displayName: string; hasVerifiedBadge: boolean }[] }
  assert.deepEqual(
    byId.data.map((u) => [String(u.id), u.displayName, u.hasVerifiedBadge]),
    [
      [ALICE, 'ALICE', false],
      [BOB, 'BOB_THE_BUILDER', false],
    ],
  )

  // client.presence.get_user_presences(ids)
  const presences = (await post(
    'presence.roblox.com',
    '/v1/presence/users',
    `{"userIds": [${ids.join(', ')}]}`,
  )) as { userPresences: { userId: string | number; userPresenceType: number }[] }
  assert.deepEqual(
    presences.userPresences.map((p) => [String(p.userId), p.userPresenceType]),
    [
      [ALICE, 0],
      [BOB, 2],
    ],
  )
})
