import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { startWithStores } from '../helpers/start-with-stores.js'
import { hookTo } from '../helpers/webhook-endpoint.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'
import { heartbeat } from './positions-steps.js'
import { SseClient } from './sse-client.js'

/*
 * A user's settings change and a sign-in or sign-out of theirs landing at once, each ordered
 * exactly by a wrapper around the real stores (embedded, and Redis in fleet mode):
 *
 * - the user goes invisible, and signs out right after the settings are stored, before the
 *   change's webhook event is worked out (inside that work's read of the user's presence). The
 *   receiver was told the user is online; it must be told that the user is not: hiding reads as a
 *   sign-out at that instant, and the sign-out after it is hidden. The settings change was judged
 *   by the presence read then (offline on both sides) and the sign-out by the new settings
 *   (hidden on both sides): no `offline` at all, the user online for the receiver forever;
 * - the mirror case: the sign-out is stored first, and its event worked out only after the
 *   settings change is stored (the outbox busy with an earlier batch, the settings change handed
 *   to it later, as one made on another node is): the sign-out must be judged by the settings
 *   it was stored under, not by those read when its event is worked out;
 * - the user, offline, goes invisible and signs in after the change was computed, before it was
 *   stored: the sign-in is told as `online` (judged by the settings before), so the settings
 *   change must still say `offline` (the presence it was computed from was offline);
 * - the first race again, as a native stream sees it (the fan-out reads the presence to
 *   re-project a settings change): the watcher must see the user go offline.
 */

const USER = '7401'

/** A read of USER's presence for which `read` holds, once armed: the race runs just before it. */
interface Race {
  /** Which read: `now` is -Infinity for stored presences (the webhook outbox's), else finite. */
  read: (now: number) => boolean
  /** Arms the race: after the settings are stored, or before they are (true). */
  beforeWrite?: boolean
  /** Armed by the test (`arm()`); the race then runs after the read, its answer the one before. */
  afterRead?: boolean
  /** The write that lands in the race; only awaited until its effect is stored. */
  write: (app: StartedApp) => Promise<void>
  /** Whether USER's presence as stored shows the write landed. */
  landed: (sessions: number) => boolean
}

async function startRacing(t: TestContext, fleet: boolean, race: Race) {
  const started: { app?: StartedApp } = {}
  const state = { armed: false, ran: undefined as Promise<void> | undefined }
  let written: Promise<void> | undefined
  const app = await startWithStores(t, fleet, 'settings-race', (stores) => {
    const { presence, profiles } = stores
    const getMany = presence.getMany.bind(presence)
    const replaceSettings = profiles.replaceSettings.bind(profiles)
    const runRace = async () => {
      // not awaited as a whole: its answer may wait for the work this race holds up
      written = race.write(started.app!)
      const deadline = Date.now() + 10_000
      for (;;) {
        const [stored] = await getMany([USER as UserId], Date.now())
        if (race.landed(stored!.sessions.length)) return
        assert.ok(Date.now() < deadline, 'the racing write was never stored')
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
    profiles.replaceSettings = async (id, expected, next) => {
      if (id === USER && race.beforeWrite && !state.ran) {
        state.ran = runRace()
        await state.ran
        await written
        return replaceSettings(id, expected, next)
      }
      const landed = await replaceSettings(id, expected, next)
      if (landed && id === USER && !race.beforeWrite) state.armed = true
      return landed
    }
    presence.getMany = async (ids, now) => {
      if (state.armed && race.read(now) && ids.includes(USER as UserId)) {
        state.armed = false
        const found = race.afterRead ? await getMany(ids, now) : undefined
        state.ran = runRace()
        await state.ran
        if (found) return found
      }
      return getMany(ids, now)
    }
  })
  started.app = app
  return {
    app,
    /** Arms a race `afterRead`: the next read it names runs it. */
    arm: () => void (state.armed = true),
    /** Resolves once the race ran and its write is answered. */
    async raced(): Promise<void> {
      assert.ok(state.ran, 'the race ran')
      await state.ran
      await written
    },
  }
}

/** A promise opened from outside. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { opened, open }
}

async function until(check: () => Promise<boolean>, what = 'the write to be stored') {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function adminGet(app: StartedApp, url: string): Promise<unknown> {
  const res = await app.app.inject({ method: 'GET', url, headers: { 'x-api-key': ADMIN_KEY } })
  assert.equal(res.statusCode, 200, res.body)
  return res.json()
}

/** What the receiver was told of USER once every event recorded is delivered. */
async function toldOfUser(app: StartedApp, receiver: WebhookReceiver): Promise<string[][]> {
  await app.service.webhooks.idle()
  const { webhooks } = (await adminGet(app, '/admin/v1/webhooks')) as { webhooks: { id: string }[] }
  const deadline = Date.now() + 15_000
  for (;;) {
    const { queued } = (await adminGet(app, `/admin/v1/webhooks/${webhooks[0]!.id}`)) as {
      queued: number
    }
    if (queued === 0) break
    assert.ok(Date.now() < deadline, `${queued} events still queued`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return receiver.accepted
    .filter((r) => r.event.userId === USER)
    .map((r) => [r.event.type, r.event.presence.state])
}

const signOut: Pick<Race, 'write' | 'landed'> = {
  write: (app) => heartbeat(app, USER, { disconnect: true }),
  landed: (sessions) => sessions === 0,
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'

  test(`${mode}: a sign-out stored after going invisible, before the settings event is worked out, still sends offline`, async (t) => {
    const { app, raced } = await startRacing(t, fleet, {
      ...signOut,
      read: (now) => now === -Infinity,
    })
    const receiver = await startReceiver(t)
    await hookTo(app.app, receiver)

    await heartbeat(app, USER)
    await receiver.until(() => receiver.accepted.length === 1, 15_000, 'the online event')
    await app.service.putSettings(USER as UserId, { invisible: true })
    await raced()

    // the receiver was told the user is online: it must hear that the user is not any more
    assert.deepEqual(await toldOfUser(app, receiver), [
      ['online', 'online'],
      ['offline', 'offline'],
    ])
  })

  test(`${mode}: a sign-out stored before going invisible, its event worked out after, still sends offline`, async (t) => {
    // the outbox is held up storing an earlier batch; the sign-out waits behind it, and the
    // settings change is stored meanwhile but handed to the outbox only once the sign-out's
    // event was worked out (as a change made on another node would be)
    const outboxHeld = gate()
    const enqueueEntered = gate()
    const settingsStored = gate()
    const settingsHeld = gate()
    let holding = false
    const app = await startWithStores(t, fleet, 'settings-race', (stores) => {
      const { profiles } = stores
      const webhooks = stores.webhooks!
      const enqueue = webhooks.enqueue.bind(webhooks)
      webhooks.enqueue = async (events, max) => {
        if (holding) {
          holding = false
          enqueueEntered.open()
          await outboxHeld.opened
        }
        return enqueue(events, max)
      }
      const replaceSettings = profiles.replaceSettings.bind(profiles)
      profiles.replaceSettings = async (id, expected, next) => {
        const landed = await replaceSettings(id, expected, next)
        if (landed && id === USER && next.invisible) {
          settingsStored.open()
          await settingsHeld.opened
        }
        return landed
      }
    })
    const receiver = await startReceiver(t)
    await hookTo(app.app, receiver)
    await heartbeat(app, USER)
    await receiver.until(() => receiver.accepted.length === 1, 15_000, 'the online event')

    holding = true
    // answered once the outbox took its event: not awaited while the outbox is held
    const sentinel = heartbeat(app, '7403')
    await enqueueEntered.opened
    const signedOut = heartbeat(app, USER, { disconnect: true })
    await until(
      async () => (await app.service.rawPresences([USER as UserId]))[0]!.sessions.length === 0,
    )
    const put = app.service.putSettings(USER as UserId, { invisible: true })
    await settingsStored.opened
    outboxHeld.open()
    await sentinel
    await signedOut
    settingsHeld.open()
    await put

    assert.deepEqual(await toldOfUser(app, receiver), [
      ['online', 'online'],
      ['offline', 'offline'],
    ])
  })

  test(`${mode}: a sign-out stored while going invisible, after the change was computed, sends one offline`, async (t) => {
    // the settings change read the user online, then the sign-out was stored (told `offline`,
    // judged by the settings before), then the settings: the user is offline to the receiver
    // already, and hiding an offline user tells nothing
    const { app, arm, raced } = await startRacing(t, fleet, {
      ...signOut,
      afterRead: true,
      read: (now) => now === -Infinity,
    })
    const receiver = await startReceiver(t)
    await hookTo(app.app, receiver)

    await heartbeat(app, USER)
    await receiver.until(() => receiver.accepted.length === 1, 15_000, 'the online event')
    arm()
    await app.service.putSettings(USER as UserId, { invisible: true })
    await raced()

    assert.deepEqual(await toldOfUser(app, receiver), [
      ['online', 'online'],
      ['offline', 'offline'],
    ])
  })

  test(`${mode}: a sign-in stored while going invisible, after the change was computed, is followed by offline`, async (t) => {
    const { app, raced } = await startRacing(t, fleet, {
      beforeWrite: true,
      read: () => false,
      write: (app) => heartbeat(app, USER),
      landed: (sessions) => sessions === 1,
    })
    const receiver = await startReceiver(t)
    await hookTo(app.app, receiver)

    await app.service.putSettings(USER as UserId, { invisible: true })
    await raced()

    // told online (the sign-in, judged by the settings before the change): then offline
    assert.deepEqual(await toldOfUser(app, receiver), [
      ['online', 'online'],
      ['offline', 'offline'],
    ])
  })

  test(`${mode}: a sign-out stored after going invisible, before a stream re-projects the change, shows offline`, async (t) => {
    const { app, raced } = await startRacing(t, fleet, {
      ...signOut,
      read: (now) => now !== -Infinity,
    })
    const watcher = await app.tokens.issue('7402' as UserId)
    const sse = await SseClient.open(app.url, watcher, [USER])
    t.after(() => sse.close())
    await sse.waitFor((e) => e.data.type === 'snapshot')

    await heartbeat(app, USER)
    await sse.waitFor((e) => e.data.type === 'online')
    await app.service.putSettings(USER as UserId, { invisible: true })
    await raced()

    const offline = await sse.waitFor((e) => e.data.type === 'offline', 5000)
    assert.equal((offline.data.presence as { userId: string }).userId, USER)
  })
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'

  test(`${mode}: a presence read failing beside the settings write leaves the change told`, async (t) => {
    // the second read of USER's stored presence in a settings change is the one beside its write
    let reads = 0
    let failing = false
    const app = await startWithStores(t, fleet, 'settings-race', (stores) => {
      const { presence } = stores
      const getMany = presence.getMany.bind(presence)
      presence.getMany = async (ids, now) => {
        if (failing && now === -Infinity && ids.includes(USER as UserId) && ++reads === 2) {
          throw new Error('the read beside the write failed')
        }
        return getMany(ids, now)
      }
    })
    const receiver = await startReceiver(t)
    await hookTo(app.app, receiver)
    await heartbeat(app, USER)
    await receiver.until(() => receiver.accepted.length === 1, 15_000, 'the online event')

    failing = true
    // stored: answered and told as any settings change, judged by the presence read later
    await app.service.putSettings(USER as UserId, { invisible: true })
    assert.equal((await app.service.getSettings(USER as UserId)).invisible, true)
    assert.deepEqual(await toldOfUser(app, receiver), [
      ['online', 'online'],
      ['offline', 'offline'],
    ])
  })
}
