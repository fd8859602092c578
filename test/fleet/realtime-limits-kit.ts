import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from '../helpers/start-app.js'
import { NativeClient, refusedUpgrade } from '../integration/native-client.js'

/** What the fleet tests of the per-user real-time limits share (realtime-limits*.test.ts). */

export async function connect(t: TestContext, node: StartedApp | { url: string }, token: string) {
  const client = await NativeClient.connect(node.url, token)
  t.after(() => client.socket.terminate())
  return client
}

export const refused = (node: { url: string }, token: string) =>
  refusedUpgrade(`${node.url}/api/v1/realtime`, { authorization: `Bearer ${token}` })

export const STREAM_LIMIT_2 = {
  error: {
    code: 'STREAM_LIMIT',
    message: 'At most 2 real-time connections per user: close one, or reuse one for more ids.',
  },
}

/** `count` user ids from `first` on, as strings. */
export function ids(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(first + i))
}

export async function sse(node: { url: string }, token: string, watched: string[]) {
  const controller = new AbortController()
  const response = await fetch(
    `${node.url}/api/v1/realtime/sse?ids=${watched.join(',')}&access_token=${token}`,
    { signal: controller.signal },
  )
  return { response, close: () => controller.abort() }
}

/** Polls `attempt` until it returns a value, with a deadline; the elapsed ms with it. */
export async function until<T>(
  attempt: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  for (;;) {
    const value = await attempt()
    if (value !== undefined) return { value, ms: performance.now() - started }
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A WebSocket once the user has a free place, refused (429) until then. */
export async function connectWhenFree(t: TestContext, node: { url: string }, token: string) {
  return until(
    async () => {
      try {
        return await connect(t, node, token)
      } catch {
        return undefined
      }
    },
    5000,
    'a free connection place',
  )
}

export async function connectionsAcrossNodes(t: TestContext, a: StartedApp, b: StartedApp) {
  const user = '9223372036854775801' as UserId
  const token = await a.tokens.issue(user)
  const onA = await connect(t, a, token)
  await connect(t, b, token)
  // two held, one on each node: a third is refused on both, before any upgrade
  for (const node of [a, b]) {
    const refusal = await refused(node, token)
    assert.equal(refusal.status, 429)
    assert.deepEqual(JSON.parse(refusal.body), STREAM_LIMIT_2)
  }
  const bySse = await sse(b, token, ['1'])
  assert.equal(bySse.response.status, 429)
  assert.equal(bySse.response.headers.get('retry-after'), '1')
  assert.deepEqual(await bySse.response.json(), STREAM_LIMIT_2)
  // another user is not affected
  await connect(t, b, await b.tokens.issue('9223372036854775802' as UserId))
  // closing the connection on A frees a place on B
  await onA.close()
  const { value: again, ms } = await connectWhenFree(t, b, token)
  t.diagnostic(`a place closed on A was free on B after ${ms.toFixed(0)} ms`)
  again.send({ type: 'subscribe', ids: ['1'] })
  assert.equal((await again.take()).type, 'snapshot')
  assert.equal((await refused(a, token)).status, 429)
}
