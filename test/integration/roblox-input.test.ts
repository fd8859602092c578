import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { REGISTER, USERS, assertRobloxError, bearer, lookup, post } from './roblox-helpers.js'

const JSON_TYPE = { 'content-type': 'application/json' }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** [raw JSON body, message pattern]: every one a 400 with code 1, naming the bad id if any. */
const badUserBodies: Array<[string, RegExp]> = [
  ['null', /userIds/],
  ['[]', /userIds/],
  ['[1,2]', /userIds/],
  ['"userIds"', /userIds/],
  ['5', /userIds/],
  ['true', /userIds/],
  ['{}', /userIds/],
  ['{"userIds":null}', /userIds/],
  ['{"userIds":[]}', /non-empty/],
  ['{"userIds":{}}', /userIds/],
  ['{"userIds":5}', /userIds/],
  ['{"userIds":"5"}', /userIds/],
  ['{"userIds":[0]}', /\b0 is not/],
  ['{"userIds":[-1]}', /-1 is not/],
  ['{"userIds":[1.5]}', /1\.5 is not/],
  ['{"userIds":[1e300]}', /"1e300" is not/],
  ['{"userIds":[1e3]}', /"1e3" is not/],
  ['{"userIds":[1.0]}', /"1.0" is not/],
  ['{"userIds":[true]}', /true is not/],
  ['{"userIds":[null]}', /null is not/],
  ['{"userIds":[{}]}', /an object is not/],
  ['{"userIds":[[1]]}', /an array is not/],
  ['{"userIds":["abc"]}', /"abc" is not/],
  ['{"userIds":["01"]}', /"01" is not/],
  ['{"userIds":[""]}', /"" is not/],
  ['{"userIds":[1, 9223372036854775808]}', /"9223372036854775808" is not/],
  ['{"userIds":["9223372036854775808"]}', /"9223372036854775808" is not/],
  ['{"userIds":[-9223372036854775809]}', /"-9223372036854775809" is not/],
  ['{"userIds":[123456789012345678901234567890]}', /"123456789012345678901234567890" is not/],
]

test('POST /v1/presence/users: every bad JSON body is a 400 code 1 naming what is wrong', async (t) => {
  const { app } = await startApp(t)
  for (const [body, message] of badUserBodies) {
    const response = await post(app, USERS, body, JSON_TYPE)
    assertRobloxError(response, 400, 1, message)
    const text = await post(app, USERS, body, { 'content-type': 'text/json' })
    assertRobloxError(text, 400, 1, message)
  }
  // no body at all
  assertRobloxError(await post(app, USERS, '', JSON_TYPE), 400, 1)
  assertRobloxError(await app.inject({ method: 'POST', url: USERS }), 400, 1)
})

test('POST /v1/presence/users: bad form bodies are 400 too', async (t) => {
  const { app } = await startApp(t)
  for (const body of [
    '',
    'userIds=',
    'userIds=abc',
    'userIds=1&userIds=-2',
    'other=1',
    'userIds[]=1.5',
  ]) {
    assertRobloxError(await post(app, USERS, body, FORM), 400, 1)
  }
  const tooMany = Array.from({ length: 51 }, (_, i) => `userIds=${i + 1}`).join('&')
  assertRobloxError(
    await post(app, USERS, tooMany, FORM),
    400,
    2,
    'Too many User Ids being sent in the request.',
  )
})

test('POST /v1/presence/users: a list of ids of any length within the body limit is a 400 code 2', async (t) => {
  const { app } = await startApp(t)
  // 300,000 ids fit in the default 1 MiB body; a list that long must not overflow the stack
  const ids = Array.from({ length: 300_000 }, () => 1)
  const tooMany = 'Too many User Ids being sent in the request.'
  assertRobloxError(
    await post(app, USERS, JSON.stringify({ userIds: ids }), JSON_TYPE),
    400,
    2,
    tooMany,
  )
  const form = ids
    .slice(0, 100_000)
    .map(() => 'userIds=1')
    .join('&') // 1,000,000 bytes
  assertRobloxError(await post(app, USERS, form, FORM), 400, 2, tooMany)
})

test('malformed JSON is a 400 in the Roblox shape', async (t) => {
  const { app, tokens } = await startApp(t)
  const me = await bearer(tokens, '1')
  for (const body of ['{', '{"userIds":[1,}', '{"userIds":[1]}x', "{'userIds':[1]}", '\u0000']) {
    assertRobloxError(await post(app, USERS, body, JSON_TYPE), 400, 0, /not valid JSON/)
    assertRobloxError(await post(app, REGISTER, body, { ...me, ...JSON_TYPE }), 400, 0)
  }
})

test('other media types get 415, with or without a body', async (t) => {
  const { app, tokens } = await startApp(t)
  const me = await bearer(tokens, '1')
  for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'foo']) {
    assertRobloxError(await post(app, USERS, 'userIds=1', { 'content-type': type }), 415, 0)
    assertRobloxError(await post(app, REGISTER, '{}', { ...me, 'content-type': type }), 415, 0)
  }
  const untyped = await app.inject({
    method: 'POST',
    url: USERS,
    payload: Buffer.from('{"userIds":[1]}'),
  })
  assert.ok([400, 415].includes(untyped.statusCode), untyped.body)
  assertRobloxError(untyped, untyped.statusCode)
  assert.equal((await service(app)).statusCode, 200)

  async function service(appInstance: typeof app) {
    return post(appInstance, USERS, { userIds: [1] })
  }
})

test('a body over the limit gets 413', async (t) => {
  const { app, tokens } = await startApp(t, { config: { bodyLimit: 1024 } })
  const big = JSON.stringify({ userIds: [1], pad: 'x'.repeat(2000) })
  assertRobloxError(await post(app, USERS, big, JSON_TYPE), 413, 0)
  assertRobloxError(await post(app, USERS, `userIds=1&pad=${'x'.repeat(2000)}`, FORM), 413, 0)
  const me = await bearer(tokens, '1')
  assertRobloxError(await post(app, REGISTER, big, { ...me, ...JSON_TYPE }), 413, 0)
  assert.equal((await lookup(app, [1]))[0]!.userPresenceType, 0)
})

/** Register bodies that must be refused, none of which may write anything. */
const badRegisterBodies: Array<[string, RegExp]> = [
  ['null', /object/],
  ['[]', /object/],
  ['[{"placeId":1}]', /object/],
  ['"Home"', /object/],
  ['7', /object/],
  ['true', /object/],
  ['{"placeId":-1}', /placeId -1/],
  ['{"placeId":1.5}', /placeId 1\.5/],
  ['{"placeId":"abc"}', /placeId "abc"/],
  ['{"placeId":true}', /placeId true/],
  ['{"placeId":{}}', /placeId an object/],
  ['{"placeId":[1]}', /placeId an array/],
  ['{"placeId":9223372036854775808}', /placeId "9223372036854775808"/],
  ['{"location":5}', /location must be a string/],
  ['{"location":["Home"]}', /location must be a string/],
  [`{"location":"${'x'.repeat(201)}"}`, /at most 200/],
  ['{"disconnect":"yes"}', /disconnect/],
  ['{"disconnect":1}', /disconnect/],
  ['{"disconnect":{}}', /disconnect/],
  ['{"placeId":1,"gameId":"not-a-uuid"}', /gameId "not-a-uuid" is not a uuid/],
  ['{"placeId":1,"gameId":5}', /gameId must be a string/],
  ['{"gameId":"6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11"}', /only meaningful with a placeId/],
  ['{"platform":"a b"}', /platform/],
  ['{"platform":""}', /platform/],
  ['{"platform":7}', /platform must be a string/],
]

test('register-app-presence: every bad body is a 400 and writes nothing', async (t) => {
  const { app, tokens, service } = await startApp(t)
  const me = await bearer(tokens, '77')
  for (const [body, message] of badRegisterBodies) {
    assertRobloxError(await post(app, REGISTER, body, { ...me, ...JSON_TYPE }), 400, 0, message)
  }
  for (const body of [
    'placeId=1&placeId=2',
    'disconnect=maybe',
    'placeId=-5',
    'location=a&location=b',
  ]) {
    assertRobloxError(await post(app, REGISTER, body, { ...me, ...FORM }), 400, 0)
  }
  const [presence] = await service.rawPresences(['77' as UserId])
  assert.equal(presence!.sessions.length, 0)
  assert.equal(presence!.lastOnline, undefined)
})

test('register-app-presence: an empty body is an Online heartbeat; extra members are ignored', async (t) => {
  const { app, tokens } = await startApp(t)
  const me = await bearer(tokens, '78')
  const empty = await app.inject({ method: 'POST', url: REGISTER, headers: me })
  assert.equal(empty.statusCode, 200, empty.body)
  assert.equal((await lookup(app, [78]))[0]!.userPresenceType, 1)
  const extra = await post(app, REGISTER, { location: 'Home', somethingNew: [1, 2] }, me)
  assert.equal(extra.statusCode, 200, extra.body)
})
