import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import {
  connect,
  connectWhenFree,
  connectionsAcrossNodes,
  ids,
  refused,
  sse,
  until,
} from './realtime-limits-kit.js'

/*
 * The per-user real-time limits (connections, watched users) hold across the nodes of a fleet,
 * counted in Redis: a user cannot hold N times the limit on N nodes. Faults (a node killed,
 * Redis lost) and a Redis Cluster: realtime-limits-faults.test.ts.
 */

test('fleet: a user’s connections are capped across the nodes, and a close on one node frees a place on the other', async (t) => {
  const { a, b } = await startNodePair(t, 'rt-limits', { realtimeStreamsPerUser: 2 })
  await connectionsAcrossNodes(t, a, b)
})

test('fleet: a node shut down gracefully frees its share at once, not after its lease', async (t) => {
  const { a, b } = await startNodePair(t, 'rt-drain', { realtimeStreamsPerUser: 2 })
  const token = await a.tokens.issue('9223372036854775807' as UserId)
  await connect(t, a, token)
  await connect(t, a, token)
  assert.equal((await refused(b, token)).status, 429)
  await a.app.close()
  // the default lease is 30 s: a place within the poll's 5 s was freed by the shutdown
  const { ms } = await connectWhenFree(t, b, token)
  t.diagnostic(`free on B ${ms.toFixed(0)} ms after A closed`)
})

test('fleet: connections asked for at once on both nodes get exactly the places there are', async (t) => {
  const { a, b } = await startNodePair(t, 'rt-race', { realtimeStreamsPerUser: 2 })
  const token = await a.tokens.issue('9223372036854775806' as UserId)
  const attempts = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      connect(t, i % 2 === 0 ? a : b, token).then(
        () => 'open',
        () => 'refused',
      ),
    ),
  )
  assert.deepEqual(attempts.filter((outcome) => outcome === 'open').length, 2, String(attempts))
})

test('fleet: a user’s watched users are capped across the nodes (WebSocket and SSE)', async (t) => {
  const { a, b } = await startNodePair(t, 'rt-watches', { realtimeWatchesPerUser: 150 })
  const user = '9223372036854775803' as UserId
  const token = await a.tokens.issue(user)
  const onA = await connect(t, a, token)
  onA.send({ type: 'subscribe', ids: ids(100, 100) })
  assert.equal((await onA.take()).type, 'snapshot')

  const onB = await connect(t, b, token)
  onB.send({ type: 'subscribe', ids: ids(300, 100) })
  assert.deepEqual(await onB.take(), {
    type: 'error',
    code: 'WATCH_LIMIT',
    message: 'At most 150 users watched across your real-time streams: unsubscribe some first.',
    for: 'subscribe',
  })
  // within what is left across the fleet is fine, and the connection stays usable
  onB.send({ type: 'subscribe', ids: ids(300, 50) })
  assert.equal((await onB.take()).type, 'snapshot')
  const bySse = await sse(b, token, ids(500, 10))
  assert.equal(bySse.response.status, 429)
  assert.equal(
    ((await bySse.response.json()) as { error: { code: string } }).error.code,
    'WATCH_LIMIT',
  )
  // an unsubscribe on A frees room on B
  onA.send({ type: 'unsubscribe', ids: ids(100, 40) })
  const { ms } = await until(
    async () => {
      onB.send({ type: 'subscribe', ids: ids(600, 40) })
      const frame = await onB.take()
      return frame.type === 'snapshot' ? frame : undefined
    },
    5000,
    'room freed on A',
  )
  t.diagnostic(`watches unsubscribed on A were free on B after ${ms.toFixed(0)} ms`)
  onA.send({ type: 'subscribe', ids: ids(700, 1) })
  assert.equal(((await onA.take()) as { code?: string }).code, 'WATCH_LIMIT')
})
