import assert from 'node:assert/strict'
import { test } from 'node:test'
// The SDK's own source, not server code (which the rule is about): toIdString is not exported,
// and `@presenced/client` resolves to the workspace's checkout, another one in a git worktree.
// eslint-disable-next-line no-restricted-imports
import { toIdString } from '../src/ids.js'

test('ids as text: ASCII whitespace padding taken, as the server takes it; other spaces refused', () => {
  for (const padded of [' 123', '123 ', '\t123\n', '\r\n123\f', '\v123']) {
    assert.equal(toIdString(padded), '123', JSON.stringify(padded))
  }
  for (const bad of ['\u00a0123', '123\u3000', '\u2028123', '\ufeff123', '+123', '0123', ' ']) {
    assert.throws(() => toIdString(bad), { name: 'InvalidIdError' }, JSON.stringify(bad))
  }
})

test('a long run of spaces is read in linear time', () => {
  const started = performance.now()
  assert.throws(() => toIdString(' '.repeat(1_000_000) + 'x' + ' '.repeat(1_000_000)))
  assert.ok(performance.now() - started < 1000)
})
