import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY } from '../helpers/start-app.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { post } from './fleet-node.js'

/** Above 2^53: a JS number would round them. */
export const WATCHER = '9007199254740991'
export const P1 = '9007199254740993'
export const P2 = '9007199254740995'
/** Blocks the watcher: offline in the snapshot, and nothing of it ever after. */
export const HIDDEN = '9007199254740997'
export const IDS = [P1, P2, HIDDEN]

/**
 * Two nodes on the machine's Redis for the SSE fleet tests: HIDDEN blocks WATCHER, `token` is
 * WATCHER's, and `step` moves players to a location through B (a node the stream never lived on).
 */
export async function sseFleet(t: TestContext, name: string, config: Partial<Config> = {}) {
  const { a, b } = await startNodePair(t, name, config)
  const blocked = await fetch(`${a.url}/admin/v1/users/${HIDDEN}/blocks/${WATCHER}`, {
    method: 'PUT',
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.ok(blocked.ok, `block: ${blocked.status}`)
  const token = await a.tokens.issue(WATCHER as UserId)
  const players = new Map(
    await Promise.all(IDS.map(async (id) => [id, await a.tokens.issue(id as UserId)] as const)),
  )
  const step = async (location: string, ids = IDS) => {
    for (const id of ids) {
      const res = await post(
        `${b.url}/v1/presence/register-app-presence`,
        { location, placeId: 1818 },
        players.get(id),
      )
      assert.equal(res.status, 200, `${id} ${location}: ${res.status}`)
    }
  }
  return { a, b, token, step }
}
