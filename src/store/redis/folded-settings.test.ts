import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { defaultSettings, type UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { SessionWrite } from '../presence-store.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisPresenceStore } from './redis-presence-store.js'
import { RedisProfileStore } from './redis-profile-store.js'

/*
 * Each user's privacy settings folded into its presence value (presence-codec.ts): a read takes
 * both from one key, and every write keeps the copy in step with the settings key.
 */

const single: RedisTarget = { url: LOCAL_REDIS_URL }
const clusterTarget = clusterForThisFile()

const T0 = Date.UTC(2026, 0, 1)
const id = (n: number) => String(n) as UserId
const write = (userId: UserId, key = 'app:iOS'): SessionWrite => ({
  userId,
  key,
  source: 'app',
  deviceType: 'iOS',
  activity: { kind: 'online' },
  ttlMs: 60_000,
})
const invisible: UserSettings = { visibility: 'friends', invisible: true, frozenLastOnline: T0 }

/** A node: its presence and profile stores on one connection, as createStores wires them. */
async function node(t: TestContext, target: RedisTarget, prefix: string) {
  const connection = new RedisConnection(target, PATIENT)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const presence = new RedisPresenceStore(connection, keys)
  const profiles = new RedisProfileStore(connection, keys)
  t.after(async () => {
    await presence.close()
    await profiles.close()
  })
  const read = async (ids: UserId[], now = T0 + 1) => {
    const [summaries, settings] = (await presence.summarizeWithSettings(ids, now, profiles))!
    const [presences, again] = (await presence.getManyWithSettings(ids, now, profiles))!
    assert.deepEqual(again, settings, 'getManyWithSettings reads the same settings')
    assert.deepEqual(
      presences.map((p) => p.sessions.length),
      summaries.map((s) => s.sessions),
    )
    return { summaries, settings }
  }
  return { connection, keys, presence, profiles, read }
}

/** Commands the connection sends while `work` runs. */
async function commandsOf(connection: RedisConnection, work: () => Promise<unknown>) {
  const client = connection.client as Redis
  const sent: string[] = []
  const original = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string }) => {
    sent.push(command.name)
    return original(command as never)
  }) as typeof client.sendCommand
  try {
    await work()
  } finally {
    client.sendCommand = original
  }
  return sent
}

for (const [name, target] of [
  ['single Redis', async () => single],
  ['3-master cluster', clusterTarget],
] as const) {
  test(`${name}: a settings write shows in the next read on every node, with or without a presence`, async (t) => {
    const resolved = await target()
    const prefix = uniquePrefix('folded')
    t.after(() => deleteKeys(resolved, prefix))
    const a = await node(t, resolved, prefix)
    const b = await node(t, resolved, prefix)
    await a.presence.heartbeat(write(id(1)), T0)
    await a.profiles.putSettings(id(1), invisible)
    // 2 never had a presence: its settings still read right
    await a.profiles.putSettings(id(2), { visibility: 'nobody', invisible: false })
    for (const n of [a, b]) {
      const { summaries, settings } = await n.read([id(1), id(2), id(3)])
      assert.deepEqual(settings, [
        invisible,
        { visibility: 'nobody', invisible: false },
        defaultSettings,
      ])
      assert.deepEqual(
        summaries.map((s) => [s.sessions, s.lastOnline]),
        [
          [1, T0],
          [0, undefined],
          [0, undefined],
        ],
      )
    }
    // the settings survive the presence scripts that rewrite the value: heartbeat, end, sweep;
    // each change carries those it was stored with, in the same step (the webhooks judge it by
    // them, whatever changed since)
    const changes = [
      await b.presence.heartbeat(write(id(1), 'app:PC'), T0 + 1),
      await b.presence.end(id(1), 'app:PC', T0 + 2, 'explicit'),
      await a.presence.heartbeat(write(id(2)), T0 + 2),
      ...(await a.presence.sweepExpired(T0 + 120_000, 100)),
    ]
    assert.deepEqual(
      changes.map((c) => [c?.userId, c?.settings]).sort(),
      [
        [id(1), invisible],
        [id(1), invisible],
        [id(1), invisible],
        [id(2), { visibility: 'nobody', invisible: false }],
        [id(2), { visibility: 'nobody', invisible: false }],
      ].sort(),
    )
    const after = await b.read([id(1), id(2)], T0 + 120_000)
    assert.deepEqual(after.settings, [invisible, { visibility: 'nobody', invisible: false }])
    assert.deepEqual(
      after.summaries.map((s) => [s.sessions, s.lastOnline]),
      [
        [0, T0 + 2],
        [0, T0 + 2],
      ],
    )
    // back to the defaults, on the other node
    await b.profiles.putSettings(id(1), { visibility: 'everyone', invisible: false })
    assert.deepEqual((await a.read([id(1)])).settings, [defaultSettings])
    assert.deepEqual(await a.profiles.getSettings([id(1), id(2)]), [
      defaultSettings,
      { visibility: 'nobody', invisible: false },
    ])
  })
}

test('a read of settings and presences is one MGET; a settings-only value goes with the defaults', async (t) => {
  const prefix = uniquePrefix('folded')
  t.after(() => deleteKeys(single, prefix))
  const a = await node(t, single, prefix)
  await a.profiles.foldStoredSettings() // as every node's start does
  const ids = Array.from({ length: 50 }, (_, i) => id(7000 + i))
  for (const user of ids.slice(0, 10)) await a.presence.heartbeat(write(user), T0)
  await a.profiles.putSettings(ids[3]!, invisible)
  await a.profiles.putSettings(ids[40]!, invisible)
  let read: Awaited<ReturnType<typeof a.read>> | undefined
  const sent = await commandsOf(a.connection, async () => {
    const [summaries, settings] = (await a.presence.summarizeWithSettings(ids, T0, a.profiles))!
    read = { summaries, settings }
  })
  assert.deepEqual(sent, ['mget'])
  assert.deepEqual(read!.settings[3], invisible)
  assert.deepEqual(read!.settings[40], invisible)
  assert.equal(read!.settings.filter((s) => s === defaultSettings).length, 48)

  const client = a.connection.client as Redis
  assert.equal(await client.exists(a.keys.presence(ids[40]!)), 1)
  await a.profiles.putSettings(ids[40]!, defaultSettings)
  assert.equal(await client.exists(a.keys.presence(ids[40]!)), 0, 'nothing left to keep')
  await a.profiles.putSettings(ids[3]!, defaultSettings)
  assert.equal(await client.exists(a.keys.presence(ids[3]!)), 1, 'its presence stays')
})

test('an import of settings folds them as putSettings does', async (t) => {
  const prefix = uniquePrefix('folded')
  t.after(() => deleteKeys(single, prefix))
  const a = await node(t, single, prefix)
  await a.presence.heartbeat(write(id(5)), T0)
  await a.profiles.importPrivacy([
    { type: 'settings', userId: id(5), settings: invisible },
    { type: 'settings', userId: id(6), settings: { visibility: 'friends', invisible: false } },
  ])
  assert.deepEqual((await a.read([id(5), id(6)])).settings, [
    invisible,
    { visibility: 'friends', invisible: false },
  ])
})

test('values from before settings were folded: read through the settings key, folded by the next write', async (t) => {
  const prefix = uniquePrefix('folded')
  t.after(() => deleteKeys(single, prefix))
  const a = await node(t, single, prefix)
  const client = a.connection.client as Redis
  const settingsText = JSON.stringify(invisible)
  // as an older version left them: no settings on the value's first line
  const session = `,[0,60000,0,"app:iOS","a","iOS",[1]]`
  await client.set(a.keys.presence(id(8)), `[${T0}\n${session}\n]`)
  await client.set(a.keys.settings(id(8)), settingsText)
  await client.set(a.keys.presence(id(9)), `[${T0}\n]`)
  const first = await a.read([id(8), id(9)])
  assert.deepEqual(first.settings, [invisible, defaultSettings])
  assert.deepEqual(
    first.summaries.map((s) => [s.sessions, s.lastOnline]),
    [
      [1, T0],
      [0, T0],
    ],
  )
  // the next write of the value folds the settings in
  await a.presence.heartbeat(write(id(8)), T0 + 5)
  assert.equal(
    (await client.get(a.keys.presence(id(8))))!.split('\n')[0],
    `[${T0 + 5},${settingsText}`,
  )
  const sent = await commandsOf(a.connection, () =>
    a.presence.summarizeWithSettings([id(8)], T0 + 6, a.profiles)!,
  )
  assert.deepEqual(sent, ['mget'], 'no second MGET for the settings')
  assert.deepEqual((await a.read([id(8)])).settings, [invisible])
})

test('foldStoredSettings folds the settings keys an older version left, once', async (t) => {
  const prefix = uniquePrefix('folded')
  t.after(() => deleteKeys(single, prefix))
  const a = await node(t, single, prefix)
  const client = a.connection.client as Redis
  // settings of a user who was never online, and of one with an old value
  await client.set(a.keys.settings(id(21)), JSON.stringify(invisible))
  await client.set(
    a.keys.settings(id(22)),
    JSON.stringify({ visibility: 'nobody', invisible: false }),
  )
  await client.set(a.keys.presence(id(22)), `[${T0}\n]`)
  await client.set(a.keys.settings(id(23)), JSON.stringify(defaultSettings))
  // before the pass, a user with settings and no value reads with its settings (a second MGET)
  let early: Awaited<ReturnType<typeof a.read>> | undefined
  const sentEarly = await commandsOf(a.connection, async () => {
    early = await a.read([id(21)])
  })
  assert.deepEqual(early!.settings, [invisible], 'not folded yet, and still invisible')
  assert.deepEqual(sentEarly, ['mget', 'mget', 'mget', 'mget'])
  assert.equal(await a.profiles.foldStoredSettings(), 3)
  const sentAfter = await commandsOf(a.connection, () => a.read([id(21)]))
  assert.deepEqual(sentAfter, ['mget', 'mget'], 'one MGET per read once folded')
  assert.deepEqual((await a.read([id(21), id(22), id(23)])).settings, [
    invisible,
    { visibility: 'nobody', invisible: false },
    defaultSettings,
  ])
  assert.equal(await client.exists(a.keys.presence(id(23))), 0)
  assert.equal(await a.profiles.foldStoredSettings(), 0, 'done once per Redis')
})
