import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * Issue 15, items 4, 6 and 7: a hidden user must look, on every surface (Roblox and Xbox reads,
 * WebSocket, SSE), exactly like a user who went offline, and keep looking so. Each test runs on
 * the embedded stores and on Redis (fleet mode), through real HTTP and real sockets.
 */

const T0 = Date.UTC(2026, 4, 1, 9, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()
const EPOCH = '1970-01-01T00:00:00.000Z'
const GRACE_MS = 300
/** Long enough for a held offline to have been sent, were one due, on a loaded machine. */
const QUIET_MS = GRACE_MS + 1200

const modes = ['embedded', 'redis'] as const

async function start(t: TestContext, mode: (typeof modes)[number]): Promise<Surfaces> {
  const config: Partial<Config> = { flapGraceMs: GRACE_MS }
  if (mode === 'redis') {
    const prefix = uniquePrefix('hidden')
    Object.assign(config, { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix })
    t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  }
  const clock = new ManualClock(T0)
  const app = await startApp(t, { clock, listen: true, config })
  return new Surfaces(t, app, clock)
}

/** What a viewer sees of a target on every surface, through real HTTP and sockets. */
class Surfaces {
  constructor(
    readonly t: TestContext,
    readonly app: StartedApp,
    readonly clock: ManualClock,
  ) {}

  token(id: string): Promise<string> {
    return this.app.tokens.issue(id as UserId)
  }

  async http(method: string, path: string, headers: Record<string, string>, body?: object) {
    const res = await fetch(`${this.app.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    assert.ok(res.status === 200 || res.status === 204, `${method} ${path}: ${res.status} ${text}`)
    return text === '' ? undefined : (JSON.parse(text) as unknown)
  }

  async signIn(id: string, placeId?: number) {
    await this.http('POST', '/v1/presence/register-app-presence', await this.bearer(id), {
      platform: 'PC',
      ...(placeId !== undefined && { placeId, location: 'Game' }),
    })
  }

  async signOut(id: string) {
    await this.http('POST', '/v1/presence/register-app-presence', await this.bearer(id), {
      platform: 'PC',
      disconnect: true,
    })
  }

  async invisible(id: string, invisible: boolean) {
    await this.http('PUT', '/v1/presence/settings', await this.bearer(id), { invisible })
  }

  async block(blocker: string, blocked: string, on = true) {
    await this.http(on ? 'PUT' : 'DELETE', `/admin/v1/users/${blocker}/blocks/${blocked}`, {
      'x-api-key': ADMIN_KEY,
    })
  }

  async bearer(id: string): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.token(id)}` }
  }

  /** The Roblox record of `target` as `viewer` (undefined: anonymous) reads it. */
  async roblox(viewer: string | undefined, target: string) {
    const headers = viewer === undefined ? {} : await this.bearer(viewer)
    const body = (await this.http('POST', '/v1/presence/users', headers, {
      userIds: [target],
    })) as { userPresences: { userPresenceType: number; lastOnline: string }[] }
    const [record] = body.userPresences
    return { type: record!.userPresenceType, lastOnline: record!.lastOnline }
  }

  /** The Xbox record of `target` (level all) as `viewer` reads it. */
  async xbox(viewer: string, target: string) {
    const body = (await this.http(
      'POST',
      '/users/batch',
      {
        authorization: `XBL3.0 x=0;${await this.token(viewer)}`,
        'x-xbl-contract-version': '3',
      },
      { users: [target], level: 'all' },
    )) as { state: string; lastSeen?: { timestamp: string } }[]
    const [record] = body
    return { state: record!.state, lastSeen: record!.lastSeen?.timestamp }
  }

  /** A WebSocket and an SSE stream of `viewer` watching `target`, past their snapshots. */
  async watch(viewer: string, target: string) {
    const ws = await NativeClient.connect(this.app.url, await this.token(viewer))
    this.t.after(() => ws.socket.terminate())
    ws.send({ type: 'subscribe', ids: [target] })
    const wsSnapshot = await ws.waitFor((f) => f.type === 'snapshot')
    const sse = await SseClient.open(this.app.url, await this.token(viewer), [target])
    this.t.after(() => sse.close())
    const sseSnapshot = await sse.waitFor((e) => e.data.type === 'snapshot')
    const [fromWs] = wsSnapshot.presences as { lastOnline: string | null }[]
    const [fromSse] = sseSnapshot.data.presences as { lastOnline: string | null }[]
    assert.deepEqual(fromSse, fromWs)
    return { ws, sse, lastOnline: fromWs!.lastOnline }
  }
}

/** Nothing more reached either stream, once a held offline would have been sent. */
async function quiet(...streams: { ws: NativeClient; sse: SseClient }[]) {
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  for (const { ws, sse } of streams) {
    assert.deepEqual(ws.pending(), [], 'nothing on the WebSocket')
    assert.deepEqual(sse.pending(), [], 'nothing on SSE')
  }
}

for (const mode of modes) {
  test(`${mode}: a block leaves each side the lastOnline it last saw, on every surface`, async (t) => {
    const s = await start(t, mode)
    const [target, viewer, watcher] = ['4001', '4002', '4003']
    // both seen online, then offline: the viewer last saw the target at T0+1s, and the target
    // the viewer at T0+2s
    await s.signIn(target)
    await s.signIn(viewer)
    s.clock.set(T0 + 1000)
    await s.signOut(target)
    s.clock.set(T0 + 2000)
    await s.signOut(viewer)
    const streams = await s.watch(viewer, target)
    const targetsStreams = await s.watch(target, viewer)
    assert.equal(streams.lastOnline, iso(T0 + 1000))
    assert.equal(targetsStreams.lastOnline, iso(T0 + 2000))

    // the target blocks the viewer, then both play on: neither learns anything of it
    s.clock.set(T0 + 5000)
    await s.block(target, viewer)
    s.clock.set(T0 + 6000)
    await s.signIn(target, 1818)
    await s.signIn(viewer, 1818)
    s.clock.set(T0 + 7000)
    await s.signOut(target)
    await s.signOut(viewer)
    await quiet(streams, targetsStreams)
    assert.deepEqual(await s.roblox(viewer, target), { type: 0, lastOnline: iso(T0 + 1000) })
    assert.deepEqual(await s.xbox(viewer, target), {
      state: 'Offline',
      lastSeen: iso(T0 + 1000),
    })
    assert.deepEqual(await s.roblox(target, viewer), { type: 0, lastOnline: iso(T0 + 2000) })
    assert.deepEqual(await s.xbox(target, viewer), { state: 'Offline', lastSeen: iso(T0 + 2000) })
    // everyone else sees the truth
    assert.deepEqual(await s.roblox(undefined, target), { type: 0, lastOnline: iso(T0 + 7000) })

    // a watcher who blocks a user it sees online is left with the instant of the block, as
    // after a sign-out then, and keeps it while the user plays on
    s.clock.set(T0 + 8000)
    await s.signIn(target, 1818)
    const watching = await s.watch(watcher, target)
    assert.equal(watching.lastOnline, null)
    s.clock.set(T0 + 9000)
    const blockedAt = performance.now()
    await s.block(watcher, target)
    for (const offline of [
      (await watching.ws.waitFor((f) => f.type === 'offline')) as Record<string, unknown>,
      (await watching.sse.waitFor((e) => e.data.type === 'offline')).data,
    ]) {
      assert.equal(offline.reason, 'explicit')
      assert.equal((offline.presence as { lastOnline: string }).lastOnline, iso(T0 + 9000))
    }
    assert.ok(performance.now() - blockedAt >= GRACE_MS, 'held for the flap grace, as a sign-out')
    s.clock.set(T0 + 10_000)
    await s.signIn(target, 1819)
    await quiet(watching)
    assert.deepEqual(await s.roblox(watcher, target), { type: 0, lastOnline: iso(T0 + 9000) })
    assert.deepEqual(await s.xbox(watcher, target), { state: 'Offline', lastSeen: iso(T0 + 9000) })
    // and the blocked user sees the watcher as it was then: never seen
    assert.deepEqual(await s.roblox(target, watcher), { type: 0, lastOnline: EPOCH })
  })

  test(`${mode}: lastOnline stays frozen after invisibility ends, until the user is next seen`, async (t) => {
    const s = await start(t, mode)
    const [target, viewer] = ['5001', '5002']
    await s.signIn(target)
    s.clock.set(T0 + 1000)
    await s.signOut(target)
    const streams = await s.watch(viewer, target)
    assert.equal(streams.lastOnline, iso(T0 + 1000))
    const seenBy = async () => ({
      roblox: await s.roblox(viewer, target),
      anonymous: await s.roblox(undefined, target),
      xbox: await s.xbox(viewer, target),
    })
    const frozen = {
      roblox: { type: 0, lastOnline: iso(T0 + 1000) },
      anonymous: { type: 0, lastOnline: iso(T0 + 1000) },
      xbox: { state: 'Offline', lastSeen: iso(T0 + 1000) },
    }

    // invisible, plays, signs out, and turns invisibility off
    s.clock.set(T0 + 2000)
    await s.invisible(target, true)
    s.clock.set(T0 + 3000)
    await s.signIn(target, 1818)
    s.clock.set(T0 + 4000)
    await s.signOut(target)
    s.clock.set(T0 + 5000)
    await s.invisible(target, false)
    await quiet(streams)
    assert.deepEqual(await seenBy(), frozen)
    // the user themself sees the truth
    assert.deepEqual(await s.roblox(target, target), { type: 0, lastOnline: iso(T0 + 4000) })

    // the same when the invisible session expires instead (the janitor's path)
    s.clock.set(T0 + 6000)
    await s.invisible(target, true)
    s.clock.set(T0 + 7000)
    await s.signIn(target, 1818)
    s.clock.set(T0 + 7000 + 61_000)
    assert.ok((await s.app.service.sweepExpired()) >= 1)
    s.clock.set(T0 + 70_000)
    await s.invisible(target, false)
    await quiet(streams)
    assert.deepEqual(await seenBy(), frozen)
    assert.deepEqual(await s.roblox(target, target), { type: 0, lastOnline: iso(T0 + 7000) })

    // the next visible activity shows, and the real lastOnline with it
    s.clock.set(T0 + 80_000)
    await s.signIn(target)
    assert.equal((await streams.ws.waitFor(() => true)).type, 'online')
    assert.equal((await streams.sse.waitFor(() => true)).data.type, 'online')
    s.clock.set(T0 + 81_000)
    await s.signOut(target)
    for (const offline of [
      (await streams.ws.waitFor(() => true)) as Record<string, unknown>,
      (await streams.sse.waitFor(() => true)).data,
    ]) {
      assert.equal(offline.type, 'offline')
      assert.equal((offline.presence as { lastOnline: string }).lastOnline, iso(T0 + 81_000))
    }
    assert.deepEqual(await seenBy(), {
      roblox: { type: 0, lastOnline: iso(T0 + 81_000) },
      anonymous: { type: 0, lastOnline: iso(T0 + 81_000) },
      xbox: { state: 'Offline', lastSeen: iso(T0 + 81_000) },
    })
  })

  test(`${mode}: lastOnline stays as seen through a block after it ends, until the user is next seen`, async (t) => {
    const s = await start(t, mode)
    const [target, viewer] = ['5101', '5102']
    await s.signIn(target)
    s.clock.set(T0 + 1000)
    await s.signOut(target)
    const seenBy = async () => ({
      roblox: await s.roblox(viewer, target),
      xbox: await s.xbox(viewer, target),
      streams: await s.watch(viewer, target).then(({ ws, sse, lastOnline }) => {
        ws.socket.terminate()
        sse.close()
        return lastOnline
      }),
    })
    const frozen = {
      roblox: { type: 0, lastOnline: iso(T0 + 1000) },
      xbox: { state: 'Offline', lastSeen: iso(T0 + 1000) },
      streams: iso(T0 + 1000),
    }
    assert.deepEqual(await seenBy(), frozen)

    const importBlock = async (isBlocked: boolean) => {
      const res = await fetch(`${s.app.url}/admin/v1/import`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', 'x-api-key': ADMIN_KEY },
        body: `${JSON.stringify({ type: 'block', blocker: target, blocked: viewer, isBlocked })}\n`,
      })
      assert.equal(res.status, 200, await res.text())
    }
    // a block is made at `at`, the target plays unseen and signs out, the block is lifted: to
    // the viewer it is a user who stayed offline, before the block is lifted and after
    const unseen = async (at: number, block: (on: boolean) => Promise<void>) => {
      s.clock.set(at)
      await block(true)
      s.clock.set(at + 100)
      await s.signIn(target, 1818)
      s.clock.set(at + 200)
      await s.signOut(target)
      assert.deepEqual(await seenBy(), frozen)
      s.clock.set(at + 300)
      await block(false)
      assert.deepEqual(await seenBy(), frozen)
    }
    // the target blocks the viewer; the viewer blocks the target; a bulk import does
    await unseen(T0 + 2000, (on) => s.block(target, viewer, on))
    await unseen(T0 + 3000, (on) => s.block(viewer, target, on))
    await unseen(T0 + 4000, importBlock)
    // everyone else sees the truth; the target itself too
    assert.deepEqual(await s.roblox(undefined, target), { type: 0, lastOnline: iso(T0 + 4200) })

    // the next activity the viewer sees shows, and the real lastOnline with it
    s.clock.set(T0 + 10_000)
    await s.signIn(target)
    assert.equal((await s.roblox(viewer, target)).type, 1)
    s.clock.set(T0 + 11_000)
    await s.signOut(target)
    assert.deepEqual(await seenBy(), {
      roblox: { type: 0, lastOnline: iso(T0 + 11_000) },
      xbox: { state: 'Offline', lastSeen: iso(T0 + 11_000) },
      streams: iso(T0 + 11_000),
    })
  })

  test(`${mode}: a block lifted while the other is online reads as their coming online then`, async (t) => {
    const s = await start(t, mode)
    // seen, then signed out at T0 + 1 s; the control stays offline until the blocks are lifted
    const [blocker, blocked, viewer, control] = ['5201', '5202', '5203', '5204']
    for (const id of [blocker, blocked, control]) await s.signIn(id)
    s.clock.set(T0 + 1000)
    for (const id of [blocker, blocked, control]) await s.signOut(id)
    // a block either way, then the other comes online unseen
    s.clock.set(T0 + 2000)
    await s.block(blocker, viewer)
    await s.block(viewer, blocked)
    s.clock.set(T0 + 3000)
    await s.signIn(blocker)
    await s.signIn(blocked)
    // lifted at T0 + 5 s with the other still online: to the viewer it comes online then, as the
    // control does (the lastOnline of a user just seen alive, not the one of before the block)
    s.clock.set(T0 + 5000)
    await s.block(blocker, viewer, false)
    await s.block(viewer, blocked, false)
    await s.signIn(control)
    const online = { type: 1, lastOnline: iso(T0 + 5000) }
    assert.deepEqual(await s.roblox(viewer, control), online)
    assert.deepEqual(await s.roblox(viewer, blocker), online, 'the blocker')
    assert.deepEqual(await s.roblox(viewer, blocked), online, 'the blocked user')
    // after its next heartbeat, as everyone sees it
    s.clock.set(T0 + 6000)
    await s.signIn(blocker)
    assert.deepEqual(await s.roblox(viewer, blocker), { type: 1, lastOnline: iso(T0 + 6000) })
  })
}
