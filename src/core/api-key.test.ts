import assert from 'node:assert/strict'
import { test } from 'node:test'
import { expiresWithin, universesWithin } from './api-key.js'

test('universesWithin: what a limited key makes names universes, all of them its own', () => {
  const cases: [made: string[], issuer: string[], within: boolean][] = [
    [[], [], true],
    [['9'], [], true],
    [['1'], ['1', '2'], true],
    [['2', '1'], ['1', '2'], true],
    [[], ['1', '2'], false],
    [['3'], ['1', '2'], false],
    [['1', '3'], ['1', '2'], false],
  ]
  for (const [made, issuer, within] of cases) {
    assert.equal(universesWithin(made, issuer), within, `${made} within ${issuer}`)
  }
})

test('expiresWithin: what an expiring key makes expires no later', () => {
  assert.equal(expiresWithin(undefined, undefined), true)
  assert.equal(expiresWithin(5, undefined), true)
  assert.equal(expiresWithin(5, 5), true)
  assert.equal(expiresWithin(6, 5), false)
  assert.equal(expiresWithin(undefined, 5), false)
})
