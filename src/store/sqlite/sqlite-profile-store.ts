import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  defaultSettings,
  defaultSettingsOf,
  sameSettings,
  befriended,
  strangers,
  strangersOf,
  type BlockEnd,
  type BlockSight,
  type Relation,
  type UserSettings,
  type Visibility,
} from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { ApiKeyRecord } from '../../core/api-key.js'
import type {
  CatalogueRecord,
  Place,
  PrivacyRecord,
  Title,
  UserProfile,
} from '../../core/catalogue.js'
import type { Revocation } from '../credential-store.js'
import type { LastOnlineLedger, ProfileStore } from '../profile-store.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (
  user_id TEXT PRIMARY KEY,
  visibility TEXT NOT NULL,
  invisible INTEGER NOT NULL,
  frozen_last_online INTEGER,
  visible_since INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS friends (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
  blocker TEXT NOT NULL,
  blocked TEXT NOT NULL,
  blocker_saw INTEGER,
  blocked_saw INTEGER,
  PRIMARY KEY (blocker, blocked)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_blocked ON blocks (blocked, blocker);
CREATE TABLE IF NOT EXISTS block_ends (
  viewer TEXT NOT NULL,
  target TEXT NOT NULL,
  saw INTEGER,
  since INTEGER NOT NULL,
  PRIMARY KEY (viewer, target)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS block_ends_by_since ON block_ends (since, viewer, target);
CREATE TABLE IF NOT EXISTS places (
  place_id TEXT PRIMARY KEY,
  universe_id TEXT NOT NULL,
  root_place_id TEXT NOT NULL,
  name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS titles (title_id TEXT PRIMARY KEY, name TEXT NOT NULL, strings TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, name TEXT NOT NULL, display_name TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_by_name ON users (name COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS last_online (user_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_tokens (token_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revoked_tokens_by_time ON revoked_tokens (revoked_at);
CREATE INDEX IF NOT EXISTS revoked_tokens_by_expiry ON revoked_tokens (expires_at);
`

/** Columns added after the first release: files made before them get them at open. */
const ADDED_COLUMNS: ReadonlyArray<[table: string, column: string]> = [
  ['settings', 'visible_since'],
  ['blocks', 'blocker_saw'],
  ['blocks', 'blocked_saw'],
]

interface SettingsRow {
  user_id: string
  visibility: Visibility
  invisible: number
  frozen_last_online: number | null
  visible_since: number | null
}

/**
 * A viewer's relations as reads hand them out: each friend and each user blocked in either
 * direction → their Relation, built once per viewer and shared (frozen). A read looks each
 * target up once and allocates nothing per target; with a friend set and a block map apart, a
 * signed-in 50-id read hashed every id twice and built a record per blocked target.
 */
/**
 * A viewer's relations by target id, and again by the id's value for ids below 2^53: a read's
 * ids are new strings, and a Map keyed by them hashes each one first, about 470 instructions an
 * id (callgrind), where a number is hashed in a few (getRelations' `values`).
 */
interface ViewerRelations {
  byId: ReadonlyMap<string, Relation>
  byValue: ReadonlyMap<number, Relation>
}

/** How many viewers' relations are kept in memory (least recently used dropped). */
const RELATION_CACHE_SIZE = 10_000
/** What most viewers have: one shared empty map, not one each (read only). */
const NO_RELATIONS: ViewerRelations = { byId: new Map(), byValue: new Map() }

/**
 * The embedded durable store: one SQLite file in the data dir, written synchronously in WAL mode
 * so a write that returned survives a crash of the process.
 *
 * Reads on the presence read path are answered from memory: every request reads the settings of
 * each target, and a query per id cost most of a lookup. Settings rows (only users who changed
 * theirs have one) are loaded at open and written through; the friend and block sets of recent
 * viewers are cached and dropped on any change to them. This process is the file's only writer.
 */
export class SqliteProfileStore implements ProfileStore, LastOnlineLedger {
  readonly db: Database.Database
  readonly #stmt
  /** Non-default settings by user; absent means defaultSettings. */
  readonly #settings = new Map<string, UserSettings>()
  /** Least recently used first (Map order). */
  readonly #relations = new Map<string, ViewerRelations>()

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true })
    this.db = new Database(join(dataDir, 'presenced.sqlite'))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(SCHEMA)
    for (const [table, column] of ADDED_COLUMNS) {
      const columns = this.db.pragma(`table_info(${table})`) as { name: string }[]
      if (!columns.some((c) => c.name === column)) {
        this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} INTEGER`)
      }
    }
    const db = this.db
    this.#stmt = {
      allSettings: db.prepare<[], SettingsRow>(
        'SELECT user_id, visibility, invisible, frozen_last_online, visible_since FROM settings',
      ),
      putSettings: db.prepare(
        'INSERT INTO settings (user_id, visibility, invisible, frozen_last_online, visible_since) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (user_id) DO UPDATE SET visibility = excluded.visibility, invisible = excluded.invisible, ' +
          'frozen_last_online = excluded.frozen_last_online, visible_since = excluded.visible_since',
      ),
      friendsOf: db.prepare<[string], { b: string }>('SELECT b FROM friends WHERE a = ?'),
      addFriend: db.prepare('INSERT OR IGNORE INTO friends (a, b) VALUES (?, ?)'),
      removeFriend: db.prepare('DELETE FROM friends WHERE a = ? AND b = ?'),
      blockedBy: db.prepare<[string], { blocked: string; blocker_saw: number | null }>(
        'SELECT blocked, blocker_saw FROM blocks WHERE blocker = ?',
      ),
      blockersOf: db.prepare<[string], { blocker: string; blocked_saw: number | null }>(
        'SELECT blocker, blocked_saw FROM blocks WHERE blocked = ?',
      ),
      addBlock: db.prepare(
        'INSERT INTO blocks (blocker, blocked, blocker_saw, blocked_saw) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (blocker, blocked) DO UPDATE SET blocker_saw = excluded.blocker_saw, blocked_saw = excluded.blocked_saw',
      ),
      removeBlock: db.prepare('DELETE FROM blocks WHERE blocker = ? AND blocked = ?'),
      hasBlock: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM blocks WHERE blocker = ? AND blocked = ?',
      ),
      blockEndsOf: db.prepare<[string], { target: string; saw: number | null; since: number }>(
        'SELECT target, saw, since FROM block_ends WHERE viewer = ?',
      ),
      addBlockEnd: db.prepare(
        'INSERT INTO block_ends (viewer, target, saw, since) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (viewer, target) DO UPDATE SET saw = excluded.saw, since = excluded.since',
      ),
      blockEnds: db.prepare<
        [number, number],
        { viewer: string; target: string; saw: number | null; since: number }
      >(
        'SELECT viewer, target, saw, since FROM block_ends ORDER BY since, viewer, target LIMIT ? OFFSET ?',
      ),
      dropBlockEnd: db.prepare<[string, string, number]>(
        'DELETE FROM block_ends WHERE viewer = ? AND target = ? AND since = ?',
      ),
      removeBlockEnds: db.prepare(
        'DELETE FROM block_ends WHERE (viewer = ? AND target = ?) OR (viewer = ? AND target = ?)',
      ),
      getPlace: db.prepare<[string], { universe_id: string; root_place_id: string; name: string }>(
        'SELECT universe_id, root_place_id, name FROM places WHERE place_id = ?',
      ),
      putPlace: db.prepare(
        'INSERT INTO places (place_id, universe_id, root_place_id, name) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (place_id) DO UPDATE SET universe_id = excluded.universe_id, root_place_id = excluded.root_place_id, name = excluded.name',
      ),
      getTitle: db.prepare<[string], { name: string; strings: string }>(
        'SELECT name, strings FROM titles WHERE title_id = ?',
      ),
      putTitle: db.prepare(
        'INSERT INTO titles (title_id, name, strings) VALUES (?, ?, ?) ON CONFLICT (title_id) DO UPDATE SET name = excluded.name, strings = excluded.strings',
      ),
      getUser: db.prepare<[string], { name: string; display_name: string }>(
        'SELECT name, display_name FROM users WHERE user_id = ?',
      ),
      // NOCASE folds ASCII letters only, as the port says; ids have no leading zeros, so
      // ordering by length then text is numeric order
      getUserByName: db.prepare<[string], { user_id: string; name: string; display_name: string }>(
        'SELECT user_id, name, display_name FROM users WHERE name = ? COLLATE NOCASE ' +
          'ORDER BY length(user_id), user_id LIMIT 1',
      ),
      putUser: db.prepare(
        'INSERT INTO users (user_id, name, display_name) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, display_name = excluded.display_name',
      ),
      putApiKey: db.prepare(
        'INSERT INTO api_keys (id, hash, record) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, record = excluded.record',
      ),
      getApiKeyByHash: db.prepare<[string], { record: string }>(
        'SELECT record FROM api_keys WHERE hash = ?',
      ),
      getApiKey: db.prepare<[string], { record: string }>(
        'SELECT record FROM api_keys WHERE id = ?',
      ),
      listApiKeys: db.prepare<[], { record: string }>('SELECT record FROM api_keys ORDER BY id'),
      revokeToken: db.prepare(
        'INSERT OR IGNORE INTO revoked_tokens (token_id, expires_at, revoked_at) VALUES (?, ?, ?)',
      ),
      revocationsSince: db.prepare<
        [number, number],
        { token_id: string; expires_at: number; revoked_at: number }
      >(
        'SELECT token_id, expires_at, revoked_at FROM revoked_tokens WHERE revoked_at >= ? AND expires_at > ? ORDER BY revoked_at',
      ),
      pruneRevocations: db.prepare('DELETE FROM revoked_tokens WHERE expires_at <= ?'),
      allLastOnline: db.prepare<[], { user_id: string; at: number }>(
        'SELECT user_id, at FROM last_online',
      ),
      putLastOnline: db.prepare(
        'INSERT INTO last_online (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET at = MAX(at, excluded.at)',
      ),
    }
    for (const row of this.#stmt.allSettings.iterate()) {
      this.#remember(row.user_id, {
        visibility: row.visibility,
        invisible: row.invisible === 1,
        frozenLastOnline: row.frozen_last_online ?? undefined,
        visibleSince: row.visible_since ?? undefined,
      })
    }
  }

  getSettings(ids: readonly UserId[]): Promise<UserSettings[]> {
    return Promise.resolve(this.#settingsOf(ids))
  }

  /**
   * getSettings(), without a promise (PresenceService.lookupSummariesNow); when no user changed
   * a setting, the shared list of defaults (defaultSettingsOf), which applyPrivacy knows.
   */
  getSettingsNow(ids: readonly UserId[]): readonly UserSettings[] {
    return this.#settings.size === 0 ? defaultSettingsOf(ids.length) : this.#settingsOf(ids)
  }

  #settingsOf(ids: readonly UserId[]): UserSettings[] {
    const settings = this.#settings
    const out = new Array<UserSettings>(ids.length)
    // no user has changed a setting: no lookup, which would hash each id's string first (the
    // ids of a read are new strings), measured (callgrind) at about 470 instructions per id
    // a loop, not `fill`: Array#fill is a runtime call, measured (callgrind) at about 2,700
    // instructions for 50 ids
    if (settings.size === 0) for (let i = 0; i < ids.length; i++) out[i] = defaultSettings
    else for (let i = 0; i < ids.length; i++) out[i] = settings.get(ids[i]!) ?? defaultSettings
    return out
  }

  putSettings(id: UserId, settings: UserSettings): Promise<void> {
    this.#stmt.putSettings.run(...settingsRow(id, settings))
    this.#remember(id, settings)
    return Promise.resolve()
  }

  replaceSettings(id: UserId, expected: UserSettings, next: UserSettings): Promise<boolean> {
    // one process owns the database and nothing awaits between the read and the write
    if (!sameSettings(this.#settings.get(id) ?? defaultSettings, expected)) {
      return Promise.resolve(false)
    }
    return this.putSettings(id, next).then(() => true)
  }

  getRelations(
    viewer: UserId,
    targets: readonly UserId[],
    values?: readonly number[],
  ): Promise<readonly Relation[]> {
    return Promise.resolve(this.getRelationsNow(viewer, targets, values))
  }

  /** getRelations(), without a promise (PresenceService.lookupSummariesNow). */
  getRelationsNow(
    viewer: UserId,
    targets: readonly UserId[],
    values?: readonly number[],
  ): readonly Relation[] {
    const { byId, byValue } = this.#relationsOf(viewer)
    // shared frozen relations: nothing allocated per target
    if (byId.size === 0) return strangersOf(targets.length)
    const out = new Array<Relation>(targets.length)
    if (values === undefined) {
      for (let i = 0; i < targets.length; i++) out[i] = byId.get(targets[i]!) ?? strangers
    } else {
      for (let i = 0; i < targets.length; i++) out[i] = byValue.get(values[i]!) ?? strangers
    }
    return out
  }

  setFriends(a: UserId, b: UserId, friends: boolean): Promise<void> {
    const statement = friends ? this.#stmt.addFriend : this.#stmt.removeFriend
    this.db.transaction(() => {
      statement.run(a, b)
      statement.run(b, a)
    })()
    this.#relations.delete(a)
    this.#relations.delete(b)
    return Promise.resolve()
  }

  setBlocked(
    blocker: UserId,
    blocked: UserId,
    isBlocked: boolean,
    sight?: BlockSight,
  ): Promise<void> {
    const s = this.#stmt
    this.db.transaction(() => {
      if (isBlocked) {
        s.addBlock.run(blocker, blocked, sight?.blockerSaw ?? null, sight?.blockedSaw ?? null)
        s.removeBlockEnds.run(blocker, blocked, blocked, blocker)
        return
      }
      s.removeBlock.run(blocker, blocked)
      // no block left between them: each keeps what it saw through it (Relation.since)
      if (sight?.since !== undefined && !s.hasBlock.get(blocked, blocker)) {
        s.addBlockEnd.run(blocker, blocked, sight.blockerSaw ?? null, sight.since)
        s.addBlockEnd.run(blocked, blocker, sight.blockedSaw ?? null, sight.since)
      }
    })()
    this.#relations.delete(blocker)
    this.#relations.delete(blocked)
    return Promise.resolve()
  }

  blockEnds(offset: number, limit: number): Promise<BlockEnd[]> {
    return Promise.resolve(
      this.#stmt.blockEnds.all(limit, offset).map((row) => ({
        viewer: row.viewer as UserId,
        target: row.target as UserId,
        saw: row.saw ?? undefined,
        since: row.since,
      })),
    )
  }

  // a record exists only while no block stands between its users (setBlocked removes it in the
  // transaction that blocks): the same `since` is all there is to check
  dropBlockEnds(ends: readonly BlockEnd[]): Promise<void> {
    const s = this.#stmt
    this.db.transaction(() => {
      for (const end of ends) s.dropBlockEnd.run(end.viewer, end.target, end.since)
    })()
    for (const end of ends) this.#relations.delete(end.viewer)
    return Promise.resolve()
  }

  listFriends(id: UserId): Promise<UserId[]> {
    return Promise.resolve(this.#stmt.friendsOf.all(id).map((r) => r.b as UserId))
  }

  getPlace(placeId: string): Promise<Place | undefined> {
    const row = this.#stmt.getPlace.get(placeId)
    return Promise.resolve(
      row && {
        placeId,
        universeId: row.universe_id,
        rootPlaceId: row.root_place_id,
        name: row.name,
      },
    )
  }

  putPlace(place: Place): Promise<void> {
    this.#stmt.putPlace.run(place.placeId, place.universeId, place.rootPlaceId, place.name)
    return Promise.resolve()
  }

  getTitle(titleId: string): Promise<Title | undefined> {
    const row = this.#stmt.getTitle.get(titleId)
    return Promise.resolve(
      row && { titleId, name: row.name, strings: JSON.parse(row.strings) as Title['strings'] },
    )
  }

  putTitle(title: Title): Promise<void> {
    this.#stmt.putTitle.run(title.titleId, title.name, JSON.stringify(title.strings))
    return Promise.resolve()
  }

  getUser(id: UserId): Promise<UserProfile | undefined> {
    const row = this.#stmt.getUser.get(id)
    return Promise.resolve(row && { userId: id, name: row.name, displayName: row.display_name })
  }

  getUsersByNames(names: readonly string[]): Promise<(UserProfile | undefined)[]> {
    return Promise.resolve(
      names.map((name) => {
        const row = this.#stmt.getUserByName.get(name)
        return (
          row && { userId: row.user_id as UserId, name: row.name, displayName: row.display_name }
        )
      }),
    )
  }

  putUser(user: UserProfile): Promise<void> {
    this.#stmt.putUser.run(user.userId, user.name, user.displayName)
    return Promise.resolve()
  }

  putApiKey(key: ApiKeyRecord): Promise<void> {
    this.#stmt.putApiKey.run(key.id, key.hash, JSON.stringify(key))
    return Promise.resolve()
  }

  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#stmt.getApiKeyByHash.get(hash)
    return Promise.resolve(row && (JSON.parse(row.record) as ApiKeyRecord))
  }

  getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#stmt.getApiKey.get(id)
    return Promise.resolve(row && (JSON.parse(row.record) as ApiKeyRecord))
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return Promise.resolve(
      this.#stmt.listApiKeys.all().map((r) => JSON.parse(r.record) as ApiKeyRecord),
    )
  }

  importPrivacy(records: readonly PrivacyRecord[]): Promise<number[]> {
    const s = this.#stmt
    /** Settings written by this transaction, by user: what a later record of theirs replaces. */
    const written = new Map<string, UserSettings>()
    const refused: number[] = []
    this.db.transaction(() => {
      for (const [i, r] of records.entries()) {
        switch (r.type) {
          case 'settings': {
            const stored = written.get(r.userId) ?? this.#settings.get(r.userId) ?? defaultSettings
            if (r.expected && !sameSettings(stored, r.expected)) {
              refused.push(i)
              break
            }
            s.putSettings.run(...settingsRow(r.userId, r.settings))
            written.set(r.userId, r.settings)
            break
          }
          case 'friends': {
            const statement = r.friends ? s.addFriend : s.removeFriend
            statement.run(r.a, r.b)
            statement.run(r.b, r.a)
            break
          }
          case 'block':
            if (r.isBlocked) {
              s.addBlock.run(
                r.blocker,
                r.blocked,
                r.sight?.blockerSaw ?? null,
                r.sight?.blockedSaw ?? null,
              )
              s.removeBlockEnds.run(r.blocker, r.blocked, r.blocked, r.blocker)
            } else {
              s.removeBlock.run(r.blocker, r.blocked)
              const since = r.sight?.since
              if (since !== undefined && !s.hasBlock.get(r.blocked, r.blocker)) {
                s.addBlockEnd.run(r.blocker, r.blocked, r.sight?.blockerSaw ?? null, since)
                s.addBlockEnd.run(r.blocked, r.blocker, r.sight?.blockedSaw ?? null, since)
              }
            }
            break
        }
      }
    })()
    // only once the transaction committed: a refused import leaves memory as it was
    for (const [id, settings] of written) this.#remember(id, settings)
    if (records.some((r) => r.type !== 'settings')) this.#relations.clear()
    return Promise.resolve(refused)
  }

  importCatalogue(records: readonly CatalogueRecord[]): Promise<void> {
    const s = this.#stmt
    this.db.transaction(() => {
      for (const r of records) {
        switch (r.type) {
          case 'place':
            s.putPlace.run(r.place.placeId, r.place.universeId, r.place.rootPlaceId, r.place.name)
            break
          case 'title':
            s.putTitle.run(r.title.titleId, r.title.name, JSON.stringify(r.title.strings))
            break
          case 'user':
            s.putUser.run(r.user.userId, r.user.name, r.user.displayName)
            break
        }
      }
    })()
    return Promise.resolve()
  }

  revokeToken(revocation: Revocation): Promise<void> {
    this.#stmt.revokeToken.run(revocation.tokenId, revocation.expiresAt, revocation.revokedAt)
    return Promise.resolve()
  }

  revocationsSince(since: number, now: number): Promise<Revocation[]> {
    return Promise.resolve(
      this.#stmt.revocationsSince.all(since, now).map((row) => ({
        tokenId: row.token_id,
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
      })),
    )
  }

  pruneRevocations(now: number): Promise<void> {
    this.#stmt.pruneRevocations.run(now)
    return Promise.resolve()
  }

  *loadLastOnline(): Iterable<[UserId, number]> {
    for (const row of this.#stmt.allLastOnline.iterate()) yield [row.user_id as UserId, row.at]
  }

  saveLastOnline(entries: ReadonlyArray<readonly [UserId, number]>): void {
    this.db.transaction(() => {
      for (const [id, at] of entries) this.#stmt.putLastOnline.run(id, at)
    })()
  }

  ready(): Promise<boolean> {
    return Promise.resolve(this.db.open)
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close()
    return Promise.resolve()
  }

  #remember(id: string, settings: UserSettings): void {
    if (
      settings.visibility === defaultSettings.visibility &&
      !settings.invisible &&
      settings.frozenLastOnline === undefined &&
      settings.visibleSince === undefined
    ) {
      this.#settings.delete(id)
    } else {
      // shared with every reader, like defaultSettings: frozen
      this.#settings.set(
        id,
        Object.freeze({
          visibility: settings.visibility,
          invisible: settings.invisible,
          frozenLastOnline: settings.frozenLastOnline ?? undefined,
          ...(settings.visibleSince !== undefined && { visibleSince: settings.visibleSince }),
        }),
      )
    }
  }

  #relationsOf(viewer: string): ViewerRelations {
    const cached = this.#relations.get(viewer)
    if (cached) {
      // most recently used last
      this.#relations.delete(viewer)
      this.#relations.set(viewer, cached)
      return cached
    }
    const friends = new Set<string>()
    for (const r of this.#stmt.friendsOf.iterate(viewer)) friends.add(r.b)
    const blocked = new Map<string, number | undefined>()
    for (const r of this.#stmt.blockedBy.iterate(viewer)) {
      blocked.set(r.blocked, r.blocker_saw ?? undefined)
    }
    // blocked both ways: both rows hold the same sight (the second block saw the first's view)
    for (const r of this.#stmt.blockersOf.iterate(viewer)) {
      if (blocked.get(r.blocker) === undefined) blocked.set(r.blocker, r.blocked_saw ?? undefined)
    }
    const ended: Array<{ target: string; saw: number | null; since: number }> = []
    for (const r of this.#stmt.blockEndsOf.iterate(viewer)) {
      if (!blocked.has(r.target)) ended.push(r)
    }
    let relations: ViewerRelations = NO_RELATIONS
    if (friends.size > 0 || blocked.size > 0 || ended.length > 0) {
      const byTarget = new Map<string, Relation>()
      const byValue = new Map<number, Relation>()
      for (const friend of friends) byTarget.set(friend, befriended)
      for (const [target, lastOnline] of blocked) {
        const isFriend = friends.has(target)
        byTarget.set(
          target,
          Object.freeze(
            lastOnline === undefined
              ? { friends: isFriend, blocked: true }
              : { friends: isFriend, blocked: true, lastOnline },
          ),
        )
      }
      for (const { target, saw, since } of ended) {
        const isFriend = friends.has(target)
        byTarget.set(
          target,
          Object.freeze(
            saw === null
              ? { friends: isFriend, blocked: false, since }
              : { friends: isFriend, blocked: false, lastOnline: saw, since },
          ),
        )
      }
      for (const [target, relation] of byTarget) {
        const value = Number(target)
        if (Number.isSafeInteger(value)) byValue.set(value, relation)
      }
      relations = { byId: byTarget, byValue }
    }
    if (this.#relations.size >= RELATION_CACHE_SIZE) {
      this.#relations.delete(this.#relations.keys().next().value!)
    }
    this.#relations.set(viewer, relations)
    return relations
  }
}

function settingsRow(
  id: string,
  settings: UserSettings,
): [string, string, number, number | null, number | null] {
  return [
    id,
    settings.visibility,
    settings.invisible ? 1 : 0,
    settings.frozenLastOnline ?? null,
    settings.visibleSince ?? null,
  ]
}
