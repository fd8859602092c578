import {
  PresenceType,
  atInstant,
  deriveUserState,
  type Session,
  type UserPresence,
} from './presence.js'
import type { UserId } from './user-id.js'

/** Who may see where the user is (place, game, title, rich presence). Others see only whether. */
export type Visibility = 'everyone' | 'friends' | 'nobody'

export interface UserSettings {
  visibility: Visibility
  /** Appear offline to everyone but oneself. */
  invisible: boolean
  /**
   * lastOnline as it stood when the user went invisible. Others keep seeing this value, so that
   * nothing about an invisible user's activity leaks through timestamps.
   */
  frozenLastOnline?: number | undefined
}

export const defaultSettings: Readonly<UserSettings> = Object.freeze({
  visibility: 'everyone',
  invisible: false,
})

export type Scope = 'presence:read' | 'presence:read:private' | 'presence:write' | 'admin'

export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'user'; userId: UserId }
  | { kind: 'service'; keyId: string; scopes: readonly Scope[] }

export const anonymous: Viewer = Object.freeze({ kind: 'anonymous' })

/** How the viewer relates to the target. `blocked` holds in either direction. */
export interface Relation {
  friends: boolean
  blocked: boolean
}

export const strangers: Readonly<Relation> = Object.freeze({ friends: false, blocked: false })

/**
 * What a viewer may see of a target:
 * - self: everything, including the Invisible state;
 * - full: state and where;
 * - presence: state, but not where;
 * - hidden: Offline, with `lastOnline` replaced by what the viewer is allowed to know.
 */
export type Access =
  | { kind: 'self' }
  | { kind: 'full' }
  | { kind: 'presence' }
  | { kind: 'hidden'; lastOnline: number | undefined }

export function accessOf(
  viewer: Viewer,
  targetId: UserId,
  settings: UserSettings,
  relation: Relation,
): Access {
  if (viewer.kind === 'user' && viewer.userId === targetId) return { kind: 'self' }
  if (viewer.kind === 'service' && viewer.scopes.includes('presence:read:private')) {
    return { kind: 'full' }
  }
  // A blocked viewer learns nothing, not even when the target was last seen.
  if (relation.blocked) return { kind: 'hidden', lastOnline: undefined }
  if (settings.invisible) return { kind: 'hidden', lastOnline: settings.frozenLastOnline }
  switch (settings.visibility) {
    case 'everyone':
      return { kind: 'full' }
    case 'friends':
      return relation.friends ? { kind: 'full' } : { kind: 'presence' }
    case 'nobody':
      return { kind: 'presence' }
  }
}

/** A presence as one viewer may see it: the input of every protocol's view. */
export interface VisiblePresence {
  userId: UserId
  state: PresenceType
  /** Live sessions the viewer may see; with `locationHidden`, activities carry only their kind. */
  sessions: readonly Session[]
  lastOnline: number | undefined
  /** True when the viewer may know that the user is online but not where. */
  locationHidden: boolean
}

/**
 * Applies privacy to a presence at instant `now`: the one place where it is applied, for every
 * protocol and transport alike.
 */
export function visiblePresence(
  presence: UserPresence,
  access: Access,
  settings: UserSettings,
  now: number,
): VisiblePresence {
  const live = atInstant(presence, now)
  switch (access.kind) {
    case 'hidden':
      return {
        userId: presence.userId,
        state: PresenceType.Offline,
        sessions: [],
        lastOnline: access.lastOnline,
        locationHidden: true,
      }
    case 'self': {
      const state = deriveUserState(live.sessions, now)
      return {
        userId: presence.userId,
        state:
          settings.invisible && state !== PresenceType.Offline ? PresenceType.Invisible : state,
        sessions: live.sessions,
        lastOnline: live.lastOnline,
        locationHidden: false,
      }
    }
    case 'full':
      return {
        userId: presence.userId,
        state: deriveUserState(live.sessions, now),
        sessions: live.sessions,
        lastOnline: live.lastOnline,
        locationHidden: false,
      }
    case 'presence':
      return {
        userId: presence.userId,
        state: deriveUserState(live.sessions, now),
        sessions: live.sessions.map(withoutLocation),
        lastOnline: live.lastOnline,
        locationHidden: true,
      }
  }
}

function withoutLocation(session: Session): Session {
  return { ...session, activity: { kind: session.activity.kind } }
}
