/**
 * The ProfileStore contract: every adapter must pass it against its real backend.
 *
 * @example
 * profileStoreContract('sqlite', async () => {
 *   const dir = mkdtempSync(join(tmpdir(), 'presenced-'))
 *   const store = new SqliteProfileStore(dir)
 *   return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true }) } }
 * })
 *
 * The factory must return a fresh, empty store for every test; `cleanup` closes it and deletes
 * whatever it wrote.
 */
import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { BlockEnd, UserSettings } from '../../core/privacy.js'
import { parseUserId, type UserId } from '../../core/user-id.js'
import type { ApiKeyRecord } from '../../core/api-key.js'
import type { Place, Title } from '../../core/catalogue.js'
import type { ProfileStore } from '../profile-store.js'

export type ProfileStoreFactory = () => Promise<{
  store: ProfileStore
  cleanup(): Promise<void>
}>

function id(value: string): UserId {
  const parsed = parseUserId(value)
  assert.ok(parsed, `test id ${value} must be valid`)
  return parsed
}

/** Optional fields may come back absent or undefined: compare them as values. */
function settingsOf(s: UserSettings): UserSettings {
  return {
    visibility: s.visibility,
    invisible: s.invisible,
    frozenLastOnline: s.frozenLastOnline ?? undefined,
    ...(s.visibleSince !== undefined &&
      s.visibleSince !== null && { visibleSince: s.visibleSince }),
  }
}

function keyOf(k: ApiKeyRecord): ApiKeyRecord {
  return {
    id: k.id,
    name: k.name,
    hash: k.hash,
    scopes: [...k.scopes],
    universes: [...k.universes],
    createdAt: k.createdAt,
    expiresAt: k.expiresAt ?? undefined,
    revokedAt: k.revokedAt ?? undefined,
    ...(k.issuedBy != null && { issuedBy: k.issuedBy }),
  }
}

const T0 = Date.UTC(2026, 0, 1)

function apiKey(n: number, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: `key${n}`,
    name: `key number ${n}`,
    hash: `${n}`.padStart(64, 'a'),
    scopes: ['presence:read'],
    universes: [],
    createdAt: T0 + n,
    expiresAt: undefined,
    revokedAt: undefined,
    ...extra,
  }
}

/** A listed block end as a value (an absent `saw` and an undefined one compare equal). */
function endOf(end: BlockEnd): BlockEnd {
  return { viewer: end.viewer, target: end.target, saw: end.saw ?? undefined, since: end.since }
}

export function profileStoreContract(name: string, factory: ProfileStoreFactory): void {
  async function open(t: TestContext): Promise<ProfileStore> {
    const { store, cleanup } = await factory()
    t.after(cleanup)
    return store
  }

  describe(`ProfileStore contract: ${name}`, () => {
    test('is ready', async (t) => {
      const store = await open(t)
      assert.equal(await store.ready(), true)
    })

    test('settings default to visible to everyone', async (t) => {
      const store = await open(t)
      const settings = await store.getSettings([id('1'), id('2')])
      assert.deepEqual(settings.map(settingsOf), [
        { visibility: 'everyone', invisible: false, frozenLastOnline: undefined },
        { visibility: 'everyone', invisible: false, frozenLastOnline: undefined },
      ])
      assert.deepEqual(await store.getSettings([]), [])
    })

    test('settings put and get, in order, replaced on put', async (t) => {
      const store = await open(t)
      await store.putSettings(id('1'), { visibility: 'friends', invisible: false })
      await store.putSettings(id('2'), {
        visibility: 'nobody',
        invisible: true,
        frozenLastOnline: T0,
      })
      const got = await store.getSettings([id('2'), id('3'), id('1'), id('2')])
      assert.deepEqual(got.map(settingsOf), [
        { visibility: 'nobody', invisible: true, frozenLastOnline: T0 },
        { visibility: 'everyone', invisible: false, frozenLastOnline: undefined },
        { visibility: 'friends', invisible: false, frozenLastOnline: undefined },
        { visibility: 'nobody', invisible: true, frozenLastOnline: T0 },
      ])
      await store.putSettings(id('2'), { visibility: 'everyone', invisible: false })
      const [after] = await store.getSettings([id('2')])
      assert.deepEqual(settingsOf(after!), {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: undefined,
      })
    })

    test('settings replaced only while they are still the ones expected', async (t) => {
      const store = await open(t)
      const defaults: UserSettings = { visibility: 'everyone', invisible: false }
      const hidden: UserSettings = { visibility: 'everyone', invisible: true, frozenLastOnline: T0 }
      const friends: UserSettings = { visibility: 'friends', invisible: false }
      // none stored: the defaults are what is expected
      assert.equal(await store.replaceSettings(id('1'), defaults, hidden), true)
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), hidden)
      // a change computed from the defaults, read before `hidden` landed: refused, nothing stored
      assert.equal(await store.replaceSettings(id('1'), defaults, friends), false)
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), hidden)
      // computed from what is stored now: stored
      const both: UserSettings = { ...hidden, visibility: 'friends' }
      assert.equal(await store.replaceSettings(id('1'), hidden, both), true)
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), both)
      // back to the defaults, then expected as the defaults again
      assert.equal(await store.replaceSettings(id('1'), both, defaults), true)
      assert.equal(await store.replaceSettings(id('1'), defaults, friends), true)
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), {
        ...friends,
        frozenLastOnline: undefined,
      })
      // another user's settings are not this one's
      assert.equal(await store.replaceSettings(id('2'), friends, hidden), false)
      assert.deepEqual(settingsOf((await store.getSettings([id('2')]))[0]!), {
        ...defaults,
        frozenLastOnline: undefined,
      })
    })

    test('an import writes a settings record with `expected` only while it is still stored; the rest of the batch lands', async (t) => {
      const store = await open(t)
      const defaults: UserSettings = { visibility: 'everyone', invisible: false }
      const hidden: UserSettings = { visibility: 'everyone', invisible: true, frozenLastOnline: T0 }
      const friends: UserSettings = { visibility: 'friends', invisible: false }
      const nobody: UserSettings = { visibility: 'nobody', invisible: false }
      await store.putSettings(id('1'), hidden)
      const refused = await store.importPrivacy([
        // computed from the defaults, read before `hidden` landed: refused
        { type: 'settings', userId: id('1'), settings: friends, expected: defaults },
        { type: 'friends', a: id('1'), b: id('2'), friends: true },
        // a second record of user 3 expects what the first one stores
        { type: 'settings', userId: id('3'), settings: friends, expected: defaults },
        { type: 'settings', userId: id('3'), settings: nobody, expected: friends },
        // a second record of user 1 expected what the refused first would have stored: refused
        { type: 'settings', userId: id('1'), settings: nobody, expected: friends },
        // no expectation: written whatever is stored
        { type: 'settings', userId: id('4'), settings: hidden },
      ])
      assert.deepEqual(refused, [0, 4])
      const stored = (await store.getSettings([id('1'), id('3'), id('4')])).map(settingsOf)
      assert.deepEqual(stored, [hidden, { ...nobody, frozenLastOnline: undefined }, hidden])
      assert.deepEqual(await store.listFriends(id('2')), [id('1')])
      // computed from what is stored now: stored
      assert.deepEqual(
        await store.importPrivacy([
          { type: 'settings', userId: id('1'), settings: friends, expected: hidden },
        ]),
        [],
      )
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), {
        ...friends,
        frozenLastOnline: undefined,
      })
    })

    test('friendship is mutual and can be undone', async (t) => {
      const store = await open(t)
      await store.setFriends(id('1'), id('2'), true)
      await store.setFriends(id('1'), id('3'), true)
      assert.deepEqual(await store.getRelations(id('2'), [id('1'), id('3')]), [
        { friends: true, blocked: false },
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('1'), [id('3'), id('2'), id('4')]), [
        { friends: true, blocked: false },
        { friends: true, blocked: false },
        { friends: false, blocked: false },
      ])
      assert.deepEqual((await store.listFriends(id('1'))).sort(), ['2', '3'])
      assert.deepEqual(await store.listFriends(id('2')), ['1'])
      assert.deepEqual(await store.listFriends(id('4')), [])
      // setting it twice changes nothing
      await store.setFriends(id('2'), id('1'), true)
      assert.deepEqual(await store.listFriends(id('2')), ['1'])
      await store.setFriends(id('2'), id('1'), false)
      assert.deepEqual(await store.listFriends(id('1')), ['3'])
      assert.deepEqual(await store.listFriends(id('2')), [])
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: false },
      ])
    })

    test('a block shows in getRelations from either side', async (t) => {
      const store = await open(t)
      await store.setBlocked(id('1'), id('2'), true)
      assert.deepEqual(await store.getRelations(id('1'), [id('2'), id('3')]), [
        { friends: false, blocked: true },
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: false, blocked: true },
      ])
      assert.deepEqual(await store.getRelations(id('3'), [id('1'), id('2')]), [
        { friends: false, blocked: false },
        { friends: false, blocked: false },
      ])
      // friends who block each other are still friends, but blocked
      await store.setFriends(id('1'), id('2'), true)
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: true, blocked: true },
      ])
      await store.setBlocked(id('1'), id('2'), false)
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: true, blocked: false },
      ])
      // unblocking one direction leaves the other
      await store.setBlocked(id('1'), id('2'), true)
      await store.setBlocked(id('2'), id('1'), true)
      await store.setBlocked(id('1'), id('2'), false)
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: true, blocked: true },
      ])
    })

    test('getRelations by the values of the targets answers as by their ids', async (t) => {
      const store = await open(t)
      await store.setFriends(id('1'), id('2'), true)
      await store.setFriends(id('1'), id('9007199254740993'), true)
      await store.setBlocked(id('1'), id('3'), true, { blockerSaw: T0, blockedSaw: T0 + 1 })
      await store.setBlocked(id('4'), id('1'), true)
      // values are given for ids below 2^53 only
      const targets = [id('4'), id('2'), id('5'), id('3'), id('1'), id('9007199254740991')]
      const byIds = await store.getRelations(id('1'), targets)
      assert.deepEqual(byIds.slice(0, 4), [
        { friends: false, blocked: true },
        { friends: true, blocked: false },
        { friends: false, blocked: false },
        { friends: false, blocked: true, lastOnline: T0 },
      ])
      assert.deepEqual(await store.getRelations(id('1'), targets, targets.map(Number)), byIds)
    })

    test('settings keep a frozen lastOnline after invisibility ended, with its end', async (t) => {
      const store = await open(t)
      const ended = {
        visibility: 'friends',
        invisible: false,
        frozenLastOnline: T0,
        visibleSince: T0 + 9,
      } as const
      await store.putSettings(id('1'), ended)
      assert.deepEqual(settingsOf((await store.getSettings([id('1')]))[0]!), ended)
      // never seen before: the frozen value is unknown, the end is still kept
      await store.putSettings(id('2'), {
        visibility: 'everyone',
        invisible: false,
        visibleSince: T0,
      })
      assert.deepEqual(settingsOf((await store.getSettings([id('2')]))[0]!), {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: undefined,
        visibleSince: T0,
      })
      await store.importPrivacy([{ type: 'settings', userId: id('3'), settings: ended }])
      assert.deepEqual(settingsOf((await store.getSettings([id('3')]))[0]!), ended)
    })

    test('a block keeps what each side saw of the other, read from either side', async (t) => {
      const store = await open(t)
      // 1 blocks 2: 1 had seen 2 at T0+1, 2 had seen 1 at T0+2
      await store.setBlocked(id('1'), id('2'), true, { blockerSaw: T0 + 1, blockedSaw: T0 + 2 })
      await store.setFriends(id('1'), id('3'), true)
      assert.deepEqual(await store.getRelations(id('1'), [id('2'), id('3')]), [
        { friends: false, blocked: true, lastOnline: T0 + 1 },
        { friends: true, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: false, blocked: true, lastOnline: T0 + 2 },
      ])
      // a side that had seen nothing keeps seeing nothing
      await store.setBlocked(id('4'), id('5'), true, { blockerSaw: T0 + 4 })
      assert.deepEqual(await store.getRelations(id('5'), [id('4')]), [
        { friends: false, blocked: true },
      ])
      assert.deepEqual(await store.getRelations(id('4'), [id('5')]), [
        { friends: false, blocked: true, lastOnline: T0 + 4 },
      ])
      // blocked both ways (the second block saw through the first): unblocking one keeps it
      await store.setBlocked(id('2'), id('1'), true, { blockerSaw: T0 + 2, blockedSaw: T0 + 1 })
      await store.setBlocked(id('1'), id('2'), false)
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: true, lastOnline: T0 + 1 },
      ])
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: false, blocked: true, lastOnline: T0 + 2 },
      ])
      // unblocked both ways: gone, and a new block keeps only its own sight
      await store.setBlocked(id('2'), id('1'), false)
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: false },
      ])
      await store.setBlocked(id('2'), id('1'), true)
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: true },
      ])
      // an import keeps sights too
      await store.importPrivacy([
        {
          type: 'block',
          blocker: id('6'),
          blocked: id('7'),
          isBlocked: true,
          sight: { blockerSaw: T0 + 6, blockedSaw: T0 + 7 },
        },
      ])
      assert.deepEqual(await store.getRelations(id('7'), [id('6')]), [
        { friends: false, blocked: true, lastOnline: T0 + 7 },
      ])
      await store.importPrivacy([
        { type: 'block', blocker: id('6'), blocked: id('7'), isBlocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('7'), [id('6')]), [
        { friends: false, blocked: false },
      ])
    })

    test('an ended block keeps what each side saw through it, with its instant', async (t) => {
      const store = await open(t)
      await store.setFriends(id('1'), id('2'), true)
      await store.setBlocked(id('1'), id('2'), true, { blockerSaw: T0 + 1, blockedSaw: T0 + 2 })
      // blocked both ways: lifting one block leaves the other standing, and no end
      await store.setBlocked(id('2'), id('1'), true, { blockerSaw: T0 + 2, blockedSaw: T0 + 1 })
      await store.setBlocked(id('1'), id('2'), false, { blockerSaw: T0 + 1, since: T0 + 9 })
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: true, blocked: true, lastOnline: T0 + 1 },
      ])
      // the last block lifted: each side keeps what it saw, with the instant it ended
      await store.setBlocked(id('2'), id('1'), false, {
        blockerSaw: T0 + 2,
        blockedSaw: T0 + 1,
        since: T0 + 10,
      })
      assert.deepEqual(await store.getRelations(id('1'), [id('2'), id('3')]), [
        { friends: true, blocked: false, lastOnline: T0 + 1, since: T0 + 10 },
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: true, blocked: false, lastOnline: T0 + 2, since: T0 + 10 },
      ])
      // a side that had seen nothing keeps seeing nothing
      await store.setBlocked(id('4'), id('5'), true, { blockerSaw: T0 + 4 })
      await store.setBlocked(id('4'), id('5'), false, { blockerSaw: T0 + 4, since: T0 + 11 })
      assert.deepEqual(await store.getRelations(id('5'), [id('4')]), [
        { friends: false, blocked: false, since: T0 + 11 },
      ])
      // a new block replaces it, and its end without an instant forgets both
      await store.setBlocked(id('1'), id('2'), true, { blockerSaw: T0 + 3, blockedSaw: T0 + 3 })
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: true, blocked: true, lastOnline: T0 + 3 },
      ])
      await store.setBlocked(id('1'), id('2'), false)
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: true, blocked: false },
      ])
    })

    test('ended blocks are listed oldest end first, and dropped only while still the ones listed', async (t) => {
      const store = await open(t)
      await store.setBlocked(id('1'), id('2'), true, { blockerSaw: T0 + 1, blockedSaw: T0 + 2 })
      await store.setBlocked(id('1'), id('2'), false, {
        blockerSaw: T0 + 1,
        blockedSaw: T0 + 2,
        since: T0 + 20,
      })
      await store.setBlocked(id('3'), id('4'), true, { blockerSaw: T0 + 3 })
      await store.setBlocked(id('3'), id('4'), false, { blockerSaw: T0 + 3, since: T0 + 10 })
      // a block standing, and one lifted with no instant, have no end to list
      await store.setBlocked(id('5'), id('6'), true, { blockerSaw: T0 + 5 })
      await store.setBlocked(id('7'), id('8'), true, { blockerSaw: T0 + 7 })
      await store.setBlocked(id('7'), id('8'), false)
      const all = [
        { viewer: id('3'), target: id('4'), saw: T0 + 3, since: T0 + 10 },
        { viewer: id('4'), target: id('3'), saw: undefined, since: T0 + 10 },
        { viewer: id('1'), target: id('2'), saw: T0 + 1, since: T0 + 20 },
        { viewer: id('2'), target: id('1'), saw: T0 + 2, since: T0 + 20 },
      ]
      // ends of the same instant come in the store's own order, the same on every call
      const bySide = (a: { viewer: string }, b: { viewer: string }) =>
        a.viewer.localeCompare(b.viewer)
      const listed = await store.blockEnds(0, 10)
      assert.deepEqual(
        [...listed.slice(0, 2).sort(bySide), ...listed.slice(2).sort(bySide)].map(endOf),
        all,
      )
      assert.deepEqual(
        (await store.blockEnds(1, 2)).map(endOf),
        listed.slice(1, 3).map(endOf),
        'a range by rank',
      )
      assert.deepEqual(await store.blockEnds(4, 10), [])

      // listed with another instant than the stored one: kept
      await store.dropBlockEnds([{ ...all[2]!, since: T0 + 19 }])
      assert.equal((await store.blockEnds(0, 10)).length, 4)
      // ended again later: the drop of the end listed before keeps the later one
      await store.setBlocked(id('1'), id('2'), false, { blockerSaw: T0 + 1, since: T0 + 30 })
      await store.dropBlockEnds([all[2]!])
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: false, lastOnline: T0 + 1, since: T0 + 30 },
      ])
      // dropped: the viewer is back to no relation; the other side keeps its own
      await store.dropBlockEnds([{ ...all[2]!, since: T0 + 30 }])
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: false },
      ])
      assert.deepEqual((await store.blockEnds(0, 10)).map(endOf).sort(bySide), [
        { viewer: id('2'), target: id('1'), saw: undefined, since: T0 + 30 },
        all[0],
        all[1],
      ])
      // a block made again replaces the ends of the pair
      await store.setBlocked(id('4'), id('3'), true, { blockerSaw: T0 + 6 })
      assert.deepEqual((await store.blockEnds(0, 10)).map(endOf), [
        { viewer: id('2'), target: id('1'), saw: undefined, since: T0 + 30 },
      ])
      await store.dropBlockEnds(await store.blockEnds(0, 10))
      assert.deepEqual(await store.blockEnds(0, 10), [])
      assert.deepEqual(await store.getRelations(id('2'), [id('1'), id('3')]), [
        { friends: false, blocked: false },
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('4'), [id('3')]), [
        { friends: false, blocked: true, lastOnline: T0 + 6 },
      ])
    })

    test('places put, get, replace; unknown is undefined', async (t) => {
      const store = await open(t)
      const place: Place = {
        placeId: '1818',
        universeId: '13058',
        rootPlaceId: '1818',
        name: 'Crossroads',
      }
      await store.putPlace(place)
      assert.deepEqual(await store.getPlace('1818'), place)
      assert.equal(await store.getPlace('1819'), undefined)
      await store.putPlace({ ...place, name: 'Crossroads 2' })
      assert.equal((await store.getPlace('1818'))?.name, 'Crossroads 2')
    })

    test('titles keep their rich presence strings', async (t) => {
      const store = await open(t)
      const title: Title = {
        titleId: '1144039928',
        name: 'Halo',
        strings: { playing: { default: 'Playing {0}', 'fr-FR': 'Joue à {0}' }, menu: {} },
      }
      await store.putTitle(title)
      assert.deepEqual(await store.getTitle('1144039928'), title)
      assert.equal(await store.getTitle('1'), undefined)
      await store.putTitle({ ...title, name: 'Halo Infinite', strings: {} })
      assert.deepEqual(await store.getTitle('1144039928'), {
        titleId: '1144039928',
        name: 'Halo Infinite',
        strings: {},
      })
    })

    test('users put, get, replace', async (t) => {
      const store = await open(t)
      await store.putUser({ userId: id('5'), name: 'roblox', displayName: 'Roblox' })
      assert.deepEqual(await store.getUser(id('5')), {
        userId: '5',
        name: 'roblox',
        displayName: 'Roblox',
      })
      assert.equal(await store.getUser(id('6')), undefined)
      await store.putUser({ userId: id('5'), name: 'roblox', displayName: 'Builderman' })
      assert.equal((await store.getUser(id('5')))?.displayName, 'Builderman')
    })

    test('users are found by name, in order, ignoring the case of ASCII letters', async (t) => {
      const store = await open(t)
      await store.putUser({ userId: id('1'), name: 'Roblox', displayName: 'Roblox' })
      await store.putUser({ userId: id('9223372036854775807'), name: 'max_int', displayName: 'M' })
      await store.putUser({ userId: id('3'), name: 'Émile', displayName: 'É' })
      const found = await store.getUsersByNames(['max_INT', 'nobody', 'ROBLOX', 'roblox', 'émile'])
      assert.deepEqual(
        found.map((u) => u?.userId),
        ['9223372036854775807', undefined, '1', '1', undefined],
      )
      assert.deepEqual(found[2], { userId: '1', name: 'Roblox', displayName: 'Roblox' })
      assert.equal((await store.getUsersByNames(['Émile']))[0]?.userId, '3')
      assert.deepEqual(await store.getUsersByNames([]), [])
    })

    test('a renamed user is found by the new name only; a shared name answers the smallest id', async (t) => {
      const store = await open(t)
      await store.putUser({ userId: id('10'), name: 'bob', displayName: 'Bob' })
      await store.putUser({ userId: id('9'), name: 'Bob', displayName: 'Bob too' })
      await store.putUser({ userId: id('100'), name: 'BOB', displayName: 'Bob three' })
      assert.equal((await store.getUsersByNames(['bob']))[0]?.userId, '9')
      await store.putUser({ userId: id('9'), name: 'robert', displayName: 'Robert' })
      const [bob, robert] = await store.getUsersByNames(['bob', 'Robert'])
      assert.deepEqual([bob?.userId, robert?.userId], ['10', '9'])
      // a display name change keeps the name
      await store.putUser({ userId: id('10'), name: 'bob', displayName: 'Bobby' })
      assert.equal((await store.getUsersByNames(['bob']))[0]?.displayName, 'Bobby')
      await store.importCatalogue([
        { type: 'user', user: { userId: id('10'), name: 'bobby', displayName: 'Bobby' } },
        { type: 'user', user: { userId: id('11'), name: 'alice', displayName: 'Alice' } },
      ])
      const names = await store.getUsersByNames(['bob', 'bobby', 'alice'])
      assert.deepEqual(
        names.map((u) => u?.userId),
        ['100', '10', '11'],
      )
    })

    test('api keys are found by hash and listed', async (t) => {
      const store = await open(t)
      assert.deepEqual(await store.listApiKeys(), [])
      const first = apiKey(1, { scopes: ['presence:read', 'presence:write'], universes: ['13058'] })
      // the key that issued it is kept with it: revoking that one revokes this one
      const second = apiKey(2, { expiresAt: T0 + 86_400_000, issuedBy: 'key1' })
      await store.putApiKey(first)
      await store.putApiKey(second)
      assert.deepEqual(keyOf((await store.getApiKeyByHash(first.hash))!), first)
      assert.deepEqual(keyOf((await store.getApiKeyByHash(second.hash))!), second)
      assert.equal(await store.getApiKeyByHash('f'.repeat(64)), undefined)
      assert.deepEqual(keyOf((await store.getApiKey(first.id))!), first)
      assert.deepEqual(keyOf((await store.getApiKey(second.id))!), second)
      assert.equal(await store.getApiKey('no-such-key'), undefined)
      const listed = (await store.listApiKeys()).map(keyOf).sort((a, b) => a.id.localeCompare(b.id))
      assert.deepEqual(listed, [first, second])
      // revoking is a put of the same id: the revoked key is still found, the caller decides
      await store.putApiKey({ ...first, revokedAt: T0 + 5 })
      assert.equal((await store.getApiKeyByHash(first.hash))?.revokedAt, T0 + 5)
      assert.equal((await store.getApiKey(first.id))?.revokedAt, T0 + 5)
      assert.equal((await store.listApiKeys()).length, 2)
    })

    test('an import applies each pair’s records in their order, whatever else it holds', async (t) => {
      const store = await open(t)
      // (on a cluster a relation is written one user's slot after the other's, in an order of
      // its own: a pair's later records must still land after its earlier ones)
      await store.importPrivacy([
        { type: 'block', blocker: id('1'), blocked: id('2'), isBlocked: true },
        { type: 'friends', a: id('3'), b: id('4'), friends: true },
        {
          type: 'block',
          blocker: id('1'),
          blocked: id('2'),
          isBlocked: false,
          sight: { blockerSaw: T0 + 1, blockedSaw: T0 + 2, since: T0 + 3 },
        },
        { type: 'friends', a: id('2'), b: id('1'), friends: true },
        { type: 'block', blocker: id('2'), blocked: id('1'), isBlocked: true },
        { type: 'friends', a: id('1'), b: id('2'), friends: false },
        { type: 'friends', a: id('4'), b: id('3'), friends: false },
        { type: 'block', blocker: id('2'), blocked: id('1'), isBlocked: false },
        { type: 'friends', a: id('3'), b: id('4'), friends: true },
      ])
      assert.deepEqual(await store.getRelations(id('1'), [id('2')]), [
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.getRelations(id('2'), [id('1')]), [
        { friends: false, blocked: false },
      ])
      assert.deepEqual(await store.listFriends(id('3')), ['4'])
      assert.deepEqual(await store.listFriends(id('4')), ['3'])
    })

    test('importPrivacy and importCatalogue apply every record type', async (t) => {
      const store = await open(t)
      await store.setFriends(id('3'), id('4'), true)
      await store.setBlocked(id('3'), id('5'), true)
      await store.importPrivacy([
        {
          type: 'settings',
          userId: id('1'),
          settings: { visibility: 'friends', invisible: false },
        },
        { type: 'friends', a: id('1'), b: id('2'), friends: true },
        { type: 'friends', a: id('3'), b: id('4'), friends: false },
        { type: 'block', blocker: id('2'), blocked: id('6'), isBlocked: true },
        { type: 'block', blocker: id('3'), blocked: id('5'), isBlocked: false },
      ])
      await store.importCatalogue([
        {
          type: 'place',
          place: { placeId: '10', universeId: '11', rootPlaceId: '10', name: 'Ten' },
        },
        {
          type: 'title',
          title: { titleId: '20', name: 'Twenty', strings: { a: { default: 'A' } } },
        },
        { type: 'user', user: { userId: id('1'), name: 'one', displayName: 'One' } },
      ])
      assert.equal((await store.getSettings([id('1')]))[0]!.visibility, 'friends')
      assert.deepEqual(await store.listFriends(id('2')), ['1'])
      assert.deepEqual(await store.listFriends(id('4')), [])
      assert.deepEqual(await store.getRelations(id('6'), [id('2')]), [
        { friends: false, blocked: true },
      ])
      assert.deepEqual(await store.getRelations(id('5'), [id('3')]), [
        { friends: false, blocked: false },
      ])
      assert.equal((await store.getPlace('10'))?.name, 'Ten')
      assert.deepEqual((await store.getTitle('20'))?.strings, { a: { default: 'A' } })
      assert.equal((await store.getUser(id('1')))?.displayName, 'One')
      await store.importPrivacy([])
      await store.importCatalogue([])
    })

    test('revoked tokens: listed from an instant on until they expire, then pruned', async (t) => {
      const store = await open(t)
      await store.revokeToken({ tokenId: 'a', expiresAt: T0 + 10_000, revokedAt: T0 })
      await store.revokeToken({ tokenId: 'b', expiresAt: T0 + 20_000, revokedAt: T0 + 5 })
      await store.revokeToken({ tokenId: 'c', expiresAt: T0 + 1, revokedAt: T0 + 6 })
      // revoking again keeps the first revocation
      await store.revokeToken({ tokenId: 'a', expiresAt: T0 + 10_000, revokedAt: T0 + 9 })
      const ids = async (since: number, now: number) =>
        (await store.revocationsSince(since, now)).map((r) => r.tokenId).sort()
      assert.deepEqual(await ids(0, T0), ['a', 'b', 'c'])
      assert.deepEqual(await ids(T0 + 1, T0), ['b', 'c'])
      // an expired token need not be listed: it is refused anyway
      assert.deepEqual(await ids(0, T0 + 2), ['a', 'b'])
      const [a] = await store.revocationsSince(0, T0 + 2)
      assert.deepEqual(a, { tokenId: 'a', expiresAt: T0 + 10_000, revokedAt: T0 })
      await store.pruneRevocations(T0 + 10_000)
      assert.deepEqual(await ids(0, 0), ['b'])
    })

    test('int64 ids above 2^53 are kept exactly', async (t) => {
      const store = await open(t)
      const big = id('9007199254740993')
      const neighbour = id('9007199254740992')
      const max = id('9223372036854775807')
      await store.putSettings(big, { visibility: 'nobody', invisible: false })
      const [a, b] = await store.getSettings([big, neighbour])
      assert.equal(a!.visibility, 'nobody')
      assert.equal(b!.visibility, 'everyone')
      await store.setFriends(big, max, true)
      assert.deepEqual(await store.listFriends(max), ['9007199254740993'])
      assert.deepEqual(await store.getRelations(max, [big, neighbour]), [
        { friends: true, blocked: false },
        { friends: false, blocked: false },
      ])
      await store.setBlocked(max, neighbour, true)
      assert.deepEqual(await store.getRelations(neighbour, [max, big]), [
        { friends: false, blocked: true },
        { friends: false, blocked: false },
      ])
      const place: Place = {
        placeId: '9223372036854775807',
        universeId: '9007199254740993',
        rootPlaceId: '9007199254740995',
        name: 'Far away',
      }
      await store.putPlace(place)
      assert.deepEqual(await store.getPlace('9223372036854775807'), place)
      assert.equal(await store.getPlace('9223372036854775806'), undefined)
      await store.putUser({ userId: max, name: 'max', displayName: 'Max' })
      assert.equal((await store.getUser(max))?.userId, '9223372036854775807')
    })
  })
}
