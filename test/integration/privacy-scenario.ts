import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import type { Tokens } from '../../src/service/tokens.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * The scenario of the privacy tables (issue 3), shared by every protocol's table: 16 targets
 * (4 settings × 4 states) with friend, blocker and blocked viewers, driven through the public
 * APIs on a manual clock to T0+12s.
 */

export const viewers = ['self', 'friend', 'nonFriend', 'anonymous', 'blocker', 'blocked'] as const
export const settingsKinds = ['everyone', 'friends', 'nobody', 'invisible'] as const
export const states = ['offline', 'online', 'inGame', 'inStudio'] as const
export type ViewerKind = (typeof viewers)[number]
export type SettingKind = (typeof settingsKinds)[number]
export type StateKind = (typeof states)[number]

export const T0 = Date.UTC(2026, 2, 1, 12, 0, 0)
export const iso = (ms: number) => new Date(ms).toISOString()
export const EPOCH = '1970-01-01T00:00:00.000Z'
export const GAME_ID = '5f2b7f3e-9c1d-4e0a-8b6f-1a2b3c4d5e6f'
export const PLACE = { placeId: 1818, rootPlaceId: 1800, universeId: 99, name: 'Crossroads' }
/** PRESENCED_XBOX_TITLE_ID's default: the title Roblox game and studio sessions show as. */
export const PLATFORM_TITLE = { id: '1', name: 'Roblox' }

export const FRIEND = 900001
export const NON_FRIEND = 900002
export const BLOCKER = 900003 // blocked every target
export const BLOCKED = 900004 // blocked by every target

export function targetId(setting: SettingKind, state: StateKind): number {
  return 1000 + settingsKinds.indexOf(setting) * 10 + states.indexOf(state)
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

async function admin(app: FastifyInstance, method: 'PUT', url: string, body?: object) {
  const res = await app.inject({
    method,
    url,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: body === undefined ? undefined : JSON.stringify(body),
  })
  assert.ok(res.statusCode === 200 || res.statusCode === 204, `${url}: ${res.body}`)
}

/** One server (listening if asked) with 16 targets (4 settings × 4 states) and the viewers, at T0+12s. */
export async function setupPrivacyScenario(
  t: TestContext,
  options: { listen?: boolean; config?: Partial<Config> } = {},
) {
  const clock = new ManualClock(T0)
  const started = await startApp(t, {
    clock,
    listen: options.listen ?? false,
    ...(options.config && { config: options.config }),
  })
  const { app, tokens } = started
  const targets = settingsKinds.flatMap((setting) =>
    states.map((state) => ({ setting, state, id: targetId(setting, state) })),
  )

  const imported = await app.inject({
    method: 'POST',
    url: '/admin/v1/import',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
    payload: `{"type":"title","titleId":"${PLATFORM_TITLE.id}","name":"${PLATFORM_TITLE.name}"}\n`,
  })
  assert.equal(imported.statusCode, 200, imported.body)
  await admin(app, 'PUT', `/admin/v1/places/${PLACE.placeId}`, {
    universeId: PLACE.universeId,
    rootPlaceId: PLACE.rootPlaceId,
    name: PLACE.name,
  })
  for (const { id } of targets) {
    await admin(app, 'PUT', `/admin/v1/users/${id}/friends/${FRIEND}`)
    await admin(app, 'PUT', `/admin/v1/users/${BLOCKER}/blocks/${id}`)
    await admin(app, 'PUT', `/admin/v1/users/${id}/blocks/${BLOCKED}`)
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
      'PUT',
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

  return { ...started, clock, targets }
}
