import type {
  Activity,
  ActivityKind,
  InheritedField,
  OfflineReason,
  RichPresence,
  Session,
  SessionSource,
  UserPresence,
} from '../../core/presence.js'
import { PresenceType, stateOfKind } from '../../core/presence.js'
import {
  defaultSettings,
  summaryOf,
  type PresenceSummary,
  type UserSettings,
} from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { sweepReason, type PresenceChange } from '../presence-store.js'

/*
 * A user's presence as Redis keeps it: one value that is a JSON document, so a read decodes it
 * with one JSON.parse, laid out in lines, so the Lua scripts (presence.lua) edit it with string
 * functions instead of a cjson round trip:
 *
 *   [<lastOnline>,<settings>
 *   ,[<updatedAt - lastOnline>,<expiresAt - updatedAt>,<updatedAt - startedAt>,<key>,<source>,<device>,<activity>]
 *   ,[… one line per session]
 *   ]
 *
 * `<settings>` is the user's privacy settings folded in (0 for the defaults, else the settings
 * key's JSON text), kept in step with the settings key by every script that writes the value and
 * by the settings write (settings.lua), in the same atomic step: a read takes what privacy needs
 * from the one key it fetches. lastOnline is `null` in the value of a user who has settings and
 * was never online. A value written before settings were folded has no `,<settings>`: its
 * reader takes the settings key (settingsOfValue), and the next write of the value folds them.
 *
 * The numbers lead so that Lua reads them with one pattern, and the key follows as its JSON text,
 * which is how scripts find a session. JSON.stringify never writes a raw line break, so no string
 * can split a line. Fields are positions, not names (an app session takes ~90 B, a game server's
 * player ~150 B), because Redis memory per live session is what a fleet pays for.
 */

/** A session line: see above. */
type StoredSession = [
  updatedAgo: number,
  ttl: number,
  age: number,
  key: string,
  source: string,
  deviceType: string,
  /** As stored, or already decoded (scanValue: shared, frozen). */
  activity: StoredActivity | Activity,
]

/**
 * `[lastOnline, settings, ...sessions]`, or `[lastOnline, ...sessions]` as written before
 * settings were folded (see sessionsFrom).
 */
type StoredValue = [number | null, ...Array<StoredSession | StoredSettings>]

/** The folded settings: 0 for the defaults, else UserSettings as the settings key holds them. */
type StoredSettings = 0 | Partial<UserSettings>

/** Where a stored value's sessions start: after its settings when it has them. */
function sessionsFrom(value: StoredValue): number {
  return value.length > 1 && !Array.isArray(value[1]) ? 2 : 1
}

/**
 * `[kind, placeId, rootPlaceId, universeId, gameId, location, titleId, placement, titleState,
 * richPresence]`, kind as its rank (1 online, 2 inGame, 3 inStudio), 0 for a field that is
 * absent, trailing absent fields left out. Two fields often repeat another and are then stored
 * as `=`: rootPlaceId equal to placeId, and a game server player's gameId, which its session key
 * `server:<gameId>` holds (a value that starts with `=` gets one more).
 */
type StoredActivity = [number, ...Array<string | 0 | StoredRichPresence>]

/** `[id, params]` or `[id, params, scid]` */
type StoredRichPresence = [string, string[]] | [string, string[], string]

const SOURCE_CODES: Record<SessionSource, string> = { app: '"a"', title: '"t"', server: '"s"' }
const SOURCES: Record<string, SessionSource> = { a: 'app', t: 'title', s: 'server' }
const KIND_RANKS: Record<ActivityKind, number> = { online: 1, inGame: 2, inStudio: 3 }
const KINDS: ReadonlyArray<ActivityKind | undefined> = [undefined, 'online', 'inGame', 'inStudio']

/** The fields encodeActivity and decodeActivity place (see StoredActivity). */
type Placed =
  | 'kind'
  | 'placeId'
  | 'rootPlaceId'
  | 'universeId'
  | 'gameId'
  | 'location'
  | 'titleId'
  | 'placement'
  | 'titleState'
  | 'richPresence'
// A field added to Activity without a position would be dropped silently: fail to compile.
const everyFieldPlaced: [Exclude<keyof Activity, Placed>] extends [never] ? true : never = true
void everyFieldPlaced

const SERVER_KEY = 'server:'

/** A session key as the scripts match it: its JSON text. */
export function keyText(key: string): string {
  return JSON.stringify(key)
}

/** The end of a session line after its key, as a script writes it: `<source>,<device>,<activity>]`. */
export function sessionTail(
  source: SessionSource,
  deviceType: string,
  activity: Activity,
  key: string,
): string {
  return `${SOURCE_CODES[source]},${JSON.stringify(deviceType)},${encodeActivity(activity, key)}]`
}

/** Where each inheritable member sits in a StoredActivity, counted from 1 (as Lua does). */
const INHERITED_AT: Record<InheritedField, number> = {
  placement: 8,
  titleState: 9,
  richPresence: 10,
}

/**
 * heartbeat.lua's `inherit` argument for SessionWrite.inherit: the stored activity's elements the
 * script takes from the live session it refreshes ('' for none).
 */
export function inheritedElements(fields: readonly InheritedField[] | undefined): string {
  if (fields === undefined || fields.length === 0) return ''
  return fields.map((field) => INHERITED_AT[field]).join(' ')
}

/** `value`, `=` when it repeats `same`, or 0 when absent. */
function shorthand(value: string | undefined, same: string | undefined): string | 0 {
  if (value === undefined) return 0
  if (value === same) return '='
  return value.startsWith('=') ? `=${value}` : value
}

function expand(stored: string, same: string | undefined): string {
  if (stored === '=' && same !== undefined) return same
  return stored.startsWith('=') ? stored.slice(1) : stored
}

/** The id after `server:` in a game server player's session key. */
function serverOf(key: string): string | undefined {
  return key.startsWith(SERVER_KEY) ? key.slice(SERVER_KEY.length) : undefined
}

function encodeActivity(activity: Activity, key: string): string {
  const rp = activity.richPresence
  const stored: unknown[] = [
    KIND_RANKS[activity.kind],
    activity.placeId ?? 0,
    shorthand(activity.rootPlaceId, activity.placeId),
    activity.universeId ?? 0,
    shorthand(activity.gameId, serverOf(key)),
    activity.location ?? 0,
    activity.titleId ?? 0,
    activity.placement ?? 0,
    activity.titleState ?? 0,
    rp === undefined ? 0 : rp.scid === undefined ? [rp.id, rp.params] : [rp.id, rp.params, rp.scid],
  ]
  let length = stored.length
  while (length > 1 && stored[length - 1] === 0) length--
  stored.length = length
  return JSON.stringify(stored)
}

function decodeActivity(stored: StoredActivity, key: string): Activity {
  const activity: Activity = { kind: KINDS[stored[0]]! }
  const n = stored.length
  if (n > 1 && stored[1] !== 0) activity.placeId = stored[1] as string
  if (n > 2 && stored[2] !== 0) activity.rootPlaceId = expand(stored[2] as string, activity.placeId)
  if (n > 3 && stored[3] !== 0) activity.universeId = stored[3] as string
  if (n > 4 && stored[4] !== 0) activity.gameId = expand(stored[4] as string, serverOf(key))
  if (n > 5 && stored[5] !== 0) activity.location = stored[5] as string
  if (n > 6 && stored[6] !== 0) activity.titleId = stored[6] as string
  if (n > 7 && stored[7] !== 0) activity.placement = stored[7] as Activity['placement']
  if (n > 8 && stored[8] !== 0) activity.titleState = stored[8] as Activity['titleState']
  if (n > 9 && stored[9] !== 0) {
    const [id, params, scid] = stored[9] as StoredRichPresence
    const richPresence: RichPresence = { id, params }
    if (scid !== undefined) richPresence.scid = scid
    activity.richPresence = richPresence
  }
  return activity
}

function presenceOf(
  userId: UserId,
  value: StoredValue | null,
  now: number | undefined,
  expired?: Session[],
): UserPresence {
  if (value === null) return { userId, sessions: [], lastOnline: undefined }
  const sessions: Session[] = []
  const lastOnline = value[0] ?? 0
  for (let i = sessionsFrom(value); i < value.length; i++) {
    const s = value[i] as StoredSession
    const updatedAt = lastOnline + s[0]
    const expiresAt = updatedAt + s[1]
    const past = now !== undefined && expiresAt <= now
    if (past && expired === undefined) continue
    ;(past ? expired! : sessions).push({
      userId,
      key: s[3],
      source: SOURCES[s[4]]!,
      deviceType: s[5],
      startedAt: updatedAt - s[2],
      updatedAt,
      expiresAt,
      activity: Array.isArray(s[6]) ? decodeActivity(s[6], s[3]) : s[6],
    })
  }
  return { userId, sessions, lastOnline: value[0] ?? undefined }
}

/**
 * Decodes a stored presence value. With `now`, sessions at or past expiresAt are dropped (what
 * every read must see); without, the value is returned as stored (what a sweep claimed).
 */
export function decodePresence(
  userId: UserId,
  raw: string | null | undefined,
  now?: number,
): UserPresence {
  if (!raw) return presenceOf(userId, null, now)
  return presenceOf(userId, scanValue(raw, true) ?? (JSON.parse(raw) as StoredValue), now)
}

/**
 * `summaryOf(decodePresence(userId, raw, now), now)` read straight from the stored text, with no
 * value array and no Session objects (the read path of summaries: decoding is most of what a
 * node does per id). A value outside scanValue's grammar is decoded as decodePresence does.
 */
export function summarizeValue(
  userId: UserId,
  raw: string | null | undefined,
  now: number,
): PresenceSummary {
  if (!raw) return summaryOf({ userId, sessions: [], lastOnline: undefined }, now)
  const scan = new Scanner(raw)
  if (scan.take(OPEN)) {
    const lastOnline = scan.head()
    const base = lastOnline ?? 0
    const lines = new LiveLines()
    while (scan.take(LINE_BREAK)) {
      if (!scan.take(COMMA)) {
        if (scan.at !== raw.length - 1 || !scan.take(CLOSE) || scan.failed) break
        return lines.summary(userId, lastOnline)
      }
      if (!scan.take(OPEN)) break
      const updated = base + scan.int()
      const expiresAt = updated + (scan.comma() && scan.int())
      if (scan.failed) break
      if (!(expiresAt > now)) {
        // an expired session is skipped to the end of its line (JSON strings hold no line break)
        const end = raw.indexOf('\n', scan.at)
        if (end < 0) break
        scan.at = end
        continue
      }
      if (scan.comma()) scan.int()
      const tail = scan.comma() && sessionTailAt(scan)
      if (tail === undefined || !scan.take(CLOSE) || scan.failed) break
      lines.add(tail, updated)
    }
  }
  return summaryOf(decodePresence(userId, raw, now), now)
}

/**
 * summarizeValue of a value as the bytes Redis sent (the MGET reply's Buffer, no string made of
 * it): the numbers are read from the bytes, and a session line's end is looked up by its bytes
 * among the line ends decoded before. Anything else (a line end not seen before, a value outside
 * the grammar) takes the value's text through summarizeValue, the definition. Notes what it saw
 * of the value's folded settings for settingsOfSummarized.
 *
 * One function with its integers read in place and the summary's running choice in locals
 * (LiveLines' rules): measured (callgrind, 50-id read), a function reading each integer (not
 * inlined, ~500 instructions a value) and a LiveLines object per value cost more.
 */
export function summarizeBytes(
  userId: UserId,
  raw: Buffer | null | undefined,
  now: number,
): PresenceSummary {
  folded = FOLDED_UNREAD
  liveUntil = Infinity
  if (!raw || raw.length === 0 || raw[0] !== OPEN) return summarizeText(userId, raw, now)
  // integers are read where they are, each `-`? digits, the text path taking anything else
  let at = 1
  let c = raw[1]
  let start = 0
  let negative = false
  let n = 0
  let lastOnline: number | undefined
  if (c === 0x6e /* n */) {
    if (raw[2] !== 0x75 || raw[3] !== 0x6c || raw[4] !== 0x6c) {
      return summarizeText(userId, raw, now)
    }
    at = 5
    c = raw[5]
  } else {
    negative = c === MINUS
    if (negative) c = raw[++at]
    for (start = at, n = 0; c! >= ZERO && c! <= NINE; c = raw[++at]) n = n * 10 + (c! - ZERO)
    if (at === start) return summarizeText(userId, raw, now)
    lastOnline = negative ? -n : n
  }
  if (c === COMMA) {
    // the folded settings: `,0` for the defaults (most users), else their JSON
    if (raw[at + 1] === ZERO && raw[at + 2] === LINE_BREAK) {
      at += 2
      folded = FOLDED_DEFAULTS
    } else at = raw.indexOf(LINE_BREAK, at)
  } else if (c === LINE_BREAK) folded = FOLDED_NONE
  const base = lastOnline ?? 0
  // the primary line so far (LiveLines.add): the highest state, then the latest updatedAt
  let state: PresenceType = PresenceType.Offline
  let primary: SessionTail | undefined
  let updatedAt = 0
  let live = 0
  const last = raw.length - 1
  while (at >= 0 && raw[at] === LINE_BREAK) {
    if (raw[++at] !== COMMA) {
      if (at !== last || raw[at] !== CLOSE) break
      return {
        userId,
        state,
        activity: primary?.activity,
        updatedAt,
        lastOnline,
        sessions: live,
        deviceType: primary?.deviceType ?? '',
        source: primary?.source ?? 'app',
        activityId: primary === undefined ? -1 : primary.activityId,
      }
    }
    if (raw[++at] !== OPEN) break
    // updatedAt - lastOnline
    c = raw[++at]
    negative = c === MINUS
    if (negative) c = raw[++at]
    for (start = at, n = 0; c! >= ZERO && c! <= NINE; c = raw[++at]) n = n * 10 + (c! - ZERO)
    if (at === start || c !== COMMA) break
    const updated = base + (negative ? -n : n)
    // expiresAt - updatedAt
    c = raw[++at]
    negative = c === MINUS
    if (negative) c = raw[++at]
    for (start = at, n = 0; c! >= ZERO && c! <= NINE; c = raw[++at]) n = n * 10 + (c! - ZERO)
    if (at === start) break
    const expiresAt = updated + (negative ? -n : n)
    if (!(expiresAt > now)) {
      // an expired session is skipped to the end of its line (JSON strings hold no line break)
      const end = indexOfByte.call(raw, LINE_BREAK, at)
      if (end < 0) break
      at = end
      continue
    }
    // the session's age (no summary needs it), then the line end after its comma
    if (c !== COMMA) break
    c = raw[++at]
    if (c === MINUS) c = raw[++at]
    for (start = at; c! >= ZERO && c! <= NINE; c = raw[++at]);
    if (at === start || c !== COMMA) break
    at++
    // the value's last line ends 3 bytes before the value (`]\n]`): a line end known by that
    // text is the line's (a known line end holds no line break), found without searching for
    // the line break (Buffer#indexOf, a native call: ~100 instructions a value, callgrind)
    let end = last - 2
    let tail =
      raw[end] === CLOSE && raw[end + 1] === LINE_BREAK && end > at
        ? sessionTailOfBytes(raw, at, end, false)
        : undefined
    if (tail === undefined) {
      end = indexOfByte.call(raw, LINE_BREAK, at) - 1
      if (end <= at || raw[end] !== CLOSE) break
      tail = sessionTailOfBytes(raw, at, end, true)
      if (tail === undefined) break
    }
    at = end + 1
    live++
    if (expiresAt < liveUntil) liveUntil = expiresAt
    const rank = tail.rank
    if (primary === undefined || rank > state || (rank === state && updated > updatedAt)) {
      state = rank
      primary = tail
      updatedAt = updated
    }
  }
  return summarizeText(userId, raw, now)
}

/**
 * Until when the summary summarizeBytes returned last holds (from its `now` on): its live
 * sessions' first expiry (Infinity without one); -Infinity when it took the text path (not
 * followed there). A near cache keeps a summary only for the times in between (NearCache).
 */
let liveUntil = -Infinity

export function summarizedUntil(): number {
  return liveUntil
}

/** What summarizeBytes saw of its value's folded settings: see settingsOfSummarized. */
const FOLDED_UNREAD = 0
const FOLDED_DEFAULTS = 1
const FOLDED_NONE = 2
let folded = FOLDED_UNREAD

/**
 * settingsOfBytes(raw) for the value summarizeBytes read last (`raw`, right after it): from what
 * it saw of the first line (`,0`: the defaults; no settings: undefined), else read again.
 */
export function settingsOfSummarized(
  raw: Buffer | null | undefined,
): Readonly<UserSettings> | undefined {
  if (folded === FOLDED_DEFAULTS) return defaultSettings
  if (folded === FOLDED_NONE) return undefined
  return settingsOfBytes(raw)
}

/**
 * summarizeBytes of each value of a read, each one's folded settings set in `settings`
 * (settingsOfSummarized; undefined for a value written before settings were folded, and for a
 * missing one until the fold pass has run, `foldDone`). One loop of direct calls: through a
 * closure per value (RedisPresenceStore's loop before) ~350 instructions a value more (callgrind).
 */
export function summarizeAll(
  ids: readonly UserId[],
  raws: readonly (Buffer | null)[],
  now: number,
  settings: Array<Readonly<UserSettings> | undefined>,
  foldDone: boolean,
): PresenceSummary[] {
  const summaries = new Array<PresenceSummary>(ids.length)
  for (let i = 0; i < ids.length; i++) {
    const raw = raws[i]
    summaries[i] = summarizeBytes(ids[i]!, raw, now)
    settings[i] = (raw && raw.length > 0) || foldDone ? settingsOfSummarized(raw) : undefined
  }
  return summaries
}

function summarizeText(userId: UserId, raw: Buffer | null | undefined, now: number) {
  // no value: no session ever expires; a value's text path is not followed
  liveUntil = !raw || raw.length === 0 ? Infinity : -Infinity
  return summarizeValue(userId, raw?.toString('utf8'), now)
}

/** Node's Buffer methods, which toString('latin1') calls (not in @types/node). */
interface Latin1Sliceable {
  latin1Slice(start: number, end: number): string
}

/**
 * Buffer's methods called with `.call`: a method read from a Buffer goes through a generic load
 * IC each time (Buffer's prototype holds too many to be inlined: ~145 instructions a read,
 * callgrind), as for TypedArray#set in the reply writers.
 */
const latin1Slice = (Buffer.prototype as unknown as Latin1Sliceable).latin1Slice
const indexOfByte = Buffer.prototype.indexOf as (this: Buffer, byte: number, from: number) => number

/** A decoded session line end, its latin1 text, and the next one of the same hash. */
interface TailEntry {
  text: string
  tail: SessionTail
  next: TailEntry | undefined
}

/**
 * Decoded session line ends by a hash of a few of their bytes, each checked against its latin1
 * text (one char per byte, so equal texts are equal bytes); sessionTails by text. Measured
 * (callgrind, 50-id read): a Map keyed by the line end's text hashed each new string whole,
 * ~1,260 instructions a value, a quarter of its decode; comparing the bytes from JS, four at a
 * time against the entry's words, ~1,700 a line end (its latin1 string and compare ~800).
 */
const tailsByHash = new Map<number, TailEntry>()
let tailCount = 0
/** Line ends of one hash kept at most (see sessionTailOfBytes). */
const MAX_CHAINED = 8

/**
 * The decoded line end `raw[at..end)` (`<key>,<source>,<device>,<activity>`), or undefined;
 * `decode`: false to look it up among those decoded before only.
 */
function sessionTailOfBytes(
  raw: Buffer,
  at: number,
  end: number,
  decode: boolean,
): SessionTail | undefined {
  // a hash of the length and two 4-byte words, after the 8th byte and before the last one,
  // where line ends differ (the session key's tail, e.g. a game server's id; the activity's last
  // ids): only a few bytes (hashing each byte in JS cost ~24 instructions a byte), written here,
  // not called (a call of its own, not inlined, was ~150 instructions a value); equal hashes are
  // told apart by their text
  const n = end - at
  let hash = n
  if (n >= 16) {
    const head = raw[at + 8]! | (raw[at + 9]! << 8) | (raw[at + 10]! << 16) | (raw[at + 11]! << 24)
    const tail =
      raw[end - 5]! | (raw[end - 4]! << 8) | (raw[end - 3]! << 16) | (raw[end - 2]! << 24)
    // kept within a small integer: a Map hashes those without a heap number
    hash = (Math.imul(head ^ n, 0x01000193) ^ tail) & 0x3fffffff
  }
  const first = tailsByHash.get(hash)
  if (first === undefined && !decode) return undefined
  // Buffer's own latin1Slice: toString('latin1', …) is it behind an encoding lookup and checks
  const text = latin1Slice.call(raw, at, end)
  let chained = 0
  for (let entry = first; entry !== undefined; entry = entry.next) {
    if (entry.text === text) return entry.tail
    chained++
  }
  if (!decode) return undefined
  // the text as summarizeValue reads it: the line end, its `]` and the line break
  const tail = sessionTailAt(new Scanner(`${raw.toString('utf8', at, end)}]\n`))
  if (tail === undefined) return undefined
  // a chain of one hash is cut short: line ends made to share a hash (their free text, e.g. a
  // location, chosen by clients) cost a lookup MAX_CHAINED comparisons at most
  let next = chained < MAX_CHAINED ? first : undefined
  if (tailCount >= MAX_SESSION_TAILS) {
    tailsByHash.clear()
    tailCount = 0
    next = undefined
  }
  tailsByHash.set(hash, { text, tail, next })
  tailCount++
  return tail
}

/** A value's live session lines as a summary reads them, one by one (summaryOf's rules). */
class LiveLines {
  state: PresenceType = PresenceType.Offline
  primary: SessionTail | undefined
  updatedAt = 0
  live = 0

  /** primarySession's choice: the highest state, then the latest updatedAt, the first on ties. */
  add(tail: SessionTail, updated: number): void {
    this.live++
    const rank = tail.rank
    const state = this.state
    if (
      this.primary === undefined ||
      rank > state ||
      (rank === state && updated > this.updatedAt)
    ) {
      this.state = rank
      this.primary = tail
      this.updatedAt = updated
    }
  }

  summary(userId: UserId, lastOnline: number | undefined): PresenceSummary {
    const primary = this.primary
    return {
      userId,
      state: this.state,
      activity: primary?.activity,
      updatedAt: this.updatedAt,
      lastOnline,
      sessions: this.live,
      deviceType: primary?.deviceType ?? '',
      source: primary?.source ?? 'app',
      activityId: primary === undefined ? -1 : primary.activityId,
    }
  }
}

/** What a summary takes of a session line after its numbers (key, source, device, activity). */
interface SessionTail {
  activity: Activity
  source: SessionSource
  deviceType: string
  /** stateOfKind(activity.kind): activities differ in shape, so their `kind` is a slow read. */
  rank: PresenceType
  /** activityIdOf(activity): the summary's hint (PresenceSummary.activityId). */
  activityId: number
}

/**
 * An id per decoded activity (they are interned: one frozen object per distinct activity),
 * given to summaries as their `activityId` hint, by which the Roblox reply writer finds the
 * activity's cached bytes with an index and a compare instead of a WeakMap lookup per record
 * (callgrind, cache simulation: ~3.4 missed data cache lines a lookup in Redis mode, where the
 * memory store's summaries carry its own ids). Ids are reused after a clear: a reader checks the
 * activity is the one it cached (PresenceSummary.activityId).
 */
const activityIds = new Map<Activity, number>()
const MAX_ACTIVITY_IDS = 8192

function activityIdOf(activity: Activity): number {
  let id = activityIds.get(activity)
  if (id === undefined) {
    if (activityIds.size >= MAX_ACTIVITY_IDS) activityIds.clear()
    activityIds.set(activity, (id = activityIds.size))
  }
  return id
}

/** The index of the `]` that ends the session line at the scanner (before its `\n`), or -1. */
function lineEnd(scan: Scanner): number {
  const end = scan.text.indexOf('\n', scan.at) - 1
  return end <= scan.at || scan.text.charCodeAt(end) !== CLOSE ? -1 : end
}

/**
 * Decoded session line ends by their text: everyone on one game server (or with the same device
 * and activity) has the same one, so a read looks the text up once instead of scanning its
 * strings and looking its activity up (internedActivity) each time.
 */
const sessionTails = new Map<string, SessionTail>()
const MAX_SESSION_TAILS = 8192

/** The session line end at the scanner (`<key>,<source>,<device>,<activity>]\n`), or undefined. */
function sessionTailAt(scan: Scanner): SessionTail | undefined {
  const end = lineEnd(scan)
  if (end < 0) return undefined
  const text = scan.text.slice(scan.at, end)
  let tail = sessionTails.get(text)
  if (tail === undefined) {
    const key = scan.str()
    const source = scan.comma() && SOURCES[scan.str()]
    const deviceType = scan.comma() && scan.str()
    const activity = scan.comma() && internedActivity(scan, key)
    if (activity === undefined || source === undefined || scan.failed) return undefined
    tail = {
      activity,
      source,
      deviceType,
      rank: stateOfKind(activity.kind),
      activityId: activityIdOf(activity),
    }
    if (sessionTails.size >= MAX_SESSION_TAILS) sessionTails.clear()
    sessionTails.set(text, tail)
  }
  scan.at = end
  return tail
}

/**
 * The stored value's own grammar, read in about a third less time than JSON.parse takes (reads
 * decode every value they fetch); undefined for anything else, which JSON.parse then reads.
 * `decoded`: activities come decoded, shared and frozen (internedActivity).
 *
 *   value    = "[" int *( "\n,[" int "," int "," int "," str "," str "," str "," activity "]" ) "\n]"
 *   activity = "[" int *( "," ( str / "0" / rich ) ) "]"
 *   rich     = "[" str ",[" [ str *( "," str ) ] "]" [ "," str ] "]"
 */
export function scanValue(raw: string, decoded = false): StoredValue | undefined {
  const scan = new Scanner(raw)
  if (!scan.take(OPEN)) return undefined
  const value: StoredValue = [scan.head() ?? null]
  while (scan.take(LINE_BREAK)) {
    if (!scan.take(COMMA)) {
      const end = scan.at === raw.length - 1 && scan.take(CLOSE)
      return end && !scan.failed ? value : undefined
    }
    if (!scan.take(OPEN)) return undefined
    const updatedAgo = scan.int()
    const ttl = scan.comma() && scan.int()
    const age = scan.comma() && scan.int()
    const key = scan.comma() && scan.str()
    const source = scan.comma() && scan.str()
    const deviceType = scan.comma() && scan.str()
    const activity = scan.comma() && (decoded ? internedActivity(scan, key) : scan.activity())
    if (activity === undefined || !scan.take(CLOSE) || scan.failed) return undefined
    value.push([updatedAgo, ttl, age, key, source, deviceType, activity] as StoredSession)
  }
  return undefined
}

/**
 * Decoded activities by their stored text (with the session key when the text refers to it):
 * everyone in a place or on a game server has the same one, so it is decoded once and shared,
 * frozen (as the memory store's are), which also lets reply writers cache their bytes by it.
 */
const interned = new Map<string, Activity | Map<string, Activity>>()
const MAX_INTERNED = 4096

/**
 * The activity at the scanner, which ends its session line (`…,<activity>]\n`: JSON strings
 * hold no raw line break): its text is looked up before it is parsed. Undefined when the
 * line is not of that shape.
 */
function internedActivity(scan: Scanner, key: string): Activity | undefined {
  const end = lineEnd(scan)
  if (end < 0) return undefined
  const text = scan.text.slice(scan.at, end)
  const found = interned.get(text)
  // a Map: the text holds `"="`, a gameId stored as "the session key's" (expand): one per key
  let activity = found instanceof Map ? found.get(key) : found
  if (activity === undefined) {
    const stored = scan.activity()
    if (scan.failed || scan.at !== end) return undefined
    activity = freezeActivity(decodeActivity(stored, key))
    if (interned.size >= MAX_INTERNED) interned.clear()
    if (!text.includes('"="')) interned.set(text, activity)
    else {
      let byKey = interned.get(text)
      if (!(byKey instanceof Map)) interned.set(text, (byKey = new Map()))
      if (byKey.size >= MAX_INTERNED) byKey.clear()
      byKey.set(key, activity)
    }
  }
  scan.at = end
  return activity
}

function freezeActivity(activity: Activity): Activity {
  const rich = activity.richPresence
  if (rich) {
    Object.freeze(rich.params)
    Object.freeze(rich)
  }
  return Object.freeze(activity)
}

const OPEN = 0x5b // [
const CLOSE = 0x5d // ]
const COMMA = 0x2c
const QUOTE = 0x22
const BACKSLASH = 0x5c
const LINE_BREAK = 0x0a
const MINUS = 0x2d
const ZERO = 0x30
const NINE = 0x39

/** A cursor over a stored value; `failed` once anything did not match (values are then junk). */
class Scanner {
  at = 0
  failed = false

  constructor(readonly text: string) {}

  take(char: number): boolean {
    if (this.text.charCodeAt(this.at) !== char) return false
    this.at++
    return true
  }

  /** Takes a comma; true, so that `scan.comma() && scan.next()` reads on (check `failed`). */
  comma(): true {
    if (!this.take(COMMA)) this.failed = true
    return true
  }

  /**
   * A value's first line after its `[`: lastOnline (undefined for `null`), the folded settings
   * skipped (settingsOfValue reads them).
   */
  head(): number | undefined {
    const text = this.text
    let lastOnline: number | undefined
    if (text.startsWith('null', this.at)) this.at += 4
    else lastOnline = this.int()
    if (this.take(COMMA)) {
      const end = text.indexOf('\n', this.at)
      if (end < 0) this.failed = true
      else this.at = end
    }
    return lastOnline
  }

  int(): number {
    const text = this.text
    const negative = this.take(MINUS)
    const start = this.at
    let value = 0
    for (let c = text.charCodeAt(this.at); c >= ZERO && c <= NINE; c = text.charCodeAt(++this.at)) {
      value = value * 10 + (c - ZERO)
    }
    if (this.at === start) this.failed = true
    return negative ? -value : value
  }

  str(): string {
    const text = this.text
    if (!this.take(QUOTE)) {
      this.failed = true
      return ''
    }
    const start = this.at
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c === QUOTE) {
        this.at = i + 1
        return text.slice(start, i)
      }
      if (c === BACKSLASH) {
        // an escape: find the closing quote, and let JSON.parse unescape
        for (i += 2; i < text.length && text.charCodeAt(i) !== QUOTE; i++) {
          if (text.charCodeAt(i) === BACKSLASH) i++
        }
        this.at = i + 1
        return JSON.parse(text.slice(start - 1, i + 1)) as string
      }
    }
    this.failed = true
    return ''
  }

  activity(): StoredActivity {
    if (!this.take(OPEN)) this.failed = true
    const activity: StoredActivity = [this.int()]
    while (this.take(COMMA)) {
      const c = this.text.charCodeAt(this.at)
      if (c === QUOTE) activity.push(this.str())
      else if (c === OPEN) activity.push(this.richPresence())
      else if (this.int() === 0) activity.push(0)
      else this.failed = true
    }
    if (!this.take(CLOSE)) this.failed = true
    return activity
  }

  richPresence(): StoredRichPresence {
    this.take(OPEN)
    const id = this.str()
    const params: string[] = []
    if (!this.take(COMMA) || !this.take(OPEN)) this.failed = true
    if (!this.take(CLOSE)) {
      do params.push(this.str())
      while (!this.failed && this.take(COMMA))
      if (!this.take(CLOSE)) this.failed = true
    }
    const scid = this.take(COMMA) ? this.str() : undefined
    if (!this.take(CLOSE)) this.failed = true
    return scid === undefined ? [id, params] : [id, params, scid]
  }
}

/**
 * One user's change as a script returns it and publishes it (presence.lua `change`):
 * kind `h` a write (it ended nothing but the sessions of before past expiry), `e` ended the session
 * `key` for `reason`, `s` is a sweep (it ended the sessions of before that after no longer holds).
 */
export type ChangeRecord = [
  userId: string,
  now: number,
  kind: 'h' | 'e' | 's',
  reason: string,
  key: string,
  before: StoredValue | null,
  after: StoredValue,
]

/** A change message on the bus channel, from the script that made the change: `n` is the node. */
export interface ChangeMessage {
  n: string
  /** Where the change stands in its user's history (epoch, offset), when one is kept. */
  h?: [string, number]
  c: ChangeRecord
}

/** The PresenceChange of a record: the same on the node that made it and on every other. */
export function changeOf(record: ChangeRecord): PresenceChange {
  const change = changeWithoutSettings(record)
  // the settings the script wrote with the value: those in force when the change was stored
  const after = record[6]
  if (sessionsFrom(after) === 2) {
    const folded = after[1] as StoredSettings
    change.settings = folded === 0 ? defaultSettings : (folded as UserSettings)
  }
  return change
}

function changeWithoutSettings(record: ChangeRecord): PresenceChange {
  const [id, now, kind, reason, key, before, after] = record
  const userId = id as UserId
  if (kind === 's') {
    const claimed = presenceOf(userId, before, undefined)
    const kept = new Set<string>()
    for (let i = sessionsFrom(after); i < after.length; i++) {
      kept.add((after[i] as StoredSession)[3])
    }
    const ended = claimed.sessions.filter((s) => !kept.has(s.key))
    return {
      userId,
      before: claimed,
      after: presenceOf(userId, after, now),
      reason: sweepReason(ended),
      ended,
    }
  }
  if (kind === 'h') {
    // a write ends the sessions past expiry it finds (heartbeat.lua, server-report.lua): they
    // are in its `before`, and told first (PresenceChange.expired)
    const expired: Session[] = []
    const previous = presenceOf(userId, before, now, expired)
    const next = presenceOf(userId, after, now)
    return expired.length === 0
      ? { userId, before: previous, after: next }
      : { userId, before: previous, after: next, expired }
  }
  const past: Session[] = []
  const previous = presenceOf(userId, before, now, past)
  const next = presenceOf(userId, after, now)
  const change: PresenceChange = {
    userId,
    before: previous,
    after: next,
    reason: reason as OfflineReason,
    ended: previous.sessions.filter((s) => s.key === key),
  }
  // every end (end.lua, end-titles.lua's first change, a report's players who left and a server's
  // end in server-report.lua) ends the sessions past expiry it finds: told first
  // (PresenceChange.expired)
  if (past.length > 0) {
    const stored = new Set<string>()
    for (let i = sessionsFrom(after); i < after.length; i++) {
      stored.add((after[i] as StoredSession)[3])
    }
    const expired = past.filter((s) => !stored.has(s.key))
    if (expired.length > 0) change.expired = expired
  }
  return change
}

/** The change of a ChangeMessage, with its history position when it has one. */
export function changeOfMessage(message: ChangeMessage): PresenceChange {
  const change = changeOf(message.c)
  if (message.h) change.position = { epoch: message.h[0], offset: message.h[1], at: message.c[1] }
  return change
}

/** The change a script replied with (a ChangeMessage's text). */
export function changeOfReply(reply: string): PresenceChange {
  return changeOfMessage(JSON.parse(reply) as ChangeMessage)
}

/**
 * The settings text RedisProfileStore stores, which settings.lua folds into the presence value
 * (0 when it is the defaults' text: keep the two in step).
 */
export function settingsText(settings: UserSettings): string {
  const value: UserSettings = { visibility: settings.visibility, invisible: settings.invisible }
  if (settings.frozenLastOnline !== undefined) value.frozenLastOnline = settings.frozenLastOnline
  if (settings.visibleSince !== undefined) value.visibleSince = settings.visibleSince
  return JSON.stringify(value)
}

/** Folded settings by their text: a few users have non-default ones, read again and again. */
const foldedSettings = new Map<string, Readonly<UserSettings>>()
const MAX_FOLDED_SETTINGS = 4096

/**
 * The user's settings folded into its stored value (see the format above): the defaults when
 * there is no value (a user with settings has one), undefined when the value was written before
 * settings were folded (its reader takes the settings key instead).
 */
export function settingsOfValue(
  raw: string | null | undefined,
): Readonly<UserSettings> | undefined {
  if (!raw) return defaultSettings
  const end = raw.indexOf('\n')
  let comma = raw.indexOf(',')
  if (comma < 0 || comma > end) return undefined
  comma++
  if (raw.charCodeAt(comma) === ZERO && comma + 1 === end) return defaultSettings
  const text = raw.slice(comma, end)
  let settings = foldedSettings.get(text)
  if (settings === undefined) {
    settings = settingsOfText(text)
    if (foldedSettings.size >= MAX_FOLDED_SETTINGS) foldedSettings.clear()
    foldedSettings.set(text, settings)
  }
  return settings
}

/** settingsOfValue of a value as the bytes Redis sent, without a string unless it folds settings. */
export function settingsOfBytes(
  raw: Buffer | null | undefined,
): Readonly<UserSettings> | undefined {
  if (!raw || raw.length === 0) return defaultSettings
  let comma = 0
  for (let c = raw[0]; c !== COMMA; c = raw[++comma]) {
    // no comma in the first line (or none at all): written before settings were folded
    if (c === LINE_BREAK || c === undefined) return undefined
  }
  if (raw[comma + 1] === ZERO && raw[comma + 2] === LINE_BREAK) return defaultSettings
  const end = raw.indexOf(LINE_BREAK, comma)
  return settingsOfValue(raw.toString('utf8', 0, end < 0 ? raw.length : end + 1))
}

/** The settings of a settings key's JSON text (as RedisProfileStore reads them), frozen. */
export function settingsOfText(text: string): Readonly<UserSettings> {
  return Object.freeze(JSON.parse(text) as UserSettings)
}
