import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY } from '../helpers/start-app.js'
import {
  BLOCKED,
  BLOCKER,
  EPOCH,
  FRIEND,
  GAME_ID,
  NON_FRIEND,
  PLACE,
  PLATFORM_TITLE,
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

/*
 * The privacy policy of issue 3, table-driven through the Roblox API: every viewer × every target
 * setting × every target state, each record compared field by field with what the policy says,
 * written out here independently of the core's privacy functions. In embedded mode and in fleet
 * mode, where reads take the settings folded into each presence value (presence-codec.ts).
 */

const modes = ['embedded', 'fleet (Redis)'] as const

/** The scenario in `mode`: fleet mode on the machine's Redis, under a prefix of its own. */
function scenario(t: TestContext, mode: (typeof modes)[number]) {
  if (mode === 'embedded') return setupPrivacyScenario(t)
  const prefix = uniquePrefix('privacy-table')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  return setupPrivacyScenario(t, { config: { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix } })
}

interface RobloxRecord {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
  rootPlaceId: number | null
  gameId: string | null
  universeId: number | null
  userId: number
  lastOnline: string
}

/** The record as the target themself sees it: the truth (invisible or not, by default). */
function truth(setting: SettingKind, state: StateKind): RobloxRecord {
  const userId = targetId(setting, state)
  const nulls = { placeId: null, rootPlaceId: null, gameId: null, universeId: null }
  switch (state) {
    case 'offline':
      // went offline after its later activity: T0+11s, whatever others are shown
      return {
        userPresenceType: 0,
        lastLocation: 'Offline',
        ...nulls,
        userId,
        lastOnline: iso(T0 + 11_000),
      }
    case 'online':
      return {
        userPresenceType: 1,
        lastLocation: 'Website',
        ...nulls,
        userId,
        lastOnline: iso(T0 + 10_000),
      }
    case 'inGame':
    case 'inStudio':
      return {
        userPresenceType: state === 'inGame' ? 2 : 3,
        lastLocation: PLACE.name,
        placeId: PLACE.placeId,
        rootPlaceId: PLACE.rootPlaceId,
        gameId: state === 'inGame' ? GAME_ID : null,
        universeId: PLACE.universeId,
        userId,
        lastOnline: iso(T0 + 10_000),
      }
  }
}

const genericLocation = ['Offline', 'Website', 'Playing', 'Studio']
const stateType = { offline: 0, online: 1, inGame: 2, inStudio: 3 } as const

/** The policy, spelled out: what `viewer` must see of a target with `setting` in `state`. */
function expected(viewer: ViewerKind, setting: SettingKind, state: StateKind): RobloxRecord {
  const real = truth(setting, state)
  if (viewer === 'self') return real
  const userId = real.userId
  const offline = (lastOnline: string): RobloxRecord => ({
    userPresenceType: 0,
    lastLocation: 'Offline',
    placeId: null,
    rootPlaceId: null,
    gameId: null,
    universeId: null,
    userId,
    lastOnline,
  })
  // blocked either way: Offline, and not even when last seen
  if (viewer === 'blocker' || viewer === 'blocked') return offline(EPOCH)
  // invisible: Offline with lastOnline frozen when it went invisible (T0+2s): offline targets
  // had last been seen at T0+1s; online ones were seen online until T0+2s, so they look as if
  // they had signed out then; their later activity does not show
  if (setting === 'invisible') return offline(iso(state === 'offline' ? T0 + 1000 : T0 + 2000))
  const seesWhere = setting === 'everyone' || (setting === 'friends' && viewer === 'friend')
  if (seesWhere) return real
  const type = stateType[state]
  return {
    userPresenceType: type,
    lastLocation: genericLocation[type]!,
    placeId: null,
    rootPlaceId: null,
    gameId: null,
    universeId: null,
    userId,
    lastOnline: real.lastOnline,
  }
}

for (const mode of modes)
  test(`privacy table, ${mode}: 6 viewers × 4 settings × 4 states through POST /v1/presence/users`, async (t) => {
    const { app, tokens, targets } = await scenario(t, mode)
    const viewerIds: Record<Exclude<ViewerKind, 'self' | 'anonymous'>, number> = {
      friend: FRIEND,
      nonFriend: NON_FRIEND,
      blocker: BLOCKER,
      blocked: BLOCKED,
    }
    const lookup = async (viewerId: number | undefined, ids: number[]): Promise<RobloxRecord[]> => {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (viewerId !== undefined) {
        headers.authorization = `Bearer ${await tokens.issue(String(viewerId) as UserId)}`
      }
      const res = await app.inject({
        method: 'POST',
        url: '/v1/presence/users',
        headers,
        payload: JSON.stringify({ userIds: ids }),
      })
      assert.equal(res.statusCode, 200, res.body)
      return (res.json() as { userPresences: RobloxRecord[] }).userPresences
    }

    let checked = 0
    for (const viewer of viewers) {
      const seen = new Map<number, RobloxRecord>()
      if (viewer === 'self') {
        for (const { id } of targets) seen.set(id, (await lookup(id, [id]))[0]!)
      } else {
        const ids = targets.map((target) => target.id)
        const records = await lookup(viewer === 'anonymous' ? undefined : viewerIds[viewer], ids)
        assert.deepEqual(
          records.map((r) => r.userId),
          ids,
        )
        for (const record of records) seen.set(record.userId, record)
      }
      for (const { id, setting, state } of targets) {
        const record = seen.get(id)!
        assert.deepEqual(Object.keys(record), [
          'userPresenceType',
          'lastLocation',
          'placeId',
          'rootPlaceId',
          'gameId',
          'universeId',
          'userId',
          'lastOnline',
        ])
        assert.deepEqual(
          record,
          expected(viewer, setting, state),
          `viewer ${viewer}, target ${setting}, ${state}`,
        )
        checked++
      }
    }
    assert.equal(checked, viewers.length * settingsKinds.length * states.length)
  })

interface XboxRecord {
  xuid: string
  state: 'Online' | 'Away' | 'Offline'
  devices?: Array<{ type: string; titles: unknown[] }>
  lastSeen?: { deviceType: string; titleName: string; timestamp: string }
}

/** The Xbox PresenceRecord (level all) the target themself sees. */
function xboxTruth(setting: SettingKind, state: StateKind): XboxRecord {
  const xuid = String(targetId(setting, state))
  switch (state) {
    case 'offline':
      return {
        xuid,
        state: 'Offline',
        lastSeen: { deviceType: 'Unknown', titleName: '', timestamp: iso(T0 + 11_000) },
      }
    case 'online':
      // signed in on a device, in no title
      return { xuid, state: 'Away', devices: [{ type: 'PC', titles: [] }] }
    case 'inGame':
    case 'inStudio':
      return {
        xuid,
        state: 'Online',
        devices: [
          {
            type: 'PC',
            titles: [
              {
                id: PLATFORM_TITLE.id,
                name: PLATFORM_TITLE.name,
                lastModified: iso(T0 + 10_000),
                timestamp: `${iso(T0 + 10_000).slice(0, 23)}0000`,
                placement: 'full',
                state: 'active',
                activity: { richPresence: PLACE.name },
              },
            ],
          },
        ],
      }
  }
}

/** The same policy on the Xbox record: hidden is Offline; "not where" keeps devices, no titles. */
function xboxExpected(viewer: ViewerKind, setting: SettingKind, state: StateKind): XboxRecord {
  const real = xboxTruth(setting, state)
  if (viewer === 'self') return real
  const xuid = real.xuid
  if (viewer === 'blocker' || viewer === 'blocked') return { xuid, state: 'Offline' }
  if (setting === 'invisible') {
    return {
      xuid,
      state: 'Offline',
      lastSeen: {
        deviceType: 'Unknown',
        titleName: '',
        timestamp: iso(state === 'offline' ? T0 + 1000 : T0 + 2000),
      },
    }
  }
  const seesWhere = setting === 'everyone' || (setting === 'friends' && viewer === 'friend')
  if (seesWhere || state === 'offline') return real
  return { xuid, state: real.state, devices: [{ type: 'PC', titles: [] }] }
}

for (const mode of modes)
  test(`privacy table on the Xbox API, ${mode}: the same 96 cases through POST /users/batch (level all)`, async (t) => {
    const { app, tokens, targets } = await scenario(t, mode)
    // Xbox has no anonymous reader: a service key with presence:read reads as a non-friend does
    const created = await app.inject({
      method: 'POST',
      url: '/admin/v1/keys',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'reader', scopes: ['presence:read'] }),
    })
    assert.equal(created.statusCode, 201, created.body)
    const serviceKey = created.json().secret as string
    const viewerIds: Record<Exclude<ViewerKind, 'self' | 'anonymous'>, number> = {
      friend: FRIEND,
      nonFriend: NON_FRIEND,
      blocker: BLOCKER,
      blocked: BLOCKED,
    }
    const batch = async (viewerId: number | undefined, ids: number[]): Promise<XboxRecord[]> => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-xbl-contract-version': '3',
      }
      if (viewerId === undefined) headers['x-api-key'] = serviceKey
      else {
        const token = await tokens.issue(String(viewerId) as UserId)
        headers.authorization = `XBL3.0 x=0;${token}`
      }
      const res = await app.inject({
        method: 'POST',
        url: '/users/batch',
        headers,
        payload: JSON.stringify({ users: ids, level: 'all' }),
      })
      assert.equal(res.statusCode, 200, res.body)
      return res.json() as XboxRecord[]
    }

    let checked = 0
    for (const viewer of viewers) {
      const seen = new Map<string, XboxRecord>()
      if (viewer === 'self') {
        for (const { id } of targets) seen.set(String(id), (await batch(id, [id]))[0]!)
      } else {
        const ids = targets.map((target) => target.id)
        const records = await batch(viewer === 'anonymous' ? undefined : viewerIds[viewer], ids)
        for (const record of records) seen.set(record.xuid, record)
      }
      for (const { id, setting, state } of targets) {
        assert.deepEqual(
          seen.get(String(id)),
          xboxExpected(viewer, setting, state),
          `viewer ${viewer}, target ${setting}, ${state}`,
        )
        checked++
      }
    }
    assert.equal(checked, 96)
  })
