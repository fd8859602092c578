import type { Relation, UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'

/** A place of the catalogue; ids are int64 decimal strings. */
export interface Place {
  placeId: string
  universeId: string
  rootPlaceId: string
  name: string
}

/** A title of the Xbox titles catalogue, with its rich presence strings. */
export interface Title {
  titleId: string
  name: string
  /** Rich presence string id → locale (e.g. `en-US`, `fr`, or `default`) → template with `{0}` params. */
  strings: Record<string, Record<string, string>>
}

/** An entry of the users catalogue (display names for companion endpoints). */
export interface UserProfile {
  userId: UserId
  name: string
  displayName: string
}

/** A scoped API key as stored: only its hash is kept. */
export interface ApiKeyRecord {
  id: string
  name: string
  /** sha256 of the secret, hex. */
  hash: string
  scopes: string[]
  /** Universe ids it may write presence for; empty means any. */
  universes: string[]
  createdAt: number
  expiresAt: number | undefined
  revokedAt: number | undefined
}

/** One line of a bulk import. */
export type ProfileRecord =
  | { type: 'settings'; userId: UserId; settings: UserSettings }
  | { type: 'friends'; a: UserId; b: UserId; friends: boolean }
  | { type: 'block'; blocker: UserId; blocked: UserId; isBlocked: boolean }
  | { type: 'place'; place: Place }
  | { type: 'title'; title: Title }
  | { type: 'user'; user: UserProfile }

/**
 * Durable data about users and places: settings, relationships and the places catalogue.
 * Adapters: SqliteProfileStore (embedded default), RedisProfileStore (fleet).
 */
export interface ProfileStore {
  getSettings(ids: readonly UserId[]): Promise<UserSettings[]>
  putSettings(id: UserId, settings: UserSettings): Promise<void>
  /** The relation of `viewer` to each target, in order (blocked in either direction). */
  getRelations(viewer: UserId, targets: readonly UserId[]): Promise<Relation[]>
  /** Friendship is mutual: one call makes both users friends. */
  setFriends(a: UserId, b: UserId, friends: boolean): Promise<void>
  /** `blocker` blocks (or unblocks) `blocked`. */
  setBlocked(blocker: UserId, blocked: UserId, isBlocked: boolean): Promise<void>
  listFriends(id: UserId): Promise<UserId[]>
  getPlace(placeId: string): Promise<Place | undefined>
  putPlace(place: Place): Promise<void>
  getTitle(titleId: string): Promise<Title | undefined>
  putTitle(title: Title): Promise<void>
  getUser(id: UserId): Promise<UserProfile | undefined>
  putUser(user: UserProfile): Promise<void>
  putApiKey(key: ApiKeyRecord): Promise<void>
  /** The key with this secret hash, revoked or expired ones included (the caller decides). */
  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>
  listApiKeys(): Promise<ApiKeyRecord[]>
  /** Applies many records at once (one transaction where the backend has them). */
  importRecords(records: readonly ProfileRecord[]): Promise<void>
  ready(): Promise<boolean>
  close(): Promise<void>
}

/** Where the embedded presence store keeps lastOnline durably. */
export interface LastOnlineLedger {
  loadLastOnline(): Iterable<[UserId, number]>
  saveLastOnline(entries: ReadonlyArray<readonly [UserId, number]>): void
}
