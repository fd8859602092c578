import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import type { Tokens } from '../../src/service/tokens.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { NativeClient, refusedUpgrade, type Frame } from './native-client.js'

/*
 * The privacy table of issue 3 (privacy-table.test.ts) through the native real-time API: the
 * same 16 targets (4 settings × 4 states), each viewer subscribing over a WebSocket, every field
 * of every snapshot presence compared with what the policy says, written out here independently
 * of the core's privacy functions and of the native view.
 */

const viewers = ['self', 'friend', 'nonFriend', 'anonymous', 'blocker', 'blocked'] as const
const settingsKinds = ['everyone', 'friends', 'nobody', 'invisible'] as const
const states = ['offline', 'online', 'inGame', 'inStudio'] as const
type ViewerKind = (typeof viewers)[number]
type SettingKind = (typeof settingsKinds)[number]
type StateKind = (typeof states)[number]

interface NativeActivity {
  kind: string
  placeId?: string
  rootPlaceId?: string
  universeId?: string
  gameId?: string
  location?: string
}

interface NativeRecord {
  userId: string
  state: string
  lastOnline: string | null
  locationHidden: boolean
  sessions: Array<{ source: string; deviceType: string; activity: NativeActivity }>
}

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()
const GAME_ID = '5f2b7f3e-9c1d-4e0a-8b6f-1a2b3c4d5e6f'
const PLACE = { placeId: 1818, rootPlaceId: 1800, universeId: 99, name: 'Crossroads' }

const FRIEND = 900001
const NON_FRIEND = 900002
const BLOCKER = 900003 // blocked every target
const BLOCKED = 900004 // blocked by every target

function targetId(setting: SettingKind, state: StateKind): number {
  return 1000 + settingsKinds.indexOf(setting) * 10 + states.indexOf(state)
}

/** The activity a register-app-presence from platform PC leaves, place details filled in. */
function activityOf(state: Exclude<StateKind, 'offline'>): NativeActivity {
  if (state === 'online') return { kind: 'online' }
  return {
    kind: state,
    placeId: String(PLACE.placeId),
    rootPlaceId: String(PLACE.rootPlaceId),
    universeId: String(PLACE.universeId),
    ...(state === 'inGame' && { gameId: GAME_ID }),
    location: PLACE.name,
  }
}

/** The presence as the target themself sees it: the truth (`invisible` while invisible). */
function truth(setting: SettingKind, state: StateKind): NativeRecord {
  const userId = String(targetId(setting, state))
  if (state === 'offline') {
    // went offline after its later activity, at T0+11s
    return { userId, state, lastOnline: iso(T0 + 11_000), locationHidden: false, sessions: [] }
  }
  return {
    userId,
    state: setting === 'invisible' ? 'invisible' : state,
    // online now: no lastOnline on the native wire
    lastOnline: null,
    locationHidden: false,
    sessions: [{ source: 'app', deviceType: 'PC', activity: activityOf(state) }],
  }
}

/** The policy, spelled out for the native view: what `viewer` must see of a target. */
function expected(viewer: ViewerKind, setting: SettingKind, state: StateKind): NativeRecord {
  const real = truth(setting, state)
  if (viewer === 'self') return real
  const offline = (lastOnline: string | null): NativeRecord => ({
    userId: real.userId,
    state: 'offline',
    lastOnline,
    locationHidden: false,
    sessions: [],
  })
  // blocked either way: offline, and not even when last seen
  if (viewer === 'blocker' || viewer === 'blocked') return offline(null)
  // invisible: offline, lastOnline frozen when it went invisible (T0+2s): offline targets had
  // last been seen at T0+1s, online ones at T0, and their later activity does not show
  if (setting === 'invisible') return offline(iso(state === 'offline' ? T0 + 1000 : T0))
  const seesWhere = setting === 'everyone' || (setting === 'friends' && viewer === 'friend')
  if (seesWhere || state === 'offline') return real
  // may know it is online, not where: activities keep only their kind
  return {
    ...real,
    locationHidden: true,
    sessions: real.sessions.map((s) => ({ ...s, activity: { kind: s.activity.kind } })),
  }
}

async function register(app: FastifyInstance, tokens: Tokens, userId: number, body: object) {
  const token = await tokens.issue(String(userId) as UserId)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ platform: 'PC', ...body }),
  })
  assert.equal(res.statusCode, 200, res.body)
}

async function admin(app: FastifyInstance, url: string, body?: object) {
  const res = await app.inject({
    method: 'PUT',
    url,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: body === undefined ? undefined : JSON.stringify(body),
  })
  assert.ok(res.statusCode === 200 || res.statusCode === 204, `${url}: ${res.body}`)
}

/** One listening server with the 16 targets and the viewers, at T0+12s (as privacy-table). */
async function setup(t: TestContext) {
  const clock = new ManualClock(T0)
  const started = await startApp(t, { clock, listen: true })
  const { app, tokens } = started
  const targets = settingsKinds.flatMap((setting) =>
    states.map((state) => ({ setting, state, id: targetId(setting, state) })),
  )
  await admin(app, `/admin/v1/places/${PLACE.placeId}`, {
    universeId: PLACE.universeId,
    rootPlaceId: PLACE.rootPlaceId,
    name: PLACE.name,
  })
  for (const { id } of targets) {
    await admin(app, `/admin/v1/users/${id}/friends/${FRIEND}`)
    await admin(app, `/admin/v1/users/${BLOCKER}/blocks/${id}`)
    await admin(app, `/admin/v1/users/${id}/blocks/${BLOCKED}`)
  }
  // T0: everyone online; T0+1s: the offline ones leave
  for (const { id } of targets) await register(app, tokens, id, {})
  clock.set(T0 + 1000)
  for (const { id, state } of targets) {
    if (state === 'offline') await register(app, tokens, id, { disconnect: true })
  }
  // T0+2s: settings; going invisible freezes what others see of lastOnline
  clock.set(T0 + 2000)
  for (const { id, setting } of targets) {
    await admin(
      app,
      `/admin/v1/users/${id}/settings`,
      setting === 'invisible'
        ? { visibility: 'everyone', invisible: true }
        : { visibility: setting, invisible: false },
    )
  }
  // T0+10s: later activity; the offline ones come and go again (gone at T0+11s)
  clock.set(T0 + 10_000)
  for (const { id, state } of targets) {
    if (state === 'online' || state === 'offline') await register(app, tokens, id, {})
    if (state === 'inGame') {
      await register(app, tokens, id, { location: 'Game', placeId: PLACE.placeId, gameId: GAME_ID })
    }
    if (state === 'inStudio') {
      await register(app, tokens, id, { location: 'Studio', placeId: PLACE.placeId })
    }
  }
  clock.set(T0 + 11_000)
  for (const { id, state } of targets) {
    if (state === 'offline') await register(app, tokens, id, { disconnect: true })
  }
  clock.set(T0 + 12_000)
  return { ...started, targets }
}

test('privacy table: 6 viewers × 4 settings × 4 states through the WebSocket snapshot', async (t) => {
  const { url, tokens, targets } = await setup(t)
  const clients: NativeClient[] = []
  t.after(() => Promise.all(clients.map((client) => client.close())))
  const connect = async (userId: number): Promise<NativeClient> => {
    const client = await NativeClient.connect(url, await tokens.issue(String(userId) as UserId))
    clients.push(client)
    return client
  }
  const snapshotOf = async (client: NativeClient, ids: number[]): Promise<NativeRecord[]> => {
    client.send({ type: 'subscribe', ids: ids.map(String) })
    const frame: Frame = await client.waitFor((f) => f.type === 'snapshot')
    assert.equal(typeof frame.seq, 'number')
    assert.equal(typeof frame.resume, 'string')
    const presences = frame.presences as NativeRecord[]
    assert.deepEqual(
      presences.map((p) => p.userId),
      ids.map(String),
    )
    return presences
  }

  // anonymous holds no token: refused before the upgrade, with or without a bad one
  const realtime = `${url}/api/v1/realtime`
  for (const [target, headers] of [
    [realtime, {}],
    [`${realtime}?access_token=not-a-token`, {}],
    [realtime, { authorization: 'Bearer not-a-token' }],
  ] as const) {
    const refused = await refusedUpgrade(target, headers)
    assert.equal(refused.status, 401)
    assert.deepEqual(JSON.parse(refused.body), {
      error: {
        code: 'UNAUTHENTICATED',
        message: 'Authorization has been denied for this request.',
      },
    })
  }

  const viewerIds: Record<Exclude<ViewerKind, 'self' | 'anonymous'>, number> = {
    friend: FRIEND,
    nonFriend: NON_FRIEND,
    blocker: BLOCKER,
    blocked: BLOCKED,
  }
  const ids = targets.map((target) => target.id)
  let checked = 0
  for (const viewer of viewers) {
    if (viewer === 'anonymous') continue
    const seen = new Map<string, NativeRecord>()
    if (viewer === 'self') {
      // a connection that sends no heartbeat frame carries no presence: it changes nothing
      const selves = await Promise.all(ids.map((id) => connect(id)))
      const snapshots = await Promise.all(selves.map((client, i) => snapshotOf(client, [ids[i]!])))
      for (const [record] of snapshots) seen.set(record!.userId, record!)
    } else {
      const records = await snapshotOf(await connect(viewerIds[viewer]), ids)
      for (const record of records) seen.set(record.userId, record)
    }
    for (const { id, setting, state } of targets) {
      const record = seen.get(String(id))!
      assert.deepEqual(Object.keys(record), [
        'userId',
        'state',
        'lastOnline',
        'locationHidden',
        'sessions',
      ])
      assert.deepEqual(
        record,
        expected(viewer, setting, state),
        `viewer ${viewer}, target ${setting}, ${state}`,
      )
      checked++
    }
  }
  // anonymous rows are the 401s above
  assert.equal(checked, (viewers.length - 1) * settingsKinds.length * states.length)
  for (const client of clients) assert.deepEqual(client.pending(), [], 'no event followed')
})
