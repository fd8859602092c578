import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const id = (n: number) => String(n) as UserId

test('import: a null flag or visibility is a bad line, as on the admin routes; null is no yes', async (t) => {
  const { app, stores } = await startApp(t)
  const nulls = [
    '{"type":"friends","a":"700","b":"701","friends":null}',
    '{"type":"block","blocker":"700","blocked":"702","isBlocked":null}',
    '{"type":"settings","userId":"703","invisible":null}',
    '{"type":"settings","userId":"703","visibility":null,"invisible":true}',
  ]
  for (const line of nulls) {
    const res = await app.inject({
      method: 'POST',
      url: '/admin/v1/import',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
      payload: `{"type":"user","userId":"9","name":"nine"}\n${line}\n`,
    })
    assert.equal(res.statusCode, 400, `${line}: ${res.body}`)
    assert.equal(res.json().error.code, 'IMPORT_LINE_INVALID')
    assert.equal(res.json().error.line, 2, line)
    assert.match(res.json().error.message, /must be (true or false|one of .*), got null/)
  }
  assert.deepEqual(await stores.profiles.listFriends(id(700)), [])
  const [settings] = await stores.profiles.getSettings([id(703)])
  assert.equal(settings?.invisible, false)
  const put = await app.inject({
    method: 'PUT',
    url: '/admin/v1/users/703/settings',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: { invisible: null },
  })
  assert.equal(put.statusCode, 400, put.body)
})
