import {
  PresenceType,
  deriveUserState,
  primarySession,
  type Activity,
} from '../../core/presence.js'
import type { VisiblePresence } from '../../core/privacy.js'
import { isoOf } from '../shared/iso-date.js'

/**
 * One record of Roblox's UserPresence model, in Roblox's field order. Ids are int64 decimal
 * strings here; `serializeRobloxPresence` writes them as JSON numbers, digit for digit.
 */
export interface RobloxUserPresence {
  /**
   * 0 Offline, 1 Online, 2 InGame, 3 InStudio; 4 Invisible only to the user themself, and only
   * where the operator opted in (`invisibleSelfView: 'invisible'`).
   */
  userPresenceType: PresenceType
  lastLocation: string
  placeId: string | null
  rootPlaceId: string | null
  /** The game server instance (uuid). */
  gameId: string | null
  universeId: string | null
  userId: string
  /** ISO-8601 UTC ending in `Z`; NEVER_ONLINE when the user was never seen or it is hidden. */
  lastOnline: string
}

/**
 * What an invisible user reading their own presence is shown. Roblox's enum, and clients that
 * map the number through it (ro.py's PresenceType raises ValueError on 4), know only 0-3:
 * - `state` (the default): their real state, 0-3, with the place, as if they were visible;
 * - `invisible`: 4 (Invisible), with the place; an operator's opt-in for clients that know 4;
 * - `offline`: 0 and an offline-looking record, as everyone else sees them.
 */
export type InvisibleSelfView = 'state' | 'invisible' | 'offline'
export const invisibleSelfViews: readonly InvisibleSelfView[] = ['state', 'invisible', 'offline']

export interface RobloxViewOptions {
  invisibleSelfView: InvisibleSelfView
}

/**
 * The lastOnline of users never seen, or whose lastOnline the viewer may not know: the Unix
 * epoch, which every date library can represent (clients parse this field unconditionally).
 */
export const NEVER_ONLINE = '1970-01-01T00:00:00.000Z'

/** What lastLocation says when there is no location text, or the viewer may not see it. */
const genericLocation: Record<PresenceType, string> = {
  [PresenceType.Offline]: 'Offline',
  [PresenceType.Online]: 'Website',
  [PresenceType.InGame]: 'Playing',
  [PresenceType.InStudio]: 'Studio',
  [PresenceType.Invisible]: 'Offline',
}

/**
 * Projects what a viewer may see (privacy already applied by the core) onto Roblox's record.
 * Pure: no clock, no I/O. The sessions of a VisiblePresence are those alive at lookup time, so
 * the primary session is chosen among all of them.
 *
 * @example
 * robloxPresence(visible, { invisibleSelfView: 'state' })
 * // { userPresenceType: 2, lastLocation: 'Obby', placeId: '1818', ..., lastOnline: '2026-…Z' }
 */
export function robloxPresence(
  presence: VisiblePresence,
  options: RobloxViewOptions,
): RobloxUserPresence {
  const lastOnline =
    presence.lastOnline === undefined ? NEVER_ONLINE : new Date(presence.lastOnline).toISOString()
  const state = shownState(presence, options)
  const primary =
    state === PresenceType.Offline
      ? undefined
      : primarySession(presence.sessions, Number.NEGATIVE_INFINITY)
  if (primary === undefined || presence.locationHidden) {
    return {
      userPresenceType: state,
      lastLocation: genericLocation[state],
      placeId: null,
      rootPlaceId: null,
      gameId: null,
      universeId: null,
      userId: presence.userId,
      lastOnline,
    }
  }
  const activity = primary.activity
  const rank =
    activity.kind === 'inStudio'
      ? PresenceType.InStudio
      : activity.kind === 'inGame'
        ? PresenceType.InGame
        : PresenceType.Online
  return {
    userPresenceType: state,
    lastLocation: activity.location || genericLocation[rank],
    placeId: activity.placeId ?? null,
    rootPlaceId: activity.rootPlaceId ?? null,
    gameId: activity.gameId ?? null,
    universeId: activity.universeId ?? null,
    userId: presence.userId,
    lastOnline,
  }
}

/** The userPresenceType a record carries: the core's state, or what InvisibleSelfView says. */
export function shownState(presence: VisiblePresence, options: RobloxViewOptions): PresenceType {
  return shownAs(presence, presence.state, options, liveStateOf)
}

/**
 * `state`, or for an invisible user what InvisibleSelfView shows; `live` gives the user's live
 * state from `of` when the view asks for it (a function, not a closure: no allocation per record).
 */
export function shownAs<T>(
  of: T,
  state: PresenceType,
  options: RobloxViewOptions,
  live: (of: T) => PresenceType,
): PresenceType {
  if (state !== PresenceType.Invisible) return state
  switch (options.invisibleSelfView) {
    case 'invisible':
      return PresenceType.Invisible
    case 'offline':
      return PresenceType.Offline
    case 'state':
      return live(of)
  }
}

/** The sessions of a VisiblePresence are the live ones: no clock is needed. */
function liveStateOf(presence: VisiblePresence): PresenceType {
  return deriveUserState(presence.sessions, Number.NEGATIVE_INFINITY)
}

/** An int64 kept as decimal digits, written as a JSON number without passing through a double. */
function int64(value: string | null): string {
  return value === null ? 'null' : /^[0-9]{1,19}$/.test(value) ? value : JSON.stringify(value)
}

/** One record as JSON, ids as exact JSON numbers (JSON.stringify would need lossy numbers). */
export function serializeRobloxPresence(record: RobloxUserPresence): string {
  return (
    `{"userPresenceType":${record.userPresenceType}` +
    `,"lastLocation":${JSON.stringify(record.lastLocation)}` +
    `,"placeId":${int64(record.placeId)}` +
    `,"rootPlaceId":${int64(record.rootPlaceId)}` +
    `,"gameId":${record.gameId === null ? 'null' : JSON.stringify(record.gameId)}` +
    `,"universeId":${int64(record.universeId)}` +
    `,"userId":${int64(record.userId)}` +
    `,"lastOnline":"${record.lastOnline}"}`
  )
}

/** The body of POST /v1/presence/users from already-serialized records. */
export function serializeUserPresences(records: readonly string[]): string {
  return `{"userPresences":[${records.join(',')}]}`
}

/*
 * The read path. serializeVisible(v, o) === serializeRobloxPresence(robloxPresence(v, o)), byte
 * for byte (view.test.ts holds it to that), without the intermediate record: a 50-id batch is
 * read far more often than any of its users changes, so what records share is written once.
 * Everything before `userId` depends only on the state and the primary session's place fields,
 * so that prefix is cached by those values (whatever store the activity came from), in a
 * bounded map that starts over when full.
 */

const MAX_PREFIXES = 10_000
const prefixes = new Map<string, string>()

function prefixOf(state: PresenceType, activity: Activity | undefined): string {
  const key =
    activity === undefined
      ? String(state)
      : // ids and uuids hold no '|': with the free text last, no two activities share a key
        `${state}|${activity.kind}|${activity.placeId ?? ''}|${activity.rootPlaceId ?? ''}|${activity.gameId ?? ''}|${activity.universeId ?? ''}|${activity.location ?? ''}`
  let prefix = prefixes.get(key)
  if (prefix !== undefined) return prefix
  prefix = prefixText(state, activity)
  if (prefixes.size >= MAX_PREFIXES) prefixes.clear()
  prefixes.set(key, prefix)
  return prefix
}

/** A record's text before its user id's digits, for a shown state and primary activity. */
export function prefixText(state: PresenceType, activity: Activity | undefined): string {
  const rank =
    activity === undefined
      ? state
      : activity.kind === 'inStudio'
        ? PresenceType.InStudio
        : activity.kind === 'inGame'
          ? PresenceType.InGame
          : PresenceType.Online
  const location = activity?.location || genericLocation[rank]
  return prefixFor(
    state,
    location,
    activity?.placeId ?? null,
    activity?.rootPlaceId ?? null,
    activity?.gameId ?? null,
    activity?.universeId ?? null,
  )
}

function prefixFor(
  state: PresenceType,
  lastLocation: string,
  placeId: string | null,
  rootPlaceId: string | null,
  gameId: string | null,
  universeId: string | null,
): string {
  return (
    `{"userPresenceType":${state}` +
    `,"lastLocation":${JSON.stringify(lastLocation)}` +
    `,"placeId":${int64(placeId)}` +
    `,"rootPlaceId":${int64(rootPlaceId)}` +
    `,"gameId":${gameId === null ? 'null' : JSON.stringify(gameId)}` +
    `,"universeId":${int64(universeId)}` +
    `,"userId":`
  )
}

/** One record as JSON, straight from what the viewer may see: see the note above. */
export function serializeVisible(presence: VisiblePresence, options: RobloxViewOptions): string {
  const state = shownState(presence, options)
  const primary =
    state === PresenceType.Offline || presence.locationHidden
      ? undefined
      : primarySession(presence.sessions, Number.NEGATIVE_INFINITY)
  const lastOnline = presence.lastOnline === undefined ? NEVER_ONLINE : isoOf(presence.lastOnline)
  return (
    prefixOf(state, primary?.activity) +
    int64(presence.userId) +
    ',"lastOnline":"' +
    lastOnline +
    '"}'
  )
}
