import assert from 'node:assert/strict'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from './start-app.js'

/**
 * `userId` reports itself in game at place 1818, at `location`, through `node`'s
 * `register-app-presence` over HTTP, as an app does (a Bearer token of its own); asserts a 200.
 */
export async function appHeartbeat(
  node: StartedApp,
  userId: string,
  location: string,
): Promise<void> {
  const token = await node.tokens.issue(userId as UserId)
  const res = await fetch(`${node.url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ platform: 'PC', location, placeId: 1818 }),
  })
  assert.equal(res.status, 200, await res.text())
}
