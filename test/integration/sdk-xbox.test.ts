import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, PresencedError, PresenceType } from '@presenced/client'
import { ManualClock } from '../../src/service/clock.js'
import { staggeredSleep } from '../helpers/staggered-sleep.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const ME = '2533274800000001'
const FRIEND = '2533274800000002'

test('SDK Xbox against presenced: title presence with heartbeat, batch, me, friends, cloak', async (t) => {
  const server = await startApp(t, {
    listen: true,
    config: { xboxHeartbeatSeconds: 1, xboxBurstMax: 100 },
  })
  const admin = (path: string) =>
    fetch(server.url + path, { method: 'PUT', headers: { 'x-api-key': ADMIN_KEY } })
  assert.equal((await admin(`/admin/v1/users/${ME}/friends/${FRIEND}`)).status, 204)

  const me = createClient({ baseUrl: server.url, token: await server.tokens.issue(ME as never) })
  const friend = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(FRIEND as never),
  })

  const title = me.xbox.setTitlePresence({ titleId: 1717113201, deviceType: 'Scarlett' })
  t.after(() => title.stop())
  await title.ready
  assert.equal(title.intervalMs, 1000, 'X-Heartbeat-After is honoured')

  const mine = await me.xbox.me('all')
  assert.equal(mine.xuid, ME)
  assert.equal(mine.state, 'Online')
  assert.equal(mine.devices[0]!.type, 'Scarlett')
  assert.equal(mine.devices[0]!.titles[0]!.id, '1717113201')
  assert.ok(mine.devices[0]!.titles[0]!.lastModified instanceof Date)

  const [record, stranger] = await friend.xbox.batch({ users: [ME, 2533274800000099n] })
  assert.equal(record!.xuid, ME)
  assert.equal(record!.state, 'Online')
  assert.equal(stranger!.state, 'Offline')
  assert.equal((await friend.xbox.user(ME, 'device')).devices[0]!.type, 'Scarlett')
  const friends = await friend.xbox.friends()
  assert.deepEqual(
    friends.map((f) => [f.xuid, f.state]),
    [[ME, 'Online']],
  )
  // the same sessions show through the Roblox API
  assert.equal((await friend.getUserPresence(ME)).type, PresenceType.Online)

  await me.xbox.cloak(true)
  assert.equal((await friend.xbox.user(ME)).state, 'Offline', 'cloaked: appears offline')
  await me.xbox.cloak(false)
  assert.equal((await friend.xbox.user(ME)).state, 'Online')

  // a beat or two later the title is still there (the heartbeat keeps it alive past its TTL)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  assert.equal((await friend.xbox.user(ME)).state, 'Online')

  await title.stop()
  const after = await friend.xbox.user(ME)
  assert.notEqual(after.state, 'Online', 'stop() removed the title presence')
})

test('SDK Xbox against presenced: errors are typed; batches over 1100 are split', async (t) => {
  const server = await startApp(t, { listen: true })
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(ME as never),
  })
  const users = Array.from({ length: 1500 }, (_, i) => String(2533274800000000n + BigInt(i + 1)))
  const records = await client.xbox.batch({ users, level: 'user' })
  assert.deepEqual(
    records.map((r) => r.xuid),
    users,
  )

  const other = await client.xbox.cloak(true, FRIEND).catch((e: unknown) => e)
  assert.ok(other instanceof PresencedError)
  assert.equal(other.status, 403)
  assert.equal(other.protocol, 'xbox')
  assert.equal(typeof other.code, 'number')

  const anonymous = createClient({ baseUrl: server.url, token: 'bad' })
  await assert.rejects(anonymous.xbox.me(), { status: 401, protocol: 'xbox' })
})

test('SDK Xbox against presenced: batch keeps order and answers duplicates, within and across chunks', async (t) => {
  const server = await startApp(t, { listen: true })
  const client = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(ME as never),
  })
  // presenced answers each XUID once; the SDK must still answer every position asked
  const few = [ME, FRIEND, ME, 2533274800000002n, '2533274800000007']
  const answered = await client.xbox.batch({ users: few, level: 'user' })
  assert.deepEqual(
    answered.map((r) => r.xuid),
    [ME, FRIEND, ME, FRIEND, '2533274800000007'],
  )

  const many = Array.from({ length: 1100 }, (_, i) => String(2533274800000000n + BigInt(i + 1)))
  const users = [many[5]!, ...many, many[0]!, many[1099]!]
  const records = await client.xbox.batch({ users, level: 'user' })
  assert.deepEqual(
    records.map((r) => r.xuid),
    users,
  )
})

test(
  'SDK Xbox: when one chunk of a batch over 1100 XUIDs fails, the others stop: no request after the rejection',
  { timeout: 30_000 },
  async (t) => {
    // one read a window, on a clock that stands still: every later read is answered 429
    const server = await startApp(t, {
      listen: true,
      clock: new ManualClock(),
      config: { xboxReadBurstMax: 1 },
    })
    const proxy = await startTcpProxy(t, Number(new URL(server.url).port))
    const reads = proxy.count((chunk) => chunk.includes('POST /users/batch'))
    const client = createClient({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      token: await server.tokens.issue(ME as never),
      maxConcurrency: 3,
      retry: { maxAttempts: 2 },
      sleep: staggeredSleep(20, 600),
    })
    // three chunks at once: one answered, two refused; the first refused retries after 20 ms,
    // is refused again and fails the call while the other still waits its 600 ms
    const users = Array.from({ length: 3300 }, (_, i) => 2533274800000001n + BigInt(i))
    const failure = await client.xbox.batch({ users }).catch((e: unknown) => e)
    assert.ok(failure instanceof PresencedError, `a PresencedError, got ${String(failure)}`)
    assert.equal(failure.status, 429)
    const atRejection = reads()
    assert.equal(atRejection, 4, 'three chunks and one retry')
    await new Promise((resolve) => setTimeout(resolve, 1200))
    assert.equal(reads(), atRejection, 'no chunk went on asking after the call failed')
  },
)

test('SDK Xbox: clearTitlePresence sends the titleId as given, so a malformed one clears nothing', async (t) => {
  const server = await startApp(t, { listen: true, config: { xboxBurstMax: 100 } })
  const me = createClient({ baseUrl: server.url, token: await server.tokens.issue(ME as never) })
  const titles = async () =>
    (await me.xbox.me('title')).devices.flatMap((d) => d.titles.map((title) => title.id)).sort()
  const five = me.xbox.setTitlePresence({ titleId: 5 })
  const six = me.xbox.setTitlePresence({ titleId: 6 })
  try {
    await Promise.all([five.ready, six.ready])
    assert.deepEqual(await titles(), ['5', '6'])
    // '#7' was taken for the URL's fragment: the request named title 6, which it ended
    // ('6 ' is title 6 by the one id rule, src/core/user-id.ts: ASCII padding is taken)
    for (const titleId of ['6#7', '6?x=1', '5&titleId=6', '6\u00a0', '06', '+6']) {
      await assert.rejects(
        me.xbox.clearTitlePresence({ titleId }),
        (error: unknown) => error instanceof PresencedError && error.status === 400,
        JSON.stringify(titleId),
      )
    }
    assert.deepEqual(await titles(), ['5', '6'])
    await me.xbox.clearTitlePresence({ titleId: 6 })
    assert.deepEqual(await titles(), ['5'])
  } finally {
    await Promise.all([five.stop(), six.stop()])
  }
})
