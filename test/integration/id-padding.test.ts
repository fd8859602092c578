import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import type { UserId } from '../../src/core/user-id.js'
import { parseClientFrame, type FrameError } from '../../src/protocols/native/frames.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * One rule for an id written as text, on every surface (src/core/user-id.ts): spaces, tabs and
 * line breaks around the digits are taken (as Roblox's ASP.NET model binding takes them, and
 * form and query values carry them), the id kept canonical; anything else that is not the
 * canonical digits is refused in the protocol's own shape: a sign, leading zeros, an exponent, a
 * fraction, other Unicode spaces, other digits, `-0`, beyond int64.
 */

const PADDED = [' 123', '123 ', '\t123\n', '\r\n123 \f', '\v123']
const REFUSED = [
  '\u00a0123',
  '123\u3000',
  '\u2028123',
  '\ufeff123',
  '+123',
  '0123',
  '1e3',
  '123.0',
  '-0',
  '- 123',
  '12 3',
  '１２３',
  '9223372036854775808',
  ' 9223372036854775808 ',
]

const USER = '77' as UserId

async function world(t: Parameters<typeof startApp>[0]) {
  const app = await startApp(t, { config: { xboxBurstMax: 1000 } })
  const bearer = { authorization: `Bearer ${await app.tokens.issue(USER)}` }
  const xbl = {
    authorization: `XBL3.0 x=1;${await app.tokens.issue(USER)}`,
    'x-xbl-contract-version': '3',
  }
  const admin = { 'x-api-key': ADMIN_KEY }
  const serverKey = {
    'x-api-key': (await app.service.keys.create({ name: 's', scopes: ['presence:write'] })).secret,
  }
  const reader = await app.service.keys.create({ name: 'r', scopes: ['presence:read'] })
  const readerKey = reader.key.id
  const send = (
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    headers: Record<string, string>,
    payload?: string,
    type = 'application/json',
  ) =>
    app.app.inject({
      method,
      url,
      headers: payload === undefined ? headers : { ...headers, 'content-type': type },
      payload,
    })
  return { ...app, bearer, xbl, admin, serverKey, readerKey, send }
}

type Surface = (
  w: Awaited<ReturnType<typeof world>>,
  id: string,
) => Promise<{
  response: LightMyRequestResponse
  canonical: () => Promise<boolean>
  /** The status of a refused id, when not 400. */
  refused?: number
}>

const j = JSON.stringify
/** `j` with every character outside printable ASCII escaped, so a message shows which space it was. */
const show = (id: string) =>
  j(id).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
const enc = encodeURIComponent
const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'

const surfaces: Record<string, Surface> = {
  'Roblox /v1/presence/users JSON': async (w, id) => {
    const response = await w.send('POST', '/v1/presence/users', {}, `{"userIds":[${j(id)}]}`)
    return { response, canonical: async () => response.body.includes('"userId":123,') }
  },
  'Roblox /v1/presence/users form': async (w, id) => {
    const response = await w.send(
      'POST',
      '/v1/presence/users',
      {},
      `userIds=${enc(id)}`,
      'application/x-www-form-urlencoded',
    )
    return { response, canonical: async () => response.body.includes('"userId":123,') }
  },
  'Roblox register-app-presence placeId': async (w, id) => {
    const response = await w.send(
      'POST',
      '/v1/presence/register-app-presence',
      w.bearer,
      `{"placeId":${j(id)}}`,
    )
    return {
      response,
      canonical: async () =>
        (await w.service.rawPresences([USER]))[0]?.sessions.some(
          (s) => s.activity.placeId === '123',
        ) === true,
    }
  },
  'companion POST /v1/users': async (w, id) => {
    const response = await w.send('POST', '/v1/users', {}, `{"userIds":[${j(id)}]}`)
    return { response, canonical: async () => response.body.includes('"id":123,') }
  },
  'companion GET /v1/users/{id}': async (w, id) => {
    const response = await w.send('GET', `/v1/users/${enc(id)}`, {})
    // a segment that is not an id is a path this service does not serve, as `search` is
    return { response, canonical: async () => response.body.includes('"id":123,'), refused: 404 }
  },
  'Xbox title write id': async (w, id) => {
    const response = await w.send(
      'POST',
      '/users/me/devices/current/titles/current',
      w.xbl,
      `{"id":${j(id)}}`,
    )
    return {
      response,
      canonical: async () =>
        (await w.service.rawPresences([USER]))[0]?.sessions.some(
          (s) => s.activity.titleId === '123',
        ) === true,
    }
  },
  'admin PUT /admin/v1/titles/{id}': async (w, id) => {
    const response = await w.send('PUT', `/admin/v1/titles/${enc(id)}`, w.admin, '{"name":"T"}')
    return {
      response,
      canonical: async () => (await w.stores.profiles.getTitle('123'))?.titleId === '123',
    }
  },
  'admin webhook filter titles': async (w, id) => {
    const response = await w.send(
      'POST',
      '/admin/v1/webhooks',
      w.admin,
      `{"url":"https://example.com/h","keyId":${j(w.readerKey)},"filter":{"titles":[${j(id)}]}}`,
    )
    return { response, canonical: async () => response.body.includes('"titles":["123"]') }
  },
  'Xbox /users/batch': async (w, id) => {
    const response = await w.send('POST', '/users/batch', w.xbl, `{"users":[${j(id)}]}`)
    return { response, canonical: async () => response.body.includes('"xuid":"123"') }
  },
  'Xbox GET /users/xuid(…)': async (w, id) => {
    const response = await w.send('GET', `/users/xuid(${enc(id)})`, w.xbl)
    return { response, canonical: async () => response.body.includes('"xuid":"123"') }
  },
  'admin PUT /admin/v1/users/{id}': async (w, id) => {
    const response = await w.send('PUT', `/admin/v1/users/${enc(id)}`, w.admin, '{"name":"n"}')
    return {
      response,
      canonical: async () => (await w.service.getUser('123' as UserId))?.userId === '123',
    }
  },
  'admin PUT /admin/v1/places universeId': async (w, id) => {
    const response = await w.send(
      'PUT',
      '/admin/v1/places/5',
      w.admin,
      `{"universeId":${j(id)},"name":"P"}`,
    )
    return {
      response,
      canonical: async () => (await w.stores.profiles.getPlace('5'))?.universeId === '123',
    }
  },
  'admin import friends': async (w, id) => {
    const response = await w.send(
      'POST',
      '/admin/v1/import',
      w.admin,
      `{"type":"friends","a":${j(id)},"b":"2","friends":true}\n`,
      'application/x-ndjson',
    )
    return {
      response,
      canonical: async () =>
        (await w.stores.profiles.listFriends('123' as UserId)).includes('2' as UserId),
    }
  },
  'game servers players': async (w, id) => {
    const response = await w.send(
      'PUT',
      `/api/v1/servers/${GAME}`,
      w.serverKey,
      `{"placeId":1818,"players":[${j(id)}]}`,
    )
    return {
      response,
      canonical: async () =>
        ((await w.service.rawPresences(['123' as UserId]))[0]?.sessions.length ?? 0) > 0,
    }
  },
}

for (const [name, surface] of Object.entries(surfaces)) {
  test(`${name}: padded ids taken as the canonical id, others refused in the protocol's shape`, async (t) => {
    const w = await world(t)
    for (const id of PADDED) {
      const { response, canonical } = await surface(w, id)
      assert.ok(response.statusCode < 300, `${show(id)}: ${response.statusCode} ${response.body}`)
      assert.ok(await canonical(), `${show(id)} kept as 123: ${response.body}`)
    }
    for (const id of REFUSED) {
      const { response, refused = 400 } = await surface(w, id)
      assert.equal(response.statusCode, refused, `${show(id)}: ${response.body}`)
      assert.match(String(response.headers['content-type']), /^application\/json/)
      assert.doesNotMatch(response.body, /"userId":123,|"xuid":"123"|"id":123,/, show(id))
    }
  })
}

test('native frames and SSE ids: the same rule', () => {
  for (const id of PADDED) {
    assert.deepEqual(
      parseClientFrame(`{"type":"subscribe","ids":[${j(id)}]}`, 10),
      { type: 'subscribe', ids: ['123'], positions: false },
      show(id),
    )
  }
  for (const id of REFUSED) {
    const frame = parseClientFrame(`{"type":"subscribe","ids":[${j(id)}]}`, 10)
    assert.equal((frame as FrameError).error?.code, 'IDS_INVALID', show(id))
  }
})
