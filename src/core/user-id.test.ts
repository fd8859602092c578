import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseExactUserId, parseInt64Id, parseTitleId, parseUserId } from './user-id.js'

test('accepts positive int64 ids, kept exactly as canonical strings', () => {
  const cases: Array<[unknown, string]> = [
    ['1', '1'],
    [1, '1'],
    ['123456', '123456'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    ['9007199254740992', '9007199254740992'],
    ['9007199254740993', '9007199254740993'],
    ['9223372036854775807', '9223372036854775807'],
    ['1000000000000000000', '1000000000000000000'],
    [9223372036854775807n, '9223372036854775807'],
    [1n, '1'],
    // ASCII whitespace padding, as .NET's Int64.Parse skips it: the canonical id
    [' 1', '1'],
    ['1 ', '1'],
    ['1\n', '1'],
    ['\t1', '1'],
    ['\r\n\v\f 9223372036854775807 \t', '9223372036854775807'],
  ]
  for (const [input, expected] of cases) {
    assert.equal(parseUserId(input), expected, `${typeof input} ${String(input)}`)
  }
})

test('refuses anything else', () => {
  const cases: unknown[] = [
    '9223372036854775808',
    '9999999999999999999',
    '10000000000000000000',
    '18446744073709551615',
    '0',
    0,
    '-1',
    -1,
    '01',
    '00',
    '+1',
    '1.5',
    1.5,
    '1.0',
    '1e3',
    1e21,
    2 ** 53,
    2 ** 53 + 2,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    ' ',
    ' 0 ',
    ' 01',
    ' +1',
    '1 2',
    ' 9223372036854775808',
    '\u00a01',
    '1\u3000',
    '\u20281',
    '\ufeff1',
    '１',
    ' '.repeat(100_000) + 'x' + ' '.repeat(100_000),
    '0x10',
    '١٢',
    'abc',
    '12a',
    0n,
    -5n,
    9223372036854775808n,
    null,
    undefined,
    true,
    {},
    [1],
    ['1'],
  ]
  for (const input of cases) {
    assert.equal(parseUserId(input), undefined, `${typeof input} ${JSON.stringify(String(input))}`)
  }
})

test('place and universe ids follow the same rules', () => {
  assert.equal(parseInt64Id('9007199254740993'), '9007199254740993')
  assert.equal(parseInt64Id('0'), undefined)
  assert.equal(parseInt64Id(1.5), undefined)
})

test('title ids: 32 bits, written as every id is', () => {
  assert.equal(parseTitleId(1717113201), '1717113201')
  assert.equal(parseTitleId(' 4294967295\n'), '4294967295')
  for (const input of ['4294967296', 4294967296, '0', '+1', '01', '1e3', 1.5, 1n, '\u00a01', '']) {
    assert.equal(parseTitleId(input), undefined, String(input))
  }
})

test('an identity names its user exactly: no padding', () => {
  assert.equal(parseExactUserId('7'), '7')
  assert.equal(parseExactUserId(7), '7')
  for (const input of [' 7', '7\n', '07', '+7', 7.5]) {
    assert.equal(parseExactUserId(input), undefined, JSON.stringify(input))
  }
})
