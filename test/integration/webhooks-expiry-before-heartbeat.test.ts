import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { FAST_WEBHOOKS, hookTo } from '../helpers/webhook-endpoint.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'

/*
 * A session expires and, before the sweep claims it, the user heartbeats again (the same device,
 * or another one). The user was offline between (every read said so): the receiver is told
 * `offline` (reason `timeout`) then `online`, each once, and the sweep that runs later, on
 * whichever node, says nothing more (no second `online`, no `update` repeating the `online`).
 * Embedded, and in fleet mode on Redis (the sweep on the node that wrote, and on another).
 */

const TTL_MS = 10_000

const CONFIG: Partial<Config> = {
  ...FAST_WEBHOOKS,
  sessionTtlSeconds: TTL_MS / 1000,
  sweepIntervalMs: 3_600_000,
}

interface Nodes {
  /** Where the heartbeats are written. */
  writer: StartedApp
  /** Where the sweep runs. */
  sweeper: StartedApp
  clock: ManualClock
  receiver: WebhookReceiver
}

async function setup(t: TestContext, mode: 'embedded' | 'fleet' | 'two nodes'): Promise<Nodes> {
  const clock = new ManualClock(Date.now())
  const receiver = await startReceiver(t)
  if (mode === 'two nodes') {
    const { a, b } = await startNodePair(t, 'expiry-beat', CONFIG, { clock })
    await hookTo(a.app, receiver)
    // a change made on the other node loads the webhook there at once
    const [hook] = await b.service.webhooks.list()
    await b.service.webhooks.update(hook!.id, { description: 'two nodes' })
    return { writer: a, sweeper: b, clock, receiver }
  }
  const prefix = uniquePrefix('expiry-beat')
  const app = await startApp(t, {
    clock,
    config: {
      ...CONFIG,
      ...(mode === 'fleet' && {
        redisUrl: LOCAL_REDIS_URL,
        redisPrefix: prefix,
        redisTimeoutMs: 5000,
      }),
    },
  })
  if (mode === 'fleet') t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  await hookTo(app.app, receiver)
  return { writer: app, sweeper: app, clock, receiver }
}

async function waitFor(done: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await done())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const beat = (app: StartedApp, userId: string, device: string, kind = 'online') =>
  app.service.heartbeat({
    userId: userId as UserId,
    key: `app:${device}`,
    source: 'app',
    deviceType: device,
    activity: { kind: kind as 'online' },
  })

/** What the receiver was told of `userId` (type:state:reason), once a later sentinel's arrived. */
async function told(nodes: Nodes, userId: string): Promise<string[]> {
  const { writer, sweeper, receiver } = nodes
  const sentinel = '9999'
  await beat(writer, sentinel, 'PC')
  await receiver.until(
    () => receiver.accepted.some((r) => r.event.userId === sentinel),
    15_000,
    'the sentinel',
  )
  await writer.service.webhooks.idle()
  await sweeper.service.webhooks.idle()
  await waitFor(async () => (await writer.service.webhooks.backlog()).queued === 0, 'the queue')
  const events = receiver.accepted.filter((r) => r.event.userId === userId).map((r) => r.event)
  // never an event whose content is the one before it
  for (let i = 1; i < events.length; i++) {
    const { type, presence, reason } = events[i]!
    const last = events[i - 1]!
    assert.notDeepEqual(
      { type, presence, reason },
      { type: last.type, presence: last.presence, reason: last.reason },
      `event ${i} repeats the one before it`,
    )
  }
  return events.map((e) => `${e.type}:${e.presence.state}${e.reason ? `:${e.reason}` : ''}`)
}

for (const mode of ['embedded', 'fleet', 'two nodes'] as const) {
  test(`${mode}: the same device beating after its session expired, before the sweep: offline then online`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '401'
    const expiresAt = clock.now() + TTL_MS
    await beat(writer, user, 'PC')
    clock.advance(TTL_MS + 1000)
    // expired, not swept yet: the PC comes back
    await beat(writer, user, 'PC')
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), [
      'online:online',
      'offline:offline:timeout',
      'online:online',
    ])
    // the offline happened when the session expired, not when the heartbeat told it
    const offline = nodes.receiver.accepted.find(
      (r) => r.event.userId === user && r.event.type === 'offline',
    )
    assert.equal(offline!.event.occurredAt, new Date(expiresAt).toISOString())
  })

  test(`${mode}: another device beating after a session expired, before the sweep: offline then online, the sweep says nothing`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '402'
    await beat(writer, user, 'PC')
    clock.advance(TTL_MS + 1000)
    await beat(writer, user, 'iOS')
    clock.advance(1000)
    // the PC's expiry was told by the phone's heartbeat: nothing is left for the sweep to tell
    await sweeper.service.sweepExpired()
    clock.advance(1000)
    await beat(writer, user, 'iOS')
    assert.deepEqual(await told(nodes, user), [
      'online:online',
      'offline:offline:timeout',
      'online:online',
    ])
  })

  test(`${mode}: a session expiring beside a live one, then a heartbeat before the sweep: one update`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '403'
    await beat(writer, user, 'PC', 'inGame')
    clock.advance(TTL_MS / 2)
    await beat(writer, user, 'iOS')
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired, the phone is live: its refresh tells the game is over, once
    await beat(writer, user, 'iOS')
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), ['online:inGame', 'update:inGame', 'update:online'])
  })
}

for (const mode of ['embedded', 'fleet', 'two nodes'] as const) {
  test(`${mode}: a session expiring beside two live ones, one of them ended before the sweep: no update repeated`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '404'
    await beat(writer, user, 'PC', 'inGame')
    clock.advance(TTL_MS / 2)
    await beat(writer, user, 'iOS')
    await beat(writer, user, 'XboxOne')
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired; the console signs out before the sweep: both told by the end, in
    // order, and the sweep has nothing left to tell
    await writer.service.endSession(user as UserId, 'app:XboxOne')
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), [
      'online:inGame',
      'update:inGame',
      'update:inGame',
      'update:online',
      'update:online',
    ])
  })
}

/*
 * The other ends (Xbox titles, a game server's report its player left, a game server's end) find
 * a session expired and not swept beside the one they end: its expiry is told first, then the
 * end, and the sweep finds nothing (before, the sweep read the expired one alive beside what was
 * left and repeated the end's `update`).
 */
const SERVER_WRITER = { keyId: 'expiry-test', universes: [] }

/** A user in a game on the PC beside a live phone: the PC's game expires TTL_MS after. */
async function gameThenPhone(nodes: Nodes, user: string): Promise<void> {
  await beat(nodes.writer, user, 'PC', 'inGame')
  nodes.clock.advance(TTL_MS / 2)
  await beat(nodes.writer, user, 'iOS')
}

for (const mode of ['embedded', 'fleet', 'two nodes'] as const) {
  test(`${mode}: a session expiring beside a live one, an Xbox title ended before the sweep: no update repeated`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '405'
    await gameThenPhone(nodes, user)
    await writer.service.titleHeartbeat({
      userId: user as UserId,
      titleId: '1234',
      deviceType: 'XboxOne',
    })
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired; the title ends before the sweep: both told by the end, in order
    const ended = await writer.service.endTitles({ userId: user as UserId, deviceType: 'XboxOne' })
    assert.equal(ended.length, 1)
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), [
      'online:inGame',
      'update:inGame',
      'update:inGame',
      'update:online',
      'update:online',
    ])
  })

  test(`${mode}: a session expiring beside a live one, a game server's report its player left before the sweep: no update repeated`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '406'
    const game = '5e0c8a3e-0000-4000-8000-000000000406'
    const place = { placeId: '1818', universeId: '13058' }
    await gameThenPhone(nodes, user)
    await writer.service.servers.report(SERVER_WRITER, game, { ...place, players: [user, '407'] })
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired; the player leaves the server before the sweep
    await writer.service.servers.report(SERVER_WRITER, game, { ...place, players: ['407'] })
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), [
      'online:inGame',
      'update:inGame',
      'update:inGame',
      'update:inGame',
      'update:online',
    ])
  })

  test(`${mode}: a session expiring beside a live one, a game server ended before the sweep: no update repeated`, async (t) => {
    const nodes = await setup(t, mode)
    const { writer, sweeper, clock } = nodes
    const user = '408'
    const game = '5e0c8a3e-0000-4000-8000-000000000408'
    await gameThenPhone(nodes, user)
    await writer.service.servers.report(SERVER_WRITER, game, {
      placeId: '1818',
      universeId: '13058',
      players: [user],
    })
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired; the server shuts down before the sweep
    assert.deepEqual(await writer.service.servers.end(SERVER_WRITER, game), {
      gameId: game,
      ended: 1,
    })
    clock.advance(1000)
    await sweeper.service.sweepExpired()
    assert.deepEqual(await told(nodes, user), [
      'online:inGame',
      'update:inGame',
      'update:inGame',
      'update:inGame',
      'update:online',
    ])
  })
}
