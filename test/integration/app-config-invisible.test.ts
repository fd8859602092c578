import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/app/config.js'

test('PRESENCED_INVISIBLE_SELF_VIEW: the real state by default, 4 only when opted in', () => {
  assert.equal(loadConfig({}).invisibleSelfView, 'state')
  assert.equal(
    loadConfig({ PRESENCED_INVISIBLE_SELF_VIEW: 'invisible' }).invisibleSelfView,
    'invisible',
  )
  assert.equal(
    loadConfig({ PRESENCED_INVISIBLE_SELF_VIEW: 'Offline' }).invisibleSelfView,
    'offline',
  )
  assert.equal(loadConfig({ PRESENCED_INVISIBLE_SELF_VIEW: '' }).invisibleSelfView, 'state')
})

test('the old PRESENCED_INVISIBLE_AS_OFFLINE keeps its meaning, and a contradiction is refused', () => {
  assert.equal(loadConfig({ PRESENCED_INVISIBLE_AS_OFFLINE: '1' }).invisibleSelfView, 'offline')
  assert.equal(loadConfig({ PRESENCED_INVISIBLE_AS_OFFLINE: '0' }).invisibleSelfView, 'state')
  assert.equal(
    loadConfig({ PRESENCED_INVISIBLE_AS_OFFLINE: 'true', PRESENCED_INVISIBLE_SELF_VIEW: 'offline' })
      .invisibleSelfView,
    'offline',
  )
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { PRESENCED_INVISIBLE_SELF_VIEW: 'hidden' },
      /^PRESENCED_INVISIBLE_SELF_VIEW must be one of state, invisible, offline, got "hidden"$/,
    ],
    [
      { PRESENCED_INVISIBLE_AS_OFFLINE: '1', PRESENCED_INVISIBLE_SELF_VIEW: 'invisible' },
      /contradicts PRESENCED_INVISIBLE_SELF_VIEW=invisible/,
    ],
    [
      { PRESENCED_INVISIBLE_AS_OFFLINE: 'maybe' },
      /replaced by PRESENCED_INVISIBLE_SELF_VIEW=offline/,
    ],
  ]
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(env),
    )
  }
})

test('Xbox read limits: 30 per 15 s and 300 per 300 s per caller unless set', () => {
  const defaults = loadConfig({})
  assert.deepEqual([defaults.xboxReadBurstMax, defaults.xboxReadSustainMax], [30, 300])
  const set = loadConfig({ PRESENCED_XBOX_READ_BURST: '5', PRESENCED_XBOX_READ_SUSTAIN: '9' })
  assert.deepEqual([set.xboxReadBurstMax, set.xboxReadSustainMax], [5, 9])
  assert.throws(() => loadConfig({ PRESENCED_XBOX_READ_BURST: '0' }), /PRESENCED_XBOX_READ_BURST/)
})

test('game server key budget: unset (50 times the per-server limit) unless set, at least 1', () => {
  assert.equal(loadConfig({}).serverKeyRateLimitMax, undefined)
  assert.equal(loadConfig({ PRESENCED_SERVER_KEY_RATE_LIMIT: '900' }).serverKeyRateLimitMax, 900)
  assert.throws(
    () => loadConfig({ PRESENCED_SERVER_KEY_RATE_LIMIT: '0' }),
    /PRESENCED_SERVER_KEY_RATE_LIMIT/,
  )
})
