import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp } from '../helpers/start-app.js'

/*
 * The records of ended blocks (what each side saw through a block, shown until the other is next
 * seen alive) are pruned once they change nothing: the target seen alive since, or idle all along.
 * Pruning never changes what anyone is shown; an unresolved record stays.
 */

const A = '9223372036854770101' as UserId
const B = '9223372036854770102' as UserId
const C = '9223372036854770103' as UserId
const D = '9223372036854770104' as UserId

async function pruning(t: TestContext, config: Partial<Config>): Promise<void> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const { service, stores } = await startApp(t, { clock, config })
  const online = (userId: UserId) =>
    service.heartbeat({
      userId,
      key: 'app',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online' },
    })
  const offline = (userId: UserId) => service.endSession(userId, 'app')
  const shown = async () =>
    Promise.all(
      [
        [A, B],
        [B, A],
        [C, D],
        [D, C],
      ].map(async ([viewer, target]) => {
        const [seen] = await service.lookup({ kind: 'user', userId: viewer! }, [target!])
        return [seen!.state, seen!.lastOnline]
      }),
    )
  const ends = async () =>
    (await stores.profiles.blockEnds(0, 100)).map((end) => `${end.viewer}>${end.target}`).sort()

  // B was online when A blocked it, then alive unseen by A; C and D never were
  await online(B)
  await service.setBlocked(A, B, true)
  await service.setBlocked(C, D, true)
  clock.advance(5_000)
  await online(B)
  await offline(B)
  clock.advance(5_000)
  await service.setBlocked(A, B, false)
  await service.setBlocked(C, D, false)
  assert.deepEqual(await ends(), [`${A}>${B}`, `${B}>${A}`, `${C}>${D}`, `${D}>${C}`].sort())

  // only A's record of B still changes something: B did something A must not see
  const before = await shown()
  assert.equal(await service.pruneBlockEnds(), 3)
  assert.deepEqual(await ends(), [`${A}>${B}`])
  assert.deepEqual(await shown(), before, 'pruning changes nothing anyone is shown')
  assert.equal(await service.pruneBlockEnds(), 0)

  // B seen alive after the block ended: A's record is done with
  clock.advance(1_000)
  await online(B)
  await offline(B)
  const seen = await shown()
  assert.equal(await service.pruneBlockEnds(), 1)
  assert.deepEqual(await ends(), [])
  assert.deepEqual(await shown(), seen)
}

test('embedded: ended blocks are pruned once they change nothing', async (t) => {
  await pruning(t, {})
})

test('fleet: ended blocks are pruned once they change nothing', async (t) => {
  const prefix = uniquePrefix('block-ends')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  await pruning(t, { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix })
})

test('a walk limited to fewer records than there are resumes where it stopped', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const { service, stores } = await startApp(t, { clock })
  // ten pairs that never did anything: every record is resolved
  for (let i = 0; i < 10; i++) {
    const [x, y] = [`${100 + 2 * i}`, `${101 + 2 * i}`] as UserId[]
    await service.setBlocked(x!, y!, true)
    clock.advance(1)
    await service.setBlocked(x!, y!, false)
  }
  assert.equal((await stores.profiles.blockEnds(0, 100)).length, 20)
  assert.equal(await service.pruneBlockEnds(7, 3), 7)
  assert.equal(await service.pruneBlockEnds(7, 3), 7)
  assert.equal(await service.pruneBlockEnds(7, 3), 6)
  assert.deepEqual(await stores.profiles.blockEnds(0, 100), [])
})
