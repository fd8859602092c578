import type { Relation, UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'

/** A place of the catalogue; ids are int64 decimal strings. */
export interface Place {
  placeId: string
  universeId: string
  rootPlaceId: string
  name: string
}

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
  ready(): Promise<boolean>
  close(): Promise<void>
}

/** Where the embedded presence store keeps lastOnline durably. */
export interface LastOnlineLedger {
  loadLastOnline(): Iterable<[UserId, number]>
  saveLastOnline(entries: ReadonlyArray<readonly [UserId, number]>): void
}
