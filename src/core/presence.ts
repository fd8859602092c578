import type { UserSettings } from './privacy.js'
import type { UserId } from './user-id.js'

/** The user state, in precedence order: the highest live session wins. Values are Roblox's. */
export const PresenceType = {
  Offline: 0,
  Online: 1,
  InGame: 2,
  InStudio: 3,
  /** Only ever shown to the user themself, when they appear offline to everyone else. */
  Invisible: 4,
} as const
export type PresenceType = (typeof PresenceType)[keyof typeof PresenceType]

export type ActivityKind = 'online' | 'inGame' | 'inStudio'

/** Where a session came from: the user's own app or studio, an Xbox title, or a game server. */
export type SessionSource = 'app' | 'title' | 'server'

export type Placement = 'full' | 'fill' | 'snapped' | 'background'
export type TitleState = 'active' | 'inactive'

export interface RichPresence {
  id: string
  scid?: string
  params: string[]
}

export interface Activity {
  kind: ActivityKind
  /** Roblox side; ids are int64 decimal strings. */
  placeId?: string
  rootPlaceId?: string
  universeId?: string
  /** The game server instance (uuid). */
  gameId?: string
  /** Free text the client reported, or the place name from the catalogue. */
  location?: string
  /** Xbox side. */
  titleId?: string
  placement?: Placement
  titleState?: TitleState
  richPresence?: RichPresence
}

/** The key of a title's session on a device (Xbox title writes): one per title and device type. */
export function titleSessionKey(titleId: string, deviceType: string): string {
  return `title:${titleId}:${deviceType}`
}

/**
 * The sessions an end of titles on `deviceType` ends (Xbox's DELETE of title presence), among a
 * user's live `sessions`, in their order: the session of `titleId` there, or when `titleId` is
 * undefined every title session (source `title`, naming its title) of that device.
 */
export function titleSessionsOn(
  sessions: readonly Session[],
  deviceType: string,
  titleId: string | undefined,
): Session[] {
  if (titleId !== undefined) {
    const key = titleSessionKey(titleId, deviceType)
    return sessions.filter((s) => s.key === key)
  }
  return sessions.filter(
    (s) => s.source === 'title' && s.deviceType === deviceType && !!s.activity.titleId,
  )
}

/**
 * The titles of `found` (titleSessionsOn's sessions of a device): `named` if it runs there, so
 * a write naming a title the device does not run finds none.
 */
export function titleIdsFound(found: readonly Session[], named: string | undefined): string[] {
  if (named !== undefined) return found.length > 0 ? [named] : []
  return found.map((s) => s.activity.titleId!)
}

/**
 * Activity members a write may leave to the session it refreshes (SessionWrite.inherit): the
 * Xbox title members, which a TitleRequest that leaves them out keeps as they were.
 */
export type InheritedField = 'placement' | 'titleState' | 'richPresence'

/**
 * `activity` with each of `fields` taken from `previous` (the live session the write refreshes)
 * where that has it; `activity`'s own values stand only where it has not. `activity` itself when
 * nothing is taken; otherwise a copy, members in `activity`'s order, taken ones it lacks after.
 */
export function inheritActivity(
  activity: Activity,
  previous: Activity | undefined,
  fields: readonly InheritedField[],
): Activity {
  if (previous === undefined) return activity
  let merged: Activity | undefined
  for (const field of fields) {
    if (previous[field] === undefined) continue
    merged ??= { ...activity }
    if (field === 'richPresence') merged.richPresence = previous.richPresence
    else if (field === 'placement') merged.placement = previous.placement
    else merged.titleState = previous.titleState
  }
  return merged ?? activity
}

export interface Session {
  userId: UserId
  /** Identifies the session among the user's sessions: one per device, title or game server. */
  key: string
  source: SessionSource
  /** Xbox device type names (XboxOne, Scarlett, PC, iOS, Android, Web, ...), kept as given. */
  deviceType: string
  startedAt: number
  updatedAt: number
  /** Epoch ms; a session at or past expiresAt does not exist. */
  expiresAt: number
  activity: Activity
}

/** What the store knows of one user: live sessions only, and the durable lastOnline. */
export interface UserPresence {
  userId: UserId
  sessions: readonly Session[]
  /** Epoch ms of the last instant a session of the user was alive; undefined if never seen. */
  lastOnline: number | undefined
}

/**
 * Why sessions ended. Hiding a user (invisibility, a block) is no reason of its own: watchers
 * must not tell it from a user who went offline, so they see `explicit`.
 */
export type OfflineReason = 'explicit' | 'timeout' | 'server_lost' | 'node_lost'

export function isLive(session: Pick<Session, 'expiresAt'>, now: number): boolean {
  return session.expiresAt > now
}

export function liveSessions(sessions: readonly Session[], now: number): Session[] {
  return sessions.filter((s) => isLive(s, now))
}

/**
 * The state a live session of this kind puts its user in (Online, InGame or InStudio).
 * Compared, not looked up in a table keyed by kind: that was a megamorphic keyed load, about 100
 * instructions per user of a read (callgrind, issue 19).
 */
export function stateOfKind(kind: ActivityKind): PresenceType {
  return kind === 'inGame'
    ? PresenceType.InGame
    : kind === 'online'
      ? PresenceType.Online
      : PresenceType.InStudio
}

/** InStudio > InGame > Online > Offline over the sessions alive at `now`. */
export function deriveUserState(sessions: readonly Session[], now: number): PresenceType {
  let state: PresenceType = PresenceType.Offline
  for (const session of sessions) {
    if (!isLive(session, now)) continue
    const rank = stateOfKind(session.activity.kind)
    if (rank > state) state = rank
  }
  return state
}

/**
 * The live session that defines the user's state: highest kind, then most recently updated.
 * Its activity is the one single-location views (Roblox) show.
 */
export function primarySession(sessions: readonly Session[], now: number): Session | undefined {
  let best: Session | undefined
  for (const session of sessions) {
    if (!isLive(session, now)) continue
    if (best === undefined) {
      best = session
      continue
    }
    const rank = stateOfKind(session.activity.kind)
    const bestRank = stateOfKind(best.activity.kind)
    if (rank > bestRank || (rank === bestRank && session.updatedAt > best.updatedAt)) {
      best = session
    }
  }
  return best
}

/** A presence with every session past expiry removed, as every read must see it. */
export function atInstant(presence: UserPresence, now: number): UserPresence {
  const sessions = presence.sessions
  for (let i = 0; i < sessions.length; i++) {
    if (!isLive(sessions[i]!, now)) return { ...presence, sessions: liveSessions(sessions, now) }
  }
  return presence
}

/**
 * A presence as an expiry at `now` leaves it (PresenceStore.expire, a sweep): the sessions past
 * expiry gone, lastOnline moved to the last heartbeat among them (when the user was last alive),
 * never back. What a write made in the same step as that expiry computes from.
 *
 * @example sweptAt(stored, now).lastOnline // the instant the last expired session was beaten
 */
export function sweptAt(presence: UserPresence, now: number): UserPresence {
  const swept = atInstant(presence, now)
  if (swept === presence) return presence
  let lastOnline = presence.lastOnline
  for (const session of presence.sessions) {
    if (!isLive(session, now) && !(lastOnline !== undefined && lastOnline >= session.updatedAt)) {
      lastOnline = session.updatedAt
    }
  }
  return { ...swept, lastOnline }
}

/** A change of one user's presence, as the store applied it (atomically). */
export interface PresenceChange {
  userId: UserId
  before: UserPresence
  after: UserPresence
  /** Why sessions ended, when the change ended some. */
  reason?: OfflineReason
  /** The sessions this change ended, if any. */
  ended?: readonly Session[]
  /**
   * Sessions past their expiry and not swept yet that the write found and ended in its own step
   * (a heartbeat or a game server's report writing the user): left out of `before`, as every
   * read leaves them. Their end came first, when they expired: it is told before the write
   * itself, as the sweep would have told it (expiryOf), and no sweep finds them any more.
   */
  expired?: readonly Session[]
  /**
   * The user's privacy settings as they stood when the change was stored, in the same step,
   * where the store keeps them with the presence (fleet mode folds them into the value its
   * script writes): what the webhooks judge the change by, whatever changed since.
   */
  settings?: UserSettings
  /**
   * Where the change stands in the user's change history (src/realtime/history.ts), once it is
   * recorded there: set by the store script or the node that made the change, carried on the bus.
   */
  position?: ChangePosition
}

/**
 * A change's place in its user's history: `offset` counts the user's changes (1, 2, 3, ...)
 * within `epoch`, which changes whenever the history was lost and started again; `at` is when
 * the change was made (epoch ms).
 */
export interface ChangePosition {
  epoch: string
  offset: number
  at: number
}

/**
 * The instant to read a change's `before` at: just before the first session it ended expired, so
 * a session ended by expiry (a sweep, told later than it happened) still counts as alive there;
 * but never before a later write that found the user offline already (toldOffline).
 */
export function instantBefore(change: PresenceChange, at: number): number {
  let instant = at
  for (const session of change.ended ?? []) instant = Math.min(instant, session.expiresAt - 1)
  return toldOffline(change.before, instant, at)
}

/**
 * `instant`, or the user's last write when that lies after it and every session of `presence`
 * (the stored state a change starts from) was over by then. Every write of a user moves its
 * lastOnline to its instant; a write that leaves every stored session over (a session ended
 * after the first expired, say) made a change that said the user is offline. A session expired
 * before it and swept after it must not be read alive again: the sweep's change would say
 * `offline` a second time, and so would hiding the user before that sweep.
 */
function toldOffline(presence: UserPresence, instant: number, at: number): number {
  const last = presence.lastOnline
  if (last === undefined || last <= instant) return instant
  const written = Math.min(last, at)
  return deriveUserState(presence.sessions, written) === PresenceType.Offline ? written : instant
}

/**
 * The instant to read the `before` of a settings change made at `at` at, given the user's
 * presence with every stored session: just before the first session that expired and was not
 * swept yet, so that a session whose end nobody was told yet counts as alive, as the sweep's own
 * change reads it (instantBefore). Else a user who turns invisible between a session's expiry
 * and its sweep is offline on both sides of the settings change, and hidden on both sides of the
 * sweep's: no `offline` at all, where a visible user's expiry is one. Never before a later write
 * that found the user offline already, as instantBefore.
 */
export function instantBeforeUnswept(presence: UserPresence, at: number): number {
  let instant = at
  for (const session of presence.sessions) {
    if (session.expiresAt <= at) instant = Math.min(instant, session.expiresAt - 1)
  }
  return toldOffline(presence, instant, at)
}

/**
 * Why an expiry ended sessions: a game server's session expires only when the server stopped
 * reporting (it crashed or lost its network), so it ends as `server_lost`; others as `timeout`.
 * One change carries one reason: when a sweep ends both kinds for a user, the server's wins.
 */
export function sweepReason(ended: readonly Pick<Session, 'source'>[]): OfflineReason {
  return ended.some((s) => s.source === 'server') ? 'server_lost' : 'timeout'
}

/**
 * The expiry a write told first (PresenceChange.expired), as the change the sweep would have
 * made had it run just before the write: from every session stored then (the expired ones read
 * alive just before they expired, instantBefore) to the write's `before`. Undefined when the
 * write found none. Every surface that judges a change judges this one first: a user whose only
 * session expired and who comes back before the sweep is told `offline` then `online`, and one
 * who kept another session sees the expired one leave, exactly as if the sweep had been on time.
 *
 * @example
 * for (const step of [expiryOf(change), change]) if (step) judge(step)
 */
export function expiryOf(change: PresenceChange): PresenceChange | undefined {
  const expired = change.expired
  if (expired === undefined || expired.length === 0) return undefined
  const { userId, before } = change
  const step: PresenceChange = {
    userId,
    before: { ...before, sessions: [...expired, ...before.sessions] },
    after: before,
    reason: sweepReason(expired),
    ended: expired,
  }
  if (change.settings) step.settings = change.settings
  return step
}

/**
 * The instant the expiry told first (expiryOf) happened: when the last of the expired sessions
 * ran out, never after the write `at`.
 */
export function expiredAt(change: PresenceChange, at: number): number {
  let instant = -Infinity
  for (const session of change.expired ?? []) instant = Math.max(instant, session.expiresAt)
  return Math.min(instant, at)
}

export function offlinePresence(userId: UserId, lastOnline?: number): UserPresence {
  return { userId, sessions: [], lastOnline }
}
