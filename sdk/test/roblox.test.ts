import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, InvalidIdError, PresenceType } from '@presenced/client'
import { fakeServer, json, robloxRecord } from './fake-server.js'

/** Answers /v1/presence/users with one record per distinct id, echoing the raw id literals. */
function usersHandler(state: { inFlight: number; maxInFlight: number }) {
  return async (req: { body: string }, res: import('node:http').ServerResponse) => {
    state.inFlight++
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight)
    await new Promise((resolve) => setTimeout(resolve, 15))
    state.inFlight--
    const literals = /\[(.*)\]/.exec(req.body)![1]!.split(',')
    // reversed, so the client must restore the order itself
    const records = [...new Set(literals)].reverse().map((id) => robloxRecord(id, 1))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(`{"userPresences":[${records.join(',')}]}`)
  }
}

test('getUserPresences splits into batches of 50 with bounded concurrency, in input order', async (t) => {
  const state = { inFlight: 0, maxInFlight: 0 }
  const { url, requests } = await fakeServer(t, usersHandler(state))
  const client = createClient({ baseUrl: url, maxConcurrency: 2 })
  const ids = Array.from({ length: 160 }, (_, i) => 1000 + i)
  const presences = await client.getUserPresences(ids)
  assert.equal(requests.length, 4)
  for (const r of requests) {
    assert.ok(JSON.parse(r.body).userIds.length <= 50)
  }
  assert.equal(state.maxInFlight, 2)
  assert.deepEqual(
    presences.map((p) => p.userId),
    ids.map(String),
  )
  assert.equal(presences[0]!.type, PresenceType.Online)
})

test('ids may be numbers, strings, bigints or objects; int64 ids stay exact both ways', async (t) => {
  const { url, requests } = await fakeServer(t, usersHandler({ inFlight: 0, maxInFlight: 0 }))
  const client = createClient({ baseUrl: url })
  const big = 9223372036854775807n
  const presences = await client.getUserPresences([
    big,
    '9007199254740993',
    { id: 7 },
    7,
    { id: 8n },
  ])
  assert.equal(
    requests[0]!.body,
    '{"userIds":[9223372036854775807,9007199254740993,7,8]}',
    'distinct ids, sent as exact JSON integers',
  )
  assert.deepEqual(
    presences.map((p) => p.userId),
    ['9223372036854775807', '9007199254740993', '7', '7', '8'],
  )
  assert.equal(presences[2], presences[3], 'a duplicate is answered by the same record')
})

test('bad ids are refused before anything is sent', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 200, { userPresences: [] }),
  )
  const client = createClient({ baseUrl: url })
  for (const bad of [0, -1, 1.5, 2 ** 53 + 2, 'abc', '9223372036854775808', {}, null]) {
    await assert.rejects(client.getUserPresences([bad as never]), InvalidIdError, String(bad))
  }
  assert.equal(requests.length, 0)
  assert.deepEqual(await client.getUserPresences([]), [])
  assert.equal(requests.length, 0)
})

test('a bad number id is shown as itself, and one past 2^53 is told to come as a string', async () => {
  const client = createClient({ baseUrl: 'http://127.0.0.1:1' })
  await assert.rejects(client.getUserPresences([2 ** 53 + 1]), {
    name: 'InvalidIdError',
    message:
      /^Not a valid user id: 9007199254740992 \(.*not a safe integer.*pass the id as a string or a bigint\)$/,
  })
  for (const [bad, shown] of [
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ] as const) {
    await assert.rejects(client.getUserPresences([bad]), {
      message: `Not a valid user id: ${shown} (expected a positive 64-bit integer)`,
    })
  }
})

test('records become typed Presence objects', async (t) => {
  const { url } = await fakeServer(t, (_req, res) =>
    json(
      res,
      200,
      `{"userPresences":[{"userPresenceType":2,"lastLocation":"Crossroads","placeId":1818,` +
        `"rootPlaceId":1818,"gameId":"4a3c6a1e-0000-4000-8000-000000000001",` +
        `"universeId":12345678901234567,"userId":1,"lastOnline":"2026-05-06T07:08:09.123Z"}]}`,
    ),
  )
  const [p] = await createClient({ baseUrl: url }).getUserPresences([1])
  assert.deepEqual(p, {
    userId: '1',
    type: PresenceType.InGame,
    lastLocation: 'Crossroads',
    place: { id: '1818' },
    rootPlace: { id: '1818' },
    universe: { id: '12345678901234567' },
    job: { id: '4a3c6a1e-0000-4000-8000-000000000001' },
    lastOnline: new Date('2026-05-06T07:08:09.123Z'),
  })
})

test('keepAlive beats at the interval the server asks for and disconnects on stop', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 200, {}, { 'x-heartbeat-after': '0.05' }),
  )
  const client = createClient({ baseUrl: url, token: 't' })
  const alive = client.keepAlive({ placeId: 1818n, location: 'Game', gameId: 'g-1' })
  await alive.ready
  assert.equal(alive.intervalMs, 50)
  assert.equal(alive.beatEveryMs, 40)
  while (requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  await alive.stop()
  await alive.stop()
  const bodies = requests.map((r) => JSON.parse(r.body) as Record<string, unknown>)
  assert.deepEqual(bodies[0], { location: 'Game', placeId: 1818, disconnect: false, gameId: 'g-1' })
  assert.equal(bodies.at(-1)!.disconnect, true)
  assert.equal(bodies.filter((b) => b.disconnect === true).length, 1)
  const count = requests.length
  await new Promise((resolve) => setTimeout(resolve, 120))
  assert.equal(requests.length, count, 'no beat after stop')
})

test('keepAlive reports a refused credential and stops beating', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 401, {
      errors: [{ code: 0, message: 'Authorization has been denied for this request.' }],
    }),
  )
  const errors: unknown[] = []
  const alive = createClient({ baseUrl: url }).keepAlive({ onError: (e) => errors.push(e) })
  await assert.rejects(alive.ready, { status: 401 })
  await assert.rejects(alive.ended, { status: 401 })
  assert.equal(errors.length, 1)
  assert.equal(requests.length, 1)
})

test('keepAlive refuses an invalid place id at once, before anything is sent', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => json(res, 200, {}))
  const client = createClient({ baseUrl: url, token: 't' })
  for (const bad of [2 ** 53 + 1, 0, 'abc']) {
    assert.throws(() => client.keepAlive({ placeId: bad }), InvalidIdError, String(bad))
  }
  assert.equal(requests.length, 0)
})

test('keepAlive ends, not retries, on a refused request; it goes on after a 429', async (t) => {
  let status = 400
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, status, { errors: [{ code: 0, message: 'refused' }] }),
  )
  const client = createClient({ baseUrl: url, token: 't', retry: false })
  const refused = client.keepAlive()
  await assert.rejects(refused.ready, { status: 400 })
  await assert.rejects(refused.ended, { status: 400 })
  assert.equal(requests.length, 1)

  status = 429
  const limited = client.keepAlive()
  await assert.rejects(limited.ready, { status: 429 })
  const ended = await Promise.race([
    limited.ended.then(
      () => 'ended',
      () => 'ended',
    ),
    new Promise((resolve) => setTimeout(resolve, 50, 'beating')),
  ])
  assert.equal(ended, 'beating')
  status = 200
  await limited.stop()
  await limited.ended
})

test('a string that looks like the marker of a bigint is sent as the string it is', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => json(res, 200, {}))
  const client = createClient({ baseUrl: url })
  // bigints travel as bare integers through a marked string; a caller's text must not
  const location = '\u0000int:5'
  await client.registerAppPresence({ location, placeId: 9007199254740993n })
  const body = requests[0]!.body
  assert.match(body, /"placeId":9007199254740993\b/)
  assert.equal((JSON.parse(body) as { location: unknown }).location, location)
})

test('a bare string, number or { id } where a list of ids goes is a TypeError, not other users', async (t) => {
  const { url, requests } = await fakeServer(t, usersHandler({ inFlight: 0, maxInFlight: 0 }))
  const client = createClient({ baseUrl: url })
  // a string is iterable as its characters: '123' asked for users 1, 2 and 3
  for (const wrong of ['123', 123, { id: 5 }, null]) {
    await assert.rejects(
      client.getUserPresences(wrong as never),
      (error: unknown) => error instanceof TypeError && /as an array/.test(String(error)),
      `getUserPresences(${JSON.stringify(wrong)})`,
    )
    assert.throws(() => client.subscribe(wrong as never), TypeError)
  }
  assert.equal(requests.length, 0)
  // any iterable object of ids is fine
  const presences = await client.getUserPresences(new Set([1, 2n]).values())
  assert.deepEqual(
    presences.map((p) => p.userId),
    ['1', '2'],
  )
})
