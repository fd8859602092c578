import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NotTextError, parseJsonLossless } from './lossless-json.js'

test('small integers stay numbers', () => {
  assert.deepEqual(parseJsonLossless('{"userIds":[1,2,9007199254740991]}'), {
    userIds: [1, 2, 9007199254740991],
  })
})

test('integers above 2^53 keep every digit, as strings', () => {
  assert.deepEqual(parseJsonLossless('{"userIds":[9007199254740993, 12, -9223372036854775808]}'), {
    userIds: ['9007199254740993', 12, '-9223372036854775808'],
  })
})

test('a whole number written with a fraction or an exponent is kept as its text, never an integer', () => {
  assert.deepEqual(
    parseJsonLossless('{"ids":[1e3,1.0,1E+2,-2.0e0,0.0,12345678901234567890.0,1e400],"n":1e3}'),
    {
      // 1e400 overflows to Infinity, which no integer reader takes either
      ids: ['1e3', '1.0', '1E+2', '-2.0e0', '0.0', '12345678901234567890.0', Infinity],
      n: '1e3',
    },
  )
})

test('digits inside strings and true fractions are left alone', () => {
  assert.deepEqual(
    parseJsonLossless(
      '{"a":"x\\"12345678901234567890","b":1.2345678901234567,"c":1.5e-3,"d":"1e3","e":"1.0"}',
    ),
    { a: 'x"12345678901234567890', b: 1.2345678901234567, c: 0.0015, d: '1e3', e: '1.0' },
  )
})

test('malformed JSON still throws, even where quoting a literal would make it parse', () => {
  for (const text of [
    '{"userIds":[12345678901234567890',
    '[01]',
    '[1.]',
    '[1.e5]',
    '[1e]',
    '[-]',
    '[012345678901234567]',
    '{1:2}',
    '{1.0:2}',
    '{"a":1,2.0:3}',
    '{12345678901234567890:1}',
  ]) {
    assert.throws(() => parseJsonLossless(text), SyntaxError, text)
  }
})

test('valid exactly when JSON.parse says so, over JSON-like text', () => {
  const token = fc.constantFrom(
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '"a"',
    '"1e3"',
    ' ',
    '1',
    '0',
    '01',
    '1.0',
    '1.',
    '1e3',
    '1E+2',
    '-',
    '-2.5',
    '12345678901234567890',
    'true',
    'null',
  )
  fc.assert(
    fc.property(fc.array(token, { maxLength: 12 }), (tokens) => {
      const text = tokens.join('')
      let expected = true
      try {
        JSON.parse(text)
      } catch {
        expected = false
      }
      let actual = true
      try {
        parseJsonLossless(text)
      } catch {
        actual = false
      }
      assert.equal(actual, expected, text)
    }),
    { numRuns: 20_000 },
  )
})

test('a string or member name escaping a lone surrogate is no text, however deep; pairs are', () => {
  for (const text of [
    '"\\ud800"',
    '{"a":"x\\uDFFFy"}',
    '{"\\ud83d":1}',
    '["\\ude00\\ud83d"]',
    '['.repeat(50_000) + '"\\ud800"' + ']'.repeat(50_000),
  ]) {
    assert.throws(() => parseJsonLossless(text), NotTextError, text.slice(0, 30))
  }
  assert.equal(parseJsonLossless('"\\ud83d\\ude00"'), '😀')
  assert.equal(parseJsonLossless('"\\\\ud800"'), '\\ud800')
})
