import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { json, send } from '../compat/wire.js'
import { startApp } from '../helpers/start-app.js'

/*
 * Issue 16 items 1 and 4 over real HTTP (items 2 and 3 have files of their own:
 * catalogue-reads.test.ts and roblox-users-lookup.test.ts).
 */

const ME = '40' as UserId

interface Record_ {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
}

async function world(t: Parameters<typeof startApp>[0], config = {}) {
  const app = await startApp(t, { listen: true, config })
  const bearer: [string, string] = ['authorization', `Bearer ${await app.tokens.issue(ME)}`]
  const register = async (body: Record<string, unknown>, agent?: string) => {
    const response = await send(app.url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        bearer,
        ['content-type', 'application/json'],
        ...(agent ? ([['user-agent', agent]] as [string, string][]) : []),
      ],
      body: JSON.stringify(body),
    })
    assert.equal(response.status, 200, response.text)
  }
  /** Reads `ME` as `viewer`, through the lean path (application/json) and Fastify (text/json). */
  const read = async (viewer: [string, string][]): Promise<Record_> => {
    const records: Record_[] = []
    for (const type of ['application/json', 'text/json']) {
      const response = await send(app.url, {
        method: 'POST',
        path: '/v1/presence/users',
        headers: [...viewer, ['content-type', type]],
        body: JSON.stringify({ userIds: [Number(ME)] }),
      })
      assert.equal(response.status, 200, response.text)
      records.push((json(response) as { userPresences: Record_[] }).userPresences[0]!)
    }
    assert.deepEqual(records[0], records[1], 'both paths answer alike')
    return records[0]!
  }
  return { ...app, bearer, register, read }
}

test('item 1: by default a reply carries 0-3 only; an invisible user sees their real state', async (t) => {
  const { service, register, read, bearer } = await world(t)
  await register({ location: 'Game', placeId: 1818 })
  await service.putSettings(ME, { invisible: true })
  const self = await read([bearer])
  assert.deepEqual([self.userPresenceType, self.placeId], [2, 1818])
  const others = await read([])
  assert.deepEqual([others.userPresenceType, others.placeId], [0, null])
  // in Studio too: 3, never 4
  await register({ location: 'Studio' })
  assert.equal((await read([bearer])).userPresenceType, 3)
})

test('item 1: 4 (Invisible) only where the operator opts in', async (t) => {
  const { service, register, read, bearer } = await world(t, { invisibleSelfView: 'invisible' })
  await register({ location: 'Home' })
  await service.putSettings(ME, { invisible: true })
  assert.equal((await read([bearer])).userPresenceType, 4)
  assert.equal((await read([])).userPresenceType, 0)
})

test("item 4: disconnect ends the calling device's session only; each device ends its own", async (t) => {
  const { register, read } = await world(t)
  await register({ location: 'Game', placeId: 1818 }, 'Roblox/WinInet')
  await register({ location: 'Home' }, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)')
  assert.equal((await read([])).userPresenceType, 2)
  // the PC's player disconnects: the phone's session stays
  await register({ disconnect: true }, 'Roblox/WinInet')
  const phone = await read([])
  assert.deepEqual([phone.userPresenceType, phone.placeId], [1, null])
  // ending all of them: one disconnect per platform, named in the body
  await register({ disconnect: true, platform: 'iOS' })
  assert.equal((await read([])).userPresenceType, 0)
})
