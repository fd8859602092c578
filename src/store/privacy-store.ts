import type { PrivacyRecord } from '../core/catalogue.js'
import type { Relation, UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'

/**
 * Who may see whom: users' privacy settings and their relationships (friends, blocks).
 * Adapters: SqliteProfileStore (embedded default), RedisProfileStore (fleet).
 */
export interface PrivacyStore {
  getSettings(ids: readonly UserId[]): Promise<UserSettings[]>
  putSettings(id: UserId, settings: UserSettings): Promise<void>
  /** The relation of `viewer` to each target, in order (blocked in either direction). */
  getRelations(viewer: UserId, targets: readonly UserId[]): Promise<Relation[]>
  /** Friendship is mutual: one call makes both users friends. */
  setFriends(a: UserId, b: UserId, friends: boolean): Promise<void>
  /** `blocker` blocks (or unblocks) `blocked`. */
  setBlocked(blocker: UserId, blocked: UserId, isBlocked: boolean): Promise<void>
  listFriends(id: UserId): Promise<UserId[]>
  /** Applies many records at once (one transaction where the backend has them). */
  importPrivacy(records: readonly PrivacyRecord[]): Promise<void>
}
