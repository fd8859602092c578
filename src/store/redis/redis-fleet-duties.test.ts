import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { RedisKeys } from './keys.js'
import { RedisConnection } from './redis-connection.js'
import { RedisFleetDuties } from './redis-fleet-duties.js'

test('RedisFleetDuties: one holder at a time, renewed, given up, lapsed; results published and read', async (t) => {
  const prefix = uniquePrefix('duties')
  const connection = new RedisConnection({ url: LOCAL_REDIS_URL }, PATIENT).retain()
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  t.after(async () => {
    await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)
    await connection.release()
  })
  const keys = new RedisKeys(prefix)
  const a = new RedisFleetDuties(connection, keys, 'node-a')
  const b = new RedisFleetDuties(connection, keys, 'node-b')

  assert.equal(await a.take('stats', 10_000), true)
  assert.equal(await b.take('stats', 10_000), false)
  assert.equal(await a.take('stats', 10_000), true, 'renewed by its holder')
  // another duty is another lease
  assert.equal(await b.take('block-ends', 10_000), true)
  await b.release('stats')
  assert.equal(await b.take('stats', 10_000), false, 'b cannot give up what a holds')
  await a.release('stats')
  assert.equal(await b.take('stats', 200), true, 'taken at once once given up')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(await a.take('stats', 10_000), true, 'taken once the holder let it lapse')

  assert.equal(await b.read('stats'), null)
  await a.publish('stats', '{"v":1}', 10_000)
  assert.equal(await b.read('stats'), '{"v":1}')
  await a.publish('stats', 'second', 200)
  assert.equal(await b.read('stats'), 'second')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(await b.read('stats'), null, 'kept for its time only')
})
