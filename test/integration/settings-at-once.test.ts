import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * Two changes of one user's privacy settings at once — appearing offline on Xbox
 * (`PUT /users/me/state`) while narrowing visibility with `PUT /v1/presence/settings` — both
 * hold afterwards, whichever lands first: a user who asked to appear offline is never shown
 * again because another change read the settings before theirs landed. Embedded, and two nodes
 * of a fleet taking one change each.
 */

const USERS = 30

async function changeAtOnce(cloakOn: StartedApp, narrowOn: StartedApp): Promise<string[]> {
  const lost: string[] = []
  for (let i = 0; i < USERS; i++) {
    const user = String(9_007_199_254_740_993n + BigInt(i)) as UserId
    const token = await cloakOn.tokens.issue(user)
    const [cloak, narrow] = await Promise.all([
      fetch(`${cloakOn.url}/users/xuid(${user})/state`, {
        method: 'PUT',
        headers: {
          authorization: `XBL3.0 x=1;${token}`,
          'x-xbl-contract-version': '3',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ state: 'Cloaked' }),
      }),
      fetch(`${narrowOn.url}/v1/presence/settings`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ visibility: 'friends' }),
      }),
    ])
    assert.equal(cloak.status, 200, await cloak.text())
    assert.equal(narrow.status, 200, await narrow.text())
    const settings = (await (
      await fetch(`${narrowOn.url}/v1/presence/settings`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { visibility: string; invisible: boolean }
    if (!settings.invisible || settings.visibility !== 'friends') {
      lost.push(`${user}: ${JSON.stringify(settings)}`)
    }
  }
  return lost
}

test('embedded: two settings changes at once both hold', async (t) => {
  const app = await startApp(t, { listen: true })
  assert.deepEqual(await changeAtOnce(app, app), [])
})

test('fleet: two settings changes at once, on two nodes, both hold', async (t) => {
  const { a, b } = await startNodePair(t, 'settings-at-once')
  assert.deepEqual(await changeAtOnce(a, b), [])
  assert.deepEqual(await changeAtOnce(b, b), [])
})
