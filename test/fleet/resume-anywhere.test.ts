import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { NativeClient, type Frame } from '../integration/native-client.js'
import { freePort, startRedisServer, type RedisServerProcess } from '../helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { FLEET_TOKEN_SECRET, post, startFleetNode, type FleetNode } from './fleet-node.js'

/*
 * Issue 18, "resume anywhere, lose nothing", with real processes: nodes A, B and C on one Redis;
 * a subscriber on A watches 50 users while a writer on C changes them; A dies (SIGKILL) and the
 * client resumes on B with the positions it held.
 */

const ADMIN = 'fleet-admin-key'
const tokens = new Tokens(FLEET_TOKEN_SECRET)
/** Above 2^53: a JS number would round them. */
const WATCHER = '9007199254740993'
const USERS = Array.from({ length: 50 }, (_, i) => String(9007199254741000n + BigInt(i)))
/** Blocks the watcher: the watcher must see it offline throughout, and never a step of it. */
const HIDDEN = USERS[7]!
const VISIBLE = USERS.filter((id) => id !== HIDDEN)

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** A raw native client that keeps what a resume needs: the stream token, seq and positions. */
class Watcher {
  client: NativeClient | undefined
  token = ''
  seq = 0
  readonly positions = new Map<string, string>()
  /** Per user, the location of every event received, in order. */
  readonly steps = new Map<string, string[]>()
  readonly resets: Frame[] = []
  readonly recovered: Frame[] = []
  snapshot: Frame | undefined
  #read = 0

  async connect(node: FleetNode): Promise<NativeClient> {
    this.client = await NativeClient.connect(node.url, await tokens.issue(WATCHER as UserId))
    this.#read = 0
    return this.client
  }

  /** Applies every frame received so far. */
  pump(): void {
    const frames = this.client?.frames ?? []
    for (; this.#read < frames.length; this.#read++) this.#apply(frames[this.#read]!)
  }

  #apply(frame: Frame): void {
    if (typeof frame.seq === 'number') this.seq = frame.seq
    if (frame.type === 'reset') return void this.resets.push(frame)
    if (frame.type === 'recovered') {
      this.recovered.push(frame)
      this.token = frame.resume as string
      return
    }
    if (frame.type === 'snapshot') {
      this.snapshot = frame
      this.token = frame.resume as string
      const presences = frame.presences as Array<{ userId: string }>
      const pos = frame.pos as string[]
      presences.forEach((p, i) => this.positions.set(p.userId, pos[i]!))
      return
    }
    if (frame.type === 'online' || frame.type === 'update' || frame.type === 'offline') {
      const userId = frame.userId as string
      assert.equal(typeof frame.pos, 'string', `no pos in ${JSON.stringify(frame)}`)
      this.positions.set(userId, frame.pos as string)
      const presence = frame.presence as { sessions: Array<{ activity: { location?: string } }> }
      const list = this.steps.get(userId) ?? []
      list.push(presence.sessions[0]?.activity.location ?? `(${frame.type})`)
      this.steps.set(userId, list)
    }
  }

  resumeFrame(): object {
    return {
      type: 'resume',
      resume: this.token,
      since: this.seq,
      positions: Object.fromEntries(this.positions),
    }
  }
}

async function startNodes(env: Record<string, string>): Promise<FleetNode[]> {
  return Promise.all([0, 1, 2].map(() => startFleetNode(env)))
}

async function admin(node: FleetNode, path: string): Promise<void> {
  const res = await fetch(`${node.url}/admin/v1${path}`, {
    method: 'PUT',
    headers: { 'x-api-key': ADMIN },
  })
  assert.ok(res.status === 200 || res.status === 204, `${path}: ${res.status}`)
}

/** The writer: each user steps through s1..sN in order (users in parallel), retrying 503s. */
async function write(node: () => FleetNode, from: number, to: number): Promise<void> {
  const userTokens = await Promise.all(USERS.map((id) => tokens.issue(id as UserId)))
  await Promise.all(
    USERS.map(async (id, i) => {
      for (let step = from; step <= to; step++) {
        for (let attempt = 0; ; attempt++) {
          const res = await post(
            `${node().url}/v1/presence/register-app-presence`,
            { location: `s${step}`, placeId: 1818 },
            userTokens[i],
          ).catch(() => undefined)
          if (res?.status === 200) break
          if (attempt > 200) throw new Error(`step ${step} of ${id}: ${res?.status}`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    }),
  )
}

function steps(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `s${from + i}`)
}

async function subscribeOn(watcher: Watcher, node: FleetNode): Promise<void> {
  const client = await watcher.connect(node)
  client.send({ type: 'subscribe', ids: USERS, positions: true })
  await client.waitFor((f) => f.type === 'snapshot', 10_000)
  watcher.pump()
}

function cleanup(t: TestContext, nodes: FleetNode[], watcher: Watcher): void {
  t.after(async () => {
    await watcher.client?.close().catch(() => {})
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')))
  })
}

test('A killed mid-stream: the client resumes on B with its positions and gets exactly what the writer made', async (t) => {
  const prefix = uniquePrefix('resume')
  t.after(async () =>
    t.diagnostic(`deleted ${await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)} keys`),
  )
  const nodes = await startNodes({
    PRESENCED_REDIS_URL: LOCAL_REDIS_URL,
    PRESENCED_REDIS_PREFIX: prefix,
    PRESENCED_ADMIN_KEY: ADMIN,
    PRESENCED_FLAP_GRACE: '0',
    PRESENCED_REALTIME_HISTORY: '64',
  })
  const [a, b, c] = nodes as [FleetNode, FleetNode, FleetNode]
  const watcher = new Watcher()
  cleanup(t, nodes, watcher)
  await admin(c, `/users/${HIDDEN}/blocks/${WATCHER}`)
  await subscribeOn(watcher, a)

  const N = 30
  const writing = write(() => c, 1, N)
  // A dies while the writer is mid-way
  await until(
    () => {
      watcher.pump()
      return [...watcher.steps.values()].reduce((n, list) => n + list.length, 0) >= 200
    },
    30_000,
    'events on A',
  )
  await a.kill('SIGKILL')
  await watcher.client!.closed
  watcher.pump()
  const before = [...watcher.steps.values()].reduce((n, list) => n + list.length, 0)

  const client = await watcher.connect(b)
  client.send(watcher.resumeFrame())
  await writing
  await until(
    () => {
      watcher.pump()
      return VISIBLE.every((id) => watcher.steps.get(id)?.at(-1) === `s${N}`)
    },
    30_000,
    'the last step of every visible user on B',
  )
  t.diagnostic(`${before} events on A before SIGKILL, ${watcher.recovered.length} recovered frame`)
  assert.deepEqual(watcher.resets, [], 'the history reached back: no reset')
  assert.equal(watcher.recovered.length, 1)
  for (const id of VISIBLE) assert.deepEqual(watcher.steps.get(id), steps(1, N), `user ${id}`)
  // privacy: the user who blocked the watcher never showed, in the snapshot or after
  assert.equal(watcher.steps.get(HIDDEN), undefined)
  const hidden = (watcher.snapshot!.presences as Array<Record<string, unknown>>)[7]!
  assert.deepEqual(hidden.sessions, [])
  assert.equal(hidden.state, 'offline')
  // nothing more is on its way
  await new Promise((resolve) => setTimeout(resolve, 300))
  watcher.pump()
  for (const id of VISIBLE) assert.equal(watcher.steps.get(id)!.length, N)
})

test('Redis restarted (no persistence) mid-stream: a reset only because the history was lost, then a snapshot that matches the store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-resume-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  let redis: RedisServerProcess = await startRedisServer(port, dir, ['--appendonly', 'no'])
  t.after(() => redis.kill())
  const nodes = await startNodes({
    PRESENCED_REDIS_URL: `redis://127.0.0.1:${port}`,
    PRESENCED_ADMIN_KEY: ADMIN,
    PRESENCED_FLAP_GRACE: '0',
    PRESENCED_REALTIME_HISTORY: '64',
  })
  const [a, b, c] = nodes as [FleetNode, FleetNode, FleetNode]
  const watcher = new Watcher()
  cleanup(t, nodes, watcher)
  await admin(c, `/users/${HIDDEN}/blocks/${WATCHER}`)
  await subscribeOn(watcher, a)

  await write(() => c, 1, 10)
  await until(
    () => {
      watcher.pump()
      return VISIBLE.every((id) => watcher.steps.get(id)?.at(-1) === 's10')
    },
    30_000,
    'the first steps on A',
  )
  for (const id of VISIBLE) assert.deepEqual(watcher.steps.get(id), steps(1, 10))

  // A dies, then Redis restarts empty: every history (and all other state) is gone, so the
  // positions the client holds can no longer be reached
  await a.kill('SIGKILL')
  await watcher.client!.closed
  watcher.pump()
  await redis.kill()
  redis = await startRedisServer(port, dir, ['--appendonly', 'no'])
  // an operator without persistence re-seeds relationships; the writer goes on
  await until(
    async () => {
      const res = await fetch(`${c.url}/admin/v1/users/${HIDDEN}/blocks/${WATCHER}`, {
        method: 'PUT',
        headers: { 'x-api-key': ADMIN },
      }).catch(() => undefined)
      return res?.status === 200 || res?.status === 204
    },
    20_000,
    'Redis back',
  )
  await write(() => c, 11, 20)

  const client = await watcher.connect(b)
  client.send(watcher.resumeFrame())
  const reset = await client.waitFor((f) => f.type === 'reset' || f.type === 'recovered', 10_000)
  assert.equal(reset.type, 'reset', 'the history was lost: the positions cannot reach back')
  client.send({ type: 'subscribe', ids: USERS, positions: true })
  const snapshot = await client.waitFor((f) => f.type === 'snapshot', 10_000)
  const presences = snapshot.presences as Array<{
    userId: string
    state: string
    sessions: Array<{ activity: { location?: string } }>
  }>
  // the snapshot is the store's state: every visible user at its last step, the hidden offline
  const stored = await post(`${b.url}/v1/presence/users`, { userIds: USERS })
  const records = ((await stored.json()) as { userPresences: Array<Record<string, unknown>> })
    .userPresences
  presences.forEach((p, i) => {
    assert.equal(p.userId, USERS[i])
    if (p.userId === HIDDEN) {
      assert.equal(p.state, 'offline')
      assert.deepEqual(p.sessions, [])
      return
    }
    assert.equal(p.sessions[0]?.activity.location, 's20')
    assert.equal(records[i]!.userPresenceType, 2)
    assert.equal(records[i]!.lastLocation, 's20')
  })
})
