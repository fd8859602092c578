import assert from 'node:assert/strict'
import { test } from 'node:test'
import { acceptedLocales, fillTemplate, pickTemplate, renderRichPresence } from './rich-presence.js'

test('acceptedLocales orders by q then position, dropping *, q=0 and junk', () => {
  assert.deepEqual(acceptedLocales('fr-CA,fr;q=0.8,en;q=0.9,*;q=0.1'), ['fr-CA', 'en', 'fr'])
  assert.deepEqual(acceptedLocales('de;q=0, es'), ['es'])
  assert.deepEqual(acceptedLocales('en_US, <script>, ja'), ['ja'])
  assert.deepEqual(acceptedLocales(undefined), [])
  assert.deepEqual(acceptedLocales(''), [])
})

test('pickTemplate: exact, then language, per locale; then default; then first', () => {
  const t = { 'en-US': 'us', en: 'en', fr: 'fr', default: 'neutral' }
  assert.equal(pickTemplate(t, ['en-US']), 'us')
  assert.equal(pickTemplate(t, ['en-GB']), 'en')
  assert.equal(pickTemplate(t, ['EN-us']), 'us')
  assert.equal(pickTemplate(t, ['de', 'fr-BE']), 'fr')
  assert.equal(pickTemplate(t, ['de']), 'neutral')
  assert.equal(pickTemplate({ ja: 'ja', ko: 'ko' }, ['de']), 'ja')
  assert.equal(pickTemplate({}, ['de']), undefined)
})

test('fillTemplate fills {n} and leaves missing params empty', () => {
  assert.equal(fillTemplate('{0} on {1}', ['A', 'B']), 'A on B')
  assert.equal(fillTemplate('{1}{0}{1}', ['a', 'b']), 'bab')
  assert.equal(fillTemplate('{0} on {2}', ['A']), 'A on ')
  assert.equal(fillTemplate('no params', ['A']), 'no params')
})

test('renderRichPresence needs the title and a string of its own', () => {
  const title = { titleId: '1', name: 'T', strings: { map: { default: 'On {0}' } } }
  assert.equal(renderRichPresence(title, { id: 'map', params: ['X'] }, []), 'On X')
  assert.equal(renderRichPresence(title, { id: 'other', params: [] }, []), undefined)
  assert.equal(renderRichPresence(title, { id: 'constructor', params: [] }, []), undefined)
  assert.equal(renderRichPresence(title, { id: '__proto__', params: [] }, []), undefined)
  assert.equal(renderRichPresence(undefined, { id: 'map', params: [] }, []), undefined)
})
