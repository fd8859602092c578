import assert from 'node:assert/strict'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from '../helpers/start-app.js'
import { SseClient } from './sse-client.js'

/*
 * Steps of the promise audit's position tests (promise-audit.test.ts, and their fleet form in
 * test/fleet/resume-hidden.test.ts): writes through the HTTP APIs, and snapshots and resumes of
 * SSE streams with positions.
 */

export async function call(
  app: StartedApp,
  method: string,
  path: string,
  headers: object,
  body?: object,
) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  assert.ok(res.status === 200 || res.status === 204, `${method} ${path}: ${res.status} ${text}`)
}

export async function bearer(app: StartedApp, id: string) {
  return { authorization: `Bearer ${await app.tokens.issue(id as UserId)}` }
}

export async function heartbeat(app: StartedApp, id: string, body: object = {}) {
  await call(app, 'POST', '/v1/presence/register-app-presence', await bearer(app, id), {
    platform: 'PC',
    ...body,
  })
}

/** The snapshot of a fresh SSE POST stream with positions: presences and their `pos`. */
export async function positionedSnapshot(app: StartedApp, viewer: string, ids: string[]) {
  const sse = await SseClient.post(app.url, await app.tokens.issue(viewer as UserId), {
    ids,
    positions: true,
  })
  try {
    const snapshot = await sse.waitFor((e) => e.data.type === 'snapshot')
    const pos = snapshot.data.pos as string[]
    return new Map(ids.map((id, i) => [id, pos[i]!]))
  } finally {
    sse.close()
  }
}

/** A user nobody hides: watched beside a resumed user, its snapshot ends what the recovery sent. */
const MARKER = '7199'

/**
 * A fresh SSE POST stream of `viewer` continuing from `pos` of user `id` alone: `reset <reason>`,
 * or `recovered` and the type of each frame the recovery sent about the user (those between
 * `recovered` and the snapshot of MARKER, watched without a position).
 */
export async function continueFrom(app: StartedApp, viewer: string, id: string, pos: string) {
  const sse = await SseClient.post(app.url, await app.tokens.issue(viewer as UserId), {
    ids: [id, MARKER],
    positions: { [id]: pos },
  })
  try {
    const first = await sse.waitFor(() => true)
    if (first.data.type === 'reset') return `reset ${String(first.data.reason)}`
    assert.equal(first.data.type, 'recovered')
    const sent = [first.data.type]
    for (;;) {
      const next = await sse.waitFor(() => true)
      if (next.data.type === 'snapshot') return sent.join(' ')
      assert.equal(next.data.userId, id)
      sent.push(next.data.type)
    }
  } finally {
    sse.close()
  }
}
