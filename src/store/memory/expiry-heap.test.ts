import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ExpiryHeap } from './expiry-heap.js'

function drain(heap: ExpiryHeap): Array<[number, number]> {
  const out: Array<[number, number]> = []
  while (heap.size > 0) {
    const at = heap.peekAt()
    out.push([at, heap.pop()])
  }
  return out
}

test('pops in expiry order', () => {
  const heap = new ExpiryHeap()
  assert.equal(heap.peekAt(), Number.POSITIVE_INFINITY)
  assert.equal(heap.pop(), -1)
  const times = [50, 10, 40, 10, 30, 20, 60, 0]
  times.forEach((at, slot) => heap.set(slot, at))
  assert.equal(heap.size, 8)
  assert.deepEqual(
    drain(heap).map(([at]) => at),
    [...times].sort((a, b) => a - b),
  )
})

test('a refreshed session keeps one entry, at its new time: no stale entries', () => {
  const heap = new ExpiryHeap()
  heap.set(0, 100)
  heap.set(1, 200)
  heap.set(2, 300)
  heap.set(0, 400)
  heap.set(2, 50)
  assert.equal(heap.size, 3)
  assert.deepEqual(drain(heap), [
    [50, 2],
    [200, 1],
    [400, 0],
  ])
})

test('remove takes a session out wherever it sits; removing twice is harmless', () => {
  const heap = new ExpiryHeap()
  for (let slot = 0; slot < 20; slot++) heap.set(slot, (slot * 7) % 20)
  heap.remove(5)
  heap.remove(5)
  heap.remove(0)
  heap.remove(1000)
  assert.equal(heap.size, 18)
  const slots = drain(heap).map(([, slot]) => slot)
  assert.equal(slots.includes(5), false)
  assert.equal(slots.includes(0), false)
  // a removed slot can come back
  heap.set(5, 1)
  assert.deepEqual(drain(heap), [[1, 5]])
})

test('behaves like a sorted list under any mix of set, remove and pop', () => {
  const op = fc.oneof(
    fc.record({ type: fc.constant('set' as const), slot: fc.nat(40), at: fc.nat(1000) }),
    fc.record({ type: fc.constant('remove' as const), slot: fc.nat(40) }),
    fc.record({ type: fc.constant('pop' as const) }),
  )
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300, size: 'max' }), (ops) => {
      const heap = new ExpiryHeap()
      const model = new Map<number, number>()
      for (const o of ops) {
        if (o.type === 'set') {
          heap.set(o.slot, o.at)
          model.set(o.slot, o.at)
        } else if (o.type === 'remove') {
          heap.remove(o.slot)
          model.delete(o.slot)
        } else {
          const min = Math.min(...model.values())
          assert.equal(heap.peekAt(), model.size === 0 ? Number.POSITIVE_INFINITY : min)
          const slot = heap.pop()
          if (model.size === 0) assert.equal(slot, -1)
          else {
            assert.equal(model.get(slot), min)
            model.delete(slot)
          }
        }
        assert.equal(heap.size, model.size)
      }
      const rest = drain(heap)
      assert.deepEqual(
        rest.map(([at]) => at),
        [...model.values()].sort((a, b) => a - b),
      )
    }),
  )
})
