import {
  PresenceType,
  atInstant,
  deriveUserState,
  isLive,
  primarySession,
  type Activity,
  type SessionSource,
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
   * The lastOnline others last saw before the user went invisible (the instant they went
   * invisible, if they were online then). Others keep seeing it while the user is invisible, and
   * afterwards until the user is next seen alive (see `visibleSince`), so that nothing about the
   * invisible period leaks through timestamps.
   */
  frozenLastOnline?: number | undefined
  /**
   * When invisibility last ended. The frozen lastOnline stands until the user is seen alive after
   * this instant; from then on the real one shows again.
   */
  visibleSince?: number | undefined
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
  /**
   * With `blocked`: the target's lastOnline as the viewer last saw it when the block was made
   * (absent when the viewer knew none). A blocked viewer keeps seeing it, as they would a user
   * who went offline then.
   */
  lastOnline?: number
  /**
   * Without `blocked`: the instant a block between the two ended (either way). `lastOnline` is
   * then the target's lastOnline as the viewer saw it at that instant (through the block), and
   * the viewer keeps seeing it until the target is next seen alive after it, as others keep a
   * user's frozen lastOnline after invisibility ends: so that nothing the target did while the
   * block hid it shows through timestamps once it is lifted.
   */
  since?: number
}

/**
 * What each side of a block last saw of the other, kept with the block so that each keeps
 * seeing what a real offline would show: `blockerSaw` is the blocked user's lastOnline as the
 * blocker saw it, `blockedSaw` the blocker's as the blocked user saw it.
 */
export interface BlockSight {
  blockerSaw?: number | undefined
  blockedSaw?: number | undefined
  /**
   * On an unblock: its instant. The sides saw each other through the block as above, and keep
   * seeing that until the other is next seen alive after it (Relation.since).
   */
  since?: number | undefined
}

export const strangers: Readonly<Relation> = Object.freeze({ friends: false, blocked: false })
/** A friend, not blocked: shared, as `strangers` is, so reads allocate no relation per target. */
export const befriended: Readonly<Relation> = Object.freeze({ friends: true, blocked: false })

const MAX_SHARED_STRANGERS = 4096
const strangerLists: Array<readonly Relation[]> = []
const defaultLists: Array<readonly UserSettings[]> = []

/**
 * `n` times `value`, one list per length kept in `lists` (up to MAX_SHARED_STRANGERS; longer
 * ones are made each time). Read-only by its type, not frozen: V8 reads a frozen array's
 * elements through a slow path, measured under callgrind at ~70 instructions more per element,
 * once per id of every signed-in read (an Xbox batch: 1100).
 */
function sharedList<T>(lists: Array<readonly T[]>, n: number, value: T): readonly T[] {
  if (n > MAX_SHARED_STRANGERS) return new Array<T>(n).fill(value)
  let list = lists[n]
  if (list === undefined) {
    list = new Array<T>(n).fill(value)
    lists[n] = list
  }
  return list
}

/**
 * `n` strangers, one shared list per length: the relations of a viewer who has none (the common
 * case) cost no allocation per read.
 */
export function strangersOf(n: number): readonly Relation[] {
  return sharedList(strangerLists, n, strangers)
}

/**
 * `n` defaultSettings, one shared list per length (as strangersOf): the settings of ids none of
 * whose users changed a setting (the common case) cost no allocation per read, and applyPrivacy
 * knows them by the list, without reading each id's (issue 19).
 */
export function defaultSettingsOf(n: number): readonly UserSettings[] {
  return sharedList(defaultLists, n, defaultSettings)
}

/**
 * What a viewer may see of a target:
 * - self: everything, including the Invisible state;
 * - full: state and where;
 * - presence: state, but not where;
 * - hidden: Offline, with `lastOnline` replaced by what the viewer is allowed to know.
 */
export type Access =
  | { kind: 'self'; sight?: undefined }
  | { kind: 'full'; sight?: Sight }
  | { kind: 'presence'; sight?: Sight }
  | { kind: 'hidden'; lastOnline: number | undefined; sight?: Sight }

/**
 * What a viewer saw of a target when a block between them ended (Relation.since): the lastOnline
 * it keeps being shown until the target is next seen alive after `since`.
 */
export interface Sight {
  lastOnline: number | undefined
  since: number
}

// shared answers: a read decides access once per id, and these carry nothing of their own
const SELF: Access = Object.freeze({ kind: 'self' })
const FULL: Access = Object.freeze({ kind: 'full' })
const PRESENCE: Access = Object.freeze({ kind: 'presence' })

export function accessOf(
  viewer: Viewer,
  targetId: UserId,
  settings: UserSettings,
  relation: Relation,
): Access {
  if (viewer.kind === 'user' && viewer.userId === targetId) return SELF
  if (viewer.kind === 'service' && viewer.scopes.includes('presence:read:private')) return FULL
  // A blocked viewer learns nothing new: the target looks as it did when the block was made.
  if (relation.blocked) return { kind: 'hidden', lastOnline: relation.lastOnline }
  if (relation.since !== undefined) {
    // a block ended: what the viewer saw through it stands until the target is next seen alive
    const sight: Sight = { lastOnline: relation.lastOnline, since: relation.since }
    if (settings.invisible) return { kind: 'hidden', lastOnline: settings.frozenLastOnline, sight }
    const kind =
      settings.visibility === 'everyone' || (settings.visibility === 'friends' && relation.friends)
        ? 'full'
        : 'presence'
    return { kind, sight }
  }
  if (settings.invisible) return { kind: 'hidden', lastOnline: settings.frozenLastOnline }
  switch (settings.visibility) {
    case 'everyone':
      return FULL
    case 'friends':
      return relation.friends ? FULL : PRESENCE
    case 'nobody':
      return PRESENCE
  }
}

/**
 * Which audiences a change of a user's settings from `before` to `after` concerns: whether what
 * the user's friends (`friends`) and other non-blocked viewers (`others`) may see of the user
 * changed. It is judged as if the user were visible and unblocked (plus any change of
 * invisibility or of the lastOnline others are shown), so that a settings change of a hidden user
 * concerns exactly whom the same change of a visible one would: which marks a resume crosses
 * must not tell a hidden user from an offline one (docs/reference/native.md, "Positions"). The
 * user itself is concerned by every settings change; a block's sides by none.
 */
export function settingsAudiences(
  before: UserSettings,
  after: UserSettings,
): { friends: boolean; others: boolean } {
  const same = (relation: Relation) =>
    asIfVisible(before, relation) === asIfVisible(after, relation)
  const base =
    before.invisible === after.invisible &&
    before.frozenLastOnline === after.frozenLastOnline &&
    before.visibleSince === after.visibleSince
  return { friends: !base || !same(befriended), others: !base || !same(strangers) }
}

function asIfVisible(settings: UserSettings, relation: Relation): Access['kind'] {
  return accessOf(anonymous, '' as UserId, { ...settings, invisible: false }, relation).kind
}

/**
 * Which audience of a target's settings changes (settingsAudiences) a viewer is in, by its
 * relation to the target: `self`, else `friends` or `others` by the friendship, a block aside
 * (as settingsAudiences judges as if unblocked).
 */
export function audienceOf(
  viewer: Viewer,
  targetId: UserId,
  relation: Relation,
): 'self' | 'friends' | 'others' {
  if (viewer.kind === 'user' && viewer.userId === targetId) return 'self'
  return relation.friends ? 'friends' : 'others'
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
  /**
   * When the user was hidden from the viewer until recently (invisibility or a block ended): the
   * instant it may see the user from. No session is shown as written before it (shownWrite).
   */
  writtenFrom?: number
}

/**
 * Applies privacy to a presence at instant `now`: the one place where it is applied, for every
 * protocol and transport alike. Its rules are the four below (shownState, shownLastOnline,
 * hidesLocation, hidesSessions), which visibleSummary applies too.
 */
export function visiblePresence(
  presence: UserPresence,
  access: Access,
  settings: UserSettings,
  now: number,
): VisiblePresence {
  if (hidesSessions(access)) {
    return {
      userId: presence.userId,
      state: PresenceType.Offline,
      sessions: [],
      lastOnline: shownLastOnline(access, settings, presence.lastOnline),
      locationHidden: true,
    }
  }
  const live = atInstant(presence, now)
  const locationHidden = hidesLocation(access)
  const seen: VisiblePresence = {
    userId: presence.userId,
    state: shownState(access, settings, deriveUserState(live.sessions, now)),
    sessions: locationHidden ? live.sessions.map(withoutLocation) : live.sessions,
    lastOnline: shownLastOnline(access, settings, live.lastOnline),
    locationHidden,
  }
  const from = seenFrom(access, settings)
  if (from !== undefined) seen.writtenFrom = from
  return seen
}

/**
 * The instant a view shows `session` as last written at (an Xbox title's `lastModified`): its
 * own, or `seen.writtenFrom` when it was written before the viewer could see the user (while
 * hidden from it), as a session begun then would be. The sessions themselves keep their own, so
 * that which is primary (the most recently written) is what it is in every view alike.
 */
export function shownWrite(session: Pick<Session, 'updatedAt'>, seen: VisiblePresence): number {
  const from = seen.writtenFrom
  return from !== undefined && session.updatedAt < from ? from : session.updatedAt
}

/**
 * The compact form of a user's presence at one instant (PresenceStore#summarize): what the
 * single-location replies need (Roblox; Xbox for users with at most one app or game session),
 * without Session objects.
 */
export interface PresenceSummary {
  userId: UserId
  /** Offline..InStudio over the live sessions; after visibleSummary, Invisible for oneself. */
  state: PresenceType
  /**
   * The primary live session's activity (see `primarySession`); undefined when offline, and
   * after visibleSummary when the viewer may not see where the user is.
   */
  activity: Activity | undefined
  /** The primary live session's updatedAt; 0 without one. */
  updatedAt: number
  lastOnline: number | undefined
  /** How many live sessions the user has (that the viewer may see: none when hidden). */
  sessions: number
  /**
   * The primary live session's device type and source; '' and 'app' without one, or when the
   * read did not ask for them (PresenceStore.summarize's `device`).
   */
  deviceType: string
  source: SessionSource /**
   * Optional, a store's hint (the memory store's): the id under which it interned `activity`
   * (one frozen object per distinct activity). An id may name another object later (ids are
   * reused), so a reader keying a cache by it checks the activity is the one it cached. -1 or
   * absent: none. Not part of the summary's value (summaryOf has none; the contract ignores it).
   */
  activityId?: number
}

/**
 * The summary of `presence` at `now`: what PresenceStore#summarize returns, by definition.
 *
 * @example
 * summaryOf({ userId: '7', sessions: [], lastOnline: 5 }, now)
 * // { userId: '7', state: 0, activity: undefined, updatedAt: 0, lastOnline: 5, sessions: 0,
 * //   deviceType: '', source: 'app' }
 */
export function summaryOf(presence: UserPresence, now: number): PresenceSummary {
  const primary = primarySession(presence.sessions, now)
  let live = 0
  for (const session of presence.sessions) if (isLive(session, now)) live++
  return {
    userId: presence.userId,
    state: deriveUserState(presence.sessions, now),
    activity: primary?.activity,
    updatedAt: primary?.updatedAt ?? 0,
    lastOnline: presence.lastOnline,
    sessions: live,
    deviceType: primary?.deviceType ?? '',
    source: primary?.source ?? 'app',
  }
}

/**
 * Applies privacy to a summary, by visiblePresence's rules: hidden users come out exactly as
 * offline ones do, and an activity only where the viewer may see where. The summary itself when
 * nothing changes (the common case: no allocation).
 */
export function visibleSummary(
  summary: PresenceSummary,
  access: Access,
  settings: UserSettings,
): PresenceSummary {
  const hidden = hidesSessions(access)
  const state = hidden ? PresenceType.Offline : shownState(access, settings, summary.state)
  const activity =
    state === PresenceType.Offline || hidesLocation(access) ? undefined : summary.activity
  const lastOnline = shownLastOnline(access, settings, summary.lastOnline)
  const from = seenFrom(access, settings)
  const updatedAt = hidden
    ? 0
    : from !== undefined && summary.sessions > 0 && summary.updatedAt < from
      ? from
      : summary.updatedAt
  if (
    state === summary.state &&
    activity === summary.activity &&
    lastOnline === summary.lastOnline &&
    updatedAt === summary.updatedAt
  ) {
    return summary
  }
  return {
    userId: summary.userId,
    state,
    activity,
    updatedAt,
    lastOnline,
    sessions: hidden ? 0 : summary.sessions,
    deviceType: hidden ? '' : summary.deviceType,
    source: hidden ? 'app' : summary.source,
  }
}

/**
 * visibleSummary(summaries[i], accessOf(viewer, …, settings[i], relations[i]), settings[i]) for
 * each i, in place (relations undefined: strangers). The access of the last id is used again
 * while the next has the same settings and relation objects (stores share them: the defaults,
 * `strangers`), and a full view of settings that hide nothing keeps the summary as it is:
 * measured (callgrind) at about 270 instructions an id of a 50-id read the other way.
 */
export function applyPrivacy(
  viewer: Viewer,
  summaries: PresenceSummary[],
  settings: readonly UserSettings[],
  relations: readonly Relation[] | undefined,
): void {
  const self = viewer.kind === 'user' ? viewer.userId : undefined
  if (
    settings.length <= MAX_SHARED_STRANGERS &&
    settings === defaultLists[settings.length] &&
    (relations === undefined || relations === strangerLists[relations.length])
  ) {
    // every id has the default settings and is a stranger: one access for all but oneself (the
    // loop below would find the same; measured, callgrind, ~60 instructions an id less)
    const access = accessOf(viewer, '' as UserId, defaultSettings, strangers)
    if (
      access === FULL &&
      !defaultSettings.invisible &&
      defaultSettings.visibleSince === undefined
    ) {
      for (let i = 0; i < summaries.length; i++) {
        const summary = summaries[i]!
        const shown =
          summary.userId === self
            ? visibleSummary(summary, SELF, defaultSettings)
            : summary.state === PresenceType.Offline && summary.activity !== undefined
              ? visibleSummary(summary, access, defaultSettings)
              : summary
        if (shown !== summary) summaries[i] = shown
      }
      return
    }
  }
  let lastSettings: UserSettings | undefined
  let lastRelation: Relation | undefined
  let access: Access = FULL
  for (let i = 0; i < summaries.length; i++) {
    const summary = summaries[i]!
    const targetSettings = settings[i]!
    const relation = relations?.[i] ?? strangers
    if (targetSettings !== lastSettings || relation !== lastRelation || summary.userId === self) {
      access = accessOf(viewer, summary.userId, targetSettings, relation)
      // oneself's access is not another's
      lastSettings = access === SELF ? undefined : targetSettings
      lastRelation = relation
    }
    if (
      access === FULL &&
      !targetSettings.invisible &&
      targetSettings.visibleSince === undefined &&
      (summary.state !== PresenceType.Offline || summary.activity === undefined)
    ) {
      continue // visibleSummary would give the summary itself
    }
    const visible = visibleSummary(summary, access, targetSettings)
    // most are seen as they are: no store (and its write barrier) for those
    if (visible !== summary) summaries[i] = visible
  }
}

/** Whether the viewer sees the user offline whatever the sessions (a block, invisibility). */
function hidesSessions(access: Access): access is Extract<Access, { kind: 'hidden' }> {
  return access.kind === 'hidden'
}

/** Whether the viewer may know that the user is online but not where. */
function hidesLocation(access: Access): boolean {
  return access.kind === 'hidden' || access.kind === 'presence'
}

/** The state the viewer is shown of a user not hidden, whose live state is `state`. */
function shownState(access: Access, settings: UserSettings, state: PresenceType): PresenceType {
  return access.kind === 'self' && settings.invisible && state !== PresenceType.Offline
    ? PresenceType.Invisible
    : state
}

/** The lastOnline the viewer is shown of a user whose real one is `lastOnline`. */
function shownLastOnline(
  access: Access,
  settings: UserSettings,
  lastOnline: number | undefined,
): number | undefined {
  let shown: number | undefined
  switch (access.kind) {
    case 'hidden':
      shown = access.lastOnline
      break
    case 'self':
      return lastOnline
    case 'full':
    case 'presence':
      shown = publicLastOnline(settings, lastOnline)
  }
  // after a block ended: a value from before it, or from while it hid the target, is not one the
  // viewer saw; it sees what it saw through the block until the target is next seen alive
  const sight = access.sight
  if (sight !== undefined && !(shown !== undefined && shown > sight.since)) return sight.lastOnline
  return shown
}

/**
 * The instant from which the viewer may see what the user does, when the user was hidden from it
 * until then (invisibility ended at `visibleSince`, a block between them at `sight.since`);
 * undefined when nothing hid the user (or the viewer sees it all: oneself, or nothing: hidden).
 * A live session last written before it was written while hidden: it is shown as written at
 * this instant (shownWrite), as a session begun then would be, so that no instant of the hidden
 * time shows, as lastOnline keeps the value seen (shownLastOnline).
 */
function seenFrom(access: Access, settings: UserSettings): number | undefined {
  if (access.kind === 'self' || access.kind === 'hidden') return undefined
  const ended = settings.visibleSince
  const unblocked = access.sight?.since
  if (ended === undefined) return unblocked
  return unblocked === undefined ? ended : Math.max(ended, unblocked)
}

/** A key per distinct access: viewers with equal keys are shown the same of a target. */
export function accessKey(access: Access): string {
  const sight = access.sight
  const tail = sight === undefined ? '' : `:${sight.lastOnline ?? ''}:${sight.since}`
  return access.kind === 'hidden' ? `hidden:${access.lastOnline ?? ''}${tail}` : access.kind + tail
}

/**
 * The lastOnline others may see of a user whose real one is `lastOnline`: the frozen value while
 * the user is invisible, and after invisibility ended until the user is seen alive again.
 */
export function publicLastOnline(
  settings: UserSettings,
  lastOnline: number | undefined,
): number | undefined {
  if (settings.invisible) return settings.frozenLastOnline
  const since = settings.visibleSince
  if (since === undefined || (lastOnline !== undefined && lastOnline > since)) return lastOnline
  return settings.frozenLastOnline
}

/**
 * An ended block's record, kept on each side (Relation.since): what `viewer` saw of `target`
 * through the block (`saw`), shown until the target is next seen alive after `since`.
 */
export interface BlockEnd {
  viewer: UserId
  target: UserId
  saw: number | undefined
  since: number
}

/**
 * Whether `end` no longer changes what its viewer is shown of its target, now or later, given
 * the target's `settings`, real `lastOnline` and `live` sessions: none of those was last written
 * before `since`, and the lastOnline others are shown of the target (publicLastOnline) is past
 * `since` (the target was seen alive after the block ended, which
 * shownLastOnline then shows), or is what the viewer saw through the block (the target did
 * nothing while blocked). Either stays so: a lastOnline only moves forward, to instants after
 * `since`, and one frozen by invisibility is one others were shown. A resolved end can be
 * forgotten (the janitor prunes them); an unresolved one must stay, or the viewer would be shown
 * what the target did unseen during the block.
 *
 * @example
 * blockEndResolved({ viewer, target, saw: 5, since: 10 }, settings, 12) // true: seen alive at 12
 */
export function blockEndResolved(
  end: Pick<BlockEnd, 'saw' | 'since'>,
  settings: UserSettings,
  lastOnline: number | undefined,
  live: readonly Pick<Session, 'updatedAt'>[] = [],
): boolean {
  // a live session last written while the block hid the target (a title beaten every 300 s
  // beside an app beaten every 30 s) still shows as written at `since` (shownWrite) until its
  // next write: the end stays until then
  if (live.some((session) => session.updatedAt < end.since)) return false
  const shown = publicLastOnline(settings, lastOnline)
  return (shown !== undefined && shown > end.since) || shown === end.saw
}

/**
 * The lastOnline an onlooker would be left with if the user vanished from their view at `now`,
 * as if the user went offline then: `now` while they see the user online, else what they see.
 * Hiding a user (invisibility, a block) freezes this value, so a hidden user looks exactly like
 * one who really went offline.
 */
export function lastOnlineSeenAt(seen: VisiblePresence, now: number): number | undefined {
  return seen.state === PresenceType.Offline ? seen.lastOnline : now
}

/**
 * What one side of a block keeps seeing of the other once the block ends at `now`, given what it
 * saw through the block (`saw`) and the other's presence and settings: `now` when the other is
 * online and not invisible, since the side sees it alive from then on, as a user coming online
 * then would be seen (and as ending invisibility while online keeps `now`, nextSettings), else
 * `saw` (Relation.since). Without it a user online at the unblock showed the lastOnline of before
 * the block while online, which no user just seen alive has.
 *
 * @example sawAtBlockEnd(5, { userId, sessions: [live], lastOnline: 8 }, defaultSettings, 10) // 10
 */
export function sawAtBlockEnd(
  saw: number | undefined,
  other: UserPresence,
  settings: UserSettings,
  now: number,
): number | undefined {
  if (settings.invisible) return saw
  return deriveUserState(other.sessions, now) === PresenceType.Offline ? saw : now
}

/**
 * The settings that were in force at an earlier `instant`, as far as `settings` (in force now)
 * tell: invisible before `visibleSince` when invisibility ended after that instant. What a change
 * describing an earlier instant than the one it is told at is judged by: a session that expired
 * while its user was invisible, ended by a sweep that ran after the user became visible again,
 * lived while the user was hidden, and must not show now.
 *
 * @example settingsAt({ visibility: 'everyone', invisible: false, visibleSince: 10 }, 9).invisible // true
 */
export function settingsAt(settings: UserSettings, instant: number): UserSettings {
  const since = settings.visibleSince
  if (settings.invisible || since === undefined || instant >= since) return settings
  return { ...settings, invisible: true }
}

/** Who sees where, widest first: a visibility shows at most what a wider one does. */
const WIDTH: Readonly<Record<Visibility, number>> = { everyone: 2, friends: 1, nobody: 0 }

/**
 * The settings a settings change made at `at` is judged by on its new side at an earlier
 * `instant` (just before a session that expired and was not swept yet, instantBeforeUnswept):
 * those after it (settingsAt), but never showing more than those before it did, which were in
 * force at that instant. A change that hides (invisible, a narrower visibility) tells its effect
 * at once, as the sweep judged by it will say nothing; one that shows more leaves what it shows
 * to the changes after it (the sweep's, the next write's), so that a place the user left while
 * it was hidden is never told as where they are. At `at` itself, `after` as settingsAt says.
 *
 * @example
 * settingsOfChangeAt({ visibility: 'nobody', invisible: false },
 *   { visibility: 'everyone', invisible: false }, 9, 10).visibility // 'nobody'
 */
export function settingsOfChangeAt(
  before: UserSettings,
  after: UserSettings,
  instant: number,
  at: number,
): UserSettings {
  const later = settingsAt(after, instant)
  if (instant >= at) return later
  const earlier = settingsAt(before, instant)
  const visibility =
    WIDTH[earlier.visibility] < WIDTH[later.visibility] ? earlier.visibility : later.visibility
  const invisible = earlier.invisible || later.invisible
  if (visibility === later.visibility && invisible === later.invisible) return later
  return { ...later, visibility, invisible }
}

/**
 * Whether a change of settings from `before` to `after` shows the user to someone more than
 * before: invisibility ends, or the visibility widens while visible. An expiry told after such a
 * change (a sweep's, the next write's) would be judged by settings wider than those in force
 * when it happened, which settingsAt cannot rebuild for a visibility: the service tells it first
 * (PresenceService.putSettings). A change that hides more needs nothing of the kind: judged
 * later by narrower settings, an expiry shows less, and the change tells its own effect at once
 * (settingsOfChangeAt).
 *
 * @example showsMore({ visibility: 'nobody', invisible: false }, { visibility: 'everyone', invisible: false }) // true
 */
export function showsMore(
  before: Pick<UserSettings, 'visibility' | 'invisible'>,
  after: Pick<UserSettings, 'visibility' | 'invisible'>,
): boolean {
  if (after.invisible) return false
  return before.invisible || WIDTH[after.visibility] > WIDTH[before.visibility]
}

/** Whether two settings say the same (a member left out and one undefined are the same). */
export function sameSettings(a: UserSettings, b: UserSettings): boolean {
  return (
    a.visibility === b.visibility &&
    a.invisible === b.invisible &&
    a.frozenLastOnline === b.frozenLastOnline &&
    a.visibleSince === b.visibleSince
  )
}

/**
 * The settings to store when a user with `current` settings and `presence` changes them to
 * `next` at `now`:
 * - going invisible freezes the lastOnline others see (`now` if they see the user online);
 * - staying invisible keeps the frozen value;
 * - ending invisibility keeps the frozen value (or `now`, if the user is online and so seen
 *   alive from now on) until the user is next seen alive (`visibleSince`);
 * - staying visible drops a frozen value once it no longer stands.
 */
export function nextSettings(
  current: UserSettings,
  next: Pick<UserSettings, 'visibility' | 'invisible'>,
  presence: UserPresence,
  now: number,
): UserSettings {
  const visibility = next.visibility
  const online = deriveUserState(presence.sessions, now) !== PresenceType.Offline
  if (next.invisible) {
    if (current.invisible) {
      return { visibility, invisible: true, frozenLastOnline: current.frozenLastOnline }
    }
    const seen = online ? now : publicLastOnline(current, presence.lastOnline)
    return { visibility, invisible: true, frozenLastOnline: seen }
  }
  if (current.invisible) {
    const frozen = online ? now : current.frozenLastOnline
    return { visibility, invisible: false, frozenLastOnline: frozen, visibleSince: now }
  }
  const since = current.visibleSince
  if (
    since !== undefined &&
    (!(presence.lastOnline !== undefined && presence.lastOnline > since) ||
      // a live session written while invisible still shows as written at `since` (shownWrite)
      presence.sessions.some((session) => isLive(session, now) && session.updatedAt < since))
  ) {
    return {
      visibility,
      invisible: false,
      frozenLastOnline: current.frozenLastOnline,
      visibleSince: since,
    }
  }
  return { visibility, invisible: false }
}

function withoutLocation(session: Session): Session {
  return { ...session, activity: { kind: session.activity.kind } }
}
