import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertRobloxError, json, send, type WireResponse } from '../compat/wire.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * Issue 16 item 3, over real HTTP: the users host's batch lookups answer from the users
 * catalogue in Roblox's shapes, and a path the service does not serve is a 404 in the shape of
 * the protocol it would belong to, never a route it does not mean.
 */

const MAX = '9223372036854775807'

async function world(t: Parameters<typeof startApp>[0]) {
  const app = await startApp(t, { listen: true })
  for (const [id, name, displayName] of [
    ['1', 'Roblox', 'Roblox'],
    [MAX, 'max_int', 'Max'],
    ['7', 'builderman', 'Builder Man'],
  ]) {
    const put = await send(app.url, {
      method: 'PUT',
      path: `/admin/v1/users/${id}`,
      headers: [
        ['x-api-key', ADMIN_KEY],
        ['content-type', 'application/json'],
      ],
      body: JSON.stringify({ name, displayName }),
    })
    assert.ok(put.status < 300, put.text)
  }
  return app
}

function post(url: string, path: string, body: string, type = 'application/json') {
  return send(url, { method: 'POST', path, headers: [['content-type', type]], body })
}

test('POST /v1/users: Roblox\'s {"data":[...]} for every id, ids digit for digit', async (t) => {
  const { url } = await world(t)
  const response = await post(
    url,
    '/v1/users',
    `{"userIds":[${MAX},1,42,1],"excludeBannedUsers":true}`,
  )
  assert.equal(response.status, 200, response.text)
  assert.ok(response.text.includes(`"id":${MAX},`), 'the int64 id is written whole')
  assert.deepEqual(json(response), {
    data: [
      { hasVerifiedBadge: false, id: MAX, name: 'max_int', displayName: 'Max' },
      { hasVerifiedBadge: false, id: 1, name: 'Roblox', displayName: 'Roblox' },
      // as GET /v1/users/42: every id is a user, named User<id> when the catalogue has no name
      { hasVerifiedBadge: false, id: 42, name: 'User42', displayName: 'User42' },
    ],
  })
  const form = await post(url, '/v1/users', 'userIds=7', 'application/x-www-form-urlencoded')
  assert.equal(form.status, 200, form.text)
  assert.equal((json(form) as { data: { name: string }[] }).data[0]!.name, 'builderman')
})

test('POST /v1/usernames/users: found ignoring ASCII case, unknown names left out, requestedUsername echoed', async (t) => {
  const { url } = await world(t)
  const response = await post(
    url,
    '/v1/usernames/users',
    '{"usernames":["ROBLOX","nobody","Max_Int"],"excludeBannedUsers":false}',
    'text/json',
  )
  assert.equal(response.status, 200, response.text)
  assert.deepEqual(json(response), {
    data: [
      {
        requestedUsername: 'ROBLOX',
        hasVerifiedBadge: false,
        id: 1,
        name: 'Roblox',
        displayName: 'Roblox',
      },
      {
        requestedUsername: 'Max_Int',
        hasVerifiedBadge: false,
        id: MAX,
        name: 'max_int',
        displayName: 'Max',
      },
    ],
  })
})

test('batch lookups refuse bad bodies with a Roblox 400, and other methods with 405', async (t) => {
  const { url } = await world(t)
  const bad: [string, string][] = [
    ['/v1/users', '{"userIds":[]}'],
    ['/v1/users', '{"userIds":[0]}'],
    ['/v1/users', '{"userIds":[1e3]}'],
    ['/v1/users', '{"userIds":["abc"]}'],
    ['/v1/users', '{"userIds":5}'],
    ['/v1/users', `{"userIds":[${Array.from({ length: 101 }, (_, i) => i + 1).join(',')}]}`],
    ['/v1/users', '{"userIds":[1],"excludeBannedUsers":"maybe"}'],
    ['/v1/users', '[1]'],
    ['/v1/users', '{"userIds":[1'],
    ['/v1/usernames/users', '{"usernames":[""]}'],
    ['/v1/usernames/users', '{"usernames":[5]}'],
    ['/v1/usernames/users', '{}'],
  ]
  for (const [path, body] of bad) {
    assertRobloxError(await post(url, path, body), 400)
  }
  for (const path of ['/v1/users', '/v1/usernames/users']) {
    const wrong = await send(url, { method: 'GET', path })
    assertRobloxError(wrong, 405)
    assert.equal(wrong.headers.allow, 'POST')
  }
})

test('batch lookups refuse other media types with a Roblox 415; a body sent untyped is still a 400', async (t) => {
  const { url } = await world(t)
  for (const path of ['/v1/users', '/v1/usernames/users']) {
    for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
      const body = path === '/v1/users' ? '{"userIds":[1]}' : '{"usernames":["Roblox"]}'
      const refused = await post(url, path, body, type)
      assertRobloxError(refused, 415)
      assert.equal((json(refused) as { errors: { code: number }[] }).errors[0]!.code, 0)
    }
    assertRobloxError(await send(url, { method: 'POST', path }), 400)
  }
  const form = await post(url, '/v1/users', 'userIds=1', 'application/x-www-form-urlencoded')
  assert.equal(form.status, 200, form.text)
})

test("a path this service does not serve is a 404 in its protocol's shape, never a mismatched route", async (t) => {
  const { url } = await world(t)
  const roblox = (response: WireResponse) => {
    assertRobloxError(response, 404)
    return (json(response) as { errors: { code: number; message: string }[] }).errors[0]!
  }
  // ro.py's user_search: not a user id, and not taken for one
  const search = roblox(await send(url, { method: 'GET', path: '/v1/users/search?keyword=x' }))
  assert.doesNotMatch(search.message, /user id/)
  roblox(await send(url, { method: 'GET', path: '/v1/users/abc' }))
  // a well-formed id of no valid user is Roblox's own "invalid user id" 404, code 3
  assert.equal(roblox(await send(url, { method: 'GET', path: '/v1/users/0' })).code, 3)
  assert.equal(
    (json(await send(url, { method: 'GET', path: `/v1/users/${MAX}` })) as { name: string }).name,
    'max_int',
  )
  roblox(await send(url, { method: 'GET', path: '/v2/users/1' }))

  const native = await send(url, { method: 'GET', path: '/api/v1/nothing-here' })
  assert.equal(native.status, 404)
  assert.equal((json(native) as { error: { code: string } }).error.code, 'NOT_FOUND')

  const xbox = await send(url, { method: 'GET', path: '/users/me/nothing/here' })
  assert.equal(xbox.status, 404)
  assert.equal((json(xbox) as { code: number }).code, 1008)
})
