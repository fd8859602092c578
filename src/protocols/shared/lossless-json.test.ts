import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseJsonLossless } from './lossless-json.js'

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

test('digits inside strings and fractions are left alone', () => {
  assert.deepEqual(
    parseJsonLossless(
      '{"a":"x\\"12345678901234567890","b":1.2345678901234567,"c":1234567890123456e2}',
    ),
    { a: 'x"12345678901234567890', b: 1.2345678901234567, c: 1234567890123456e2 },
  )
})

test('malformed JSON still throws', () => {
  assert.throws(() => parseJsonLossless('{"userIds":[12345678901234567890'), SyntaxError)
})
