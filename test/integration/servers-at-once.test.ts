import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { startNodePair } from '../helpers/start-node-pair.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * Two keys limited to different universes report the same new game server at once, on one node
 * or on two nodes of a fleet: a key never replaces (nor ends) a roster of a universe it may not
 * write, so at most one of the two reports is applied; the other is refused (403).
 */

const ROUNDS = 30

async function createKey(app: FastifyInstance, universes: string[]): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'server', scopes: ['presence:write'], universes }),
  })
  assert.equal(response.statusCode, 201, response.body)
  return (response.json() as { secret: string }).secret
}

/** Place `id` of universe `id` in the catalogue: a key limited to universes reports only those. */
async function catalogue(app: FastifyInstance, id: string): Promise<void> {
  const response = await app.inject({
    method: 'PUT',
    url: `/admin/v1/places/${id}`,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ universeId: id, name: `place ${id}` }),
  })
  assert.equal(response.statusCode, 200, response.body)
}

function report(
  app: FastifyInstance,
  key: string,
  gameId: string,
  universe: string,
  player: string,
) {
  return app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${gameId}`,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify({ placeId: universe, universeId: universe, players: [player] }),
  })
}

function end(app: FastifyInstance, key: string, gameId: string) {
  return app.inject({
    method: 'DELETE',
    url: `/api/v1/servers/${gameId}`,
    headers: { 'x-api-key': key },
  })
}

async function atOnce(one: FastifyInstance, two: FastifyInstance): Promise<string[]> {
  const ours = await createKey(one, ['100'])
  const theirs = await createKey(two, ['200'])
  for (const id of ['100', '200']) await catalogue(one, id)
  const wrong: string[] = []
  for (let i = 0; i < ROUNDS; i++) {
    // the same new server reported at once by two keys of different universes
    const gameId = randomUUID()
    const [a, b] = await Promise.all([
      report(one, ours, gameId, '100', '11'),
      report(two, theirs, gameId, '200', '22'),
    ])
    for (const r of [a, b]) assert.ok([200, 403].includes(r.statusCode), r.body)
    if (a.statusCode === 200 && b.statusCode === 200) {
      wrong.push(`${gameId}: both reports applied, one over the other's universe`)
    }
    // a server of universe 200 started while a key of universe 100 ends the same id
    const other = randomUUID()
    const [started, ended] = await Promise.all([
      report(two, theirs, other, '200', '22'),
      end(one, ours, other),
    ])
    assert.equal(started.statusCode, 200, started.body)
    assert.ok([200, 204, 403, 404].includes(ended.statusCode), ended.body)
    if (ended.statusCode < 300 && (ended.json() as { ended: number }).ended > 0) {
      wrong.push(`${other}: a key of universe 100 ended a server of universe 200`)
    }
  }
  return wrong
}

test('embedded: a key never replaces a game server of another universe reported at once', async (t) => {
  const app = await startApp(t)
  assert.deepEqual(await atOnce(app.app, app.app), [])
})

test('fleet: a key never replaces a game server of another universe reported at once', async (t) => {
  const { a, b } = await startNodePair(t, 'servers-at-once')
  assert.deepEqual(await atOnce(a.app, b.app), [])
})
