import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import type { UserId } from '../../core/user-id.js'
import { profileStoreContract } from '../contract/profile-store.contract.js'
import { SqliteProfileStore } from './sqlite-profile-store.js'

profileStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-'))
  const store = new SqliteProfileStore(dir)
  return {
    store,
    cleanup: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

const a = '9007199254740993' as UserId
const b = '9223372036854775807' as UserId

test('everything survives closing and reopening the data dir', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const first = new SqliteProfileStore(dir)
  await first.putSettings(a, { visibility: 'friends', invisible: true, frozenLastOnline: 1234 })
  await first.setFriends(a, b, true)
  await first.setBlocked(b, '5' as UserId, true)
  await first.putPlace({ placeId: '1818', universeId: '13058', rootPlaceId: '1818', name: 'X' })
  await first.putTitle({ titleId: '20', name: 'T', strings: { s: { default: 'S' } } })
  await first.putUser({ userId: a, name: 'a', displayName: 'A' })
  await first.putApiKey({
    id: 'k1',
    name: 'ci',
    hash: 'ab'.repeat(32),
    scopes: ['admin'],
    universes: [],
    createdAt: 1,
    expiresAt: undefined,
    revokedAt: undefined,
  })
  first.saveLastOnline([[a, 5000]])
  await first.close()
  assert.equal(await first.ready(), false)

  const second = new SqliteProfileStore(dir)
  t.after(() => second.close())
  assert.deepEqual(await second.getSettings([a]), [
    { visibility: 'friends', invisible: true, frozenLastOnline: 1234 },
  ])
  assert.deepEqual(await second.listFriends(b), [a])
  assert.deepEqual(await second.getRelations('5' as UserId, [b]), [
    { friends: false, blocked: true },
  ])
  assert.equal((await second.getPlace('1818'))?.universeId, '13058')
  assert.deepEqual((await second.getTitle('20'))?.strings, { s: { default: 'S' } })
  assert.equal((await second.getUser(a))?.displayName, 'A')
  assert.equal((await second.getApiKeyByHash('ab'.repeat(32)))?.id, 'k1')
  assert.deepEqual([...second.loadLastOnline()], [[a, 5000]])
})

test('the lastOnline ledger never moves a value back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteProfileStore(dir)
  t.after(() => store.close())
  store.saveLastOnline([
    [a, 5000],
    [b, 10],
  ])
  store.saveLastOnline([
    [a, 4000],
    [b, 20],
  ])
  assert.deepEqual(
    new Map(store.loadLastOnline()),
    new Map([
      [a, 5000],
      [b, 20],
    ]),
  )
})

test('reads served from memory follow every write: settings, friends, blocks, import', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const store = new SqliteProfileStore(dir)
  t.after(() => store.close())
  const c = '7' as UserId
  const strangers = { friends: false, blocked: false }
  // cache the viewers' (empty) relations first, then change them
  assert.deepEqual(await store.getRelations(a, [b, c]), [strangers, strangers])
  assert.deepEqual(await store.getRelations(b, [a]), [strangers])
  await store.setFriends(a, b, true)
  assert.deepEqual(await store.getRelations(a, [b, c]), [
    { friends: true, blocked: false },
    strangers,
  ])
  assert.deepEqual(await store.getRelations(b, [a]), [{ friends: true, blocked: false }])
  await store.setBlocked(c, a, true)
  assert.deepEqual(await store.getRelations(a, [c]), [{ friends: false, blocked: true }])
  assert.deepEqual(await store.getRelations(c, [a]), [{ friends: false, blocked: true }])
  await store.importPrivacy([
    { type: 'friends', a, b, friends: false },
    { type: 'block', blocker: c, blocked: a, isBlocked: false },
    { type: 'settings', userId: c, settings: { visibility: 'nobody', invisible: false } },
  ])
  assert.deepEqual(await store.getRelations(a, [b, c]), [strangers, strangers])
  assert.equal((await store.getSettings([c]))[0]!.visibility, 'nobody')

  // a setting back to the defaults reads as the defaults; a changed one as changed
  await store.putSettings(c, { visibility: 'everyone', invisible: false })
  await store.putSettings(a, { visibility: 'friends', invisible: true, frozenLastOnline: 9 })
  const [sa, sc] = await store.getSettings([a, c])
  assert.deepEqual({ ...sa }, { visibility: 'friends', invisible: true, frozenLastOnline: 9 })
  assert.deepEqual({ ...sc }, { visibility: 'everyone', invisible: false })
  // readers share the remembered object: it cannot be changed behind the store's back
  assert.throws(() => {
    ;(sa as { invisible: boolean }).invisible = false
  })
})

test('a data dir from before block sights and visibleSince opens, keeping its blocks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-old-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const old = new Database(join(dir, 'presenced.sqlite'))
  old.exec(`
    CREATE TABLE settings (user_id TEXT PRIMARY KEY, visibility TEXT NOT NULL,
      invisible INTEGER NOT NULL, frozen_last_online INTEGER) WITHOUT ROWID;
    CREATE TABLE blocks (blocker TEXT NOT NULL, blocked TEXT NOT NULL,
      PRIMARY KEY (blocker, blocked)) WITHOUT ROWID;
    INSERT INTO settings VALUES ('1', 'nobody', 1, 77);
    INSERT INTO blocks VALUES ('1', '2');
  `)
  old.close()
  const store = new SqliteProfileStore(dir)
  t.after(() => store.close())
  assert.deepEqual(await store.getRelations('2' as UserId, ['1' as UserId]), [
    { friends: false, blocked: true },
  ])
  assert.deepEqual(await store.getSettings(['1' as UserId]), [
    { visibility: 'nobody', invisible: true, frozenLastOnline: 77 },
  ])
  await store.setBlocked('3' as UserId, '2' as UserId, true, { blockerSaw: 5, blockedSaw: 6 })
  await store.putSettings('4' as UserId, {
    visibility: 'everyone',
    invisible: false,
    frozenLastOnline: 8,
    visibleSince: 9,
  })
  await store.close()
  const reopened = new SqliteProfileStore(dir)
  t.after(() => reopened.close())
  assert.deepEqual(await reopened.getRelations('2' as UserId, ['3' as UserId, '1' as UserId]), [
    { friends: false, blocked: true, lastOnline: 6 },
    { friends: false, blocked: true },
  ])
  assert.equal((await reopened.getSettings(['4' as UserId]))[0]!.visibleSince, 9)
})
