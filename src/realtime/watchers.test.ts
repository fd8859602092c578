import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../core/user-id.js'
import { Watchers } from './watchers.js'

const t1 = '1' as UserId
const t2 = '2' as UserId

test('indexes both ways and leaves nothing behind', () => {
  const watchers = new Watchers<string, number>()
  watchers.add('a', t1, 1)
  watchers.add('a', t2, 2)
  watchers.add('b', t1, 3)
  assert.deepEqual([...watchers.watchersOf(t1).keys()], ['a', 'b'])
  assert.deepEqual(
    [...watchers.targetsOf('a')],
    [
      [t1, 1],
      [t2, 2],
    ],
  )
  assert.equal(watchers.get('b', t1), 3)
  assert.equal(watchers.remove('a', t1), false, 'b still watches t1')
  assert.equal(watchers.remove('a', t1), false, 'already gone')
  assert.deepEqual(watchers.removeAll('a'), [t2])
  assert.deepEqual(watchers.removeAll('b'), [t1])
  assert.deepEqual(watchers.size, { targets: 0, connections: 0 })
  assert.equal(watchers.isWatched(t1), false)
  assert.equal(watchers.watchersOf(t1).size, 0)
})
