import { writeIsoBytes } from '../shared/iso-bytes.js'
import { PresenceType, type Activity } from '../../core/presence.js'
import type { PresenceSummary, VisiblePresence } from '../../core/privacy.js'
import {
  presenceRecord,
  type DeviceRecord,
  type PresenceRecord,
  type TitleRecord,
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
const XUID_OPEN = bytes('{"xuid":"')
const DEVICES_TYPE = bytes(',"devices":[{"type":')
const NO_TITLES = bytes(',"titles":[]}]}')
const TITLES_OPEN = bytes(',"titles":[')
const TITLES_CLOSE = bytes(']}]}')
const DEVICE_CLOSE = bytes('}]}')
const QUOTE_CLOSE = bytes('"}}')
const TIMESTAMP_VALUE = bytes('","timestamp":"')
const SEED_TAIL = bytes('0000"')
const MAX_ISO_MS = 253_402_300_800_000

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
    // measured: TypedArray#set costs more in its checks than a short copy by hand
    if (n < 64) {
      const out = this.out
      let at = this.at
      for (let i = 0; i < n; i++) out[at++] = chunk[i]!
      this.at = at
    } else {
      this.out.set(chunk, this.at)
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

  /** The `n` bytes written from `from` on, once more (e.g. an instant written twice). */
  again(from: number, n: number): void {
    this.room(n)
    const out = this.out
    let at = this.at
    for (let i = 0; i < n; i++) out[at++] = out[from + i]!
    this.at = at
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
 * The platform title's record of a game or studio session, in two parts around its two
 * instants: `{"id":…,"name":…,"lastModified":"` and `","placement":"full","state":"active"…}`.
 * Kept per shared (frozen) activity, for the level, title and name it was made with.
 */
interface PlatformTitle {
  level: string
  titleId: string
  name: string
  head: Buffer
  /** `0000"` (the seed timestamp's end), the rest of the title record, `]}]}`. */
  tail: Buffer
  /** Per device type: from the user's state to `"lastModified":"` of the title. */
  leads: Map<string, Buffer>
}
let platformTitles = new WeakMap<Activity, PlatformTitle>()
/** Where the placeholder instants stand in the stringified record (names cannot hold these). */
const LAST_MODIFIED_MARK = '"lastModified":"\\u0000"'
const TIMESTAMP_MARK = '"timestamp":"\\u0001"'

function platformTitle(activity: Activity, options: XboxViewOptions): PlatformTitle {
  const titleId = options.platformTitleId
  const name = options.titles.get(titleId)?.name ?? ''
  const cached = Object.isFrozen(activity) ? platformTitles.get(activity) : undefined
  if (
    cached !== undefined &&
    cached.level === options.level &&
    cached.titleId === titleId &&
    cached.name === name
  ) {
    return cached
  }
  // the record titleRecord (view.ts) makes for such a session, cut around its instants
  const richPresence = options.level === 'all' ? activity.location : undefined
  const record: Record<string, unknown> = {
    id: titleId,
    name,
    lastModified: '\u0000',
    timestamp: '\u0001',
    placement: 'full',
    state: 'active',
  }
  if (richPresence !== undefined && richPresence !== '') record.activity = { richPresence }
  const text = JSON.stringify(record)
  const made: PlatformTitle = {
    level: options.level,
    titleId,
    name,
    head: Buffer.from(text.slice(0, text.indexOf(LAST_MODIFIED_MARK) + 16), 'utf8'),
    tail: Buffer.concat([
      SEED_TAIL,
      Buffer.from(text.slice(text.indexOf(TIMESTAMP_MARK) + 20), 'utf8'),
      TITLES_CLOSE,
    ]),
    leads: new Map(),
  }
  if (Object.isFrozen(activity)) platformTitles.set(activity, made)
  return made
}

/** `","state":"Online","devices":[{"type":<type>,"titles":[` and the title's head. */
function leadOf(title: PlatformTitle, deviceType: string): Buffer {
  let lead = title.leads.get(deviceType)
  if (lead === undefined) {
    lead = Buffer.concat([
      ONLINE,
      DEVICES_TYPE,
      Buffer.from(JSON.stringify(deviceType), 'utf8'),
      TITLES_OPEN,
      title.head,
    ])
    title.leads.set(deviceType, lead)
  }
  return lead
}

/** A device without titles: from the user's state to the record's end, per state and type. */
const untitled = new Map<string, Buffer>()

function untitledDevice(online: boolean, deviceType: string): Buffer {
  const key = (online ? 'y' : 'n') + deviceType
  let bytes = untitled.get(key)
  if (bytes === undefined) {
    bytes = Buffer.concat([
      online ? ONLINE : AWAY,
      DEVICES_TYPE,
      Buffer.from(JSON.stringify(deviceType), 'utf8'),
      NO_TITLES,
    ])
    if (untitled.size >= 1000) untitled.clear()
    untitled.set(key, bytes)
  }
  return bytes
}

/** Forgets the cached title parts (tests). */
export function resetBatchWriter(): void {
  platformTitles = new WeakMap()
  untitled.clear()
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
            usualInstant(session.updatedAt)))
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
      writePlainRecord(w, options, presence.userId, lastOnline, undefined, false, undefined, 0)
    } else {
      writePlainRecord(
        w,
        options,
        presence.userId,
        lastOnline,
        session.deviceType,
        session.activity.kind !== 'online',
        presence.locationHidden ? undefined : session.activity,
        session.updatedAt,
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
  if (
    (options.deviceTypes !== undefined && options.deviceTypes.size > 0) ||
    (options.titleIds !== undefined && options.titleIds.size > 0) ||
    !isDigits(summary.userId)
  ) {
    return false
  }
  const lastOnline = summary.lastOnline
  if (summary.sessions === 0) return lastOnline === undefined || usualInstant(lastOnline)
  const level = options.level
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
 * writeBatch's bytes from summaries (service.lookupSummaries): the users for which
 * plainSummary holds are written from their summary, the others from `full`, their full
 * presences (service.lookup of exactly those users, in the same order). The same bytes as
 * writeBatch of the full presences of every user.
 */
export function writeSummaryBatch(
  summaries: readonly PresenceSummary[],
  full: readonly VisiblePresence[],
  options: XboxViewOptions,
  onlineOnly: boolean,
): Buffer {
  const w = new ByteWriter(lastSize + (lastSize >> 3))
  let next = 0
  w.byte(0x5b)
  let first = true
  for (let i = 0; i < summaries.length; i++) {
    const summary = summaries[i]!
    if (!plainSummary(summary, options)) {
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
      options,
      summary.userId,
      summary.lastOnline,
      online ? summary.deviceType : undefined,
      // the one session's kind: its activity's, or (location hidden) the state it makes
      activity !== undefined ? activity.kind !== 'online' : summary.state !== PresenceType.Online,
      activity,
      summary.updatedAt,
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
  options: XboxViewOptions,
  userId: string,
  lastOnline: number | undefined,
  deviceType: string | undefined,
  inGame: boolean,
  activity: Activity | undefined,
  updatedAt: number,
): void {
  w.raw(XUID_OPEN)
  w.ascii(userId)
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
  const level = options.level
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
  const title = platformTitle(activity, options)
  w.raw(leadOf(title, deviceType))
  // lastModified and timestamp are the same instant: its digits are worked out once
  const instant = w.at
  w.iso(updatedAt, 24)
  w.raw(TIMESTAMP_VALUE)
  w.again(instant, 23)
  w.raw(title.tail)
}
