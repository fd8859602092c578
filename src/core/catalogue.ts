import type { BlockSight, UserSettings } from './privacy.js'
import type { UserId } from './user-id.js'

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

/** An entry of the users catalogue (names for the companion endpoints). */
export interface UserProfile {
  userId: UserId
  name: string
  displayName: string
}

/**
 * The characters of `text` as the API's JSON schemas count them for `maxLength` (ajv's
 * ucs2length): a surrogate pair (an emoji, say) is one character, not two UTF-16 units, so a
 * name the admin routes take is taken by an import too.
 *
 * @example characterCount('😀a') // 2
 */
export function characterCount(text: string): number {
  let count = 0
  for (let i = 0; i < text.length; i++, count++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0xd800 && unit <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
  }
  return count
}

/** One line of a bulk import. */
export type ProfileRecord =
  | {
      type: 'settings'
      userId: UserId
      settings: UserSettings
      /**
       * Set by the service before storing: the settings `settings` were computed from, which
       * the store replaces only while they are still stored (as PrivacyStore.replaceSettings).
       */
      expected?: UserSettings | undefined
    }
  | { type: 'friends'; a: UserId; b: UserId; friends: boolean }
  | {
      type: 'block'
      blocker: UserId
      blocked: UserId
      isBlocked: boolean
      /** Set by the service before storing, as for a single block. */
      sight?: BlockSight | undefined
    }
  | { type: 'place'; place: Place }
  | { type: 'title'; title: Title }
  | { type: 'user'; user: UserProfile }

export type PrivacyRecord = Extract<ProfileRecord, { type: 'settings' | 'friends' | 'block' }>
export type CatalogueRecord = Extract<ProfileRecord, { type: 'place' | 'title' | 'user' }>

export function isPrivacyRecord(record: ProfileRecord): record is PrivacyRecord {
  return record.type === 'settings' || record.type === 'friends' || record.type === 'block'
}
