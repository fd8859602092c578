import assert from 'node:assert/strict'
import { test } from 'node:test'
import { performance } from 'node:perf_hooks'
import { ADMIN_KEY } from '../helpers/start-app.js'
import type { UserId } from '../../src/core/user-id.js'
import {
  BLOCKED,
  BLOCKER,
  FRIEND,
  GAME_ID,
  NON_FRIEND,
  PLACE,
  T0,
  iso,
  setupPrivacyScenario,
  targetId,
  settingsKinds,
  states,
  viewers,
  type SettingKind,
  type StateKind,
  type ViewerKind,
} from './privacy-scenario.js'
import { NativeClient, refusedUpgrade, type Frame } from './native-client.js'

/*
 * The privacy table of issue 3 (privacy-table.test.ts) through the native real-time API: the
 * same 16 targets (4 settings × 4 states), each viewer subscribing over a WebSocket, every field
 * of every snapshot presence compared with what the policy says, written out here independently
 * of the core's privacy functions and of the native view.
 */

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
  // last been seen at T0+1s; online ones were seen online until T0+2s, so they look as if they
  // had signed out then; their later activity does not show
  if (setting === 'invisible') return offline(iso(state === 'offline' ? T0 + 1000 : T0 + 2000))
  const seesWhere = setting === 'everyone' || (setting === 'friends' && viewer === 'friend')
  if (seesWhere || state === 'offline') return real
  // may know it is online, not where: activities keep only their kind
  return {
    ...real,
    locationHidden: true,
    sessions: real.sessions.map((s) => ({ ...s, activity: { kind: s.activity.kind } })),
  }
}

test('privacy table: 6 viewers × 4 settings × 4 states through the WebSocket snapshot', async (t) => {
  const { url, tokens, targets } = await setupPrivacyScenario(t, { listen: true })
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

/*
 * The timing dimension of the table: a watcher must not tell a hidden user from one who went
 * offline. For each visible setting × state × viewer, one target is hidden from its own watcher
 * in each way there is (invisibility, a block by either side), and a control target really signs
 * out at the same instant; each pair has its own users and stream, so the streams (types,
 * reasons, presences, seq, and the delay after the change) can be compared whole. The same
 * again with each change undone within the flap grace, which must send nothing, as a sign-out
 * followed by a sign-in does.
 */

const GRACE_MS = 1500
const causes = ['signOut', 'invisible', 'targetBlocks', 'viewerBlocks'] as const
type Cause = (typeof causes)[number]

interface TimingCase {
  setting: Exclude<SettingKind, 'invisible'>
  state: StateKind
  viewer: 'friend' | 'nonFriend'
  cause: Cause
  undo: boolean
  viewerId: number
  targetId: number
  client?: NativeClient
  /** performance.now() just before the change was sent, once it was answered, once undone. */
  changedAt?: number
  appliedAt?: number
  undoneAt?: number
}

test('privacy table, timing: every way of hiding a user streams exactly like a real sign-out', async (t) => {
  const { url, tokens, clock } = await setupPrivacyScenario(t, {
    listen: true,
    config: { flapGraceMs: GRACE_MS },
  })
  const cases: TimingCase[] = []
  let n = 0
  for (const setting of ['everyone', 'friends', 'nobody'] as const) {
    for (const state of states) {
      for (const viewer of ['friend', 'nonFriend'] as const) {
        for (const cause of causes) {
          // an offline target has nothing to undo: signing in again is not a sign-out undone
          for (const undo of state === 'offline' ? [false] : [false, true]) {
            n++
            cases.push({
              setting,
              state,
              viewer,
              cause,
              undo,
              viewerId: 700_000 + n,
              targetId: 800_000 + n,
            })
          }
        }
      }
    }
  }

  const http = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: object,
  ) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    assert.ok(res.status === 200 || res.status === 204, `${method} ${path}: ${await res.text()}`)
  }
  const asUser = async (id: number) => ({
    authorization: `Bearer ${await tokens.issue(String(id) as UserId)}`,
  })
  const admin = { 'x-api-key': ADMIN_KEY }
  const signIn = async (c: TimingCase) => {
    const where =
      c.state === 'inGame'
        ? { location: 'Game', placeId: PLACE.placeId, gameId: GAME_ID }
        : c.state === 'inStudio'
          ? { location: 'Studio', placeId: PLACE.placeId }
          : {}
    await http('POST', '/v1/presence/register-app-presence', await asUser(c.targetId), {
      platform: 'PC',
      ...where,
    })
  }
  const signOut = async (c: TimingCase) =>
    http('POST', '/v1/presence/register-app-presence', await asUser(c.targetId), {
      platform: 'PC',
      disconnect: true,
    })
  const block = (blocker: number, blocked: number, on: boolean) =>
    http(on ? 'PUT' : 'DELETE', `/admin/v1/users/${blocker}/blocks/${blocked}`, admin)
  const setInvisible = async (c: TimingCase, invisible: boolean) =>
    http('PUT', '/v1/presence/settings', await asUser(c.targetId), { invisible })

  for (const c of cases) {
    await http('PUT', `/admin/v1/users/${c.targetId}/settings`, admin, {
      visibility: c.setting,
      invisible: false,
    })
    if (c.viewer === 'friend') {
      await http('PUT', `/admin/v1/users/${c.targetId}/friends/${c.viewerId}`, admin)
    }
    await signIn(c)
    if (c.state === 'offline') await signOut(c)
  }
  clock.set(T0 + 20_000)
  t.after(() => Promise.all(cases.map((c) => c.client?.close())))
  await Promise.all(
    cases.map(async (c) => {
      c.client = await NativeClient.connect(url, await tokens.issue(String(c.viewerId) as UserId))
      c.client.send({ type: 'subscribe', ids: [String(c.targetId)] })
      await c.client.waitFor((f) => f.type === 'snapshot')
    }),
  )

  const change = async (c: TimingCase) => {
    c.changedAt = performance.now()
    switch (c.cause) {
      case 'signOut':
        await signOut(c)
        c.appliedAt = performance.now()
        if (c.undo) await signIn(c)
        break
      case 'invisible':
        await setInvisible(c, true)
        c.appliedAt = performance.now()
        if (c.undo) await setInvisible(c, false)
        break
      case 'targetBlocks':
        await block(c.targetId, c.viewerId, true)
        c.appliedAt = performance.now()
        if (c.undo) await block(c.targetId, c.viewerId, false)
        break
      case 'viewerBlocks':
        await block(c.viewerId, c.targetId, true)
        c.appliedAt = performance.now()
        if (c.undo) await block(c.viewerId, c.targetId, false)
        break
    }
    c.undoneAt = performance.now()
  }

  // every change at one instant of the presence clock, so every lastOnline can be equal
  clock.set(T0 + 30_000)
  // the changes that stand, all at once; then the ones undone, a few at a time, so that each is
  // undone well within the grace even on a loaded machine
  await Promise.all(cases.filter((c) => !c.undo).map(change))
  const undone = cases.filter((c) => c.undo)
  for (let i = 0; i < undone.length; i += 6) await Promise.all(undone.slice(i, i + 6).map(change))
  for (const c of undone) {
    assert.ok(
      c.undoneAt! - c.changedAt! < GRACE_MS,
      `the machine is too slow for this test: a change and its undoing took ${c.undoneAt! - c.changedAt!} ms`,
    )
  }
  // every standing change of an online target ends in one offline; then nothing more comes
  await Promise.all(
    cases
      .filter((c) => !c.undo && c.state !== 'offline')
      .map((c) => c.client!.waitFor((f) => f.type === 'offline', 20_000)),
  )
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 1000))

  /** The stream as its watcher saw it, with the target's id and the stream's token named. */
  const streamOf = (c: TimingCase) =>
    c.client!.frames.map((frame) =>
      JSON.parse(
        JSON.stringify(frame)
          .replaceAll(String(c.targetId), 'TARGET')
          .replace(/"resume":"[^"]+"/, '"resume":"TOKEN"'),
      ),
    )

  let compared = 0
  for (const c of cases) {
    const name = `${c.viewer} × ${c.setting}, ${c.state}: ${c.cause}${c.undo ? ' undone' : ''}`
    const control = cases.find(
      (o) =>
        o.cause === 'signOut' &&
        o.undo === c.undo &&
        o.setting === c.setting &&
        o.state === c.state &&
        o.viewer === c.viewer,
    )!
    const stream = streamOf(c)
    assert.deepEqual(stream, streamOf(control), name)
    // the control itself: a snapshot, then one held offline of an online target, or nothing
    const events = stream.slice(1)
    if (c.undo || c.state === 'offline') assert.deepEqual(events, [], name)
    else {
      assert.deepEqual(events, [
        {
          type: 'offline',
          seq: 2,
          userId: 'TARGET',
          presence: {
            userId: 'TARGET',
            state: 'offline',
            lastOnline: iso(T0 + 30_000),
            locationHidden: false,
            sessions: [],
          },
          reason: 'explicit',
        },
      ])
      // held for the grace from the change, as a sign-out's offline is, and not much longer
      const arrived = c.client!.arrivals[1]!
      const delay = arrived - c.changedAt!
      assert.ok(delay >= GRACE_MS, `${name}: offline ${delay} ms after the change`)
      const late = arrived - c.appliedAt! - GRACE_MS
      assert.ok(late < 5000, `${name}: offline ${late} ms after the grace`)
    }
    compared++
  }
  // 3 settings × 2 viewers × 4 causes × (3 online states × 2 + the offline state)
  assert.equal(compared, 3 * 2 * causes.length * 7)
})
