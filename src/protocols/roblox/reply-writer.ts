import { DAY_MS } from '../shared/iso-bytes.js'
import { ReplySlab } from '../shared/reply-slab.js'
import { PresenceType, primarySession, stateOfKind, type Activity } from '../../core/presence.js'
import type { PresenceSummary, VisiblePresence } from '../../core/privacy.js'
import {
  prefixText,
  serializeUserPresences,
  serializeVisible,
  shownAs,
  shownState,
  type RobloxViewOptions,
} from './view.js'

/*
 * The body of POST /v1/presence/users written as bytes, straight into the buffer that is sent:
 * serializeUserPresences(visible.map((v) => serializeVisible(v, options))), byte for byte
 * (reply-writer.test.ts holds it to that), without a string per record, a join or an encode.
 * Measured (issue 19): building, joining and encoding the strings was a fifth of a 50-id read.
 *
 * A record is its prefix (everything before the user id: the state and the primary session's
 * place fields), the id's digits, then `,"lastOnline":"<ISO>"}`. Prefixes are kept as bytes:
 * per state for records without a place, per interned activity (the embedded store hands out
 * one frozen object per distinct activity) and, for activities that are not shared objects,
 * per their values in a bounded map. The body's exact size is summed first, so it is written
 * once into a part of a reused slab (shared/reply-slab.ts) of that size, which goes to the
 * socket as it is. writeSummariesReply writes the same bytes from summaries (the read path), in
 * one pass within room for the longest prefix made so far, the two passes when that does not do.
 */

const OPEN = Buffer.from('{"userPresences":[', 'latin1')
const CLOSE_BODY = Buffer.from(']}', 'latin1')
const LAST_ONLINE = Buffer.from(',"lastOnline":"', 'latin1')
/** `,"lastOnline":"` + 24 ISO characters + `"}` */
const TAIL_BYTES = LAST_ONLINE.length + 24 + 2
/**
 * A record's tail on the day last written, `,"lastOnline":"YYYY-MM-DDT00:00:00.000Z"}`: its time
 * of day filled in, then copied whole (measured: 2.5 µs less per 50 records than byte by byte).
 */
const tail = Buffer.alloc(TAIL_BYTES)
const tailView = viewOf(tail)
let tailDay = Number.NaN
/** Where the time of day starts in `tail`. */
const TIME_AT = LAST_ONLINE.length + 11

/**
 * TypedArray#set, called on the reply's buffer with `.call`: `out.set` looked the method up on
 * Buffer's prototype through a generic load IC each time (about 150 instructions, callgrind).
 */
const copyBytes = Uint8Array.prototype.set

/** The two ASCII digits of 0..99 as one little-endian 16-bit value (DataView#setUint16). */
const PAIRS = Uint16Array.from(
  { length: 100 },
  (_, n) => (0x30 + Math.floor(n / 10)) | ((0x30 + (n % 10)) << 8),
)

/**
 * The three ASCII digits of 0..999 and then `Z`, as one little-endian 32-bit value
 * (DataView#setUint32): an ISO time's milliseconds and its end.
 */
const MILLIS_Z = Uint32Array.from(
  { length: 1000 },
  (_, n) =>
    (0x30 + Math.floor(n / 100)) |
    ((0x30 + (Math.floor(n / 10) % 10)) << 8) |
    ((0x30 + (n % 10)) << 16) |
    (0x5a << 24),
)

/** A DataView of `bytes`, for fillTime's stores. */
function viewOf(bytes: Buffer): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
}

/** The last instant whose ISO form has 24 characters (year 9999). */
const MAX_ISO_MS = 253_402_300_800_000

/**
 * A record's prefix, and the bytes that go before it in a record other than the first: the
 * record before's tail, a comma, then the prefix (`joined`, made on first use, its date that of
 * `joinedDay`), so that writeSummariesReply copies once per record where it copied the tail and
 * the prefix apart (TypedArray#set, about 160 instructions a call: callgrind, issue 19).
 */
class Prefix {
  joined: Buffer | undefined = undefined
  joinedView: DataView | undefined = undefined
  joinedDay = Number.NaN
  constructor(readonly bytes: Buffer) {}

  /** `joined` with the date of `day`, the time of day left for fillTime. */
  join(day: number): Buffer {
    setTailDay(day)
    let joined = this.joined
    if (joined === undefined) {
      joined = Buffer.alloc(TAIL_BYTES + 1 + this.bytes.length)
      joined[TAIL_BYTES] = 0x2c
      copyBytes.call(joined, this.bytes, TAIL_BYTES + 1)
      this.joined = joined
      this.joinedView = viewOf(joined)
    }
    copyBytes.call(joined, tail, 0)
    this.joinedDay = day
    return joined
  }
}

const genericPrefixes = new Map<PresenceType, Prefix>()
/** The longest prefix made so far: the one-pass write's room per record (writeSummariesReply). */
let longestPrefix = 0

/** `text` as a prefix's bytes, noting its length. */
function prefixBytes(text: string): Prefix {
  const prefix = Buffer.from(text, 'utf8')
  if (prefix.length > longestPrefix) longestPrefix = prefix.length
  return new Prefix(prefix)
}
/** Per shared (frozen) activity, its prefix per shown state (0..4). */
let byActivity = new WeakMap<Activity, (Prefix | undefined)[]>()
const MAX_PREFIXES = 10_000
const byValues = new Map<string, Prefix>()

function genericPrefix(state: PresenceType): Prefix {
  let prefix = genericPrefixes.get(state)
  if (prefix === undefined) {
    prefix = prefixBytes(prefixText(state, undefined))
    genericPrefixes.set(state, prefix)
  }
  return prefix
}

/**
 * Per activity id of a summary (PresenceSummary.activityId), the activity last seen with it and
 * its prefixes per state (byActivity's array): an index and a compare, where the WeakMap lookup
 * was about 75 instructions a record (callgrind, issue 19). An id the store gave to another
 * activity since (or another store's) fails the compare and is cached again.
 */
let internedActivities: (Activity | undefined)[] = []
let internedPrefixes: (Prefix | undefined)[][] = []

/**
 * The prefix of a record in `state` at `activity`; `activityId`: the summary's hint (-1 or
 * undefined: none).
 */
function prefixOf(
  state: PresenceType,
  activity: Activity | undefined,
  activityId: number | undefined = -1,
): Prefix {
  if (activity === undefined) return genericPrefix(state)
  if (activityId >= 0 && internedActivities[activityId] === activity) {
    const cached = internedPrefixes[activityId]![state]
    if (cached !== undefined) return cached
  }
  return prefixMade(state, activity, activityId)
}

/**
 * prefixOf's prefix when the interned one is not at hand: a function of its own, so that the
 * writers inline prefixOf's few instructions and not this.
 */
function prefixMade(state: PresenceType, activity: Activity, activityId: number): Prefix {
  const states = byActivity.get(activity)
  const cached = states?.[state]
  if (cached !== undefined) {
    if (activityId >= 0) intern(activityId, activity, states!)
    return cached
  }
  if (states !== undefined || Object.isFrozen(activity)) {
    const prefix = prefixBytes(prefixText(state, activity))
    if (states === undefined) byActivity.set(activity, [])
    const known = byActivity.get(activity)!
    known[state] = prefix
    if (activityId >= 0) intern(activityId, activity, known)
    return prefix
  }
  // ids and uuids hold no '|': with the free text last, no two activities share a key
  const key = `${state}|${activity.kind}|${activity.placeId ?? ''}|${activity.rootPlaceId ?? ''}|${activity.gameId ?? ''}|${activity.universeId ?? ''}|${activity.location ?? ''}`
  let prefix = byValues.get(key)
  if (prefix === undefined) {
    prefix = prefixBytes(prefixText(state, activity))
    if (byValues.size >= MAX_PREFIXES) byValues.clear()
    byValues.set(key, prefix)
  }
  return prefix
}

/** Notes `activity`'s prefixes (byActivity's array) under the id a store gave it. */
function intern(activityId: number, activity: Activity, states: (Prefix | undefined)[]): void {
  // filled up to the id: an index set far past the end would turn the arrays into dictionaries
  while (internedActivities.length < activityId) {
    internedActivities.push(undefined)
    internedPrefixes.push([])
  }
  internedActivities[activityId] = activity
  internedPrefixes[activityId] = states
  // the id's joined templates were another activity's
  const first = activityId * STATES
  for (let slot = first; slot < first + STATES && slot < slotPrefixBytes.length; slot++) {
    slotPrefixBytes[slot] = 0
  }
}

/*
 * The joined templates (Prefix.joined: a tail, a comma, the prefix) of interned activities, per
 * slot (activity id * STATES + shown state), side by side in one arena: writing a record of a
 * slot reads its offset and prefix length from typed arrays and copies from the arena through a
 * view made then, where a Prefix took five objects out of cache (the states array, the Prefix,
 * its Buffer, its DataView, its ArrayBuffer), each a miss once the store's rows have pushed them
 * out (issue 19). A view kept per slot was one more such object: 54.0 against 50.6 µs a read.
 */
const STATES = 8
/**
 * The arena's first size and its most: it doubles (its templates copied) while a template does
 * not fit, and at its most, every slot is forgotten instead and it is written again from the
 * start (a record's template is copied into its reply as soon as it is made).
 */
const ARENA_FIRST = 64 * 1024
const ARENA_MOST = 16 * 1024 * 1024
/** Templates end at `arenaUsed`; its view, buffer and offset are kept for the record's copy. */
let arena: Buffer = Buffer.alloc(0)
let arenaView = viewOf(arena)
let arenaBytes: ArrayBufferLike = arena.buffer
let arenaOffset = arena.byteOffset
let arenaUsed = 0

function useArena(next: Buffer): void {
  arena = next
  arenaView = viewOf(next)
  arenaBytes = next.buffer
  arenaOffset = next.byteOffset
}
/** Per slot: the template's offset, its prefix's length (0: no template), its tail's day. */
let slotAt = new Int32Array(0)
let slotPrefixBytes = new Int32Array(0)
let slotDay = new Float64Array(0)

/**
 * The slot of `activity` (interned under `activityId`) shown as `state`, its template made when
 * it has none; -1 when the activity is not the one interned under that id (prefixOf's path).
 */
function slotOf(state: PresenceType, activity: Activity, activityId: number): number {
  if (!(activityId >= 0) || internedActivities[activityId] !== activity) return -1
  const slot = activityId * STATES + state
  if (slot < slotPrefixBytes.length && slotPrefixBytes[slot]! > 0) return slot
  return makeSlot(slot, prefixOf(state, activity, activityId))
}

function makeSlot(slot: number, prefix: Prefix): number {
  const size = TAIL_BYTES + 1 + prefix.bytes.length
  if (size > ARENA_MOST) return -1
  if (arenaUsed + size > arena.length) {
    if (arena.length >= ARENA_MOST) {
      arenaUsed = 0
      slotPrefixBytes.fill(0)
    } else {
      const next = Buffer.alloc(Math.min(Math.max(ARENA_FIRST, arena.length * 2), ARENA_MOST))
      copyBytes.call(next, arena.subarray(0, arenaUsed), 0)
      useArena(next)
      // a template bigger than the doubling: the next call doubles again
      if (arenaUsed + size > arena.length) return makeSlot(slot, prefix)
    }
  }
  if (slot >= slotAt.length) {
    const length = Math.max(slot + 1, slotAt.length * 2, 64 * STATES)
    slotAt = grown(slotAt, new Int32Array(length))
    slotPrefixBytes = grown(slotPrefixBytes, new Int32Array(length))
    slotDay = grown(slotDay, new Float64Array(length))
  }
  const at = arenaUsed
  arenaUsed += size
  arena[at + TAIL_BYTES] = 0x2c
  copyBytes.call(arena, prefix.bytes, at + TAIL_BYTES + 1)
  slotAt[slot] = at
  slotPrefixBytes[slot] = prefix.bytes.length
  slotDay[slot] = Number.NaN
  return slot
}

function grown<T extends Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from)
  return to
}

/** Forgets every cached prefix (tests). */
export function resetReplyWriter(): void {
  genericPrefixes.clear()
  byValues.clear()
  byActivity = new WeakMap()
  internedActivities = []
  internedPrefixes = []
  slotAt = new Int32Array(0)
  slotPrefixBytes = new Int32Array(0)
  slotDay = new Float64Array(0)
  useArena(Buffer.alloc(0))
  arenaUsed = 0
  longestPrefix = 0
}

/** Scratch of one write, reused: each record's prefix, id and lastOnline (NaN: never). */
let prefixes: Buffer[] = []
let userIds: string[] = []
let lastOnlines = new Float64Array(64)

/** Where replies are written. */
const slab = new ReplySlab()

/**
 * Gives back a reply written here once the socket took all its bytes (lean-routes.ts): the next
 * reply is written over it, in memory the CPU's caches still hold (ReplySlab.reclaim).
 */
export function reclaimReply(reply: Buffer): void {
  slab.reclaim(reply)
}

function makeRoom(n: number): void {
  if (prefixes.length >= n) return
  prefixes = new Array<Buffer>(n)
  userIds = new Array<string>(n)
  lastOnlines = new Float64Array(n)
}

/** Whether `id` is 1 to 19 ASCII digits (what view.ts writes as a bare JSON number). */
function isDigits(id: string): boolean {
  const n = id.length
  if (n === 0 || n > 19) return false
  for (let i = 0; i < n; i++) {
    const c = id.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** A lastOnline that the tail cannot hold: Date's own form (any length). */
function isUnusual(ms: number): boolean {
  return !(ms >= 0 && ms < MAX_ISO_MS) || !Number.isInteger(ms)
}

/**
 * Notes record `i` (its prefix, id and lastOnline) for #write; its size in the body, or -1 when
 * the record is one the byte path does not write (an id that is not digits, an instant outside
 * years 1970-9999: never from a store, but the text path writes them exactly).
 */
function note(i: number, prefix: Buffer, id: string, lastOnline: number | undefined): number {
  if (!isDigits(id) || (lastOnline !== undefined && isUnusual(lastOnline))) return -1
  prefixes[i] = prefix
  userIds[i] = id
  lastOnlines[i] = lastOnline === undefined ? Number.NaN : lastOnline
  return prefix.length + id.length + TAIL_BYTES
}

/**
 * The reply body for `visible` (privacy applied, in request order) as `options` shows it.
 *
 * @example
 * writeUsersReply(await service.lookup(viewer, ids), { invisibleSelfView: 'state' })
 * // <Buffer 7b 22 75 73 65 72 50 72 65 73 65 6e 63 65 73 22 3a 5b ...>
 */
export function writeUsersReply(
  visible: readonly VisiblePresence[],
  options: RobloxViewOptions,
): Buffer {
  const n = visible.length
  makeRoom(n)
  let size = OPEN.length + CLOSE_BODY.length + (n > 0 ? n - 1 : 0)
  for (let i = 0; i < n; i++) {
    const presence = visible[i]!
    const state = shownState(presence, options)
    const primary =
      state === PresenceType.Offline || presence.locationHidden
        ? undefined
        : primarySession(presence.sessions, Number.NEGATIVE_INFINITY)
    const bytes = note(
      i,
      prefixOf(state, primary?.activity).bytes,
      presence.userId,
      presence.lastOnline,
    )
    if (bytes < 0) return slowReply(visible, options)
    size += bytes
  }
  return write(n, size)
}

/**
 * The same body from summaries (service.lookupSummaries: privacy applied, in request order):
 * byte for byte what writeUsersReply writes for the viewer's lookup() of the same ids.
 *
 * @example
 * writeSummariesReply(await service.lookupSummaries(viewer, ids), { invisibleSelfView: 'state' })
 */
export function writeSummariesReply(
  summaries: readonly PresenceSummary[],
  options: RobloxViewOptions,
  /**
   * The ids' values as the request's parser read them (parseUsersJson's `values`), when it did:
   * `values[i]` is `Number(summaries[i].userId)`, below 2^53, and the id's digits are written
   * from it, two a store, where reading them back from the string cost a representation check
   * and a buffer check a digit (~37 instructions a digit, callgrind, issue 19). A value whose
   * digit count is not its id's length is not used.
   */
  values?: readonly number[],
): Buffer {
  const n = summaries.length
  if (values !== undefined && values.length !== n) values = undefined
  // One pass, straight into the slab, within room for n records of the longest prefix made so
  // far: no scratch arrays to fill and read back (issue 19). A record that does not fit (a new,
  // longer prefix) or that the byte path does not write ends it, and the two passes below run.
  const room = OPEN.length + CLOSE_BODY.length + n * (longestPrefix + 1 + 19 + TAIL_BYTES)
  const start = slab.open(room)
  if (start !== undefined) {
    const out = slab.buffer
    const end = start + room
    out.set(OPEN, start)
    let at = start + OPEN.length
    // the record before's lastOnline, whose tail is written with this record's prefix
    let before = 0
    let i = 0
    for (; i < n; i++) {
      const summary = summaries[i]!
      const state = shownSummaryState(summary, options)
      const activity = state === PresenceType.Offline ? undefined : summary.activity
      // an interned activity's record through its slot (from the second record on), else its
      // Prefix
      const slot =
        i > 0 && activity !== undefined ? slotOf(state, activity, summary.activityId ?? -1) : -1
      const prefix = slot < 0 ? prefixOf(state, activity, summary.activityId) : undefined
      const prefixLength = prefix === undefined ? slotPrefixBytes[slot]! : prefix.bytes.length
      const id = summary.userId
      const lastOnline = summary.lastOnline
      if (
        id.length === 0 ||
        id.length > 19 ||
        (lastOnline !== undefined && isUnusual(lastOnline)) ||
        at + (i > 0 ? TAIL_BYTES + 1 : 0) + prefixLength + id.length + TAIL_BYTES > end
      ) {
        break
      }
      if (prefix === undefined) {
        at = writeJoinedSlot(out, at, slot, before)
      } else if (i > 0) {
        at = writeJoined(out, at, prefix, before)
      } else {
        copyBytes.call(out, prefix.bytes, at)
        at += prefix.bytes.length
      }
      if (values === undefined) {
        // the id's digits are checked as they are written
        at = writeDigits(out, at, id)
        if (at < 0) break
      } else {
        const value = values[i]!
        const length = id.length
        // as many digits as the id has, or the id's own are written by the passes below
        if (!(value >= LEAST[length]! && value < BEYOND[length]!) || !Number.isInteger(value)) break
        at = writeNumber(out, at + length, value)
      }
      before = lastOnline === undefined ? 0 : lastOnline
    }
    if (i === n) {
      if (n > 0) at = writeTail(out, at, before)
      out.set(CLOSE_BODY, at)
      return slab.close(at + CLOSE_BODY.length)
    }
  }
  makeRoom(n)
  let size = OPEN.length + CLOSE_BODY.length + (n > 0 ? n - 1 : 0)
  for (let i = 0; i < n; i++) {
    const summary = summaries[i]!
    const state = shownSummaryState(summary, options)
    const activity = state === PresenceType.Offline ? undefined : summary.activity
    const bytes = note(i, prefixOf(state, activity).bytes, summary.userId, summary.lastOnline)
    if (bytes < 0) return slowReply(summaries.map(visibleOfSummary), options)
    size += bytes
  }
  return write(n, size)
}

/** shownState (view.ts) of a summary. */
function shownSummaryState(summary: PresenceSummary, options: RobloxViewOptions): PresenceType {
  return shownAs(summary, summary.state, options, liveSummaryState)
}

/** The primary activity's kind is a summary's live state. */
function liveSummaryState(summary: PresenceSummary): PresenceType {
  return summary.activity === undefined ? PresenceType.Offline : stateOfKind(summary.activity.kind)
}

/** What the text path needs of a summary: its activity as the one (primary) session. */
function visibleOfSummary(summary: PresenceSummary): VisiblePresence {
  const activity = summary.activity
  return {
    userId: summary.userId,
    state: summary.state,
    sessions:
      activity === undefined
        ? []
        : [
            {
              userId: summary.userId,
              key: '',
              source: 'app',
              deviceType: '',
              startedAt: summary.updatedAt,
              updatedAt: summary.updatedAt,
              expiresAt: Number.POSITIVE_INFINITY,
              activity,
            },
          ],
    lastOnline: summary.lastOnline,
    locationHidden: activity === undefined,
  }
}

/** The body of the `n` records noted, `size` bytes, written into the slab. */
function write(n: number, size: number): Buffer {
  // TypedArray#set for prefixes and byte stores for short runs: Buffer#copy and #write (and
  // #set on a few bytes) cost more in their checks than in copying
  const out = slab.take(size)
  out.set(OPEN, 0)
  let at = OPEN.length
  for (let i = 0; i < n; i++) {
    if (i > 0) out[at++] = 0x2c
    at = writeRecord(out, at, prefixes[i]!, userIds[i]!, lastOnlines[i]!)
  }
  out.set(CLOSE_BODY, at)
  at += CLOSE_BODY.length
  if (at !== size) throw new Error(`reply size ${at} is not the ${size} bytes summed`)
  return out
}

/**
 * One record at `at` (its prefix, the id's digits, the lastOnline tail; NaN: never online, the
 * epoch); the index after it.
 */
function writeRecord(
  out: Buffer,
  at: number,
  prefix: Buffer,
  id: string,
  lastOnline: number,
): number {
  copyBytes.call(out, prefix, at)
  return writeTail(out, writeDigits(out, at + prefix.length, id), lastOnline || 0)
}

/**
 * The id's digits at `at`; the index after them, or -1 when the id holds a character other
 * than a digit (checked here, in the loop that copies it: a pass of its own was about 60
 * instructions a record).
 */
function writeDigits(out: Buffer, at: number, id: string): number {
  for (let k = 0; k < id.length; k++) {
    const digit = id.charCodeAt(k) - 0x30
    if (digit < 0 || digit > 9) return -1
    out[at++] = 0x30 + digit
  }
  return at
}

/**
 * Per digit count of an id (0 to 19), the least integer with as many digits and the least with
 * more: a value in between has that many. Counts an integer up to 2^53 cannot have (0, 17 and
 * more) hold none.
 */
const LEAST = Float64Array.from({ length: 20 }, (_, n) =>
  n === 0 || n > 16 ? Number.POSITIVE_INFINITY : n === 1 ? 0 : 10 ** (n - 1),
)
const BEYOND = Float64Array.from({ length: 20 }, (_, n) => (n === 0 || n > 16 ? 0 : 10 ** n))

/** A DataView of the slab's buffer, for writeNumber's two-digit stores. */
let numberView: DataView | undefined
let numberViewOf: Buffer | undefined

/**
 * The digits of `value`, a non-negative integer, ending just before `end`, two a store from the
 * last; returns `end`.
 */
function writeNumber(out: Buffer, end: number, value: number): number {
  let view = numberView
  if (numberViewOf !== out || view === undefined) {
    view = numberView = viewOf(out)
    numberViewOf = out
  }
  let at = end
  let rest = value
  while (rest >= 100) {
    const next = Math.floor(rest / 100)
    at -= 2
    view.setUint16(at, PAIRS[rest - next * 100]!, true)
    rest = next
  }
  if (rest >= 10) view.setUint16(at - 2, PAIRS[rest]!, true)
  else out[at - 1] = 0x30 + rest
  return end
}

/** `tail`'s date made that of `day` (days since the epoch), its time of day left as it was. */
function setTailDay(day: number): void {
  if (day === tailDay) return
  tailDay = day
  tail.write(`,"lastOnline":"${new Date(day * DAY_MS).toISOString()}"}`, 0, 'latin1')
}

/** The tail of a record last online at `ms` (0: never) at `at`; the index after it. */
function writeTail(out: Buffer, at: number, ms: number): number {
  const day = Math.floor(ms / DAY_MS)
  setTailDay(day)
  fillTime(tailView, 0, ms - day * DAY_MS)
  copyBytes.call(out, tail, at)
  return at + TAIL_BYTES
}

/**
 * The record before's tail (last online at `ms`: 0, never), a comma and `prefix` at `at`, in
 * one copy; the index after them.
 */
function writeJoined(out: Buffer, at: number, prefix: Prefix, ms: number): number {
  const day = Math.floor(ms / DAY_MS)
  const joined = prefix.joinedDay === day ? prefix.joined! : prefix.join(day)
  fillTime(prefix.joinedView!, 0, ms - day * DAY_MS)
  copyBytes.call(out, joined, at)
  return at + joined.length
}

/** writeJoined through a slot's template (slotOf); the index after it. */
function writeJoinedSlot(out: Buffer, at: number, slot: number, ms: number): number {
  const day = Math.floor(ms / DAY_MS)
  const from = slotAt[slot]!
  if (slotDay[slot] !== day) {
    setTailDay(day)
    copyBytes.call(arena, tail, from)
    slotDay[slot] = day
  }
  fillTime(arenaView, from, ms - day * DAY_MS)
  const length = TAIL_BYTES + 1 + slotPrefixBytes[slot]!
  copyBytes.call(out, new Uint8Array(arenaBytes, arenaOffset + from, length), at)
  return at + length
}

/**
 * The time of day `ms` into a tail template in `into` at `base` (`tail`, a Prefix's `joined`, a
 * slot's template in the arena), at TIME_AT in it: a store into the small template is a few instructions, one into `out` about 20, and
 * writing the time into `out` through writeIsoTime (shared/iso-bytes.ts), no longer inlined,
 * was about 265 a record (issue 19, callgrind).
 */
function fillTime(into: DataView, base: number, ms: number): void {
  const rest = ms | 0
  const seconds = (rest / 1000) | 0
  const millis = rest - seconds * 1000
  const minutes = (seconds / 60) | 0
  const hours = (minutes / 60) | 0
  const sec = seconds - minutes * 60
  const min = minutes - hours * 60
  // two digits a store (DataView#setUint16): nine byte stores and eighteen table loads were
  // about 188 instructions a record (callgrind, issue 19); the milliseconds with the `Z` after
  // them in one store, where a byte and a pair (and a division) were two
  const at = base + TIME_AT
  into.setUint16(at, PAIRS[hours]!, true)
  into.setUint16(at + 3, PAIRS[min]!, true)
  into.setUint16(at + 6, PAIRS[sec]!, true)
  into.setUint32(at + 9, MILLIS_Z[millis]!, true)
}

function slowReply(visible: readonly VisiblePresence[], options: RobloxViewOptions): Buffer {
  return Buffer.from(serializeUserPresences(visible.map((v) => serializeVisible(v, options))))
}
