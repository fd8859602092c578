import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cookieValue } from '../shared/credentials.js'
import { robloxCredential } from './auth.js'

test('robloxCredential: Bearer first, then the .ROBLOSECURITY cookie among others, then x-api-key', () => {
  assert.deepEqual(robloxCredential({ authorization: 'Bearer abc', cookie: '.ROBLOSECURITY=x' }), {
    kind: 'token',
    token: 'abc',
    via: 'bearer',
  })
  assert.deepEqual(robloxCredential({ authorization: 'Basic abc' }), {
    kind: 'token',
    token: '',
    via: 'bearer',
  })
  assert.deepEqual(robloxCredential({ cookie: 'a=1; .ROBLOSECURITY=tok;' }), {
    kind: 'token',
    token: 'tok',
    via: 'cookie',
  })
  assert.deepEqual(robloxCredential({ cookie: '.ROBLOSECURITY=_|WARNING:-DO-NOT-SHARE|_tok' }), {
    kind: 'token',
    token: 'tok',
    via: 'cookie',
  })
  assert.deepEqual(robloxCredential({ cookie: '' }), { kind: 'none' })
  assert.deepEqual(robloxCredential({ cookie: '.ROBLOSECURITY=' }), { kind: 'none' })
  assert.deepEqual(robloxCredential({}), { kind: 'none' })
  assert.deepEqual(robloxCredential({ 'x-api-key': 'pk_1' }), { kind: 'apiKey', secret: 'pk_1' })
})

test('cookieValue: quoted and percent-encoded values', () => {
  assert.equal(cookieValue('x="a b"', 'x'), 'a b')
  assert.equal(cookieValue('x=a%7Cb', 'x'), 'a|b')
  assert.equal(cookieValue('x=%E0%A4%A', 'x'), '%E0%A4%A')
  assert.equal(cookieValue('xx=1', 'x'), undefined)
})
