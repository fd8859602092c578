import assert from 'node:assert/strict'
import { test } from 'node:test'
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
