import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { PositionTokens } from './position-token.js'

test('a position survives its token, which shows nothing of it and is refused under another key', () => {
  const tokens = new PositionTokens(randomBytes(32))
  for (const position of [
    { epoch: '', offset: 0 },
    { epoch: '1764526330123456', offset: 1 },
    { epoch: '1764526330123000123', offset: 2 ** 40 },
  ]) {
    const token = tokens.encode(position)
    assert.match(token, /^[A-Za-z0-9_-]{22}$/)
    assert.deepEqual(tokens.decode(token), position)
    assert.equal(new PositionTokens(randomBytes(32)).decode(token), undefined)
  }
  // consecutive offsets give unrelated tokens
  const a = tokens.encode({ epoch: '7', offset: 5 })
  const b = tokens.encode({ epoch: '7', offset: 6 })
  assert.notEqual(a.slice(0, 8), b.slice(0, 8))
  assert.equal(tokens.decode('not-a-token'), undefined)
  assert.equal(tokens.decode(''), undefined)
})
