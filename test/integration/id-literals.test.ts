import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { json, send, type WireResponse } from '../compat/wire.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { NativeClient, type Frame } from './native-client.js'

/*
 * Issue 15 item 15: an id is a run of digits. `1e3` and `1000.0` are JSON numbers equal to
 * 1000, but no protocol may take them for that id. Each id field of each protocol is sent over
 * real HTTP (and WebSocket) as `1000` (accepted, so the check can fail) and in each whole-number
 * spelling (refused in the protocol's own error shape).
 */

const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'
const USER = '77' as UserId
const XUID = '2535428504476914' as UserId
const WHOLE = ['1e3', '1000.0', '1E3', '10e2', '1.0e3']

async function world(t: Parameters<typeof startApp>[0]) {
  const app = await startApp(t, { listen: true, config: { xboxBurstMax: 1000 } })
  const bearer: [string, string] = ['authorization', `Bearer ${await app.tokens.issue(USER)}`]
  const xbl: [string, string][] = [
    ['authorization', `XBL3.0 x=1;${await app.tokens.issue(XUID)}`],
    ['x-xbl-contract-version', '3'],
  ]
  const admin: [string, string] = ['x-api-key', ADMIN_KEY]
  const send_ = (
    method: string,
    path: string,
    headers: [string, string][],
    body: string,
    type = 'application/json',
  ) => send(app.url, { method, path, headers: [...headers, ['content-type', type]], body })
  const created = await send_(
    'POST',
    '/admin/v1/keys',
    [admin],
    JSON.stringify({ name: 'server', scopes: ['presence:write', 'presence:read'] }),
  )
  assert.equal(created.status, 201, created.text)
  const serverKey: [string, string] = ['x-api-key', (json(created) as { secret: string }).secret]
  return { ...app, bearer, xbl, admin, serverKey, send: send_ }
}

/** Sends `request('1000')` (must pass) and each whole-number spelling (must be refused). */
async function refusesWholeNumbers(
  name: string,
  request: (literal: string) => Promise<WireResponse>,
  shape: (response: WireResponse) => void,
): Promise<void> {
  const plain = await request('1000')
  assert.ok(plain.status < 300, `${name} with 1000: ${plain.status} ${plain.text}`)
  for (const literal of WHOLE) {
    const response = await request(literal)
    assert.equal(response.status, 400, `${name} ${literal}: ${response.text}`)
    shape(response)
  }
}

const robloxShape = (response: WireResponse) => {
  const body = json(response) as { errors: { code: number; message: string }[] }
  assert.equal(typeof body.errors[0]!.message, 'string', response.text)
}
const xboxShape = (response: WireResponse) => {
  assert.equal(typeof (json(response) as { code: number }).code, 'number', response.text)
}
const recordShape = (response: WireResponse) => {
  const body = json(response) as { error: { code: string } }
  assert.equal(typeof body.error.code, 'string', response.text)
}

test('Roblox and its companion: userIds (lean and Fastify paths), placeId, POST /v1/users', async (t) => {
  const { send, bearer } = await world(t)
  for (const type of ['application/json', 'text/json']) {
    await refusesWholeNumbers(
      `userIds as ${type}`,
      (n) => send('POST', '/v1/presence/users', [], `{"userIds":[${n}]}`, type),
      (response) => {
        robloxShape(response)
        const [error] = (json(response) as { errors: { code: number; message: string }[] }).errors
        assert.equal(error!.code, 1)
      },
    )
  }
  await refusesWholeNumbers(
    'placeId',
    (n) => send('POST', '/v1/presence/register-app-presence', [bearer], `{"placeId":${n}}`),
    robloxShape,
  )
  await refusesWholeNumbers(
    'POST /v1/users userIds',
    (n) => send('POST', '/v1/users', [], `{"userIds":[${n}]}`),
    robloxShape,
  )
})

test('Xbox: batch users and titles, the title write id', async (t) => {
  const { send, xbl } = await world(t)
  await refusesWholeNumbers(
    'batch users',
    (n) => send('POST', '/users/batch', xbl, `{"users":[${n}]}`),
    xboxShape,
  )
  await refusesWholeNumbers(
    'batch titles',
    (n) => send('POST', '/users/batch', xbl, `{"users":["${XUID}"],"titles":[${n}]}`),
    xboxShape,
  )
  await refusesWholeNumbers(
    'title write id',
    (n) => send('POST', `/users/xuid(${XUID})/devices/current/titles/current`, xbl, `{"id":${n}}`),
    xboxShape,
  )
})

test('game servers: players and placeId', async (t) => {
  const { send, serverKey } = await world(t)
  await refusesWholeNumbers(
    'players',
    (n) => send('PUT', `/api/v1/servers/${GAME}`, [serverKey], `{"placeId":1818,"players":[${n}]}`),
    recordShape,
  )
  await refusesWholeNumbers(
    'placeId',
    (n) => send('PUT', `/api/v1/servers/${GAME}`, [serverKey], `{"placeId":${n},"players":[]}`),
    recordShape,
  )
})

test('admin: place ids in a body and user ids of an import line', async (t) => {
  const { send, admin } = await world(t)
  await refusesWholeNumbers(
    'place universeId',
    (n) => send('PUT', '/admin/v1/places/1818', [admin], `{"universeId":${n},"name":"Crossroads"}`),
    recordShape,
  )
  await refusesWholeNumbers(
    'import friends a',
    (n) =>
      send(
        'POST',
        '/admin/v1/import',
        [admin],
        `{"type":"friends","a":${n},"b":2,"friends":true}\n`,
        'application/x-ndjson',
      ),
    recordShape,
  )
})

test('native WebSocket: subscribe ids and heartbeat place ids', async (t) => {
  const app = await world(t)
  const client = await NativeClient.connect(app.url, await app.tokens.issue(USER))
  t.after(() => client.socket.close())
  const error = async (): Promise<Frame> =>
    client.waitFor((frame) => frame.type === 'error' || typeof frame.code === 'string')
  client.send('{"type":"subscribe","ids":[1000]}')
  const snapshot = await client.waitFor((frame) => frame.type === 'snapshot')
  assert.ok(JSON.stringify(snapshot).includes('1000'), JSON.stringify(snapshot))
  for (const literal of WHOLE) {
    client.send(`{"type":"subscribe","ids":[${literal}]}`)
    assert.equal((await error()).code, 'IDS_INVALID', literal)
    client.send(`{"type":"heartbeat","activity":{"kind":"inGame","placeId":${literal}}}`)
    assert.equal((await error()).code, 'HEARTBEAT_INVALID', literal)
  }
})
