import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parse } from 'node:querystring'
import { PresenceError } from '../../core/errors.js'
import { renderError } from './errors.js'
import fc from 'fast-check'
import { parseJsonBody } from '../shared/lossless-json.js'
import {
  deviceOf,
  isStudio,
  parseRegisterRequest,
  parseUsersJson,
  parseUsersRequest,
  quickRegisterBody,
} from './requests.js'

test('parseUsersRequest: dedupes in first-occurrence order, keeps big ids exact', () => {
  assert.deepEqual(parseUsersRequest({ userIds: [3, '1', 3, 2, '1'] }), ['3', '1', '2'])
  assert.deepEqual(parseUsersRequest({ userIds: ['9223372036854775807'] }), ['9223372036854775807'])
})

test('parseUsersRequest: form spellings', () => {
  for (const body of [
    'userIds=1&userIds=2',
    'userIds[]=1&userIds[]=2',
    'userIds[0]=1&userIds[1]=2',
  ]) {
    assert.deepEqual(parseUsersRequest(parse(body)), ['1', '2'], body)
  }
  assert.deepEqual(parseUsersRequest(parse('userIds=7')), ['7'])
  assert.deepEqual(parseUsersRequest(parse('userIds[]=7')), ['7'])
})

test('parseUsersRequest: refuses with codes 1 and 2', () => {
  const codeOf = (body: unknown) => {
    try {
      parseUsersRequest(body)
    } catch (error) {
      assert.ok(error instanceof PresenceError)
      const rendered = renderError(error)
      assert.equal(rendered?.status, 400)
      return rendered?.code
    }
    return undefined
  }
  assert.equal(codeOf({ userIds: [true] }), 1)
  assert.equal(codeOf({ userIds: '5' }), 1)
  assert.equal(codeOf(undefined), 1)
  assert.equal(codeOf({ userIds: Array.from({ length: 51 }, (_, i) => i + 1) }), 2)
  // the count is of entries sent, as Roblox counts them
  assert.equal(codeOf({ userIds: Array.from({ length: 51 }, () => 1) }), 2)
})

test('parseRegisterRequest: coerces form strings, treats placeId 0/null as none', () => {
  assert.deepEqual(parseRegisterRequest(parse('location=Home&placeId=12&disconnect=true')), {
    location: 'Home',
    placeId: '12',
    gameId: undefined,
    disconnect: true,
    platform: undefined,
  })
  assert.equal(parseRegisterRequest({ placeId: 0 }).placeId, undefined)
  assert.equal(parseRegisterRequest({ placeId: null }).placeId, undefined)
  assert.equal(parseRegisterRequest(undefined).disconnect, false)
  assert.equal(
    parseRegisterRequest({ placeId: 1, gameId: '6F1E0C0E-8C5E-4A55-9D8C-0E7E3B1F3F11' }).gameId,
    '6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11',
  )
  assert.throws(() => parseRegisterRequest({ disconnect: 0 }), PresenceError)
})

test('deviceOf: platform field, then Studio location, then the User-Agent', () => {
  const req = (over = {}) => ({ ...parseRegisterRequest({}), ...over })
  const cases: Array<[object, string | undefined, string, string]> = [
    [{ platform: 'ios' }, 'RobloxStudio/1', 'iOS', 'iOS'],
    [{ platform: 'Xbox' }, undefined, 'XboxOne', 'XboxOne'],
    [{ platform: 'Fridge' }, undefined, 'Fridge', 'Web'],
    [{ location: 'studio' }, 'Mozilla/5.0 (iPhone)', 'Studio', 'PC'],
    [{}, 'RobloxStudio/WinInet', 'Studio', 'PC'],
    [{}, 'Mozilla/5.0 (Linux; Android 14)', 'Android', 'Android'],
    [{}, 'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)', 'iOS', 'iOS'],
    [{}, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One)', 'XboxOne', 'XboxOne'],
    [{}, 'Roblox/WinInet', 'PC', 'PC'],
    [{}, 'Mozilla/5.0 (Windows NT 10.0) Chrome/120', 'Web', 'Web'],
    [{}, undefined, 'Web', 'Web'],
  ]
  for (const [over, agent, platform, deviceType] of cases) {
    assert.deepEqual(
      deviceOf(req(over), agent),
      { platform, deviceType, key: `app:${platform}` },
      `${JSON.stringify(over)} ${agent}`,
    )
  }
})

test('deviceOf: a platform named like an Object.prototype member is just an unknown name', () => {
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    const request = parseRegisterRequest({ platform: name })
    assert.deepEqual(
      deviceOf(request, undefined),
      { platform: name, deviceType: 'Web', key: `app:${name}` },
      name,
    )
  }
})

test('deviceOf: a known platform is one frozen device, in any spelling', () => {
  const a = deviceOf(parseRegisterRequest({ platform: 'IOS' }), undefined)
  const b = deviceOf(parseRegisterRequest({}), 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)')
  assert.equal(a, b)
  assert.ok(Object.isFrozen(a))
})

test('isStudio: the location trimmed and lower-cased is studio, whatever its length', () => {
  for (const yes of ['Studio', 'studio', 'STUDIO', ' Studio ', '\tstudio\n', '\u00a0Studio']) {
    assert.equal(isStudio(yes), true, JSON.stringify(yes))
  }
  for (const no of [undefined, '', 'Home', 'Game', 'studi', 'Studio1', 'st udio', 'Studİo']) {
    assert.equal(isStudio(no), false, JSON.stringify(no))
  }
  // the same answer as the plain rule over short and long texts, non-ASCII ones included
  for (const text of ['İ', 'stİdo', 'ſtudio', 'STUDİO', 'studio\u0307', 'K', 'Studio ']) {
    assert.equal(isStudio(text), text.trim().toLowerCase() === 'studio', JSON.stringify(text))
  }
})

/** What the general path makes of a JSON body: ids, or the error's message. */
function generalPath(text: string): string[] | string {
  try {
    return parseUsersRequest(parseJsonBody(text))
  } catch (error) {
    return (error as Error).message
  }
}

/** What parseUsersJson makes of `body`'s bytes, held to the general path's ids for it. */
function fastPath(body: Buffer | string, name = String(body)): string[] | undefined {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  const fast = parseUsersJson(bytes)
  if (fast !== undefined) {
    // the route decodes the bytes as utf-8 for the general path
    assert.deepEqual(fast.ids, generalPath(bytes.toString('utf8')), name)
    // values exactly when every id is exact as a number
    const long = fast.ids.some((id) => id.length > 15)
    assert.equal(fast.values === undefined, long, name)
    if (!long) assert.deepEqual(fast.values, fast.ids.map(Number), name)
  }
  return fast?.ids
}

test('parseUsersJson: the general path ids for the plain shape, undefined for the rest', () => {
  const fifty = Array.from({ length: 50 }, (_, i) => String(i + 1))
  const cases: Array<[string, string[] | undefined]> = [
    ['{"userIds":[1,2,3]}', ['1', '2', '3']],
    [' \n{ "userIds" :\t[ 3 , 1,3 ,2 ] }\r\n', ['3', '1', '2']],
    ['{"userIds":[999999999999999]}', ['999999999999999']],
    [`{"userIds":[${fifty.join(',')}]}`, fifty],
    // ids of more than 15 digits, up to the largest int64, as their digits
    ['{"userIds":[1000000000000000]}', ['1000000000000000']],
    ['{"userIds":[9007199254740993,9007199254740992]}', ['9007199254740993', '9007199254740992']],
    ['{"userIds":[9223372036854775807]}', ['9223372036854775807']],
    ['{"userIds":[1234567890123456789,7]}', ['1234567890123456789', '7']],
    // repeats of a long id dropped by its digits (as numbers these two are one double)
    [
      '{"userIds":[9007199254740993,1,9007199254740992,9007199254740993,1]}',
      ['9007199254740993', '1', '9007199254740992'],
    ],
    // the rest is the general path's: errors, ids beyond int64, strings, other members, other
    // spellings
    ['{"userIds":[9223372036854775808]}', undefined],
    ['{"userIds":[9999999999999999999]}', undefined],
    ['{"userIds":[10000000000000000000]}', undefined],
    ['{"userIds":[]}', undefined],
    [`{"userIds":[${Array.from({ length: 51 }, () => 1).join(',')}]}`, undefined],
    ['{"userIds":["1"]}', undefined],
    ['{"userIds":[0]}', undefined],
    ['{"userIds":[01]}', undefined],
    ['{"userIds":[-1]}', undefined],
    ['{"userIds":[1.0]}', undefined],
    ['{"userIds":[1e3]}', undefined],
    ['{"userIds":[10000000000000000.0]}', undefined],
    ['{"userIds":[1,]}', undefined],
    ['{"userIds":[1]},', undefined],
    ['{"userIds":[1],"userIds":[2]}', undefined],
    ['{"userIds":[1],"x":1}', undefined],
    ['{"userIds":[1]', undefined],
    ['{"userIds":[1,', undefined],
    ['{"userIds":[1', undefined],
    ['{"userIds":[', undefined],
    ['{"userIds":1}', undefined],
    ['{"userIds"', undefined],
    ['{"userId":[1]}', undefined],
    ['{"user\\u0049ds":[1]}', undefined],
    ['{"userIds":[1\u00a0]}', undefined],
    ['\ufeff{"userIds":[1]}', undefined],
    ['', undefined],
  ]
  for (const [text, expected] of cases) assert.deepEqual(fastPath(text), expected, text)
})

test("parseUsersJson: bytes outside its grammar are the general path's", () => {
  const body = (...parts: Array<string | number[]>) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))))
  const cases: Array<[string, Buffer]> = [
    // a UTF-8 byte-order mark: not JSON whitespace, as JSON.parse of the decoded text says
    ['byte-order mark', body([0xef, 0xbb, 0xbf], '{"userIds":[1]}')],
    ['byte-order mark after space', body(' ', [0xef, 0xbb, 0xbf], '{"userIds":[1]}')],
    // bytes that are not UTF-8, which the decoder turns into U+FFFD
    ['a lone continuation byte', body('{"userIds":[1', [0x80], ']}')],
    ['0xff', body('{"userIds":[', [0xff], '1]}')],
    ['a truncated sequence at the end', body('{"userIds":[1]}', [0xc3])],
    // non-ASCII look-alikes of the grammar's characters
    ['a no-break space', body('{"userIds":[1,', [0xc2, 0xa0], '2]}')],
    ['a full-width digit', body('{"userIds":[', [0xef, 0xbc, 0x91], ']}')],
    ['a NUL byte', body('{"userIds":[1', [0], ']}')],
    ['a NUL byte at the end', body('{"userIds":[1]}', [0])],
    ['a form feed', body('{"userIds":[1,', [0x0c], '2]}')],
    // escapes in the member's name: the same name to JSON.parse
    ['an escaped member name', body('{"\\u0075serIds":[1]}')],
  ]
  for (const [name, bytes] of cases) assert.equal(fastPath(bytes, name), undefined, name)
  // what the general path makes of them: the escape is read, the rest refused
  assert.deepEqual(generalPath(cases.at(-1)![1].toString('utf8')), ['1'])
  for (const [name, bytes] of cases.slice(0, -1)) {
    assert.equal(typeof generalPath(bytes.toString('utf8')), 'string', name)
  }
})

test('parseUsersJson: never differs from the general path (generated bodies)', () => {
  const space = fc.constantFrom('', ' ', '\n', '\t', '\r', '  ')
  const literal = fc.oneof(
    fc.integer({ min: 0, max: 60 }).map(String),
    fc.bigInt({ min: 1n, max: 10n ** 17n }).map(String),
    // about the largest int64 and past it
    fc.bigInt({ min: 2n ** 63n - 100n, max: 2n ** 63n + 100n }).map(String),
    fc.bigInt({ min: 10n ** 15n - 2n, max: 10n ** 20n }).map(String),
    fc.constantFrom('-1', '1.5', '1e2', '01', '"5"', 'null', 'true', '1.0', '9007199254740993'),
  )
  const body = fc
    .tuple(
      fc.array(fc.tuple(space, literal, space), { maxLength: 55 }),
      space,
      fc.constantFrom('{"userIds":[', '{ "userIds" : [', '{"userIds":', '{"ids":['),
      fc.constantFrom(']}', '] }', ']', ']}x', '],"a":1}', ',]}'),
    )
    .map(
      ([items, s, open, close]) =>
        s + open + items.map(([a, v, b]) => a + v + b).join(',') + close + s,
    )
  fc.assert(
    fc.property(body, (text) => {
      fastPath(text)
    }),
    { numRuns: 5000 },
  )
  // and with any byte put anywhere in a good body
  const good = Buffer.from('{"userIds":[12,9223372036854775807,3,12]}')
  fc.assert(
    fc.property(
      fc.nat({ max: good.length }),
      fc.uint8Array({ minLength: 1, maxLength: 3 }),
      (at, bytes) => {
        fastPath(Buffer.concat([good.subarray(0, at), bytes, good.subarray(at)]))
      },
    ),
    { numRuns: 5000 },
  )
})

test('parseUsersJson: ids alike in their low 32 bits are distinct, repeats of each dropped', () => {
  const ids = [1, 2 ** 32 + 1, 2 ** 33 + 1, 7, 2 ** 40 + 7, 1, 2 ** 32 + 1, 7].map(String)
  const text = `{"userIds":[${ids.join(',')}]}`
  const expected = ['1', '4294967297', '8589934593', '7', '1099511627783']
  assert.deepEqual(fastPath(text), expected)
  assert.deepEqual(generalPath(text), expected)
  // 50 ids that fill the set the most (every one a repeat of the one before it, by value)
  const full = Array.from({ length: 25 }, (_, k) => String(k * 2 ** 32 + 5))
  const doubled = full.flatMap((id) => [id, id])
  assert.deepEqual(fastPath(`{"userIds":[${doubled.join(',')}]}`), full)
})

test('parseUsersJson: ids of every length from 1 to 19 digits, as their digits', () => {
  for (let length = 1; length <= 19; length++) {
    const id = '912345678912345678'.slice(0, length - 1) + '7'
    const ids = [id, String(length), id]
    const text = `{"userIds":[${ids.join(',')}]}`
    const expected = id === String(length) ? [id] : [id, String(length)]
    assert.deepEqual(fastPath(text), expected, text)
    // kept exact: the digits as sent, not a number's
    assert.equal(parseUsersJson(Buffer.from(text))!.ids[0], id)
  }
})

/** parseRegisterRequest's answer for a body, or its error's rendering. */
function registered(body: () => unknown): unknown {
  try {
    return parseRegisterRequest(body())
  } catch (error) {
    return renderError(error) ?? String(error)
  }
}

test('quickRegisterBody: the members parseJsonBody gives, or undefined to parse as before', () => {
  const read = [
    '{}',
    '{"location":"Home"}',
    '{"location":"Game","placeId":1818}',
    '{"placeId":123456789012345,"location":"x y é"}',
    '{"location":"Game","placeId":5,"gameId":"6F1E0C0E-8C5E-4A55-9D8C-0E7E3B1F3F11"}',
    '{"disconnect":true}',
    '{"disconnect":false,"platform":"iOS"}',
    '{"platform":"not ok!"}',
    '{"location":""}',
  ]
  for (const text of read) {
    assert.notEqual(quickRegisterBody(text), undefined, text)
    assert.deepEqual(
      registered(() => quickRegisterBody(text)),
      registered(() => parseJsonBody(text)),
      text,
    )
  }
  const left = [
    '',
    ' {}',
    '{ "location":"Home"}',
    '{"location":"Ho\\"me"}',
    '{"location":"Home","location":"Game"}',
    '{"placeId":1234567890123456}',
    '{"placeId":0}',
    '{"placeId":-1}',
    '{"placeId":1.5}',
    '{"placeId":1e3}',
    '{"placeId":null}',
    '{"other":1}',
    '{"__proto__":1}',
    '{"disconnect":truex}',
    '{"location":"Home"',
    '{"location":"Home"}}',
    '{"location":"Home",}',
    '{"location"}',
    '[1]',
  ]
  for (const text of left) assert.equal(quickRegisterBody(text), undefined, text)
})

test('quickRegisterBody: whatever it reads, parseRegisterRequest answers as for JSON.parse', () => {
  const member = fc.oneof(
    fc.constantFrom('location', 'placeId', 'gameId', 'disconnect', 'platform', 'other'),
    fc.string({ maxLength: 6 }),
  )
  const value = fc.oneof(
    fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null', '0', '1', '-3', '1.5', '1e2', '1234567890123456'),
    fc.nat().map(String),
    fc.constantFrom('"Home"', '"6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11"', '"iOS"', '" "'),
  )
  fc.assert(
    fc.property(fc.array(fc.tuple(member, value), { maxLength: 5 }), (pairs) => {
      const text = `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`
      const quick = quickRegisterBody(text)
      if (quick === undefined) return
      assert.deepEqual(
        registered(() => quick),
        registered(() => parseJsonBody(text)),
      )
    }),
    { numRuns: 2000 },
  )
})
