import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseJsonBody } from '../shared/lossless-json.js'
import { parseBatchJson, parseBatchRequest, type BatchQuery } from './schemas.js'

/** What the general path makes of a JSON body: the query, or the error's message. */
function generalPath(text: string): BatchQuery | string {
  try {
    return parseBatchRequest(parseJsonBody(text))
  } catch (error) {
    return (error as Error).message
  }
}

/** The query without the ids' values, which only parseBatchJson gives. */
function withoutValues(query: BatchQuery): BatchQuery {
  const rest = { ...query }
  delete rest.values
  return rest
}

/** The values are the users' when every user has at most 15 digits, and absent otherwise. */
function assertValues(query: BatchQuery): void {
  if (query.users.every((id) => id.length <= 15)) {
    assert.deepEqual(query.values, query.users.map(Number))
  } else {
    assert.equal(query.values, undefined)
  }
}

test('parseBatchJson: the general path query for the plain shapes, undefined for the rest', () => {
  const plain = [
    '{"users":["1","2","1"],"level":"all"}',
    ' { "level" : "user" ,\n "users" : [ 3 , "3", 999999999999999 ] } ',
    '{"users":["922337203685477580"]}',
    // duplicates among long ids; two long ids whose digits read as the same double
    '{"users":["922337203685477580",5,"922337203685477580","5","922337203685477581"]}',
    '{"users":["9007199254740993","9007199254740992","9007199254740993"]}',
    `{"level":"title","users":[${Array.from({ length: 1100 }, (_, i) => `"${i + 1}"`).join(',')}]}`,
  ]
  for (const text of plain) {
    const fast = parseBatchJson(Buffer.from(text, 'utf8'))
    assert.ok(fast, text)
    assert.deepEqual(withoutValues(fast), generalPath(text), text)
    assertValues(fast)
  }
  for (const text of [
    '{"users":[]}',
    '{"users":["1",',
    '{"users":["1"',
    '{"users":[1',
    '{"users":[',
    '{"level":"all',
    `{"users":[${Array.from({ length: 1101 }, () => '"1"').join(',')}]}`,
    '{"users":["9223372036854775807"]}',
    '{"users":["0"]}',
    '{"users":["01"]}',
    '{"users":[1000000000000000]}',
    '{"users":["1"],"level":"everything"}',
    '{"users":["1"],"level":"al\\u006c"}',
    '{"users":["1"],"users":["2"]}',
    '{"users":["1"],"onlineOnly":true}',
    '{"users":["1"],"deviceTypes":["XboxOne"]}',
    '{"level":"all"}',
    '{"users":["1"]}x',
    '{"users":["1",]}',
    '{"users":"1"}',
    '',
  ]) {
    assert.equal(parseBatchJson(Buffer.from(text, 'utf8')), undefined, text)
  }
})

test('parseBatchJson: never differs from the general path (generated bodies)', () => {
  const space = fc.constantFrom('', ' ', '\n', '\t')
  const xuid = fc.oneof(
    fc.integer({ min: 0, max: 40 }).map(String),
    fc.bigInt({ min: 1n, max: 10n ** 20n }).map(String),
    fc.constantFrom('01', '-1', '1.5', '1e2', 'x'),
  )
  const item = fc.tuple(xuid, fc.boolean()).map(([v, quoted]) => (quoted ? `"${v}"` : v))
  const users = fc
    .tuple(fc.array(fc.tuple(space, item, space), { maxLength: 30 }), space)
    .map(([items, s]) => `"users"${s}:${s}[${items.map(([a, v, b]) => a + v + b).join(',')}]`)
  const level = fc
    .constantFrom('user', 'device', 'title', 'all', 'All', '')
    .map((l) => `"level":"${l}"`)
  const other = fc.constantFrom('"onlineOnly":false', '"titles":[]', '"x":1')
  const body = fc
    .tuple(fc.array(fc.oneof(users, level, other), { maxLength: 3 }), space)
    .map(([members, s]) => `${s}{${members.join(',')}}${s}`)
  fc.assert(
    fc.property(body, (text) => {
      const fast = parseBatchJson(Buffer.from(text, 'utf8'))
      if (fast !== undefined) {
        assert.deepEqual(withoutValues(fast), generalPath(text))
        assertValues(fast)
      }
    }),
    { numRuns: 5000 },
  )
})

test('parseBatchJson: bytes after a UTF-8 byte-order mark; nothing outside ASCII', () => {
  const withBom = parseBatchJson(Buffer.from('\ufeff{"users":["7","8"],"level":"all"}', 'utf8'))
  assert.ok(withBom)
  assert.deepEqual(withoutValues(withBom), generalPath('{"users":["7","8"],"level":"all"}'))
  assert.deepEqual(withBom.values, [7, 8])
  for (const bytes of [
    Buffer.from('{"users":["1"],"level":"allé"}', 'utf8'),
    Buffer.from('{"users":["1"],"level":"all\u00a0"}', 'utf8'),
    Buffer.concat([
      Buffer.from('{"users":["1"],"level":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]),
    Buffer.concat([Buffer.from('{"users":["1"'), Buffer.from([0xc2, 0xa0]), Buffer.from(']}')]),
    Buffer.from('\ufeff\ufeff{"users":["1"]}', 'utf8'),
    Buffer.from([0xef, 0xbb]),
  ]) {
    assert.equal(parseBatchJson(bytes), undefined, bytes.toString('latin1'))
  }
})
