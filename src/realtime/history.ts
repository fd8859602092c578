import { randomBytes } from 'node:crypto'
import type {
  Activity,
  ChangePosition,
  PresenceChange,
  RichPresence,
  UserPresence,
} from '../core/presence.js'
import type { UserId } from '../core/user-id.js'

/**
 * Where a user's history stands: `offset` is the number of the user's latest recorded change in
 * `epoch` (0 and `''` when the user has no history). Centrifuge's stream position, per user.
 */
export interface HistoryPosition {
  epoch: string
  offset: number
}

export const NO_HISTORY: HistoryPosition = Object.freeze({ epoch: '', offset: 0 })

/** What `History.read` found. */
export interface HistoryRead {
  /** Where the history stands now. */
  position: HistoryPosition
  /**
   * The changes from `from.offset` (included while it is still held) to `position.offset`,
   * oldest first, each with its `position`.
   */
  changes: PresenceChange[]
  /**
   * False when the history no longer reaches back to `from`: its epoch changed (the history was
   * lost and started again) or changes after `from.offset` were trimmed (length or age).
   */
  complete: boolean
  /**
   * The offset of the user's latest privacy mark in `position.epoch`, 0 when the epoch has none;
   * kept apart from the changes, so it outlives their trimming. Undefined when the history cannot
   * tell (no history, or one recorded by an earlier version).
   */
  lastMark: number | undefined
  /**
   * The privacy marks after `from.offset` in `position.epoch`, oldest first, with whom each
   * concerns; undefined when the history cannot tell them all (trimmed beyond what it keeps of
   * them, or recorded by an earlier version).
   */
  marks: readonly MarkRecord[] | undefined
}

/** A privacy mark as kept beside the history: its offset, the previous mark's, whom it concerns. */
export interface MarkRecord {
  offset: number
  /** The offset of the user's previous mark in the epoch (0: none). */
  prev: number
  concern: string
}

/** Marks kept per user beside the trimmed changes (the newest). */
export const MARKS_KEPT = 16

/**
 * The marks after offset `after`, from `records` (one epoch's, oldest first) followed back from
 * the latest mark `lastMark` through each one's `prev`; undefined when the chain breaks before
 * reaching `after` (a mark no longer kept, or recorded without its record).
 */
export function marksAfter(
  records: readonly MarkRecord[],
  lastMark: number | undefined,
  after: number,
): MarkRecord[] | undefined {
  if (lastMark === undefined) return undefined
  const found: MarkRecord[] = []
  let want = lastMark
  let i = records.length - 1
  while (want > after) {
    while (i >= 0 && records[i]!.offset > want) i--
    if (i < 0 || records[i]!.offset !== want) return undefined
    found.push(records[i]!)
    want = records[i]!.prev
  }
  return found.reverse()
}

export interface HistoryBounds {
  /** Changes kept per user (the newest). */
  entries: number
  /** Changes older than this are dropped (seconds). */
  ageSeconds: number
}

/**
 * Per watched user, a bounded log of recent changes with an epoch and consecutive offsets, so
 * that a real-time stream resumes on any node and a node that missed a bus message fills the gap
 * (docs/reference/native.md, "Positions and resume"). Adapters: MemoryHistory (embedded mode),
 * RedisHistory (fleet mode, where the presence scripts record each change as they make it).
 */
/**
 * Changes that alter nothing a watcher could see (a refresh heartbeat moves expiry only) are not
 * recorded: they carry no position, and the fan-out drops them. A write that ended sessions past
 * expiry is none: it tells their end (PresenceChange.expired).
 */
export function isRefresh(change: PresenceChange): boolean {
  return change.expired === undefined && sameSessions(change.before, change.after)
}

/**
 * A change of who may see what about a user (its settings, a relation of it) is kept in the
 * user's history as a mark without presence: a replay never shows changes made before it under
 * the rules in force after it (a replay that crosses one shows the current state instead).
 */
export type PrivacyMark = PresenceChange & { privacy: true; concern?: string }

export function privacyMark(userId: UserId, concern = EVERYONE): PrivacyMark {
  const none = { userId, sessions: [], lastOnline: undefined }
  return { userId, before: none, after: none, privacy: true, concern }
}

/**
 * Whom a privacy mark concerns, as text: `''` every viewer (what a mark recorded without
 * knowing says); `r<id>` the other side of a relation (a friendship or block concerns only the
 * two users); `s` then `f` and/or `o` a settings change, concerning the user itself and the
 * audiences of core `settingsAudiences` (friends, others). A viewer a mark does not concern sees
 * the same of the user before and after it, so a resume treats it as no mark for that viewer.
 */
export const EVERYONE = ''

export function relationConcern(counterpart: UserId): string {
  return `r${counterpart}`
}

/**
 * A settings change's concern: `f` and `o` for the audiences it concerns, then `b` when the
 * user was invisible before it and `a` when after it (so that a resume knows whether it stayed
 * hidden from everyone throughout, `keptInvisible`).
 */
export function settingsConcern(
  audiences: { friends: boolean; others: boolean },
  invisible = { before: false, after: false },
): string {
  return `s${audiences.friends ? 'f' : ''}${audiences.others ? 'o' : ''}${invisible.before ? 'b' : ''}${invisible.after ? 'a' : ''}`
}

/** Whether a mark left a user's invisibility as it was, on: not a settings change that ended or began it. */
export function keptInvisible(mark: MarkRecord): boolean {
  if (mark.concern === EVERYONE) return false
  if (mark.concern[0] !== 's') return true
  return mark.concern.includes('b') && mark.concern.includes('a')
}

/** Whether a mark concerning `concern` concerns `viewer` (undefined: no user), in `audience`. */
export function concerns(
  concern: string | undefined,
  viewer: UserId | undefined,
  audience: 'self' | 'friends' | 'others',
): boolean {
  if (!concern) return true
  if (concern[0] === 'r') return viewer !== undefined && concern.slice(1) === viewer
  if (concern[0] === 's') {
    if (audience === 'self') return true
    return concern.includes(audience === 'friends' ? 'f' : 'o')
  }
  return true
}

export function isPrivacyMark(change: PresenceChange): change is PrivacyMark {
  return (change as Partial<PrivacyMark>).privacy === true
}

export interface History {
  /** How long a user's epoch and offset outlive its last change (positionTtlMs of the bounds). */
  readonly positionTtlMs: number
  /**
   * True when the history is kept in this process's memory: recording cannot fail once the
   * write it follows landed (and a crash loses the history with it), so a change need not be
   * marked before its write as well (PresenceService.putSettings).
   */
  readonly inProcess?: boolean
  /**
   * Records a change made on this node and sets its `position`. Fleet stores record in their own
   * scripts (the change arrives with a position already): call this only for changes without one.
   */
  append(change: PresenceChange, at: number): Promise<ChangePosition>
  /** append(), done at once (a history in this process's memory); absent where it must wait. */
  appendNow?(change: PresenceChange, at: number): ChangePosition
  /**
   * Records a privacy mark (see PrivacyMark) in the history of each of `ids`, concerning whom
   * `concern` says, in the same order (every viewer when absent).
   */
  mark(ids: readonly UserId[], at: number, concern?: readonly string[]): Promise<void>
  /** Where each user's history stands now, in the order of `ids`. */
  positions(ids: readonly UserId[]): Promise<HistoryPosition[]>
  /** The user's changes since `from` (see HistoryRead). */
  read(userId: UserId, from: HistoryPosition): Promise<HistoryRead>
  /**
   * Tells a single-process history which users someone watches now. Nobody can resume a user
   * nobody watches (in one process every stream is here, its watches outliving its connection
   * for the resume window), so such a user's changes are given a position and not kept.
   */
  keepOnly?(isWatched: (userId: UserId) => boolean): void
  close?(): Promise<void>
}

/** Whether `changes` (consecutive, oldest first) reach back to just after `from` in `epoch`. */
export function reaches(
  from: HistoryPosition,
  position: HistoryPosition,
  firstOffset: number | undefined,
): boolean {
  if (position.offset === 0) return from.offset === 0
  if (from.epoch === '') {
    // a position taken before the user had any history: every change since is the whole history
    return from.offset === 0 && firstOffset === 1
  }
  if (from.epoch !== position.epoch || from.offset > position.offset) return false
  if (from.offset === position.offset) return true
  return firstOffset !== undefined && firstOffset <= from.offset + 1
}

/** How long a user's epoch and offset outlive its last change: at least a day, so an idle user keeps its position. */
export function positionTtlMs(bounds: HistoryBounds): number {
  return Math.max(bounds.ageSeconds, 86_400) * 1000
}

const everyone = (): boolean => true

/**
 * The changes and marks of a log that has none yet, shared (frozen: a push into them throws):
 * every watched user gets a log when first watched, and two empty arrays each were 64 bytes.
 */
const NO_CHANGES = Object.freeze([]) as unknown as PresenceChange[]
const NO_MARKS = Object.freeze([]) as unknown as MarkRecord[]

interface UserLog {
  epoch: string
  offset: number
  /** The newest changes, oldest first. */
  changes: PresenceChange[]
  /** When the newest change was made. */
  last: number
  /** The offset of the latest privacy mark (0: none in this epoch). */
  mark: number
  /** The latest marks (at most MARKS_KEPT), oldest first. */
  marks: MarkRecord[]
}

/** An epoch's last nine digits (MemoryHistory#nextEpoch). */
const EPOCH_LOW = 1_000_000_000n
const EPOCH_LOW_LIMIT = 1_000_000_000
const ZEROS = '000000000'

/**
 * Embedded mode's history: in this process, lost with it (a restart starts new epochs). A user
 * whose changes all aged out is forgotten, and starts a new epoch with its next change.
 */
export class MemoryHistory implements History {
  readonly #bounds: HistoryBounds
  /** Users by last change, oldest first (re-inserted on each append). */
  readonly #logs = new Map<UserId, UserLog>()
  /**
   * Epochs are decimal integers (they fit a position token's 8 bytes): this process's base plus
   * n for its nth. Kept as the digits above the last nine (a string) and the number below them,
   * so that an epoch is a small number's digits joined to a kept string, not a BigInt's sum and
   * its digits: a new epoch per change of an unwatched user, about one a heartbeat (issue 19).
   */
  #epochHigh: string
  /** The epoch's last nine digits' value (the latest epoch's; the base's before any). */
  #epochLow: number
  readonly #clock: () => number
  #isWatched: (userId: UserId) => boolean = everyone

  /** `epochBase`: the epoch before the first (tests); by default from the time and a random part. */
  constructor(bounds: HistoryBounds, clock: () => number = Date.now, epochBase?: bigint) {
    this.#bounds = bounds
    this.#clock = clock
    this.positionTtlMs = positionTtlMs(bounds)
    const base =
      epochBase ?? BigInt(Date.now()) * 1_000_000n + BigInt(randomBytes(2).readUInt16BE() % 1000)
    this.#epochHigh = String(base / EPOCH_LOW)
    this.#epochLow = Number(base % EPOCH_LOW)
  }

  /** The next epoch: the base plus one more than the last one made. */
  #nextEpoch(): string {
    if (++this.#epochLow === EPOCH_LOW_LIMIT) {
      this.#epochLow = 0
      this.#epochHigh = String(BigInt(this.#epochHigh) + 1n)
    }
    // nine digits with their leading zeros (most have nine of their own: no slice made)
    const low = String(this.#epochLow)
    return low.length === 9
      ? this.#epochHigh + low
      : this.#epochHigh + ZEROS.slice(low.length) + low
  }

  readonly positionTtlMs: number
  readonly inProcess = true

  keepOnly(isWatched: (userId: UserId) => boolean): void {
    this.#isWatched = isWatched
  }

  append(change: PresenceChange, at: number): Promise<ChangePosition> {
    return Promise.resolve(this.appendNow(change, at))
  }

  appendNow(change: PresenceChange, at: number): ChangePosition {
    this.#expire(at)
    let log = this.#logs.get(change.userId)
    const watched = this.#isWatched(change.userId)
    if (!log && !watched) {
      // a position of its own (an epoch of one change), nothing kept: a user unwatched across
      // millions of sessions costs no memory, and a position held from before reads as lost
      const position: ChangePosition = { epoch: this.#nextEpoch(), offset: 1, at }
      change.position = position
      return position
    }
    if (log) this.#logs.delete(change.userId)
    else log = this.#newLog(at)
    this.#logs.set(change.userId, log)
    const position: ChangePosition = { epoch: log.epoch, offset: ++log.offset, at }
    change.position = position
    log.last = at
    if (isPrivacyMark(change)) {
      if (log.marks === NO_MARKS) log.marks = []
      log.marks.push({ offset: position.offset, prev: log.mark, concern: change.concern ?? '' })
      if (log.marks.length > MARKS_KEPT) log.marks.shift()
      log.mark = position.offset
    }
    if (!watched) {
      // a user watched once: its changes are not kept any more, but it keeps counting (and
      // where its privacy last changed) until idle for a day, as a watched user does, so that a
      // position held from before tells no more about its unseen changes than an idle user's
      log.changes = NO_CHANGES
      return position
    }
    if (log.changes === NO_CHANGES) log.changes = []
    log.changes.push(change)
    if (log.changes.length > this.#bounds.entries) log.changes.shift()
    this.#trim(log, at)
    return position
  }

  #newLog(now: number): UserLog {
    return {
      epoch: this.#nextEpoch(),
      offset: 0,
      changes: NO_CHANGES,
      last: now,
      mark: 0,
      marks: NO_MARKS,
    }
  }

  async mark(ids: readonly UserId[], at: number, concern?: readonly string[]): Promise<void> {
    for (const [i, id] of ids.entries()) await this.append(privacyMark(id, concern?.[i]), at)
  }

  positions(ids: readonly UserId[]): Promise<HistoryPosition[]> {
    const now = this.#clock()
    this.#expire(now)
    return Promise.resolve(
      ids.map((id) => {
        let log = this.#logs.get(id)
        if (!log && this.#isWatched !== everyone) {
          // asked for because someone is about to watch the user: its history starts here, so
          // that a change made once nobody watches (not kept) makes this position one of the past
          log = this.#newLog(now)
          this.#logs.set(id, log)
        }
        return log ? { epoch: log.epoch, offset: log.offset } : NO_HISTORY
      }),
    )
  }

  read(userId: UserId, from: HistoryPosition): Promise<HistoryRead> {
    const now = this.#clock()
    this.#expire(now)
    const log = this.#logs.get(userId)
    if (!log)
      return Promise.resolve({
        position: NO_HISTORY,
        changes: [],
        // a position of ours names a history forgotten since (aged out, or not kept unwatched)
        complete: from.epoch === '' && reaches(from, NO_HISTORY, undefined),
        lastMark: undefined,
        marks: undefined,
      })
    this.#trim(log, now)
    const position = { epoch: log.epoch, offset: log.offset }
    const first = log.changes[0]?.position?.offset
    const complete = reaches(from, position, first)
    const start = from.epoch === log.epoch ? from.offset : 0
    const changes = complete ? log.changes.filter((c) => c.position!.offset >= start) : []
    const marks = marksAfter(log.marks, log.mark, from.epoch === log.epoch ? from.offset : 0)
    return Promise.resolve({ position, changes, complete, lastMark: log.mark, marks })
  }

  /** Drops the user's changes older than the age bound. */
  #trim(log: UserLog, now: number): void {
    const oldest = now - this.#bounds.ageSeconds * 1000
    let drop = 0
    while (drop < log.changes.length && log.changes[drop]!.position!.at < oldest) drop++
    if (drop > 0) log.changes.splice(0, drop)
  }

  /** Forgets the users idle beyond the position TTL (a few per call: the oldest come first). */
  #expire(now: number): void {
    const oldest = now - positionTtlMs(this.#bounds)
    let checked = 0
    for (const [id, log] of this.#logs) {
      if (log.last >= oldest || checked++ >= 4) break
      this.#logs.delete(id)
    }
  }
}

/** True when two presences have the same sessions apart from their expiry and refresh times. */
export function sameSessions(a: UserPresence, b: UserPresence): boolean {
  // a refresh nobody reads comes with one presence for both (SessionWrite.refreshUnread)
  if (a === b) return true
  if (a.sessions.length !== b.sessions.length) return false
  for (let i = 0; i < a.sessions.length; i++) {
    const x = a.sessions[i]!
    const y = b.sessions[i]!
    if (
      x.key !== y.key ||
      x.source !== y.source ||
      x.deviceType !== y.deviceType ||
      x.startedAt !== y.startedAt ||
      !sameActivity(x.activity, y.activity)
    ) {
      return false
    }
  }
  return true
}

/**
 * Field by field: every heartbeat asks (is it a refresh?), and comparing two JSON texts cost a
 * heartbeat two serializations; the memory store hands out one object per distinct activity,
 * so an unchanged one is usually the very same object.
 */
function sameActivity(a: Activity, b: Activity): boolean {
  if (a === b) return true
  return (
    a.kind === b.kind &&
    a.placeId === b.placeId &&
    a.rootPlaceId === b.rootPlaceId &&
    a.universeId === b.universeId &&
    a.gameId === b.gameId &&
    a.location === b.location &&
    a.titleId === b.titleId &&
    a.placement === b.placement &&
    a.titleState === b.titleState &&
    sameRichPresence(a.richPresence, b.richPresence)
  )
}

function sameRichPresence(a: RichPresence | undefined, b: RichPresence | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined) return false
  if (a.id !== b.id || a.scid !== b.scid || a.params.length !== b.params.length) return false
  for (let i = 0; i < a.params.length; i++) if (a.params[i] !== b.params[i]) return false
  return true
}
