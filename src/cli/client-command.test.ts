import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidIdError } from '@presenced/client'
import { DEFAULT_URL, UsageError, describeFailure, serverUrl } from './client-command.js'

test('serverUrl: --url, else $PRESENCED_URL, else the default; an empty $PRESENCED_URL is unset', () => {
  assert.equal(serverUrl('http://a:1/', { PRESENCED_URL: 'http://b:2' }), 'http://a:1')
  assert.equal(serverUrl(undefined, { PRESENCED_URL: 'http://b:2' }), 'http://b:2')
  assert.equal(serverUrl(undefined, {}), DEFAULT_URL)
  // as keys, import and webhooks read it (`PRESENCED_URL= presenced get 1` must not differ)
  assert.equal(serverUrl(undefined, { PRESENCED_URL: '' }), DEFAULT_URL)
  assert.throws(() => serverUrl('', {}), UsageError, 'an explicit empty --url is still refused')
  assert.throws(() => serverUrl(undefined, { PRESENCED_URL: 'localhost:8080' }), UsageError)
})

test('describeFailure quotes a bad id whole while short, and never a token pasted as one', () => {
  const short = describeFailure(new InvalidIdError('12a'))
  assert.equal(short.message, 'Not a valid user id: "12a" (expected a positive 64-bit integer)')
  assert.equal(short.code, 2)
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg'
  const long = describeFailure(new InvalidIdError(token, 'place id'))
  assert.equal(
    long.message,
    `Not a valid place id: "eyJhbGciOiJI…" (${token.length} characters) (expected a positive 64-bit integer)`,
  )
  assert.equal(long.code, 2)
})
