import type { PrivacyRecord } from '../core/catalogue.js'
import type { BlockEnd, BlockSight, Relation, UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'

/**
 * Who may see whom: users' privacy settings and their relationships (friends, blocks).
 * Adapters: SqliteProfileStore (embedded default), RedisProfileStore (fleet).
 */
export interface PrivacyStore {
  getSettings(ids: readonly UserId[]): Promise<UserSettings[]>
  /** Optional: getSettings(), answered at once (a store that holds them in memory). */
  getSettingsNow?(ids: readonly UserId[]): readonly UserSettings[]
  putSettings(id: UserId, settings: UserSettings): Promise<void>
  /**
   * Stores `next` if the user's settings are still `expected` (as `sameSettings` compares them),
   * in one step; false, storing nothing, if they changed meanwhile. A change computed from what
   * was read is written with it, so that two changes at once (one appearing offline, the other
   * narrowing visibility) never lose one another, on one node or across a fleet.
   */
  replaceSettings(id: UserId, expected: UserSettings, next: UserSettings): Promise<boolean>
  /**
   * The relation of `viewer` to each target, in order (blocked in either direction; with a
   * block, the target's lastOnline the viewer saw when it was made). On every read of a user
   * viewer: one in-memory look-up or one round trip, whatever the number of blocks. The list
   * and its relations may be shared (frozen): read them, never change them. `values`, when
   * given: `Number(targets[i])` for each target, all below 2^53 (what a request's parser read),
   * which a store may look the targets up by instead of by their strings.
   */
  getRelations(
    viewer: UserId,
    targets: readonly UserId[],
    values?: readonly number[],
  ): Promise<readonly Relation[]>
  /** Optional: getRelations(), answered at once (a store that holds them in memory). */
  getRelationsNow?(
    viewer: UserId,
    targets: readonly UserId[],
    values?: readonly number[],
  ): readonly Relation[]
  /** Friendship is mutual: one call makes both users friends. */
  setFriends(a: UserId, b: UserId, friends: boolean): Promise<void>
  /**
   * `blocker` blocks (or unblocks) `blocked`, keeping `sight` (what each saw of the other) with
   * the block: getRelations returns it from either side while the block stands.
   */
  setBlocked(
    blocker: UserId,
    blocked: UserId,
    isBlocked: boolean,
    sight?: BlockSight,
  ): Promise<void>
  listFriends(id: UserId): Promise<UserId[]>
  /**
   * Ended blocks' records (what each side saw through a block, Relation.since), one per side,
   * oldest end first: `limit` of them from the `offset`-th. Ends are added at the back (their
   * `since` is the instant of the unblock), so a walk that moves its offset by what it kept
   * after dropping the rest sees every record once per pass, and a range of them costs a range
   * read, not a scan.
   */
  blockEnds(offset: number, limit: number): Promise<BlockEnd[]>
  /**
   * Forgets these ended blocks' records (the janitor's, once blockEndResolved says so). Each only
   * while it is still the one listed (the same `since`) and no block stands between its users: a
   * block made again, or ended again, since it was listed keeps its own.
   */
  dropBlockEnds(ends: readonly BlockEnd[]): Promise<void>
  /**
   * Applies many records at once (one transaction where the backend has them), in order. A
   * settings record with `expected` is written only if the user's settings are still `expected`
   * (as replaceSettings, an earlier record of the same user included); returns the indexes of
   * the settings records it did not write for that reason, in order (nothing else of the batch
   * is held back).
   */
  importPrivacy(records: readonly PrivacyRecord[]): Promise<number[]>
}
