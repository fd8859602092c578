import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TokenBucket } from './token-bucket.js'

test('a token bucket allows its capacity at once, then its rate', () => {
  let now = 0
  const bucket = new TokenBucket(1000, 2000, () => now)
  assert.equal(bucket.take(1500), true)
  assert.equal(bucket.take(600), false, 'nothing is taken by a refused request')
  assert.equal(bucket.waitMs(600), 100)
  assert.equal(bucket.take(500), true)
  assert.equal(bucket.take(1), false)
  now += 250
  assert.equal(bucket.take(250), true)
  assert.equal(bucket.take(1), false)
  // it never holds more than its capacity
  now += 60_000
  assert.equal(bucket.take(2001), false)
  assert.equal(bucket.take(2000), true)
  assert.equal(bucket.waitMs(5000), 2000, 'a request beyond capacity waits for a full bucket')
})

test('a bucket is full again once its rate has refilled what was taken', () => {
  let now = 0
  const bucket = new TokenBucket(1000, 2000, () => now)
  assert.equal(bucket.full, true)
  bucket.take(500)
  assert.equal(bucket.full, false)
  now += 499
  assert.equal(bucket.full, false)
  now += 1
  assert.equal(bucket.full, true)
})
