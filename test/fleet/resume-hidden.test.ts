import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ADMIN_KEY } from '../helpers/start-app.js'
import { clusterForThisFile } from '../helpers/redis-cluster.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import {
  bearer,
  call,
  continueFrom,
  heartbeat,
  positionedSnapshot,
} from '../integration/positions-steps.js'

/*
 * The promise audit's "a hidden user resumes as an offline one" (promise-audit.test.ts) in fleet
 * mode: positions taken on node A, the users busy through A and B, each resumed alone on B. The
 * history is trimmed in Redis by the hidden users' unseen changes (PRESENCED_REALTIME_HISTORY 4);
 * where their privacy last changed is kept beside it by the same scripts.
 */

const clusterTarget = clusterForThisFile()

for (const mode of ['redis', 'redis cluster'] as const) {
  test(`${mode}: a resume on another node from a hidden user’s pos ends as one from an offline user’s; one whose visibility changed gets its current state`, async (t) => {
    const cluster = mode === 'redis cluster' ? await clusterTarget() : undefined
    const { a, b } = await startNodePair(t, 'resume-hidden', {
      realtimeHistory: 4,
      ...(cluster && 'cluster' in cluster && { redisCluster: [...cluster.cluster] }),
    })
    const viewer = '7601'
    const offline = '7602'
    const invisible = '7603'
    const blocking = '7604' // blocks the viewer
    const hid = '7605' // online at the pos, invisible and busy after it
    const revealed = '7606' // invisible at the pos, visible and online after it
    for (const id of [offline, invisible, blocking, revealed]) {
      await heartbeat(a, id)
      await heartbeat(b, id, { disconnect: true })
    }
    await call(a, 'PUT', '/v1/presence/settings', await bearer(a, invisible), { invisible: true })
    await call(b, 'PUT', '/v1/presence/settings', await bearer(b, revealed), { invisible: true })
    await call(b, 'PUT', `/admin/v1/users/${blocking}/blocks/${viewer}`, { 'x-api-key': ADMIN_KEY })
    await heartbeat(a, hid, { location: 'Game', placeId: 1818 })
    const users = [offline, invisible, blocking, hid, revealed]
    const held = await positionedSnapshot(a, viewer, users)

    // more unseen changes than the history keeps, through both nodes
    for (const id of [invisible, blocking]) {
      for (let i = 0; i < 6; i++) {
        await heartbeat(i % 2 === 0 ? a : b, id, { location: 'Game', placeId: 1818 + i })
      }
      await heartbeat(b, id, { disconnect: true })
    }
    await call(a, 'PUT', '/v1/presence/settings', await bearer(a, hid), { invisible: true })
    for (let i = 0; i < 6; i++) await heartbeat(b, hid, { location: 'Game', placeId: 1819 + i })
    await call(a, 'PUT', '/v1/presence/settings', await bearer(a, revealed), { invisible: false })
    await heartbeat(a, revealed, { location: 'Game', placeId: 1818 })

    const alone = (id: string) => continueFrom(b, viewer, id, held.get(id)!)
    assert.equal(await alone(offline), 'recovered')
    assert.equal(await alone(invisible), 'recovered')
    assert.equal(await alone(blocking), 'recovered')
    // who may see them changed since the pos: never nothing; the current state, however far
    // the history was trimmed by what they did unseen
    assert.equal(await alone(hid), 'recovered offline')
    assert.equal(await alone(revealed), 'recovered online')
  })
}

/*
 * The promise audit's "across a mark that does (not) concern the subscriber" (promise-audit.test.ts)
 * in fleet mode: the marks' concerns are kept in Redis beside the trimmed changes (c:<id>).
 * `visibility` is the users' before the pos; `marks` are made after it, through both nodes.
 */
const markCases: Array<{
  name: string
  visibility: string
  marks: (id: string) => Array<[method: string, path: string, body?: object]>
  expected: string
}> = [
  {
    name: 'across marks that do not concern the subscriber',
    visibility: 'friends',
    // a friendship and a block with someone else, a settings change a non-friend would not see
    marks: (id: string) => [
      ['PUT', `/admin/v1/users/${id}/friends/7618`],
      ['PUT', `/admin/v1/users/${id}/blocks/7619`],
      ['PUT', `/admin/v1/users/${id}/settings`, { visibility: 'nobody' }],
    ],
    expected: 'recovered',
  },
  {
    name: 'across a mark that concerns the subscriber (a user hidden throughout)',
    visibility: 'everyone',
    // what a non-friend sees of a visible user changes
    marks: (id: string) => [['PUT', `/admin/v1/users/${id}/settings`, { visibility: 'friends' }]],
    expected: 'recovered offline',
  },
]
for (const [n, { name, visibility, marks, expected }] of markCases.entries()) {
  for (const mode of ['redis', 'redis cluster'] as const) {
    test(`${mode}: ${name}, a resume on another node from a hidden user’s pos ends as one from an offline user’s with the same marks`, async (t) => {
      const cluster = mode === 'redis cluster' ? await clusterTarget() : undefined
      const { a, b } = await startNodePair(t, `resume-hidden-marks-${n}`, {
        realtimeHistory: 4,
        ...(cluster && 'cluster' in cluster && { redisCluster: [...cluster.cluster] }),
      })
      const admin = { 'x-api-key': ADMIN_KEY }
      const viewer = `76${n + 1}1`
      const users = [2, 3, 4].map((k) => `76${n + 1}${k}`) // offline, invisible, blocking it
      const [, invisible, blocking] = users as [string, string, string]
      for (const id of users) {
        await call(a, 'PUT', `/admin/v1/users/${id}/settings`, admin, { visibility })
        await heartbeat(a, id)
        await heartbeat(b, id, { disconnect: true })
      }
      await call(a, 'PUT', '/v1/presence/settings', await bearer(a, invisible), { invisible: true })
      await call(b, 'PUT', `/admin/v1/users/${blocking}/blocks/${viewer}`, admin)
      const held = await positionedSnapshot(a, viewer, users)

      for (const id of users) {
        for (const [k, [method, path, body]] of marks(id).entries()) {
          await call(k % 2 === 0 ? b : a, method, path, admin, body)
        }
      }
      // more unseen changes than the history keeps, through both nodes
      for (const id of [invisible, blocking]) {
        for (let i = 0; i < 6; i++) {
          await heartbeat(i % 2 === 0 ? a : b, id, { location: 'Game', placeId: 1818 + i })
        }
        await heartbeat(b, id, { disconnect: true })
      }
      const answers = []
      for (const id of users) answers.push(await continueFrom(b, viewer, id, held.get(id)!))
      assert.deepEqual(answers, [expected, expected, expected])
    })
  }
}
