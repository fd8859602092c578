import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ReplySlab } from './reply-slab.js'

test('take: parts of exactly the size asked, never overlapping, a new slab when used up', () => {
  const slab = new ReplySlab(1024)
  const parts: Buffer[] = []
  for (let i = 0; i < 40; i++) {
    const part = slab.take(1 + ((i * 37) % 200))
    assert.equal(part.length, 1 + ((i * 37) % 200))
    part.fill(i)
    parts.push(part)
  }
  // every part still holds what was written into it: nothing was handed out twice
  parts.forEach((part, i) => assert.ok(part.every((byte) => byte === i)))
  // beyond a quarter of the slab: a buffer of its own
  const big = slab.take(300)
  assert.equal(big.length, 300)
  assert.notEqual(big.buffer, slab.buffer.buffer)
})

test('open and close: a reply of a size learnt while writing', () => {
  const slab = new ReplySlab(1024)
  const first = slab.take(10).fill(1)
  const start = slab.open(100)!
  assert.ok(start >= 10)
  slab.buffer.fill(2, start, start + 60)
  const reply = slab.close(start + 60)
  assert.equal(reply.length, 60)
  assert.ok(reply.every((byte) => byte === 2))
  const next = slab.take(10).fill(3)
  assert.ok(reply.every((byte) => byte === 2))
  assert.ok(first.every((byte) => byte === 1))
  assert.ok(next.every((byte) => byte === 3))
  assert.equal(slab.open(257), undefined)
})

test('reclaim: the part taken last is written over by the next; any other is kept', () => {
  const slab = new ReplySlab(1024)
  const kept = slab.take(10).fill(1)
  const last = slab.take(21).fill(2)
  slab.reclaim(kept) // not the last part: nothing changes
  const next = slab.take(21).fill(3)
  assert.ok(kept.every((byte) => byte === 1))
  assert.ok(last.every((byte) => byte === 2))
  // the last part given back: the next one takes its place
  slab.reclaim(next)
  const again = slab.take(30)
  assert.equal(again.byteOffset, next.byteOffset)
  again.fill(4)
  assert.ok(last.every((byte) => byte === 2))
  assert.ok(kept.every((byte) => byte === 1))
  // from open/close too, and a buffer of its own (beyond a quarter of the slab) is ignored
  slab.reclaim(again)
  const start = slab.open(100)!
  assert.equal(start, again.byteOffset)
  const reply = slab.close(start + 50)
  slab.reclaim(Buffer.alloc(50))
  slab.reclaim(slab.take(300))
  assert.equal(slab.take(8).byteOffset, reply.byteOffset + 56)
})
