import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { NativeClient } from '../integration/native-client.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

/** Above 2^53: a JS number would round it on its way through Redis or the wire. */
const PLAYER = '9007199254740993'
const WATCHER = '4242'

async function ready(node: StartedApp): Promise<void> {
  const res = await fetch(`${node.url}/readyz`)
  assert.equal(res.status, 200, await res.text())
}

test('fleet: a WebSocket subscriber on node B hears a Roblox heartbeat on node A come and go', async (t) => {
  const prefix = uniquePrefix('rt-cross')
  // no flap grace: the offline is due at once instead of 3 s later
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, flapGraceMs: 0 }
  const a = await startApp(t, { config, listen: true })
  const b = await startApp(t, { config, listen: true })
  // t.after hooks run in registration order: this one after both apps have closed
  t.after(async () => {
    const left = await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)
    t.diagnostic(`deleted ${left} keys under ${prefix}`)
  })
  await Promise.all([ready(a), ready(b)])

  const watcher = await NativeClient.connect(b.url, await b.tokens.issue(WATCHER as UserId))
  t.after(() => watcher.close())
  watcher.send(`{"type":"subscribe","ids":[${PLAYER}]}`)
  const snapshot = await watcher.waitFor((f) => f.type === 'snapshot')
  assert.deepEqual(snapshot.presences, [
    { userId: PLAYER, state: 'offline', lastOnline: null, locationHidden: false, sessions: [] },
  ])

  // the token comes from node A: both nodes share the secret, as a fleet does
  const token = await a.tokens.issue(PLAYER as UserId)
  const register = (body: object) =>
    fetch(`${a.url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ platform: 'PC', ...body }),
    })

  const started = Date.now()
  const online = await register({})
  assert.equal(online.status, 200, await online.text())
  const came = await watcher.take()
  const onlineMs = Date.now() - started
  assert.deepEqual(came, {
    type: 'online',
    seq: (snapshot.seq as number) + 1,
    userId: PLAYER,
    presence: {
      userId: PLAYER,
      state: 'online',
      lastOnline: null,
      locationHidden: false,
      sessions: [{ source: 'app', deviceType: 'PC', activity: { kind: 'online' } }],
    },
  })

  const gone = await register({ disconnect: true })
  assert.equal(gone.status, 200, await gone.text())
  const left = await watcher.take()
  assert.equal(left.type, 'offline')
  assert.equal(left.seq, (snapshot.seq as number) + 2)
  assert.equal(left.userId, PLAYER)
  assert.equal(left.reason, 'explicit')
  const presence = left.presence as Record<string, unknown>
  assert.equal(presence.state, 'offline')
  assert.equal(presence.locationHidden, false)
  assert.deepEqual(presence.sessions, [])
  // the instant it went offline, as node A recorded it in Redis
  assert.equal(typeof presence.lastOnline, 'string')
  assert.ok(Math.abs(Date.parse(presence.lastOnline as string) - Date.now()) < 10_000)
  t.diagnostic(`online event on B ${onlineMs} ms after the heartbeat on A was sent`)

  // node B reads the same: the event and the HTTP API agree
  const read = await fetch(`${b.url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"userIds":[${PLAYER}]}`,
  })
  assert.equal(read.status, 200)
  assert.match(await read.text(), new RegExp(`"userPresenceType":0,.*"userId":${PLAYER}`))
  assert.deepEqual(watcher.pending(), [])
})
