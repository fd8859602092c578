import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { PositionTokens } from './position-token.js'

test('a position survives its token, which shows nothing of it, differs each time and is refused under another key', () => {
  const tokens = new PositionTokens(randomBytes(32))
  for (const position of [
    { epoch: '', offset: 0 },
    { epoch: '1764526330123456', offset: 1 },
    { epoch: '1764526330123000123', offset: 2 ** 32 - 1 },
  ]) {
    const token = tokens.encode(position)
    assert.match(token, /^[A-Za-z0-9_-]{32}$/)
    assert.deepEqual(tokens.decode(token), position)
    assert.equal(new PositionTokens(randomBytes(32)).decode(token), undefined)
  }
  // consecutive offsets give unrelated tokens
  const a = tokens.encode({ epoch: '7', offset: 5 })
  const b = tokens.encode({ epoch: '7', offset: 6 })
  assert.notEqual(a.slice(0, 8), b.slice(0, 8))
  // and so does one position encoded twice: whether a user's position moved (changes a
  // subscriber could not see) does not show by comparing tokens
  const again = new Set(
    Array.from({ length: 1000 }, () => tokens.encode({ epoch: '7', offset: 5 })),
  )
  assert.equal(again.size, 1000)
  for (const token of again) assert.deepEqual(tokens.decode(token), { epoch: '7', offset: 5 })
  // a token changed anywhere is not one of ours
  for (let i = 0; i < 24; i++) {
    const bytes = Buffer.from(a, 'base64url')
    bytes[i]! ^= 0x10
    assert.equal(tokens.decode(bytes.toString('base64url')), undefined, `byte ${i} changed`)
  }
  assert.equal(tokens.decode('not-a-token'), undefined)
  assert.equal(tokens.decode(''), undefined)
})

test('a token carries the hour it was issued in; tokens without one, and offsets beyond 2^32, read as such', () => {
  const tokens = new PositionTokens(randomBytes(32))
  const hour = 3_600_000
  const at = Date.UTC(2026, 5, 1, 9, 41, 7)
  const issued = tokens.encode({ epoch: '7', offset: 5 }, at)
  const start = Date.UTC(2026, 5, 1, 9)
  for (const now of [at, at + 10 * hour, at + 3 * 365 * 24 * hour]) {
    assert.deepEqual(tokens.decode(issued, now), { epoch: '7', offset: 5, issuedAt: start })
  }
  // no issue hour: an earlier version's token, or one encoded without `at`
  assert.deepEqual(tokens.decode(tokens.encode({ epoch: '7', offset: 5 }), at), {
    epoch: '7',
    offset: 5,
  })
  assert.equal(tokens.decode(tokens.encode({ epoch: '7', offset: 2 ** 32 })), undefined)
})
