import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { retryDelay } from './retry-delay.js'
import { signWebhook, verifyWebhook } from './webhook-signature.js'

const secret = 'whsec_test-secret-0123456789'
const body = '{"id":"evt_1","type":"online","userId":"9223372036854775807"}'

test('the signature is HMAC-SHA256 over timestamp.body, hex, prefixed sha256=', () => {
  const expected = createHmac('sha256', secret).update(`1767225600.${body}`).digest('hex')
  assert.equal(signWebhook(secret, 1767225600, body), `sha256=${expected}`)
})

test('verification refuses another body, secret, timestamp, or an old timestamp', () => {
  const signature = signWebhook(secret, 1767225600, body)
  const base = { secret, body, timestamp: '1767225600', signature, nowSeconds: 1767225630 }
  assert.equal(verifyWebhook(base), true)
  assert.equal(verifyWebhook({ ...base, body: body.replace('online', 'offline') }), false)
  assert.equal(verifyWebhook({ ...base, secret: 'whsec_other-secret-0123456789' }), false)
  assert.equal(verifyWebhook({ ...base, timestamp: '1767225601' }), false)
  assert.equal(verifyWebhook({ ...base, nowSeconds: 1767225600 + 301 }), false)
  assert.equal(verifyWebhook({ ...base, signature: undefined }), false)
  assert.equal(verifyWebhook({ ...base, timestamp: 'soon' }), false)
})

test('retry delays grow exponentially, jittered within [half, full] of the cap', () => {
  assert.equal(
    retryDelay(1, 1000, 60_000, () => 0),
    500,
  )
  assert.equal(
    retryDelay(1, 1000, 60_000, () => 1),
    1000,
  )
  assert.equal(
    retryDelay(4, 1000, 60_000, () => 1),
    8000,
  )
  assert.equal(
    retryDelay(4, 1000, 60_000, () => 0),
    4000,
  )
  assert.equal(
    retryDelay(20, 1000, 60_000, () => 1),
    60_000,
  )
  assert.equal(
    retryDelay(20, 1000, 60_000, () => 0),
    30_000,
  )
})
