import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bearerCredential, cookieValue } from '../shared/credentials.js'
import { robloxCredential } from './auth.js'

test('robloxCredential: Bearer first, then the .ROBLOSECURITY cookie among others, then x-api-key', () => {
  // the header as it came: the authenticator reads it (service/bearer.ts)
  assert.deepEqual(robloxCredential({ authorization: 'Bearer abc', cookie: '.ROBLOSECURITY=x' }), {
    kind: 'bearer',
    header: 'Bearer abc',
  })
  assert.deepEqual(robloxCredential({ authorization: 'Basic abc' }), {
    kind: 'bearer',
    header: 'Basic abc',
  })
  assert.deepEqual(robloxCredential({ authorization: ' ', cookie: '.ROBLOSECURITY=x' }), {
    kind: 'token',
    token: 'x',
    via: 'cookie',
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

test('bearerCredential reads every Authorization header as the RFC-style pattern does', () => {
  // the reference: what the fast path must agree with, character for character
  const reference = (value: string) => {
    if (value.trim() === '') return undefined
    return /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1] ?? ''
  }
  const headers = [
    'Bearer abc.def.ghi',
    'Bearer ',
    'Bearer',
    'bearer abc',
    'BEARER abc',
    'Bearer  abc',
    'Bearer abc ',
    'Bearer abc\t',
    'Bearer\tabc',
    'Bearer a b',
    'Bearer a\u00a0b',
    'Bearer \u00a0abc',
    'Bearer a\u0001b',
    'Bearer a\u0085b',
    'Bearer a\u2028b',
    'Bearer é',
    'Basic abc',
    '   ',
    '',
    'Bearerabc',
  ]
  for (const authorization of headers) {
    const credential = bearerCredential({ authorization })
    const expected = reference(authorization)
    if (expected === undefined) {
      assert.equal(credential, undefined, JSON.stringify(authorization))
    } else {
      assert.deepEqual(
        credential,
        { kind: 'token', token: expected, via: 'bearer' },
        JSON.stringify(authorization),
      )
    }
  }
})
