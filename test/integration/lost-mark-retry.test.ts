import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { errors } from '../../src/core/errors.js'
import type { History } from '../../src/realtime/history.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { startWithStores } from '../helpers/start-with-stores.js'
import { continueFrom, heartbeat, positionedSnapshot } from './positions-steps.js'

/*
 * A privacy write that lands in the store while its history mark fails (Redis timing out
 * between the two): the client is answered 503 and sends the same write again. The retry finds
 * nothing to change, yet the mark must be made then: a stream resuming from a position taken
 * before the change must not be told that nothing changed (it would keep showing the place a
 * stranger may no longer see). The failure is injected by wrappers around the real stores: the
 * mark made after the store's write fails once; everything else is the real app, embedded and
 * on Redis.
 */

interface Failing {
  app: StartedApp
  /** The next history mark made after the store's next privacy write fails (once). */
  failNextMark(): void
}

async function startFailing(t: TestContext, fleet: boolean): Promise<Failing> {
  let armed = false
  let failing = false
  const app = await startWithStores(t, fleet, 'lost-mark', (stores) => {
    // a privacy write that lands arms the failure of the mark after it: Redis gone between the two
    const profiles = stores.profiles
    const replaceSettings = profiles.replaceSettings.bind(profiles)
    profiles.replaceSettings = async (id, expected, next) => {
      const stored = await replaceSettings(id, expected, next)
      if (stored && armed) [armed, failing] = [false, true]
      return stored
    }
    const setBlocked = profiles.setBlocked.bind(profiles)
    profiles.setBlocked = async (blocker, blocked, isBlocked, sight) => {
      await setBlocked(blocker, blocked, isBlocked, sight)
      if (armed) [armed, failing] = [false, true]
    }
    const history = stores.history!
    const wrapped: History = {
      positionTtlMs: history.positionTtlMs,
      ...(history.inProcess && { inProcess: true }),
      append: (change, at) => history.append(change, at),
      mark: (ids, at, concern) => {
        if (!failing) return history.mark(ids, at, concern)
        failing = false
        return Promise.reject(errors.storeUnavailable())
      },
      positions: (ids) => history.positions(ids),
      read: (userId, from) => history.read(userId, from),
      ...(history.keepOnly && { keepOnly: (watched) => history.keepOnly!(watched) }),
      ...(history.close && { close: () => history.close!() }),
    }
    stores.history = wrapped
  })
  return { app, failNextMark: () => (armed = true) }
}

async function admin(app: StartedApp, method: string, path: string, body?: object) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, text: await res.text() }
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'

  // embedded, the history is in memory: a mark cannot fail once the write landed (only a wrapper
  // can make it), and none is made before the write
  if (fleet) {
    test(`${mode}: a settings change whose mark failed is marked by its retry (a resume from before it is not told nothing changed)`, async (t) => {
      const { app, failNextMark } = await startFailing(t, fleet)
      const viewer = '7701' // a stranger
      const user = '7702'
      await heartbeat(app, user, { location: 'Game', placeId: 1818 })
      const held = await positionedSnapshot(app, viewer, [user])

      failNextMark()
      const path = `/admin/v1/users/${user}/settings`
      const first = await admin(app, 'PUT', path, { visibility: 'friends' })
      assert.equal(first.status, 503, first.text)
      const retry = await admin(app, 'PUT', path, { visibility: 'friends' })
      assert.equal(retry.status, 200, retry.text)

      // the stranger no longer sees the place: the resume must not end in "nothing since"
      assert.notEqual(await continueFrom(app, viewer, user, held.get(user)!), 'recovered')
    })
  }

  test(`${mode}: a block whose mark failed is marked by its retry`, async (t) => {
    const { app, failNextMark } = await startFailing(t, fleet)
    const viewer = '7711'
    const user = '7712'
    await heartbeat(app, user, { location: 'Game', placeId: 1818 })
    const held = await positionedSnapshot(app, viewer, [user])

    failNextMark()
    const path = `/admin/v1/users/${user}/blocks/${viewer}`
    const first = await admin(app, 'PUT', path)
    assert.equal(first.status, 503, first.text)
    const retry = await admin(app, 'PUT', path)
    assert.ok(retry.status === 200 || retry.status === 204, retry.text)

    assert.notEqual(await continueFrom(app, viewer, user, held.get(user)!), 'recovered')
  })
}
