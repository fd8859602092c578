import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { startWithStores } from '../helpers/start-with-stores.js'
import { heartbeat } from './positions-steps.js'

/*
 * A bulk import's settings line racing the user's own settings change: the change lands after
 * the import read the user's settings and before it wrote them (a wrapper around the real store
 * makes it land exactly there). The import is a write like PUT /admin/v1/users/{id}/settings
 * with both members: it replaces what is stored when it lands, computed from what it replaces,
 * never from what it read before. Here the user appeared offline and played unseen meanwhile;
 * the import then makes them visible: others must go on seeing the lastOnline of before the
 * hidden time (until the user is next seen alive), not the one of the hidden play.
 */

async function startRacing(
  t: TestContext,
  fleet: boolean,
  race: (app: StartedApp) => Promise<void>,
) {
  let raced = false
  const started: { app?: StartedApp } = {}
  const app = await startWithStores(t, fleet, 'import-races', (stores) => {
    const profiles = stores.profiles
    const importPrivacy = profiles.importPrivacy.bind(profiles)
    profiles.importPrivacy = async (records) => {
      if (!raced) {
        raced = true
        await race(started.app!)
      }
      return importPrivacy(records)
    }
  })
  return (started.app = app)
}

async function lastOnlineSeenByOthers(app: StartedApp, user: string): Promise<string> {
  const res = await fetch(`${app.url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"userIds":[${user}]}`,
  })
  assert.equal(res.status, 200)
  const body = (await res.json()) as { userPresences: { lastOnline: string }[] }
  return body.userPresences[0]!.lastOnline
}

for (const fleet of [false, true]) {
  test(`${fleet ? 'fleet' : 'embedded'}: an import making a user visible, racing their appearing offline, keeps the hidden time hidden`, async (t) => {
    const user = '7801'
    const app = await startRacing(t, fleet, async (app) => {
      // the user appears offline, then plays unseen: lastOnline moves on, others see the old one
      await app.service.putSettings(user as UserId, { invisible: true })
      await sleep(20)
      await heartbeat(app, user, { location: 'Game', placeId: 1818 })
      await heartbeat(app, user, { disconnect: true })
    })
    await heartbeat(app, user)
    await heartbeat(app, user, { disconnect: true })
    const before = await lastOnlineSeenByOthers(app, user)

    const line = JSON.stringify({ type: 'settings', userId: user, visibility: 'everyone' })
    const res = await fetch(`${app.url}/admin/v1/import`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
      body: `${line}\n`,
    })
    assert.equal(res.status, 200, await res.text())

    const settings = await app.service.getSettings(user as UserId)
    assert.equal(settings.visibility, 'everyone')
    assert.equal(settings.invisible, false)
    assert.equal(await lastOnlineSeenByOthers(app, user), before)
  })
}
