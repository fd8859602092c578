import { DAY_MS, writeIsoBytes, writeIsoTime } from '../shared/iso-bytes.js'
import { PresenceType, type Activity } from '../../core/presence.js'
import { shownWrite, type PresenceSummary, type VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import {
  presenceRecord,
  type DeviceRecord,
  type PresenceRecord,
  type TitleRecord,
  type XboxLevel,
  type XboxViewOptions,
} from './view.js'

/*
 * Presence records written as JSON bytes straight into the buffer that is sent: the bytes of
 * `JSON.stringify(records)` (reply-writer.test.ts holds it to that), without the 200 KB string
 * of an 1100-user batch and its encoding. Measured (issue 19): stringifying and encoding a
 * batch was a quarter of its time. Member names are written as prepared bytes, strings of
 * plain ASCII character by character, anything else through JSON.stringify.
 */

const bytes = (text: string) => Buffer.from(text, 'latin1')
const XUID = bytes('{"xuid":')
const STATE = bytes(',"state":')
const DEVICES = bytes(',"devices":[')
const TYPE = bytes('{"type":')
const TITLES = bytes(',"titles":[')
const ID = bytes('{"id":')
const NAME = bytes(',"name":')
const LAST_MODIFIED = bytes(',"lastModified":')
const TIMESTAMP = bytes(',"timestamp":')
const PLACEMENT = bytes(',"placement":')
const ACTIVITY = bytes(',"activity":{"richPresence":')
const LAST_SEEN = bytes(',"lastSeen":{"deviceType":')
const TITLE_NAME = bytes(',"titleName":')

const OFFLINE = bytes('","state":"Offline"')
const OFFLINE_SEEN = bytes(
  '","state":"Offline","lastSeen":{"deviceType":"Unknown","titleName":"","timestamp":"',
)
const ONLINE = bytes('","state":"Online"')
const AWAY = bytes('","state":"Away"')
const DEVICES_TYPE = bytes(',"devices":[{"type":')
const NO_TITLES = bytes(',"titles":[]}]}')
const TITLES_OPEN = bytes(',"titles":[')
const TITLES_CLOSE = bytes(']}]}')
const DEVICE_CLOSE = bytes('}]}')
const QUOTE_CLOSE = bytes('"}}')
const TIMESTAMP_VALUE = bytes('","timestamp":"')
const SEED_TAIL = bytes('0000"')
const MAX_ISO_MS = 253_402_300_800_000

/**
 * TypedArray#set, called on the reply's buffer with `.call` (as the Roblox writer does):
 * `out.set` looked the method up on Buffer's prototype through a generic load IC each time
 * (callgrind: a LoadIC call per titled record, ~77 instructions each).
 */
const copyBytes = Uint8Array.prototype.set

class ByteWriter {
  out: Buffer
  at = 0

  constructor(capacity: number) {
    this.out = Buffer.allocUnsafe(capacity)
  }

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.out.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.at + n))
    grown.set(this.out.subarray(0, this.at), 0)
    this.out = grown
  }

  /** Characters known to be ASCII needing no escape (digits). */
  ascii(value: string): void {
    const n = value.length
    this.room(n)
    const out = this.out
    let at = this.at
    for (let i = 0; i < n; i++) out[at++] = value.charCodeAt(i)
    this.at = at
  }

  byte(c: number): void {
    this.room(1)
    this.out[this.at++] = c
  }

  raw(chunk: Buffer): void {
    const n = chunk.length
    this.room(n)
    // measured under callgrind: a copy by hand is ~25 instructions a byte, TypedArray#set ~265
    // whatever the length
    if (n < 11) {
      const out = this.out
      let at = this.at
      for (let i = 0; i < n; i++) out[at++] = chunk[i]!
      this.at = at
    } else {
      copyBytes.call(this.out, chunk, this.at)
      this.at += n
    }
  }

  /** A JSON string, as JSON.stringify writes it. */
  string(value: string): void {
    const n = value.length
    this.room(n + 2)
    const out = this.out
    const start = this.at
    let at = start
    out[at++] = 0x22
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i)
      // outside printable ASCII, or `"` or `\`: JSON.stringify's escapes and utf-8
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.at = start
        this.text(JSON.stringify(value))
        return
      }
      out[at++] = c
    }
    out[at++] = 0x22
    this.at = at
  }

  /** An instant's 24-character ISO form (`digits` = 23: without the `Z`). */
  iso(ms: number, digits: 23 | 24): void {
    this.room(24)
    this.at = writeIsoBytes(this.out, this.at, ms, digits === 24)
  }

  /** Text as utf-8. */
  text(value: string): void {
    this.room(Buffer.byteLength(value, 'utf8'))
    this.at += this.out.write(value, this.at, 'utf8')
  }
}

/** What the last batch took: the next starts with room for as much (plus some). */
let lastSize = 4096

/**
 * `records` as `JSON.stringify(records)` would write them, as bytes.
 *
 * @example
 * writeRecords([{ xuid: '7', state: 'Offline' }]).toString() // '[{"xuid":"7","state":"Offline"}]'
 */
export function writeRecords(records: readonly PresenceRecord[]): Buffer {
  const w = new ByteWriter(lastSize + (lastSize >> 3))
  w.byte(0x5b)
  for (let i = 0; i < records.length; i++) {
    if (i > 0) w.byte(0x2c)
    writeRecord(w, records[i]!)
  }
  w.byte(0x5d)
  lastSize = w.at
  return w.out.subarray(0, w.at)
}

function writeRecord(w: ByteWriter, record: PresenceRecord): void {
  w.raw(XUID)
  w.string(record.xuid)
  w.raw(STATE)
  w.string(record.state)
  if (record.devices !== undefined) {
    w.raw(DEVICES)
    for (let i = 0; i < record.devices.length; i++) {
      if (i > 0) w.byte(0x2c)
      writeDevice(w, record.devices[i]!)
    }
    w.byte(0x5d)
  }
  const lastSeen = record.lastSeen
  if (lastSeen !== undefined) {
    w.raw(LAST_SEEN)
    w.string(lastSeen.deviceType)
    w.raw(TITLE_NAME)
    w.string(lastSeen.titleName)
    w.raw(TIMESTAMP)
    w.string(lastSeen.timestamp)
    w.byte(0x7d)
  }
  w.byte(0x7d)
}

function writeDevice(w: ByteWriter, device: DeviceRecord): void {
  w.raw(TYPE)
  w.string(device.type)
  if (device.titles !== undefined) {
    w.raw(TITLES)
    for (let i = 0; i < device.titles.length; i++) {
      if (i > 0) w.byte(0x2c)
      writeTitle(w, device.titles[i]!)
    }
    w.byte(0x5d)
  }
  w.byte(0x7d)
}

function writeTitle(w: ByteWriter, title: TitleRecord): void {
  w.raw(ID)
  w.string(title.id)
  w.raw(NAME)
  w.string(title.name)
  w.raw(LAST_MODIFIED)
  w.string(title.lastModified)
  w.raw(TIMESTAMP)
  w.string(title.timestamp)
  w.raw(PLACEMENT)
  w.string(title.placement)
  w.raw(STATE)
  w.string(title.state)
  if (title.activity !== undefined) {
    w.raw(ACTIVITY)
    w.string(title.activity.richPresence)
    w.byte(0x7d)
  }
  w.byte(0x7d)
}

/** Whether an instant has the 24-character ISO form that ByteWriter#iso writes. */
function usualInstant(ms: number): boolean {
  return ms >= 0 && ms < MAX_ISO_MS && Number.isInteger(ms)
}

/** Whether `id` is 1 to 19 ASCII digits: a JSON string without escapes. */
function isDigits(id: string): boolean {
  const n = id.length
  if (n === 0 || n > 19) return false
  for (let i = 0; i < n; i++) {
    const c = id.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/**
 * What the plain records of one batch share: its level and the platform title as the batch's
 * catalogue names it. One object per distinct such view (`plainView`), so a title part cached
 * for it is told valid by identity.
 */
interface PlainView {
  level: XboxLevel
  titleId: string
  name: string
}
const plainViews = new Map<string, PlainView>()

function plainView(options: XboxViewOptions): PlainView {
  const titleId = options.platformTitleId
  const name = options.titles.get(titleId)?.name ?? ''
  const key = `${options.level}\u0000${titleId}\u0000${name}`
  let view = plainViews.get(key)
  if (view === undefined) {
    view = { level: options.level, titleId, name }
    if (plainViews.size >= 1000) plainViews.clear()
    plainViews.set(key, view)
  }
  return view
}

/**
 * The platform title's record of a game or studio session, in two parts around its two
 * instants: `{"id":…,"name":…,"lastModified":"` and `","placement":"full","state":"active"…}`.
 * Kept per shared (frozen) activity, for the view it was made with.
 */
interface PlatformTitle {
  activity: Activity
  view: PlainView
  head: Buffer
  /** `0000"` (the seed timestamp's end), the rest of the title record, `]}]}`. */
  tail: Buffer
  /** Per device type: the record from the user's state on (TitledRecord). */
  records: Map<string, TitledRecord>
  /** The device type of the record asked for last, and that record: most are alike. */
  lastType: string | undefined
  last: TitledRecord | undefined
}
let platformTitles = new WeakMap<Activity, PlatformTitle>()
/** Where the placeholder instants stand in the stringified record (names cannot hold these). */
const LAST_MODIFIED_MARK = '"lastModified":"\\u0000"'
const TIMESTAMP_MARK = '"timestamp":"\\u0001"'

/**
 * Per activity id of a summary (PresenceSummary.activityId), the title made last for the
 * activity seen with it: an index and two compares, where the WeakMap looked the activity's
 * hash up in a table, both out of cache between batches (issue 19). An id the store gave to
 * another activity since (or another store's) fails the compare and is made again.
 */
let titlesById: (PlatformTitle | undefined)[] = []

/** platformTitle, found by `activityId` (-1: none) when it was made for it before. */
function platformTitleById(activity: Activity, activityId: number, view: PlainView): PlatformTitle {
  if (activityId >= 0 && activityId < titlesById.length) {
    const title = titlesById[activityId]
    if (title !== undefined && title.activity === activity && title.view === view) return title
  }
  const title = platformTitle(activity, view)
  if (activityId >= 0 && Object.isFrozen(activity)) {
    // filled up to the id: an index set far past the end would make the array a dictionary
    while (titlesById.length < activityId) titlesById.push(undefined)
    titlesById[activityId] = title
  }
  return title
}

function platformTitle(activity: Activity, view: PlainView): PlatformTitle {
  // an activity is cached only frozen (shared, unchanging): a hit needs no isFrozen, which costs
  const cached = platformTitles.get(activity)
  if (cached !== undefined && cached.view === view) return cached
  // the record titleRecord (view.ts) makes for such a session, cut around its instants
  const richPresence = view.level === 'all' ? activity.location : undefined
  const record: Record<string, unknown> = {
    id: view.titleId,
    name: view.name,
    lastModified: '\u0000',
    timestamp: '\u0001',
    placement: 'full',
    state: 'active',
  }
  if (richPresence !== undefined && richPresence !== '') record.activity = { richPresence }
  const text = JSON.stringify(record)
  const made: PlatformTitle = {
    activity,
    view,
    head: Buffer.from(text.slice(0, text.indexOf(LAST_MODIFIED_MARK) + 16), 'utf8'),
    tail: Buffer.concat([
      SEED_TAIL,
      Buffer.from(text.slice(text.indexOf(TIMESTAMP_MARK) + 20), 'utf8'),
      TITLES_CLOSE,
    ]),
    records: new Map(),
    lastType: undefined,
    last: undefined,
  }
  if (Object.isFrozen(activity)) platformTitles.set(activity, made)
  return made
}

/**
 * A titled record from the user's state to its end, both instants included, for one day:
 * `","state":"Online","devices":[{"type":<type>,"titles":[` and the title's head, the day's
 * date and a time of day, `Z","timestamp":"`, the date and time again, the title's tail. A
 * record is this copied whole, then its two times of day written: the same bytes as the instant
 * written twice, without working out the date per user.
 */
interface TitledRecord {
  /** The title's activity and view, and the device type, this record was made for. */
  activity: Activity
  view: PlainView
  deviceType: string
  bytes: Buffer
  /** The day (ms / DAY_MS) whose date `bytes` holds; NaN before the first. */
  day: number
  /** Where the two instants start in `bytes`. */
  lastModified: number
  timestamp: number
}

function titledRecord(title: PlatformTitle, deviceType: string, day: number): TitledRecord {
  let record = title.lastType === deviceType ? title.last : title.records.get(deviceType)
  if (record === undefined) {
    const lead = Buffer.concat([
      ONLINE,
      DEVICES_TYPE,
      Buffer.from(JSON.stringify(deviceType), 'utf8'),
      TITLES_OPEN,
      title.head,
    ])
    const timestamp = lead.length + 24 + TIMESTAMP_VALUE.length
    record = {
      activity: title.activity,
      view: title.view,
      deviceType,
      bytes: Buffer.concat([lead, Buffer.alloc(24), TIMESTAMP_VALUE, Buffer.alloc(23), title.tail]),
      day: Number.NaN,
      lastModified: lead.length,
      timestamp,
    }
    // device types are free text (unknown ones kept as written): bounded like the untitled cache
    if (title.records.size >= 64) title.records.clear()
    title.records.set(deviceType, record)
  }
  title.lastType = deviceType
  title.last = record
  if (record.day !== day) {
    // the date (and the `Z` of lastModified) for this day: the times of day are written per user
    record.day = day
    writeIsoBytes(record.bytes, record.lastModified, day * DAY_MS, true)
    record.bytes.copyWithin(record.timestamp, record.lastModified, record.lastModified + 23)
  }
  return record
}

/**
 * Per activity id of a summary, the titled record written last for it: its activity, view,
 * device type and day compared, then its bytes copied. One object and its bytes per titled
 * record, where finding it through titlesById and then the title's record was one object more
 * and a call (issue 19). Anything else (another activity under the id, another device type or
 * day) goes through platformTitleById and titledRecord, and the record found is kept here.
 */
let recordsById: (TitledRecord | undefined)[] = []

/** What touchTitled read; kept so that the reads are not dropped. */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- written, never read: see above
let touchedRecords = 0

/**
 * Reads the titled record kept for each summary's activity id, its bytes' first and middle
 * bytes, in one pass before the records are written: their cache misses then overlap (as the
 * memory store's touchRows), instead of each record waiting for its own. Returns them or-ed.
 */
function touchTitled(summaries: readonly PresenceSummary[]): number {
  const records = recordsById
  const n = records.length
  let seen = 0
  for (let i = 0; i < summaries.length; i++) {
    const id = summaries[i]!.activityId ?? -1
    if (id >= 0 && id < n) {
      const record = records[id]
      if (record !== undefined) seen |= record.bytes[0]! | record.bytes[record.timestamp]!
    }
  }
  return seen
}

/** titledRecord(platformTitleById(…)), through recordsById when that holds the record. */
function titledRecordById(
  activity: Activity,
  activityId: number,
  view: PlainView,
  deviceType: string,
  day: number,
): TitledRecord {
  if (activityId >= 0 && activityId < recordsById.length) {
    const record = recordsById[activityId]
    if (
      record !== undefined &&
      record.activity === activity &&
      record.view === view &&
      record.day === day &&
      record.deviceType === deviceType
    ) {
      return record
    }
  }
  const title = platformTitleById(activity, activityId, view)
  const record = titledRecord(title, deviceType, day)
  // as titlesById: kept only for an activity whose title is kept (frozen, shared)
  if (activityId >= 0 && titlesById[activityId] === title) {
    while (recordsById.length < activityId) recordsById.push(undefined)
    recordsById[activityId] = record
  }
  return record
}

/** A device without titles: from the user's state to the record's end, per state and type. */
const untitled = [new Map<string, Buffer>(), new Map<string, Buffer>()]

/** Per state (as `untitled`): the device type asked for last, and its bytes. */
const lastUntitledType: Array<string | undefined> = [undefined, undefined]
const lastUntitled: Array<Buffer | undefined> = [undefined, undefined]

function untitledDevice(online: boolean, deviceType: string): Buffer {
  const state = online ? 1 : 0
  if (lastUntitledType[state] === deviceType) return lastUntitled[state]!
  const byType = untitled[state]!
  let bytes = byType.get(deviceType)
  if (bytes === undefined) {
    bytes = Buffer.concat([
      online ? ONLINE : AWAY,
      DEVICES_TYPE,
      Buffer.from(JSON.stringify(deviceType), 'utf8'),
      NO_TITLES,
    ])
    if (byType.size >= 1000) byType.clear()
    byType.set(deviceType, bytes)
  }
  lastUntitledType[state] = deviceType
  lastUntitled[state] = bytes
  return bytes
}

/** Forgets the cached title parts (tests). */
export function resetBatchWriter(): void {
  platformTitles = new WeakMap()
  titlesById = []
  recordsById = []
  plainViews.clear()
  for (const byType of untitled) byType.clear()
  lastUntitledType.fill(undefined)
  lastUntitled.fill(undefined)
}

/**
 * The records of `presences` at `options` (filtered as presenceRecord filters, and without
 * Offline users when `onlineOnly`) as `JSON.stringify` of those records would write them:
 * reply-writer.test.ts holds it to that. The common records (no session, or one session that is
 * an app's or a game's) are written straight from the presence, without a record object; the
 * others through presenceRecord.
 */
export function writeBatch(
  presences: readonly VisiblePresence[],
  options: XboxViewOptions,
  onlineOnly: boolean,
): Buffer {
  const w = new ByteWriter(lastSize + (lastSize >> 3))
  const filtered =
    (options.deviceTypes !== undefined && options.deviceTypes.size > 0) ||
    (options.titleIds !== undefined && options.titleIds.size > 0)
  const level = options.level
  const view = plainView(options)
  w.byte(0x5b)
  let first = true
  for (let i = 0; i < presences.length; i++) {
    const presence = presences[i]!
    const sessions = presence.sessions
    const session = sessions.length === 1 ? sessions[0]! : undefined
    const lastOnline = presence.lastOnline
    const plain =
      !filtered &&
      isDigits(presence.userId) &&
      (sessions.length === 0
        ? lastOnline === undefined || usualInstant(lastOnline)
        : session !== undefined &&
          session.source !== 'title' &&
          (level === 'user' ||
            level === 'device' ||
            session.activity.kind === 'online' ||
            presence.locationHidden ||
            usualInstant(shownWrite(session, presence))))
    if (!plain) {
      const record = presenceRecord(presence, options)
      if (record === undefined || (onlineOnly && record.state === 'Offline')) continue
      if (!first) w.byte(0x2c)
      first = false
      writeRecord(w, record)
      continue
    }
    if (session === undefined && onlineOnly) continue
    if (!first) w.byte(0x2c)
    first = false
    if (session === undefined) {
      writePlainRecord(w, view, presence.userId, lastOnline, undefined, false, undefined, 0)
    } else {
      writePlainRecord(
        w,
        view,
        presence.userId,
        lastOnline,
        session.deviceType,
        session.activity.kind !== 'online',
        presence.locationHidden ? undefined : session.activity,
        shownWrite(session, presence),
      )
    }
  }
  w.byte(0x5d)
  lastSize = w.at
  return w.out.subarray(0, w.at)
}

/**
 * Whether writeSummaryBatch writes this user's record from the summary alone: what writeBatch
 * writes plain (no session, or one session that is an app's or a game's, no filters), told from
 * the summary. Others need the full presence (service.lookup of those users).
 */
export function plainSummary(
  summary: PresenceSummary,
  options: Pick<XboxViewOptions, 'level' | 'deviceTypes' | 'titleIds'>,
): boolean {
  return !filtersOf(options) && isDigits(summary.userId) && plainState(summary, options.level)
}

/** Whether `options` keep only some device types or titles (no record is then plain). */
function filtersOf(options: Pick<XboxViewOptions, 'deviceTypes' | 'titleIds'>): boolean {
  return (
    (options.deviceTypes !== undefined && options.deviceTypes.size > 0) ||
    (options.titleIds !== undefined && options.titleIds.size > 0)
  )
}

/** plainSummary without its filters and id checks: what the user's sessions allow. */
function plainState(summary: PresenceSummary, level: XboxLevel): boolean {
  const lastOnline = summary.lastOnline
  if (summary.sessions === 0) return lastOnline === undefined || usualInstant(lastOnline)
  const activity = summary.activity
  return (
    summary.sessions === 1 &&
    summary.source !== 'title' &&
    (level === 'user' ||
      level === 'device' ||
      activity === undefined ||
      activity.kind === 'online' ||
      usualInstant(summary.updatedAt))
  )
}

/**
 * plainSummary of every summary, as flags (1: plain) for writeSummaryBatch, and the ids of the
 * users that are not plain (undefined if none), whose full presences it needs. `canonical`:
 * every summary's userId is known to be a canonical user id (parseUserId's: digits without a
 * leading zero, at most 19), so isDigits holds and is not checked again. The flags are the
 * batch's own (not reused: the route awaits between this and writeSummaryBatch).
 */
export function plainSummaries(
  summaries: readonly PresenceSummary[],
  options: Pick<XboxViewOptions, 'level' | 'deviceTypes' | 'titleIds'>,
  canonical: boolean,
): { plain: Uint8Array; notPlain: UserId[] | undefined } {
  const n = summaries.length
  const plain = new Uint8Array(n)
  const filtered = filtersOf(options)
  const level = options.level
  let notPlain: UserId[] | undefined
  for (let i = 0; i < n; i++) {
    const summary = summaries[i]!
    const yes = !filtered && (canonical || isDigits(summary.userId)) && plainState(summary, level)
    plain[i] = yes ? 1 : 0
    if (!yes) (notPlain ??= []).push(summary.userId)
  }
  return { plain, notPlain }
}

/**
 * writeBatch's bytes from summaries (service.lookupSummaries): the users for which
 * plainSummary holds are written from their summary, the others from `full`, their full
 * presences (service.lookup of exactly those users, in the same order). The same bytes as
 * writeBatch of the full presences of every user. `plain`: plainSummaries' flags of
 * `summaries`, when the caller has them (else plainSummary is asked per user).
 */
export function writeSummaryBatch(
  summaries: readonly PresenceSummary[],
  full: readonly VisiblePresence[],
  options: XboxViewOptions,
  onlineOnly: boolean,
  plain?: Uint8Array,
): Buffer {
  const w = new ByteWriter(lastSize + (lastSize >> 3))
  const view = plainView(options)
  touchedRecords = touchTitled(summaries)
  let next = 0
  w.byte(0x5b)
  let first = true
  for (let i = 0; i < summaries.length; i++) {
    const summary = summaries[i]!
    if (plain !== undefined ? plain[i] === 0 : !plainSummary(summary, options)) {
      const record = presenceRecord(full[next++]!, options)
      if (record === undefined || (onlineOnly && record.state === 'Offline')) continue
      if (!first) w.byte(0x2c)
      first = false
      writeRecord(w, record)
      continue
    }
    const online = summary.sessions > 0
    if (!online && onlineOnly) continue
    if (!first) w.byte(0x2c)
    first = false
    const activity = summary.activity
    writePlainRecord(
      w,
      view,
      summary.userId,
      summary.lastOnline,
      online ? summary.deviceType : undefined,
      // the one session's kind: its activity's, or (location hidden) the state it makes
      activity !== undefined ? activity.kind !== 'online' : summary.state !== PresenceType.Online,
      activity,
      summary.updatedAt,
      summary.activityId ?? -1,
    )
  }
  w.byte(0x5d)
  lastSize = w.at
  return w.out.subarray(0, w.at)
}

/**
 * One plain record (see writeBatch): a user with no live session (`deviceType` undefined), or
 * with one app or game session on `deviceType`; `activity` undefined when its location is hidden.
 */
function writePlainRecord(
  w: ByteWriter,
  view: PlainView,
  userId: string,
  lastOnline: number | undefined,
  deviceType: string | undefined,
  inGame: boolean,
  activity: Activity | undefined,
  updatedAt: number,
  /** The summary's activity id (PresenceSummary.activityId), -1 for none. */
  activityId = -1,
): void {
  // `{"xuid":"` and the id's digits, after one check for room (callgrind: writing them through
  // raw and ascii, each checking, was a fifth of the record)
  const n = userId.length
  w.room(9 + n)
  const head = w.out
  let at = w.at
  head[at] = 0x7b // {
  head[at + 1] = 0x22 // "
  head[at + 2] = 0x78 // x
  head[at + 3] = 0x75 // u
  head[at + 4] = 0x69 // i
  head[at + 5] = 0x64 // d
  head[at + 6] = 0x22 // "
  head[at + 7] = 0x3a // :
  head[at + 8] = 0x22 // "
  at += 9
  for (let i = 0; i < n; i++) head[at++] = userId.charCodeAt(i)
  w.at = at
  if (deviceType === undefined) {
    if (lastOnline === undefined) {
      w.raw(OFFLINE)
      w.byte(0x7d)
    } else {
      w.raw(OFFLINE_SEEN)
      w.iso(lastOnline, 24)
      w.raw(QUOTE_CLOSE)
    }
    return
  }
  const level = view.level
  if (level === 'user') {
    w.raw(inGame ? ONLINE : AWAY)
    w.byte(0x7d)
    return
  }
  if (level === 'device') {
    w.raw(inGame ? ONLINE : AWAY)
    w.raw(DEVICES_TYPE)
    w.string(deviceType)
    w.raw(DEVICE_CLOSE)
    return
  }
  if (!inGame || activity === undefined) {
    w.raw(untitledDevice(inGame, deviceType))
    return
  }
  const day = Math.floor(updatedAt / DAY_MS)
  const record = titledRecordById(activity, activityId, view, deviceType, day)
  const bytes = record.bytes
  w.room(bytes.length)
  const out = w.out
  at = w.at
  copyBytes.call(out, bytes, at)
  w.at = at + bytes.length
  // lastModified and timestamp are the same instant: its time of day is worked out once
  const lastModified = at + record.lastModified + 11
  writeIsoTime(out, lastModified, updatedAt - day * DAY_MS)
  const timestamp = at + record.timestamp + 11
  for (let i = 0; i < 12; i++) out[timestamp + i] = out[lastModified + i]!
}
