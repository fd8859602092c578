import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../core/user-id.js'
import { Tokens } from '../../service/tokens.js'
import { cookieValue, readCredential } from './auth.js'
import { CSRF_BUCKET_MS, CsrfTokens } from './csrf.js'

test('readCredential: Bearer first, then the .ROBLOSECURITY cookie among others', () => {
  assert.deepEqual(readCredential({ authorization: 'Bearer abc', cookie: '.ROBLOSECURITY=x' }), {
    via: 'bearer',
    token: 'abc',
  })
  assert.deepEqual(readCredential({ authorization: 'Basic abc' }), { via: 'bearer', token: '' })
  assert.deepEqual(readCredential({ cookie: 'a=1; .ROBLOSECURITY=tok;' }), {
    via: 'cookie',
    token: 'tok',
  })
  assert.deepEqual(readCredential({ cookie: '.ROBLOSECURITY=_|WARNING:-DO-NOT-SHARE|_tok' }), {
    via: 'cookie',
    token: 'tok',
  })
  assert.deepEqual(readCredential({ cookie: '' }), { via: 'none' })
  assert.deepEqual(readCredential({ cookie: '.ROBLOSECURITY=' }), { via: 'none' })
  assert.deepEqual(readCredential({}), { via: 'none' })
})

test('cookieValue: quoted and percent-encoded values', () => {
  assert.equal(cookieValue('x="a b"', 'x'), 'a b')
  assert.equal(cookieValue('x=a%7Cb', 'x'), 'a|b')
  assert.equal(cookieValue('x=%E0%A4%A', 'x'), '%E0%A4%A')
  assert.equal(cookieValue('xx=1', 'x'), undefined)
})

test('CSRF tokens: bound to the subject and to 30-60 minutes, stateless across instances', () => {
  const secret = 'a-secret-of-enough-length-for-tests-0123'
  const a = new CsrfTokens(new Tokens(secret))
  const b = new CsrfTokens(new Tokens(secret))
  const now = Date.UTC(2026, 0, 1)
  const token = a.issue('1' as UserId, now)
  assert.ok(b.verify('1', token, now), 'another node verifies it')
  assert.ok(!b.verify('2', token, now), 'another user cannot use it')
  assert.ok(b.verify('1', token, now + CSRF_BUCKET_MS), 'still valid in the next bucket')
  assert.ok(!b.verify('1', token, now + 2 * CSRF_BUCKET_MS), 'expired after that')
  assert.ok(!new CsrfTokens(new Tokens(`${secret}x`)).verify('1', token, now))
  for (const bad of [undefined, '', 'x', token.slice(1), `${token}A`, 'A'.repeat(200)]) {
    assert.ok(!a.verify('1', bad, now), String(bad))
  }
})
