import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InternPool } from './intern-pool.js'

test('a value is made once, shared, and dropped with its last holder', () => {
  let made = 0
  const pool = new InternPool((key) => ({ key, n: ++made }))
  const a = pool.acquire('x')
  const b = pool.acquire('x')
  const c = pool.acquire('y')
  assert.equal(a, b)
  assert.notEqual(a, c)
  assert.equal(made, 2)
  assert.equal(pool.value(a), pool.value(b))
  assert.equal(pool.size, 2)
  pool.release(a)
  assert.equal(pool.find('x'), a)
  pool.release(b)
  assert.equal(pool.find('x'), undefined)
  assert.equal(pool.size, 1)
  // the freed id is reused, with a fresh value
  const d = pool.acquire('z')
  assert.equal(d, a)
  assert.deepEqual(pool.value(d), { key: 'z', n: 3 })
  assert.equal(pool.value(c).key, 'y')
})

test('with `idle`, values nobody holds are kept up to that many, the least recently released dropped first', () => {
  let made = 0
  const pool = new InternPool((key) => ({ key, n: ++made }), { idle: 2 })
  const [a, b, c] = ['a', 'b', 'c'].map((key) => pool.acquire(key)) as [number, number, number]
  pool.release(a)
  pool.release(b)
  // two idle values kept: taken again, neither is made again
  assert.equal(pool.acquire('a'), a)
  assert.equal(made, 3)
  pool.release(a)
  assert.equal(pool.size, 3)
  // a third idle one: the least recently released of b and a (b) goes
  pool.release(c)
  assert.equal(pool.size, 2)
  assert.equal(pool.find('b'), undefined)
  assert.equal(pool.find('a'), a)
  assert.equal(pool.find('c'), c)
  // b is made again, in a freed id, with a fresh value
  const again = pool.acquire('b')
  assert.equal(made, 4)
  assert.deepEqual(pool.value(again), { key: 'b', n: 4 })
  // a value held is never dropped, however many are released
  const held = pool.acquire('a')
  for (let i = 0; i < 10; i++) pool.release(pool.acquire(`x${i}`))
  assert.equal(pool.find('a'), held)
  assert.equal(pool.value(held).key, 'a')
  assert.equal(pool.size, 2 + 2) // a and b held, two idle kept
})
