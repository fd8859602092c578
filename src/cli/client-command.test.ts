import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_URL, UsageError, serverUrl } from './client-command.js'

test('serverUrl: --url, else $PRESENCED_URL, else the default; an empty $PRESENCED_URL is unset', () => {
  assert.equal(serverUrl('http://a:1/', { PRESENCED_URL: 'http://b:2' }), 'http://a:1')
  assert.equal(serverUrl(undefined, { PRESENCED_URL: 'http://b:2' }), 'http://b:2')
  assert.equal(serverUrl(undefined, {}), DEFAULT_URL)
  // as keys, import and webhooks read it (`PRESENCED_URL= presenced get 1` must not differ)
  assert.equal(serverUrl(undefined, { PRESENCED_URL: '' }), DEFAULT_URL)
  assert.throws(() => serverUrl('', {}), UsageError, 'an explicit empty --url is still refused')
  assert.throws(() => serverUrl(undefined, { PRESENCED_URL: 'localhost:8080' }), UsageError)
})
