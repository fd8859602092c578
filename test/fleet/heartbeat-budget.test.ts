import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import {
  heartbeatFrame,
  heartbeatUntilRefused,
  isRateLimited,
} from '../integration/native-client.js'
import { connect } from './realtime-limits-kit.js'

/*
 * A user's heartbeats share one budget across the fleet, whichever surface they come by: HTTP
 * register-app-presence on one node (the lean path, its hit counted in the write's Redis step)
 * and WebSocket heartbeat frames on the other, counted by the same Redis rate limiter.
 */

const WINDOW_MS = 60_000
const MAX = 10

test('fleet: HTTP heartbeats on one node and WebSocket heartbeats on the other share the user’s budget', async (t) => {
  // standing at the start of a window, so that none ends during the test
  const clock = new ManualClock(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS)
  const { a, b } = await startNodePair(
    t,
    'hb-budget',
    { rateLimitMax: MAX, rateLimitWindowSeconds: WINDOW_MS / 1000 },
    { clock },
  )
  const user = '9223372036854775601' as UserId
  const token = await a.tokens.issue(user)
  const beatOnB = (location: string) =>
    fetch(`${b.url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ location }),
    })

  // the upgrade on A is one request of the budget, B's HTTP heartbeats spend the rest
  const onA = await connect(t, a, token)
  for (let i = 1; i < MAX; i++) assert.equal((await beatOnB(`http ${i}`)).status, 200)
  onA.send(heartbeatFrame('ws on A'))
  const refusal = await onA.waitFor(isRateLimited)
  assert.ok((refusal.retryAfterMs as number) > 0)

  // the next window: WebSocket heartbeats on A spend it, then B refuses HTTP
  clock.advance(WINDOW_MS)
  const again = await connect(t, a, token)
  await heartbeatUntilRefused(again, 10 * MAX)
  const refused = await beatOnB('http over')
  assert.equal(refused.status, 429)
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
})
