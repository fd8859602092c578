import type { CatalogueRecord, Place, Title, UserProfile } from '../core/catalogue.js'
import type { UserId } from '../core/user-id.js'

/**
 * What ids name: places (with their universe and root place), Xbox titles (with their rich
 * presence strings) and users (names). Adapters: SqliteProfileStore, RedisProfileStore.
 */
export interface CatalogueStore {
  getPlace(placeId: string): Promise<Place | undefined>
  putPlace(place: Place): Promise<void>
  getTitle(titleId: string): Promise<Title | undefined>
  putTitle(title: Title): Promise<void>
  getUser(id: UserId): Promise<UserProfile | undefined>
  /**
   * The users named `names`, in order (undefined where none is). Names match ignoring the case
   * of ASCII letters (`Roblox` finds `roblox`; other letters must match exactly). The catalogue
   * does not make names unique: when several users carry a name, the smallest id answers.
   */
  getUsersByNames(names: readonly string[]): Promise<(UserProfile | undefined)[]>
  putUser(user: UserProfile): Promise<void>
  /** Applies many records at once (one transaction where the backend has them). */
  importCatalogue(records: readonly CatalogueRecord[]): Promise<void>
}
