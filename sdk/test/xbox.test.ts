import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient } from '@presenced/client'
import { fakeServer, json } from './fake-server.js'

// header.payload.signature with sub 2533274800000001 (the client only reads `sub`, unverified)
const token = `e30.${Buffer.from('{"sub":"2533274800000001"}').toString('base64url')}.sig`

test('Xbox calls send XBL3.0 auth and contract version 3, and split batches at 1100', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    const users = (JSON.parse(req.body) as { users: string[] }).users
    json(
      res,
      200,
      users.map((xuid) => ({ xuid, state: 'Offline', devices: [] })),
    )
  })
  const client = createClient({ baseUrl: url, token, locale: 'fr-FR' })
  const ids = Array.from({ length: 2300 }, (_, i) => String(2533274800000000n + BigInt(i)))
  const records = await client.xbox.batch({ users: ids, level: 'all', onlineOnly: false })
  assert.equal(requests.length, 3)
  assert.deepEqual(
    requests.map((r) => (JSON.parse(r.body) as { users: string[] }).users.length),
    [1100, 1100, 100],
  )
  assert.deepEqual(
    records.map((r) => r.xuid),
    ids,
  )
  const headers = requests[0]!.headers
  assert.equal(headers.authorization, `XBL3.0 x=2533274800000001;${token}`)
  assert.equal(headers['x-xbl-contract-version'], '3')
  assert.equal(headers['accept-language'], 'fr-FR')
  assert.deepEqual(JSON.parse(requests[0]!.body).level, 'all')
})

test('Xbox records become typed objects with dates', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 200, {
      xuid: '2533274800000001',
      state: 'Online',
      devices: [
        {
          type: 'Scarlett',
          titles: [
            {
              id: '1717113201',
              name: 'Forza',
              lastModified: '2026-01-01T00:00:00Z',
              placement: 'full',
              state: 'active',
              activity: { richPresence: 'Racing in Japan' },
            },
          ],
        },
      ],
    }),
  )
  const client = createClient({ baseUrl: url, token })
  const record = await client.xbox.user('2533274800000001', 'all')
  assert.equal(requests[0]!.url, '/users/xuid(2533274800000001)?level=all')
  assert.equal(record.state, 'Online')
  assert.equal(record.devices[0]!.titles[0]!.richPresence, 'Racing in Japan')
  assert.deepEqual(record.devices[0]!.titles[0]!.lastModified, new Date('2026-01-01T00:00:00Z'))
  assert.equal(record.lastSeen, null)
})

test('setTitlePresence beats per X-Heartbeat-After and stop() deletes the title presence', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    if (req.method === 'DELETE') return void res.writeHead(204).end()
    json(res, 200, '', { 'x-heartbeat-after': '0.04' })
  })
  const client = createClient({ baseUrl: url, token })
  const handle = client.xbox.setTitlePresence({
    titleId: 1717113201,
    richPresence: { id: 'racing', scid: 'scid-1', params: ['Japan'] },
  })
  await handle.ready
  while (requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  await handle.stop()
  const path = '/users/xuid(2533274800000001)/devices/current/titles/current'
  assert.equal(requests[0]!.url, path)
  assert.deepEqual(JSON.parse(requests[0]!.body), {
    state: 'active',
    id: '1717113201',
    activity: { richPresence: { params: ['Japan'], id: 'racing', scid: 'scid-1' } },
  })
  assert.equal(requests.at(-1)!.method, 'DELETE')
  assert.ok(requests.at(-1)!.url.startsWith(path))
  assert.equal(requests.filter((r) => r.method === 'DELETE').length, 1)
})

test('cloak puts Cloaked or Active on the caller state', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => void res.writeHead(200).end())
  const client = createClient({ baseUrl: url, token })
  await client.xbox.cloak(true)
  await client.xbox.cloak(false)
  assert.deepEqual(
    requests.map((r) => [r.method, r.url, r.body]),
    [
      ['PUT', '/users/xuid(2533274800000001)/state', '{"state":"Cloaked"}'],
      ['PUT', '/users/xuid(2533274800000001)/state', '{"state":"Active"}'],
    ],
  )
})

test('the Xbox API without a token fails clearly, before any request', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => void res.writeHead(200).end())
  await assert.rejects(createClient({ baseUrl: url }).xbox.me(), /needs a token/)
  assert.equal(requests.length, 0)
})

test('xbox.batch takes any iterable of XUIDs, device types and titles, and refuses a bare string', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    const users = (JSON.parse(req.body) as { users: string[] }).users
    json(
      res,
      200,
      users.map((xuid) => ({ xuid, state: 'Offline', devices: [] })),
    )
  })
  const client = createClient({ baseUrl: url, token })
  function* xuids() {
    yield '2533274800000001'
    yield 2533274800000002n
  }
  const records = await client.xbox.batch({
    users: xuids(),
    deviceTypes: new Set(['XboxOne', 'Scarlett'] as const),
    titles: new Set([1717113201, '219630713']),
  })
  assert.deepEqual(
    records.map((r) => r.xuid),
    ['2533274800000001', '2533274800000002'],
  )
  assert.deepEqual(JSON.parse(requests[0]!.body), {
    users: ['2533274800000001', '2533274800000002'],
    deviceTypes: ['XboxOne', 'Scarlett'],
    titles: ['1717113201', '219630713'],
  })
  // a string is iterable, as its characters: it would have asked for XUIDs 2, 5, 3, ...
  await assert.rejects(
    // @ts-expect-error a string is not a list of XUIDs
    client.xbox.batch({ users: '2533274800000001' }),
    (error: unknown) => error instanceof TypeError && /as an array/.test(String(error)),
  )
  await assert.rejects(
    // @ts-expect-error a string is not a list of titles
    client.xbox.batch({ users: ['2533274800000001'], titles: '1717113201' }),
    TypeError,
  )
  assert.equal(requests.length, 1, 'nothing sent for the refused calls')
})
