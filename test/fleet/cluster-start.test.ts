import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { startPartlyAssignedCluster } from '../helpers/redis-cluster.js'
import { FLEET_TOKEN_SECRET, post, startFleetNode } from './fleet-node.js'

test('a node started while the cluster lacks masters for some slots: not ready, says why, then serves', async (t) => {
  const cluster = await startPartlyAssignedCluster()
  t.after(() => cluster.stop())
  const node = await startFleetNode({ PRESENCED_REDIS_CLUSTER: cluster.nodes.join(',') })
  t.after(() => node.kill())

  // the cluster answers (cluster_state:ok, full coverage not required), but slots 10923-16383
  // have no master: the node waited for them at start, then listens not ready, saying why
  const warning = node
    .output()
    .split('\n')
    .find((line) => line.includes('not every slot has a master'))
  assert.ok(warning, `a log line says why the node is not ready:\n${node.output()}`)
  const logged = JSON.parse(warning) as { level: number; coveredSlots: number; slots: number }
  assert.equal(logged.level, 40)
  assert.equal(logged.coveredSlots, 16384 - 5461)
  assert.equal(logged.slots, 16384)
  const readyz = await fetch(`${node.url}/readyz`)
  assert.equal(readyz.status, 503)
  assert.equal(((await readyz.json()) as { status: string }).status, 'unavailable')

  await cluster.assignTheRest()
  const deadline = Date.now() + 15_000
  for (;;) {
    const response = await fetch(`${node.url}/readyz`)
    await response.arrayBuffer()
    if (response.status === 200) break
    assert.ok(Date.now() < deadline, '/readyz 200 once every slot has a master')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // users of every bucket, on every master: each write succeeds at once
  const tokens = new Tokens(FLEET_TOKEN_SECRET)
  const users = Array.from({ length: 40 }, (_, i) => String(6_100_000 + i) as UserId)
  const statuses = await Promise.all(
    users.map(async (user) => {
      const response = await post(
        `${node.url}/v1/presence/register-app-presence`,
        { location: 'Game', placeId: 1818, disconnect: false },
        await tokens.issue(user),
      )
      await response.arrayBuffer()
      return response.status
    }),
  )
  assert.deepEqual(
    statuses,
    users.map(() => 200),
  )
})
