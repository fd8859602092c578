import assert from 'node:assert/strict'
import { test } from 'node:test'
import { errors, fail } from '../../core/errors.js'
import { renderError } from './errors.js'

test('PresenceError kinds map to Roblox statuses, codes and headers', () => {
  assert.deepEqual(renderError(errors.storeUnavailable()), {
    status: 503,
    code: 0,
    message: 'The presence store is unavailable. Try again shortly.',
    headers: { 'retry-after': '1' },
  })
  assert.deepEqual(renderError(errors.unauthenticated())?.status, 401)
  assert.equal(renderError(errors.userIdInvalid('x'))?.code, 1)
  const limited = renderError(fail('RATE_LIMITED', 'slow down', { retryAfter: 7 }))
  assert.deepEqual(
    [limited?.status, limited?.message, limited?.headers],
    [429, 'Too many requests', { 'retry-after': '7' }],
  )
})

test('Fastify body errors map to 400/413/415; unknown errors are left to the 500 path', () => {
  const fastifyError = (code: string, statusCode: number) =>
    Object.assign(new Error(code), { code, statusCode })
  assert.equal(renderError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413))?.status, 413)
  assert.equal(renderError(fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415))?.status, 415)
  assert.equal(renderError(fastifyError('INVALID_JSON', 400))?.status, 400)
  assert.equal(renderError(fastifyError('SOMETHING_ELSE', 404))?.status, 404)
  assert.equal(renderError(new TypeError('bug')), undefined)
})
