import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clearCookieHeader, parentDomain } from './logout-cookie.js'

test('the cookie is cleared on the parent domain of the host the client addressed', () => {
  assert.equal(parentDomain('auth.roblox.com'), '.roblox.com')
  assert.equal(parentDomain('AUTH.Roblox.com'), '.roblox.com')
  assert.equal(parentDomain('auth.presenced.example.org'), '.presenced.example.org')
  for (const host of ['roblox.com', 'localhost', '127.0.0.1', '[::1]', '::1', '', 'a b.c.d']) {
    assert.equal(parentDomain(host), undefined, host)
  }
})

test('Secure only over https; always expired, HttpOnly, on /', () => {
  assert.equal(
    clearCookieHeader('.ROBLOSECURITY', 'auth.roblox.com', 'https'),
    '.ROBLOSECURITY=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Domain=.roblox.com; Secure; HttpOnly; SameSite=Lax',
  )
  assert.equal(
    clearCookieHeader('.ROBLOSECURITY', '127.0.0.1', 'http'),
    '.ROBLOSECURITY=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax',
  )
})
