import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseClientFrame } from './frames.js'

const POS = 'AAAAAAAAAAAAAAAAAAAAAA'

test('resume frames: by token and seq, with positions, or positions alone; bad ones named', () => {
  assert.deepEqual(parseClientFrame('{"type":"resume","resume":"abc","since":4}', 10), {
    type: 'resume',
    token: 'abc',
    since: 4,
    positions: undefined,
  })
  assert.deepEqual(
    parseClientFrame(
      `{"type":"resume","resume":"abc","since":4,"positions":{"9007199254740993":"${POS}"}}`,
      10,
    ),
    { type: 'resume', token: 'abc', since: 4, positions: [['9007199254740993', POS]] },
  )
  assert.deepEqual(parseClientFrame(`{"type":"resume","positions":{"7":"${POS}"}}`, 10), {
    type: 'resume',
    token: undefined,
    since: 0,
    positions: [['7', POS]],
  })
  const refused = (text: string) => {
    const parsed = parseClientFrame(text, 2)
    assert.ok('error' in parsed, text)
    return parsed.error.code
  }
  assert.equal(refused('{"type":"resume","resume":"abc"}'), 'FRAME_INVALID')
  assert.equal(refused('{"type":"resume","positions":[]}'), 'FRAME_INVALID')
  assert.equal(refused('{"type":"resume","positions":{"7":"short"}}'), 'FRAME_INVALID')
  assert.equal(refused(`{"type":"resume","positions":{"x":"${POS}"}}`), 'IDS_INVALID')
  assert.equal(
    refused(`{"type":"resume","positions":{"1":"${POS}","2":"${POS}","3":"${POS}"}}`),
    'TOO_MANY_IDS',
  )
  assert.equal(refused('{"type":"subscribe","ids":["1"],"positions":"yes"}'), 'FRAME_INVALID')
  assert.deepEqual(parseClientFrame('{"type":"subscribe","ids":["1"],"positions":true}', 2), {
    type: 'subscribe',
    ids: ['1'],
    positions: true,
  })
})

test('a subscribe id that is not a string or a number is named as sent, never as a valid id', () => {
  const message = (ids: string) => {
    const parsed = parseClientFrame(`{"type":"subscribe","ids":${ids}}`, 10)
    assert.ok('error' in parsed, ids)
    assert.equal(parsed.error.code, 'IDS_INVALID')
    return parsed.error.message
  }
  assert.match(message('[[1]]'), /^Invalid user id "\[1\]":/)
  assert.match(message('[{"1":1}]'), /^Invalid user id "\{\\"1\\":1\}":/)
  assert.match(message('[7, "x"]'), /^Invalid user id "x":/)
})

test('a frame nested deeper than the stack is refused by name, never thrown', () => {
  // 20,000 levels fit in a 64 KiB frame; stringifying them (or String() of the arrays) overflows
  const deep = '['.repeat(20_000) + ']'.repeat(20_000)
  const refused = (text: string) => {
    const parsed = parseClientFrame(text, 10)
    assert.ok('error' in parsed, text.slice(0, 60))
    return parsed.error
  }
  const id = refused(`{"type":"subscribe","ids":[${deep}]}`)
  assert.equal(id.code, 'IDS_INVALID')
  assert.match(id.message, /^Invalid user id "\[\[\[/)
  assert.equal(refused(`{"type":"unsubscribe","ids":["1",${deep}]}`).code, 'IDS_INVALID')
  const type = refused(`{"type":${deep}}`)
  assert.equal(type.code, 'TYPE_UNKNOWN')
  assert.match(type.message, /^Unknown frame type "\[\[\[/)
})

test("a heartbeat's gameId is a uuid, kept in lower case as Roblox's route and server reports keep it", () => {
  const heartbeat = (gameId: string) =>
    parseClientFrame(
      JSON.stringify({
        type: 'heartbeat',
        activity: { kind: 'inGame', placeId: '1818', gameId },
      }),
      10,
    )
  const upper = 'A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D'
  const parsed = heartbeat(upper)
  assert.ok(!('error' in parsed), JSON.stringify(parsed))
  assert.equal((parsed as { activity: { gameId: string } }).activity.gameId, upper.toLowerCase())
  for (const bad of ['g-1', 'abc', `${upper}0`, 'zzzzzzzz-e5f6-4a7b-8c9d-0e1f2a3b4c5d']) {
    const refused = heartbeat(bad)
    assert.ok('error' in refused, bad)
    assert.equal(refused.error.code, 'HEARTBEAT_INVALID', bad)
  }
})
