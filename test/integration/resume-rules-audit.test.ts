import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from '../helpers/start-app.js'
import { admin, beat, startAudited } from './audit-kit.js'
import { NativeClient, type Frame } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * Audit of "a replay never shows earlier changes under new rules" on the real-time streams'
 * resumes across a change of rules (shows-more-audit.test.ts does the live streams and reads).
 * B watches A and TWIN with positions; B's streams drop, their positions saved before A and TWIN
 * are hidden from B (a block either way, `friends` visibility with B a stranger, `nobody`,
 * invisible) or while they are; A is busy while hidden (a game at place 1818, another place, a
 * sign-out), TWIN really offline meanwhile (or, where B sees whether but not where, busy alike in
 * other places); both are shown more to B (the block lifted, made friends, showing places to
 * everyone, visible again), and then stay offline or come online. B resumes every way a client
 * can: a WebSocket `resume` with its token and positions, one with positions alone, an SSE `POST`
 * with its token and positions, one with positions alone, and a `GET` with `Last-Event-ID`, each
 * of A and of TWIN on a stream of its own (a resume is refused or not as a whole). A's must show
 * exactly what TWIN's shows (ids replaced; `seq`, `resume` and `pos` aside), nothing of place
 * 1818, with the history keeping all their changes or trimmed by what A did hidden (4 kept: a
 * `too_old` there told A's busy hidden time, fanout.ts `markedSince`). Embedded (the streams
 * kept by the node: a token resumes them) and in fleet mode on Redis (positions taken on one
 * node, resumed on the other).
 */

const B = '9501'
const A = '9502'
const TWIN = '9503'
const SENTINEL = '9509'
const PLACE = '1818'
const NEXT_PLACE = '1819'
const TWIN_PLACE = '2929'
const TWIN_NEXT_PLACE = '2930'
const SOMEONE = '9500'

const CONFIG: Partial<Config> = {
  sessionTtlSeconds: 600,
  sweepIntervalMs: 3_600_000,
  flapGraceMs: 0,
}

type Kind = 'A blocks B' | 'B blocks A' | 'friends' | 'nobody' | 'invisible'
const KINDS: readonly Kind[] = ['A blocks B', 'B blocks A', 'friends', 'nobody', 'invisible']
/** Kinds under which B sees whether A is online, not where: TWIN is busy as A is, elsewhere. */
const whetherOnly = (kind: Kind) => kind === 'friends' || kind === 'nobody'

async function hide(app: StartedApp, kind: Kind, id: string) {
  if (kind === 'A blocks B') await admin(app, 'PUT', `/admin/v1/users/${id}/blocks/${B}`)
  else if (kind === 'B blocks A') await admin(app, 'PUT', `/admin/v1/users/${B}/blocks/${id}`)
  else if (kind === 'invisible') {
    await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { invisible: true })
  } else await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { visibility: kind })
}

async function showMore(app: StartedApp, kind: Kind, id: string) {
  if (kind === 'A blocks B') await admin(app, 'DELETE', `/admin/v1/users/${id}/blocks/${B}`)
  else if (kind === 'B blocks A') await admin(app, 'DELETE', `/admin/v1/users/${B}/blocks/${id}`)
  else if (kind === 'friends') await admin(app, 'PUT', `/admin/v1/users/${id}/friends/${B}`)
  else if (kind === 'nobody') {
    await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { visibility: 'everyone' })
  } else await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { invisible: false })
}

/** A stream of B's as its client holds it once its connection dropped. */
interface Held {
  token: string
  seq: number
  positions: Record<string, string>
}

/** The snapshot's `resume`, `seq` and `pos` of each watched user. */
function heldFrom(snapshot: Record<string, unknown>): Held {
  const pos = snapshot.pos as string[]
  const presences = snapshot.presences as { userId: string }[]
  return {
    token: snapshot.resume as string,
    seq: snapshot.seq as number,
    positions: Object.fromEntries(presences.map((p, i) => [p.userId, pos[i]!])),
  }
}

type Route = 'ws token' | 'ws positions' | 'sse token' | 'sse positions' | 'sse last-event-id'
const ROUTES: readonly Route[] = [
  'ws token',
  'ws positions',
  'sse token',
  'sse positions',
  'sse last-event-id',
]

/** Opens a stream of B's with positions for `route`, and drops its connection after the snapshot. */
async function openAndDrop(
  t: TestContext,
  app: StartedApp,
  route: Route,
  ids: readonly string[],
): Promise<Held> {
  const token = await app.tokens.issue(B as UserId)
  if (route.startsWith('ws')) {
    const ws = await NativeClient.connect(app.url, token)
    t.after(() => ws.socket.terminate())
    ws.send({ type: 'subscribe', ids, positions: true })
    const snapshot = await ws.waitFor((f) => f.type === 'snapshot')
    await ws.close()
    return heldFrom(snapshot)
  }
  const sse = await SseClient.post(app.url, token, { ids, positions: true })
  const snapshot = await sse.waitFor((e) => e.data.type === 'snapshot')
  sse.close()
  await sse.ended()
  return heldFrom(snapshot.data)
}

/**
 * Resumes `held` on `app` by `route`, then, once `moved` moved the sentinel, every frame the
 * resumed stream sent until the sentinel's (a WebSocket reset is followed by a fresh subscribe,
 * as the SDK does; an SSE reset by the server's own snapshot).
 */
async function resume(t: TestContext, app: StartedApp, route: Route, held: Held) {
  const ids = Object.keys(held.positions)
  const token = await app.tokens.issue(B as UserId)
  // the sentinel online: in a frame of its own, or in a snapshot taken after it moved
  const sentinel = (f: Frame) =>
    f.type === 'snapshot'
      ? (f.presences as { userId: string; state: string }[]).some(
          (p) => p.userId === SENTINEL && p.state === 'online',
        )
      : f.userId === SENTINEL
  if (route.startsWith('ws')) {
    const ws = await NativeClient.connect(app.url, token)
    t.after(() => ws.socket.terminate())
    ws.send({
      type: 'resume',
      ...(route === 'ws token' && { resume: held.token, since: held.seq }),
      positions: held.positions,
    })
    return async () => {
      const next = await ws.waitFor((f) => sentinel(f) || f.type === 'reset')
      if (next.type === 'reset') {
        ws.send({ type: 'subscribe', ids, positions: true })
        await ws.waitFor(sentinel)
      }
      return flatten(ws.frames)
    }
  }
  const sse =
    route === 'sse last-event-id'
      ? await SseClient.open(app.url, token, ids, '&positions=1', {
          'last-event-id': `${held.token}.${held.seq}`,
        })
      : await SseClient.post(app.url, token, {
          ids,
          ...(route === 'sse token' && { resume: held.token, since: held.seq }),
          positions: held.positions,
        })
  t.after(() => sse.close())
  return async () => {
    await sse.waitFor((e) => sentinel(e.data))
    return flatten(sse.events.map((e) => e.data))
  }
}

/**
 * A resumed stream's frames as text but the sentinel's (when it moved is the test's), `id`
 * replaced by SOMEONE, the stream's own numbering and tokens (`seq`, `resume`, `pos`: new ones
 * each time) left out.
 */
function transcript(frames: readonly Record<string, unknown>[], id: string): string[] {
  return frames
    .filter((f) => f.userId !== SENTINEL)
    .map((f) =>
      JSON.stringify(f, (key, value: unknown) =>
        key === 'seq' || key === 'resume' || key === 'pos' ? undefined : value,
      )
        .split(id)
        .join(SOMEONE),
    )
}

/** A stream's frames, a snapshot's presences as frames of their own (`type` `snapshot`). */
function flatten(frames: readonly Frame[]): Record<string, unknown>[] {
  return frames.flatMap((f) =>
    f.type === 'snapshot'
      ? (f.presences as Record<string, unknown>[]).map((p) => ({ type: 'snapshot', ...p }))
      : [f],
  )
}

type Saved = 'before they hide' | 'while hidden'
type AtPos = 'offline' | 'online'
type End = 'offline' | 'online'

async function scenario(
  t: TestContext,
  fleet: boolean,
  kind: Kind,
  saved: Saved,
  atPos: AtPos,
  end: End,
  history: number,
) {
  const config = { ...CONFIG, realtimeHistory: history }
  const { apps, clock } = await startAudited(t, fleet, 'resume-rules', config, 2)
  const [one, other] = apps as [StartedApp, StartedApp]
  await admin(one, 'PUT', `/admin/v1/places/${PLACE}`, { universeId: 99, name: 'Crossroads' })
  await admin(one, 'PUT', `/admin/v1/places/${TWIN_PLACE}`, { universeId: 77, name: 'Harbour' })
  const at = (seconds: number) => clock.set(Date.UTC(2026, 11, 1, 9) + seconds * 1000)
  // both seen once (a lastOnline, a history), then offline or online at the position
  for (const id of [A, TWIN, SENTINEL]) await beat(one, id, 'iOS')
  at(1)
  if (atPos === 'offline')
    for (const id of [A, TWIN]) await one.service.endSession(id as UserId, 'app:iOS')
  await one.service.endSession(SENTINEL as UserId, 'app:iOS')

  at(2)
  // a stream per route and user (a resume is refused or not as a whole: each user alone)
  const hold = async () => {
    const held = new Map<string, Held>()
    for (const route of ROUTES) {
      for (const id of [A, TWIN]) {
        held.set(`${route} ${id}`, await openAndDrop(t, one, route, [id, SENTINEL]))
      }
    }
    return held
  }
  let held = saved === 'before they hide' ? await hold() : undefined
  at(3)
  for (const id of [A, TWIN]) await hide(other, kind, id)
  at(4)
  held ??= await hold()

  // A busy while hidden; TWIN really offline meanwhile (or busy alike elsewhere)
  const twinBusy = whetherOnly(kind)
  at(5)
  if (atPos === 'online' && !twinBusy) await other.service.endSession(TWIN as UserId, 'app:iOS')
  await beat(one, A, 'PC', PLACE)
  if (twinBusy) await beat(one, TWIN, 'PC', TWIN_PLACE)
  at(6)
  await beat(other, A, 'PC', NEXT_PLACE)
  if (twinBusy) await beat(other, TWIN, 'PC', TWIN_NEXT_PLACE)
  at(7)
  await one.service.endSession(A as UserId, 'app:PC')
  if (twinBusy) await one.service.endSession(TWIN as UserId, 'app:PC')
  await beat(other, A, 'iOS', PLACE)
  if (twinBusy) await beat(other, TWIN, 'iOS', TWIN_PLACE)
  at(8)
  await other.service.endSession(A as UserId, 'app:iOS')
  if (twinBusy) await other.service.endSession(TWIN as UserId, 'app:iOS')

  at(9)
  for (const id of [A, TWIN]) await showMore(one, kind, id)
  at(10)
  if (end === 'online') for (const id of [A, TWIN]) await beat(other, id, 'iOS')

  at(11)
  const resumed = new Map<string, () => Promise<Record<string, unknown>[]>>()
  for (const [name, stream] of held)
    resumed.set(
      name,
      await resume(t, other, name.split(' ').slice(0, 2).join(' ') as Route, stream),
    )
  // the sentinel, after each resume was asked: whatever a resume tells, it tells first
  await beat(one, SENTINEL, 'Web')
  const out = new Map<string, Record<string, unknown>[]>()
  for (const [name, frames] of resumed) out.set(name, await frames())
  return out
}

/** Changes kept per user: all of them here, or fewer than A makes while hidden (trimmed). */
const HISTORIES = { whole: 32, trimmed: 4 }

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  for (const [kept, history] of Object.entries(HISTORIES)) {
    for (const kind of KINDS) {
      for (const saved of ['before they hide', 'while hidden'] as const) {
        for (const atPos of ['offline', 'online'] as const) {
          for (const end of ['offline', 'online'] as const) {
            test(`${mode}, history ${kept}: ${kind}, positions saved ${saved} (${atPos} then), shown more, ${end} now: every resume shows of A what it shows of TWIN, nothing of the hidden time`, async (t) => {
              const out = await scenario(t, fleet, kind, saved, atPos, end, history)
              for (const route of ROUTES) {
                const ofA = transcript(out.get(`${route} ${A}`)!, A)
                const ofTwin = transcript(out.get(`${route} ${TWIN}`)!, TWIN)
                const text = JSON.stringify(ofA)
                for (const where of [PLACE, NEXT_PLACE, 'Crossroads']) {
                  assert.ok(!text.includes(where), `${route}: ${text}`)
                }
                assert.deepEqual(ofA, ofTwin, route)
                // across a change of rules that concerns B, positions always recover
                if (route.endsWith('positions')) assert.equal(ofA[0], '{"type":"recovered"}', route)
              }
            })
          }
        }
      }
    }
  }
}
