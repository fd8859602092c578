import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const admin = (app: FastifyInstance, method: 'GET' | 'PUT' | 'POST', url: string, body?: string) =>
  app.inject({
    method,
    url,
    headers: {
      'x-api-key': ADMIN_KEY,
      'content-type': url.endsWith('/import') ? 'application/x-ndjson' : 'application/json',
    },
    ...(body === undefined ? {} : { payload: body }),
  })

test('import: names are limited in characters, as PUT users and places count them (an emoji is one)', async (t) => {
  const { app } = await startApp(t)
  const user = '😀'.repeat(60)
  const place = '🏰'.repeat(150)
  const put = await admin(app, 'PUT', '/admin/v1/users/500', JSON.stringify({ name: user }))
  assert.equal(put.statusCode, 200, put.body)
  const putPlace = await admin(
    app,
    'PUT',
    '/admin/v1/places/600',
    JSON.stringify({ universeId: 1, name: place }),
  )
  assert.equal(putPlace.statusCode, 200, putPlace.body)

  const lines = [
    JSON.stringify({ type: 'user', userId: '501', name: user, displayName: user }),
    JSON.stringify({ type: 'place', placeId: 601, universeId: 1, name: place }),
  ]
  const imported = await admin(app, 'POST', '/admin/v1/import', lines.join('\n'))
  assert.equal(imported.statusCode, 200, imported.body)
  assert.equal((await admin(app, 'GET', '/admin/v1/users/501')).json().name, user)
  assert.equal((await admin(app, 'GET', '/admin/v1/places/601')).json().name, place)

  // one character over, refused by both
  const long = JSON.stringify({ type: 'user', userId: '502', name: '😀'.repeat(101) })
  const refused = await admin(app, 'POST', '/admin/v1/import', long)
  assert.equal(refused.statusCode, 400, refused.body)
  assert.match(refused.json().error.message, /"name" must be a string of 1 to 100 characters/)
  const putLong = await admin(
    app,
    'PUT',
    '/admin/v1/users/502',
    JSON.stringify({ name: '😀'.repeat(101) }),
  )
  assert.equal(putLong.statusCode, 400, putLong.body)
})
