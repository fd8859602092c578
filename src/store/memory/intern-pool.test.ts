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
