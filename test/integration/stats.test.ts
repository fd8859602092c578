import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { HeartbeatInput } from '../../src/service/presence-service.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

const id = (value: string) => value as UserId

function beat(
  userId: string,
  key: string,
  activity: HeartbeatInput['activity'],
  source: HeartbeatInput['source'] = 'app',
): HeartbeatInput {
  return { userId: id(userId), key, source, deviceType: 'PC', activity }
}

/**
 * GET /api/v1/stats. The aggregate is reused for a second, so with `since` it asks again until
 * the answer was computed at or after that instant.
 */
async function stats(presenced: StartedApp, query = '', apiKey?: string, since?: number) {
  for (;;) {
    const response = await presenced.app.inject({
      url: `/api/v1/stats${query}`,
      headers: apiKey ? { 'x-api-key': apiKey } : {},
    })
    const body = response.json()
    if (since === undefined || response.statusCode !== 200 || body.at >= since) {
      return { status: response.statusCode, body }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

test('stats: invisible users count nowhere, private locations count in no breakdown', async (t) => {
  const presenced = await startApp(t)
  const { service, stores } = presenced
  const game = { kind: 'inGame', placeId: '1818', universeId: '13058' } as const
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    name: 'Crossroads',
  })
  await service.heartbeat(beat('1', 'app:PC', game))
  await service.heartbeat(beat('1', 'app:iOS', { kind: 'online' }))
  await service.heartbeat(beat('2', 'app:PC', game))
  await service.heartbeat(beat('3', 'app:PC', { kind: 'online' }))
  await service.heartbeat(
    beat('4', 'title:1:XboxOne', { kind: 'online', titleId: '1234' }, 'title'),
  )
  await service.heartbeat(beat('5', 'app:PC', { kind: 'inStudio' }))
  // 6 is invisible and plays too; 2's location is for friends only
  await service.putSettings(id('6'), { visibility: 'everyone', invisible: true })
  await service.heartbeat(beat('6', 'app:PC', game))
  await service.heartbeat(beat('6', 'app:iOS', { kind: 'online' }))
  await service.putSettings(id('2'), { visibility: 'friends', invisible: false })
  await stores.profiles.putTitle({ titleId: '1234', name: 'Forza', strings: {} })

  const { status, body } = await stats(presenced, '?top=5', undefined, Date.now())
  assert.equal(status, 200)
  assert.deepEqual(body.totals, {
    online: 5,
    inGame: 2,
    inStudio: 1,
    // 3 alone has no title, game or studio session
    away: 1,
    sessions: 6,
    locationHidden: 1,
  })
  assert.deepEqual(body.top, {
    universes: [{ id: '13058', name: 'Crossroads', users: 1 }],
    places: [{ id: '1818', name: 'Crossroads', users: 1 }],
    titles: [{ id: '1234', name: 'Forza', users: 1 }],
  })
  assert.equal(body.all, undefined, 'no admin numbers without the key')
  assert.equal(body.nodes, 1)
  assert.equal(body.mode, 'embedded')
  assert.equal(body.available, true)
  assert.ok(!JSON.stringify(body).includes('"6"'))

  const admin = await stats(presenced, '?top=5', ADMIN_KEY)
  assert.equal(admin.status, 200)
  assert.deepEqual(admin.body.totals, body.totals, 'the public numbers stay as they are')
  assert.equal(admin.body.all.invisibleUsers, 1)
  assert.equal(admin.body.all.invisibleSessions, 2)
  assert.equal(admin.body.all.totals.online, 6)
  assert.equal(admin.body.all.top.universes[0].users, 3)
})

test('stats: thousands of users and places are counted per id, a user once per universe', async (t) => {
  const presenced = await startApp(t)
  const { service } = presenced
  // more distinct activities than a tally holds before folding them into its counts
  const expected = { universes: new Map<string, number>(), places: new Map<string, number>() }
  const titles = new Map<string, number>()
  const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)
  for (let i = 1; i <= 6000; i++) {
    const place = ((i * 7) % 4500) + 1
    const universe = String((place % 50) + 1)
    const user = String(i)
    await service.heartbeat(
      beat(user, 'app:PC', { kind: 'inGame', placeId: String(place), universeId: universe }),
    )
    add(expected.universes, universe)
    add(expected.places, String(place))
    if (i % 10 === 0) {
      // another place of the same universe: one more place counted, the universe once
      const other = String(place + 50)
      await service.heartbeat(
        beat(user, 'app:iOS', { kind: 'inGame', placeId: other, universeId: universe }),
      )
      add(expected.places, other)
    }
    if (i % 7 === 0) {
      const title = String((i % 30) + 1)
      await service.heartbeat(
        beat(user, `title:${title}:XboxOne`, { kind: 'online', titleId: title }, 'title'),
      )
      add(titles, title)
    }
  }
  const ranked = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1] || a[0].length - b[0].length || (a[0] < b[0] ? -1 : 1))
      .slice(0, 100)
      .map(([id, users]) => ({ id, users }))
  const { status, body } = await stats(presenced, '?top=100', undefined, Date.now())
  assert.equal(status, 200)
  assert.equal(body.totals.online, 6000)
  const ids = (entries: Array<{ id: string; users: number }>) =>
    entries.map(({ id, users }) => ({ id, users }))
  assert.deepEqual(ids(body.top.universes), ranked(expected.universes))
  assert.deepEqual(ids(body.top.places), ranked(expected.places))
  assert.deepEqual(ids(body.top.titles), ranked(titles))
})

test('stats: an invisible user moving changes no public number', async (t) => {
  const presenced = await startApp(t)
  const { service } = presenced
  await service.putSettings(id('9'), { visibility: 'everyone', invisible: true })
  await service.heartbeat(beat('10', 'app:PC', { kind: 'online' }))
  const before = (await stats(presenced, '', undefined, Date.now())).body
  assert.equal(before.totals.online, 1)
  await service.heartbeat(beat('9', 'app:PC', { kind: 'inGame', placeId: '5', universeId: '7' }))
  await service.heartbeat(beat('9', 'app:iOS', { kind: 'inStudio' }))
  const after = (await stats(presenced, '', undefined, Date.now())).body
  assert.deepEqual(after.totals, before.totals)
  assert.deepEqual(after.top, before.top)
})

test("stats: a universe is not named from a hidden user's session", async (t) => {
  const presenced = await startApp(t)
  const { service } = presenced
  // only the invisible player's session knows the universe's root place (its own place is
  // catalogued); the visible player's place is not
  await service.putPlace({
    placeId: '701',
    universeId: '77',
    rootPlaceId: '701',
    name: 'Secret Lobby',
  })
  await service.putSettings(id('71'), { visibility: 'everyone', invisible: true })
  await service.heartbeat(beat('71', 'app:PC', { kind: 'inGame', placeId: '701' }))
  await service.heartbeat(
    beat('72', 'app:PC', { kind: 'inGame', placeId: '700', universeId: '77' }),
  )
  const { body } = await stats(presenced, '', undefined, Date.now())
  assert.deepEqual(body.top.universes, [{ id: '77', name: null, users: 1 }])
  assert.deepEqual(body.top.places, [{ id: '700', name: null, users: 1 }])
  const admin = await stats(presenced, '', ADMIN_KEY)
  assert.deepEqual(admin.body.all.top.universes, [{ id: '77', name: 'Secret Lobby', users: 2 }])
})

test('stats: players count in the universe the catalogue gives their place now, as reads show them', async (t) => {
  const presenced = await startApp(t)
  const { service } = presenced
  // 81 and 82 beat before their place is catalogued (82 claiming another universe), 83 after
  await service.heartbeat(beat('81', 'app:PC', { kind: 'inGame', placeId: '801' }))
  await service.heartbeat(
    beat('82', 'app:PC', { kind: 'inGame', placeId: '801', universeId: '999' }),
  )
  await service.putPlace({ placeId: '801', universeId: '88', rootPlaceId: '800', name: 'Hub' })
  await service.putPlace({ placeId: '800', universeId: '88', rootPlaceId: '800', name: 'Plaza' })
  await service.heartbeat(beat('83', 'app:PC', { kind: 'inGame', placeId: '801' }))
  // an uncatalogued place keeps what its client said
  await service.heartbeat(
    beat('84', 'app:PC', { kind: 'inGame', placeId: '802', universeId: '99' }),
  )
  const read = await service.lookup({ kind: 'anonymous' }, ['81', '82', '83'].map(id))
  assert.deepEqual(
    read.map((p) => p.sessions.map((s) => s.activity.universeId)),
    [['88'], ['88'], ['88']],
    'the read applies the catalogue',
  )
  const { body } = await stats(presenced, '', undefined, Date.now())
  assert.deepEqual(body.top.universes, [
    { id: '88', name: 'Plaza', users: 3 },
    { id: '99', name: null, users: 1 },
  ])
  assert.deepEqual(body.top.places, [
    { id: '801', name: 'Hub', users: 3 },
    { id: '802', name: null, users: 1 },
  ])
  const admin = await stats(presenced, '', ADMIN_KEY, Date.now())
  assert.deepEqual(admin.body.all.top.universes, body.top.universes)
})

test('stats: top is 0..100, bad keys are refused in the admin shape', async (t) => {
  const presenced = await startApp(t)
  for (const bad of ['?top=101', '?top=-1', '?top=abc', '?top=1.5']) {
    const { status, body } = await stats(presenced, bad)
    assert.equal(status, 400, bad)
    assert.equal(body.error.code, 'TOP_INVALID')
  }
  assert.equal((await stats(presenced, '?top=0')).status, 200)
  // one value, as every single-valued parameter: a repeated one is refused, not read one way
  const twice = await stats(presenced, '?top=1&top=2')
  assert.equal(twice.status, 400)
  assert.equal(twice.body.error.code, 'TOP_INVALID')
  assert.match(twice.body.error.message, /"top" must be given once/)
  const wrong = await stats(presenced, '', 'not-the-key')
  assert.equal(wrong.status, 401)
  assert.equal(wrong.body.error.code, 'API_KEY_INVALID')
  const feed = await presenced.app.inject({ url: '/admin/v1/stats/feed' })
  assert.equal(feed.statusCode, 401)
  const file = await presenced.app.inject({ url: '/dashboard/..%2Fpackage.json' })
  assert.equal(file.statusCode, 404)
})

test('stats and the public feed check a credential presented: refused 401 in the native shape, a good one answered as anyone', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const viewer = id('8101')
  const good = await presenced.tokens.issue(viewer)
  const refused = {
    'a forged token': { authorization: 'Bearer not.a.token' },
    'an unknown key': { 'x-api-key': 'pk_not-a-key-0123456789' },
    'an XBL3.0 header': { authorization: `XBL3.0 x=1;${good}` },
    'the admin key as a bearer token': { authorization: `Bearer ${ADMIN_KEY}` },
  }
  for (const [what, headers] of Object.entries(refused)) {
    for (const path of ['/api/v1/stats', '/api/v1/stats/feed']) {
      // an x-api-key on /api/v1/stats asks for the admin numbers, refused in the admin shape
      const response = await fetch(`${presenced.url}${path}`, { headers })
      assert.equal(response.status, 401, `${path}, ${what}`)
      const body = (await response.json()) as { error: { code: string; message: string } }
      assert.equal(typeof body.error.code, 'string', `${path}, ${what}`)
      assert.ok(body.error.message.length > 0, `${path}, ${what}`)
    }
  }
  // a good token gets the public answer, as no token does: no `all`
  const answer = await fetch(`${presenced.url}/api/v1/stats`, {
    headers: { authorization: `Bearer ${good}` },
  })
  assert.equal(answer.status, 200)
  assert.equal(((await answer.json()) as { all?: unknown }).all, undefined)
  const controller = new AbortController()
  const feed = await fetch(`${presenced.url}/api/v1/stats/feed`, {
    headers: { authorization: `Bearer ${good}` },
    signal: controller.signal,
  })
  assert.equal(feed.status, 200)
  assert.match(String(feed.headers.get('content-type')), /^text\/event-stream/)
  controller.abort()
  // a revoked token is refused there too
  await presenced.service.auth.logout(
    (await presenced.service.auth.authenticate(
      { kind: 'token', token: good, via: 'bearer' },
      '127.0.0.1',
    )) as Parameters<typeof presenced.service.auth.logout>[0],
  )
  const afterLogout = await fetch(`${presenced.url}/api/v1/stats/feed`, {
    headers: { authorization: `Bearer ${good}` },
  })
  assert.equal(afterLogout.status, 401)
  await afterLogout.body?.cancel()
})

test('stats and the public feed: a token and a key sent together are refused, neither ignored', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const made = await presenced.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY },
    payload: { name: 'gone', scopes: ['admin'] },
  })
  const revoked = made.json() as { id: string; secret: string }
  await presenced.app.inject({
    method: 'DELETE',
    url: `/admin/v1/keys/${revoked.id}`,
    headers: { 'x-api-key': ADMIN_KEY },
  })
  const good = `Bearer ${await presenced.tokens.issue(id('8001'))}`
  const statuses: string[] = []
  for (const path of ['/api/v1/stats', '/api/v1/stats/feed']) {
    for (const [name, headers] of [
      // the revoked key went unchecked behind the good token
      ['token + revoked key', { authorization: good, 'x-api-key': revoked.secret }],
      // the forged token went unchecked behind the admin key (the admin answer)
      ['forged token + admin key', { authorization: 'Bearer forged', 'x-api-key': ADMIN_KEY }],
    ] as const) {
      const res = await fetch(`${presenced.url}${path}`, { headers })
      // a stream opened is not read (it would not end): its status is the answer
      let code = ''
      if (res.status === 400) code = ((await res.json()) as { error: { code: string } }).error.code
      else await res.body?.cancel()
      statuses.push(`${path} ${name}: ${res.status} ${code}`)
    }
  }
  assert.deepEqual(statuses, [
    '/api/v1/stats token + revoked key: 400 INVALID_REQUEST',
    '/api/v1/stats forged token + admin key: 400 INVALID_REQUEST',
    '/api/v1/stats/feed token + revoked key: 400 INVALID_REQUEST',
    '/api/v1/stats/feed forged token + admin key: 400 INVALID_REQUEST',
  ])
})

test('stats in fleet mode: two nodes on one Redis count each other and both nodes', async (t) => {
  const prefix = uniquePrefix('stats')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, statsIntervalMs: 200 }
  const a = await startApp(t, { config })
  const b = await startApp(t, { config })
  await a.service.heartbeat(
    beat('9007199254740993', 'app:PC', { kind: 'inGame', universeId: '9007199254740995' }),
  )
  await b.service.heartbeat(beat('2', 'app:PC', { kind: 'online' }))
  await b.service.putSettings(id('3'), { visibility: 'everyone', invisible: true })
  await b.service.heartbeat(beat('3', 'app:PC', { kind: 'online' }))
  const { body } = await stats(b, '', undefined, Date.now())
  assert.equal(body.mode, 'redis')
  assert.equal(body.nodes, 2)
  assert.equal(body.totals.online, 2)
  assert.equal(body.totals.inGame, 1)
  assert.deepEqual(body.top.universes, [{ id: '9007199254740995', name: null, users: 1 }])
})

// ---------------------------------------------------------------- the public feed over HTTP

interface FeedItem {
  at: number
  user: string
  type: string
  state: string
  reason?: string
  where?: Record<string, string>
}

/** Reads the public feed (SSE) as the dashboard does; `items` grows as batches arrive. */
async function openFeed(t: TestContext, presenced: StartedApp) {
  const abort = new AbortController()
  t.after(() => abort.abort())
  const response = await fetch(`${presenced.url}/api/v1/stats/feed`, { signal: abort.signal })
  assert.equal(response.status, 200)
  const items: FeedItem[] = []
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  void (async () => {
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: '', done: true }))
      if (done) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        for (const line of buffer.slice(0, end).split('\n')) {
          if (line.startsWith('data: ')) items.push(...JSON.parse(line.slice(6)).items)
        }
        buffer = buffer.slice(end + 2)
      }
    }
  })()
  return {
    items,
    /** Waits until an item matches, then returns every item received so far. */
    async until(match: (item: FeedItem) => boolean): Promise<FeedItem[]> {
      const deadline = Date.now() + 10_000
      while (!items.some(match)) {
        assert.ok(Date.now() < deadline, `no matching feed item; got ${JSON.stringify(items)}`)
        await sleep(20)
      }
      return [...items]
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Longer than the feed's flush interval (250 ms): the changes before it are flushed. */
const AFTER_A_FLUSH_MS = 700

async function http(
  presenced: StartedApp,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
) {
  const response = await fetch(`${presenced.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  const text = await response.text()
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`)
  return JSON.parse(text)
}

/** The HTTP surfaces a client uses: admin settings, game-server rosters, Roblox heartbeats. */
async function actors(presenced: StartedApp) {
  const admin = { 'x-api-key': ADMIN_KEY }
  const created = await http(
    presenced,
    'POST',
    '/admin/v1/keys',
    { name: 'game servers', scopes: ['presence:write'] },
    admin,
  )
  const serverKey = { 'x-api-key': created.secret as string }
  return {
    settings: (userId: string, settings: { invisible?: boolean; visibility?: string }) =>
      http(presenced, 'PUT', `/admin/v1/users/${userId}/settings`, settings, admin),
    roster: (gameId: string, placeId: number, players: string[]) =>
      http(presenced, 'PUT', `/api/v1/servers/${gameId}`, { placeId, players }, serverKey),
    appPresence: async (userId: string, placeId: number) => {
      const token = await presenced.tokens.issue(id(userId))
      return http(
        presenced,
        'POST',
        '/v1/presence/register-app-presence',
        { placeId },
        { authorization: `Bearer ${token}` },
      )
    },
  }
}

const server = (n: number) => `6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f${String(n).padStart(2, '0')}`

test('public feed: changes made while invisible stay hidden when invisibility ends before the flush', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const act = await actors(presenced)
  await act.settings('41', { invisible: true })
  const feed = await openFeed(t, presenced)
  // on, off and visible again, all inside one flush interval
  await act.roster(server(1), 1818, ['41'])
  await act.roster(server(1), 1818, [])
  await act.settings('41', { invisible: false })
  // a visible player after: once their change is out, anything of 41's would be out too
  await act.roster(server(2), 1819, ['42'])
  const items = await feed.until((i) => i.where?.placeId === '1819')
  await sleep(AFTER_A_FLUSH_MS)
  assert.deepEqual(
    feed.items.map((i) => `${i.type}:${i.state}:${i.where?.placeId ?? ''}`),
    ['online:inGame:1819'],
    `only the visible player: ${JSON.stringify(items)}`,
  )
})

test('public feed: a user who turns visible comes online where they are; their hidden moves stay hidden', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const act = await actors(presenced)
  await act.settings('41', { invisible: true })
  const feed = await openFeed(t, presenced)
  await act.appPresence('41', 1818)
  await sleep(AFTER_A_FLUSH_MS)
  // a move while invisible, then visible again inside one flush interval
  await act.appPresence('41', 1819)
  await act.settings('41', { invisible: false })
  await feed.until(() => true)
  await sleep(AFTER_A_FLUSH_MS)
  assert.deepEqual(
    feed.items.map((i) => `${i.type}:${i.state}:${i.where?.placeId ?? ''}`),
    ['online:inGame:1819'],
    'seen coming online at 1819, as a public reader of presence sees it; never "moved"',
  )
})

test('public feed: going invisible reads as an ordinary sign-out, turning visible as coming online', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const act = await actors(presenced)
  await presenced.service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    name: 'Crossroads',
  })
  const feed = await openFeed(t, presenced)
  // 51 signs out for real; 52 goes invisible instead, then visible again
  const steps = [
    () => act.roster(server(1), 1818, ['51']),
    () => act.roster(server(1), 1818, []),
    () => act.roster(server(2), 1818, ['52']),
    () => act.settings('52', { invisible: true }),
    () => act.settings('52', { invisible: false }),
  ]
  for (const [n, step] of steps.entries()) {
    await step()
    await feed.until(() => feed.items.length > n)
  }
  await sleep(AFTER_A_FLUSH_MS)
  const [online51, offline51, online52, offline52, back52] = feed.items.map(
    ({ at, user, ...rest }) => {
      assert.ok(at > 0 && user.length === 8)
      return rest
    },
  )
  assert.deepEqual(offline52, offline51, 'the same offline, reason included')
  assert.deepEqual(offline51, { type: 'offline', state: 'offline', reason: 'explicit' })
  assert.deepEqual(online52, online51)
  assert.deepEqual(back52, online52, 'back where they are, named as the top lists name it')
  assert.deepEqual(online51!.where, {
    universeId: '13058',
    universeName: 'Crossroads',
    placeId: '1818',
    placeName: 'Crossroads',
    location: 'Crossroads',
  })
  assert.equal(feed.items.length, 5)
})

test('public feed: a user whose location is private makes no event by moving', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const act = await actors(presenced)
  await act.settings('61', { visibility: 'friends' })
  const feed = await openFeed(t, presenced)
  await act.appPresence('61', 1818)
  await feed.until(() => true)
  await act.appPresence('61', 1819)
  await act.roster(server(1), 1820, ['62'])
  await feed.until((i) => i.where?.placeId === '1820')
  await sleep(AFTER_A_FLUSH_MS)
  assert.deepEqual(
    feed.items.map((i) => `${i.type}:${i.state}:${i.where?.placeId ?? ''}`),
    ['online:inGame:', 'online:inGame:1820'],
  )
})

test("public feed in fleet mode: a node judges another node's changes by the settings they were made under", async (t) => {
  const prefix = uniquePrefix('feed')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const a = await startApp(t, { config, listen: true })
  const b = await startApp(t, { config, listen: true })
  const onA = await actors(a)
  await onA.settings('81', { invisible: true })
  const feedOnB = await openFeed(t, b)
  await onA.appPresence('81', 1818)
  await sleep(AFTER_A_FLUSH_MS)
  // on A: a move while invisible, then visible again inside one flush interval
  await onA.appPresence('81', 1819)
  await onA.settings('81', { invisible: false })
  await feedOnB.until(() => true)
  await sleep(AFTER_A_FLUSH_MS)
  assert.deepEqual(
    feedOnB.items.map((i) => `${i.type}:${i.state}:${i.where?.placeId ?? ''}`),
    ['online:inGame:1819'],
  )
})

test('public feed: a stream cut off for reading too slowly lets its connection go, not only its place', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const { service } = presenced
  // the peer that never reads: its server-side socket corked for good (the response's end()
  // uncorks fully), so whatever the feed writes stays in the process, as behind a full window
  const serverSockets: Socket[] = []
  presenced.app.server.on('connection', (socket: Socket) => serverSockets.push(socket))
  const client = connect(Number(new URL(presenced.url).port), '127.0.0.1')
  client.on('error', () => {})
  t.after(() => client.destroy())
  client.write('GET /api/v1/stats/feed HTTP/1.1\r\nHost: presenced\r\n\r\n')
  await new Promise((resolve) => client.once('data', resolve))
  const socket = serverSockets.at(-1)!
  socket.cork()
  socket.uncork = () => {}
  const streams = async () => {
    const metrics = await presenced.app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    return /presenced_dashboard_feed_streams\{view="public"\} (\d+)/.exec(metrics.body)?.[1]
  }
  assert.equal(await streams(), '1')
  const location = 'L'.repeat(200)
  const deadline = Date.now() + 30_000
  for (let round = 0; (await streams()) !== '0'; round++) {
    assert.ok(Date.now() < deadline, 'the slow stream is cut off past 256 KB')
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        service.heartbeat(
          beat(String(1000 + i), 'app:PC', {
            kind: 'inGame',
            placeId: String(1818 + (round % 2)),
            location,
          }),
        ),
      ),
    )
    await sleep(260)
  }
  // cut off: the connection, and what it holds unsent, goes too (within the native SSE's grace)
  const cut = Date.now()
  while (!socket.destroyed) {
    assert.ok(Date.now() - cut < 10_000, 'the cut-off stream still holds its connection')
    await sleep(100)
  }
})

test('one client address holds at most 10 public feed streams, so it cannot take all 200', async (t) => {
  const presenced = await startApp(t, { listen: true })
  const aborts: AbortController[] = []
  t.after(() => aborts.forEach((a) => a.abort()))
  const open = async () => {
    const abort = new AbortController()
    aborts.push(abort)
    return fetch(`${presenced.url}/api/v1/stats/feed`, { signal: abort.signal })
  }
  for (let i = 0; i < 10; i++) assert.equal((await open()).status, 200, `stream ${i + 1}`)
  const refused = await open()
  assert.equal(refused.status, 429)
  assert.equal(refused.headers.get('retry-after'), '1')
  assert.equal((await refused.json()).error.code, 'STREAM_LIMIT')
  // a stream closed gives its place back
  aborts[0]!.abort()
  const deadline = Date.now() + 5000
  let again = await open()
  while (again.status === 429 && Date.now() < deadline) {
    await again.arrayBuffer()
    await sleep(20)
    again = await open()
  }
  assert.equal(again.status, 200)
})

test('stats and the public feed spend the caller’s request budget: 429 with Retry-After past it', async (t) => {
  // the clock held still: no window of the limit ends between the requests
  const presenced = await startApp(t, {
    listen: true,
    config: { rateLimitMax: 3 },
    clock: new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 1)),
  })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const response = await fetch(`${presenced.url}/api/v1/stats`)
    statuses.push(response.status)
    if (response.status === 429) {
      assert.ok(Number(response.headers.get('retry-after')) >= 1)
      const { error } = (await response.json()) as { error: { code: string } }
      assert.equal(error.code, 'RATE_LIMITED')
    } else await response.body?.cancel()
  }
  assert.deepEqual(statuses, [200, 200, 200, 429])
  const feed = await fetch(`${presenced.url}/api/v1/stats/feed`)
  assert.equal(feed.status, 429)
  await feed.body?.cancel()
  // a user's budget is their own, apart from the address's
  const token = await presenced.tokens.issue(id('8201'))
  const signedIn = await fetch(`${presenced.url}/api/v1/stats`, {
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(signedIn.status, 200)
  await signedIn.body?.cancel()
})
