import type { Placement, RichPresence, TitleState } from '../../core/presence.js'
import { parseTitleId, parseUserId, type UserId } from '../../core/user-id.js'
import { DEVICE_TYPE, deviceTypeKey } from './device-types.js'
import { hasUtf8Bom } from '../shared/body-text.js'
import { byteAt, holdsAt, skipSpace } from '../shared/json-bytes.js'
import { badRequest } from './errors.js'
import { xboxLevels, type XboxLevel } from './view.js'

/*
 * Xbox request bodies are validated here, by hand, rather than by the app's Ajv: it coerces a
 * scalar into a one-element array (`users: "1"`), which the Xbox API refuses. The JSON schemas
 * at the end only document the routes (OpenAPI).
 */

export const MAX_BATCH_USERS = 1100
const MAX_FILTER_ENTRIES = 100
const MAX_RICH_PRESENCE_PARAMS = 20
const MAX_TEXT = 200

export interface BatchQuery {
  users: UserId[]
  /** Compared by `deviceTypeKey`; empty: every device type. */
  deviceTypes: Set<string>
  /** Empty: every title. */
  titleIds: Set<string>
  level: XboxLevel
  onlineOnly: boolean
  /**
   * `Number(users[i])` for each user, when the parser read them and every one has at most 15
   * digits (exact): the store finds them by these without reading their digits again
   * (PresenceStore.summarize). Only parseBatchJson gives them.
   */
  values?: number[]
}

export interface TitleWrite {
  id?: string
  state?: TitleState
  placement?: Placement
  richPresence?: RichPresence
}

const placements: readonly Placement[] = ['full', 'fill', 'snapped', 'background']
const titleStates: readonly TitleState[] = ['active', 'inactive']

/** A title id is a 32-bit unsigned integer, as a number or a decimal string (one rule: core). */
export { parseTitleId }

/**
 * `?level=`: a level's name, or the same as str() of xbox-webapi-python's `PresenceLevel` enum
 * writes it (`PresenceLevel.ALL`): its get_presence_own() puts the member in httpx's params,
 * which send str(member), not its value.
 */
export function parseLevel(value: unknown): XboxLevel {
  if (value === undefined) return 'title'
  const name =
    typeof value === 'string'
      ? (/^PresenceLevel\.([A-Z]+)$/.exec(value)?.[1]?.toLowerCase() ?? value)
      : undefined
  if (name !== undefined && (xboxLevels as readonly string[]).includes(name)) {
    return name as XboxLevel
  }
  throw badRequest(`level must be one of ${xboxLevels.join(', ')}, got ${show(value)}.`)
}

/** The XUID of a path segment `xuid(<xuid>)`; `me` is the caller's and handled by the route. */
export function parseXuidSegment(segment: string): UserId | 'me' | undefined {
  if (segment === 'me') return 'me'
  const match = /^xuid\((.*)\)$/is.exec(segment)
  if (!match) return undefined
  const xuid = parseUserId(match[1])
  if (!xuid) throw invalidXuid(match[1])
  return xuid
}

export function parseBatchRequest(body: unknown): BatchQuery {
  const o = objectOf(body, 'The request body')
  for (const key of Object.keys(o)) {
    if (!['users', 'deviceTypes', 'titles', 'level', 'onlineOnly'].includes(key)) {
      throw badRequest(
        `Prohibited member ${show(key)}: a batch request has only users, deviceTypes, titles, level and onlineOnly.`,
        'PROHIBITED_MEMBER',
      )
    }
  }
  if (!Array.isArray(o.users) || o.users.length === 0) {
    throw badRequest(`users is required: an array of 1 to ${MAX_BATCH_USERS} XUIDs.`)
  }
  if (o.users.length > MAX_BATCH_USERS) {
    throw badRequest(
      `users has ${o.users.length} XUIDs; at most ${MAX_BATCH_USERS} are allowed.`,
      'TOO_MANY_USER_IDS',
    )
  }
  const users = new Set<UserId>()
  for (const raw of o.users as unknown[]) {
    const xuid = parseUserId(raw)
    if (!xuid) throw invalidXuid(raw)
    users.add(xuid)
  }
  const deviceTypes = new Set<string>()
  for (const raw of arrayOf(o.deviceTypes, 'deviceTypes')) {
    if (typeof raw !== 'string' || !DEVICE_TYPE.test(raw)) {
      throw badRequest(`deviceTypes must hold device type names, got ${show(raw)}.`)
    }
    deviceTypes.add(deviceTypeKey(raw))
  }
  const titleIds = new Set<string>()
  for (const raw of arrayOf(o.titles, 'titles')) {
    const id = parseTitleId(raw)
    if (!id) throw badRequest(`titles must hold 32-bit title ids, got ${show(raw)}.`)
    titleIds.add(id)
  }
  if (o.onlineOnly !== undefined && typeof o.onlineOnly !== 'boolean') {
    throw badRequest(`onlineOnly must be true or false, got ${show(o.onlineOnly)}.`)
  }
  return {
    users: [...users],
    deviceTypes,
    titleIds,
    level: parseLevel(o.level),
    onlineOnly: o.onlineOnly === true,
  }
}

/**
 * parseBatchJson's table of the XUIDs seen in a body, open addressing over a hash of their
 * values (a power of two at least twice MAX_BATCH_USERS): per slot 1 + the XUID's index in
 * seenIds, valid when its stamp is the body's. Measured: a Set of the 1100 strings (hashing
 * each, growing the set) was half of the parse.
 */
const SEEN_SLOTS = 4096
const seenSlots = new Int32Array(SEEN_SLOTS)
const seenStamps = new Int32Array(SEEN_SLOTS)
let seenStamp = 0
/**
 * The value of each of seenIds as its digits read (exact up to 15 digits): an array of doubles
 * from the start (0.5), so its copies are too.
 */
const seenValues: number[] = new Array<number>(MAX_BATCH_USERS).fill(0.5)

/**
 * Whether `id` (of value `value` as its digits read; exact when `short`, at most 15 digits) is
 * new among the first `distinct` of `seenIds`, and if so takes note of it at index `distinct`.
 * Two short ids are equal when their values are; a long one (inexact) is compared as text.
 */
function firstSeen(
  seenIds: readonly UserId[],
  id: string,
  value: number,
  short: boolean,
  distinct: number,
): boolean {
  const mask = SEEN_SLOTS - 1
  // ToInt32 keeps the low 32 bits of the integer value
  for (let slot = Math.imul(value | 0, 0x9e3779b1) >>> 20; ; slot = (slot + 1) & mask) {
    if (seenStamps[slot] !== seenStamp) {
      seenStamps[slot] = seenStamp
      seenSlots[slot] = distinct
      return true
    }
    const index = seenSlots[slot]!
    if (seenValues[index] === value && (short || seenIds[index] === id)) return false
  }
}

/** `"users"` and `"level"` as bytes (member names parseBatchJson knows). */
const USERS_MEMBER = Buffer.from('"users"', 'latin1')
const LEVEL_MEMBER = Buffer.from('"level"', 'latin1')

/**
 * The common batch body, `{"users":["1",…],"level":"all"}` (members in either order, `level`
 * optional, XUIDs as strings of at most 18 digits or numbers of at most 15), read in one pass
 * over its bytes (a UTF-8 byte-order mark skipped) without JSON.parse: what parseBatchRequest
 * gives for the body's text. Undefined for anything else (other members, escapes, errors, any
 * byte outside ASCII), which then takes the general path and its errors. A body read here is
 * ASCII, hence UTF-8: the text path's UTF-8 check and decoding are not needed for it. Measured
 * (issue 19): reading the decoded text char by char was ~7 % of an 1100-id batch's CPU.
 */
export function parseBatchJson(body: Buffer): BatchQuery | undefined {
  const n = body.length
  let i = skipSpace(body, hasUtf8Bom(body) ? 3 : 0, n)
  if (byteAt(body, i, n) !== 0x7b /* { */) return undefined
  let users: UserId[] | undefined
  let values: number[] | undefined
  let allShort = true
  let level: XboxLevel | undefined
  /** The body as latin1 text, made once it holds users: the XUIDs are slices of it. */
  let text = ''
  for (;;) {
    i = skipSpace(body, i + 1, n)
    if (holdsAt(body, i, n, USERS_MEMBER)) {
      if (users !== undefined) return undefined
      i = colon(body, i + 7, n)
      if (i < 0 || byteAt(body, i, n) !== 0x5b /* [ */) return undefined
      if (++seenStamp === 0x7fffffff) {
        seenStamps.fill(0)
        seenStamp = 1
      }
      // one copy of the bytes into a one-byte string, sliced per XUID (as the Roblox read's
      // parseUsersJson does)
      text = body.toString('latin1')
      // the body's distinct XUIDs, filled in place and cut to length once: pushing grew the
      // array by a builtin call now and then, and a reused (old) array took a write barrier's
      // call per XUID (callgrind, ~52 instructions each)
      const seenIds = new Array<UserId>(MAX_BATCH_USERS)
      let count = 0
      let distinct = 0
      allShort = true
      i = skipSpace(body, i + 1, n)
      for (;;) {
        const quoted = byteAt(body, i, n) === 0x22
        const start = quoted ? i + 1 : i
        let end = start
        const first = byteAt(body, end, n)
        if (!(first >= 0x31 && first <= 0x39)) return undefined
        let value = first - 0x30
        end++
        for (;;) {
          const c = byteAt(body, end, n)
          if (!(c >= 0x30 && c <= 0x39)) break
          value = value * 10 + (c - 0x30)
          end++
        }
        const length = end - start
        if (length > (quoted ? 18 : 15) || ++count > MAX_BATCH_USERS) return undefined
        const short = length <= 15
        if (!short) allShort = false
        const id = text.slice(start, end) as UserId
        if (firstSeen(seenIds, id, value, short, distinct)) {
          seenIds[distinct] = id
          seenValues[distinct++] = value
        }
        if (quoted) {
          if (byteAt(body, end, n) !== 0x22) return undefined
          end++
        }
        // `,` then the next XUID, as most clients write a list: no whitespace to skip
        if (end + 1 < n && body[end] === 0x2c /* , */ && body[end + 1]! > 0x20) {
          i = end + 1
          continue
        }
        i = skipSpace(body, end, n)
        const c = byteAt(body, i, n)
        i = skipSpace(body, i + 1, n)
        if (c === 0x5d /* ] */) break
        if (c !== 0x2c /* , */) return undefined
      }
      seenIds.length = distinct
      users = seenIds
      values = seenValues.slice(0, distinct)
    } else if (holdsAt(body, i, n, LEVEL_MEMBER)) {
      if (level !== undefined) return undefined
      i = colon(body, i + 7, n)
      if (i < 0 || byteAt(body, i, n) !== 0x22) return undefined
      const end = body.indexOf(0x22, i + 1)
      if (end < 0) return undefined
      const found = levelAt(body, i + 1, end)
      if (found === undefined) return undefined
      level = found
      i = skipSpace(body, end + 1, n)
    } else {
      return undefined
    }
    const c = byteAt(body, i, n)
    if (c === 0x7d /* } */) break
    if (c !== 0x2c /* , */) return undefined
  }
  if (users === undefined || skipSpace(body, i + 1, n) !== n) return undefined
  return {
    users,
    deviceTypes: new Set(),
    titleIds: new Set(),
    level: level ?? 'title',
    onlineOnly: false,
    values: allShort ? values : undefined,
  }
}

/** The level named by the bytes from `start` to `end`, or undefined. */
function levelAt(body: Uint8Array, start: number, end: number): XboxLevel | undefined {
  for (const level of xboxLevels) {
    if (level.length !== end - start) continue
    let k = 0
    while (k < level.length && body[start + k] === level.charCodeAt(k)) k++
    if (k === level.length) return level
  }
  return undefined
}

/** Past the `:` after a member name at `i` (and its whitespace), or -1. */
function colon(body: Uint8Array, i: number, n: number): number {
  i = skipSpace(body, i, n)
  return byteAt(body, i, n) === 0x3a ? skipSpace(body, i + 1, n) : -1
}

/**
 * A TitleRequest. Only members present are returned: the write keeps the others as they were
 * (per the Xbox documentation), defaulting to state `active` and placement `full`.
 */
export function parseTitleRequest(body: unknown): TitleWrite {
  const o = objectOf(body, 'The request body')
  prohibitOthers(o, ['id', 'state', 'placement', 'activity'], 'a TitleRequest')
  const write: TitleWrite = {}
  if (o.id !== undefined) {
    const id = parseTitleId(o.id)
    if (!id) throw badRequest(`id must be a 32-bit title id, got ${show(o.id)}.`)
    write.id = id
  }
  if (o.state !== undefined) write.state = oneOf(o.state, titleStates, 'state')
  if (o.placement !== undefined) write.placement = oneOf(o.placement, placements, 'placement')
  if (o.activity !== undefined) {
    const activity = objectOf(o.activity, 'activity')
    prohibitOthers(activity, ['richPresence', 'media'], 'activity')
    if (activity.media !== undefined) objectOf(activity.media, 'activity.media')
    if (activity.richPresence !== undefined) {
      write.richPresence = parseRichPresence(activity.richPresence)
    }
  }
  return write
}

function parseRichPresence(value: unknown): RichPresence {
  const o = objectOf(value, 'activity.richPresence')
  prohibitOthers(o, ['id', 'scid', 'params'], 'activity.richPresence')
  const id = textOf(o.id, 'activity.richPresence.id')
  if (id === undefined) throw badRequest('activity.richPresence.id is required.')
  const scid = textOf(o.scid, 'activity.richPresence.scid')
  const params: string[] = []
  const rawParams = arrayOf(o.params, 'activity.richPresence.params')
  if (rawParams.length > MAX_RICH_PRESENCE_PARAMS) {
    throw badRequest(`activity.richPresence.params holds at most ${MAX_RICH_PRESENCE_PARAMS}.`)
  }
  for (const raw of rawParams) params.push(textOf(raw, 'activity.richPresence.params[]') ?? '')
  return scid === undefined ? { id, params } : { id, scid, params }
}

export function parseStateRequest(body: unknown): 'Active' | 'Cloaked' {
  const o = objectOf(body, 'The request body')
  prohibitOthers(o, ['state'], 'a state request')
  if (o.state === 'Active' || o.state === 'Cloaked') return o.state
  throw badRequest(`state must be "Active" or "Cloaked", got ${show(o.state)}.`)
}

function invalidXuid(value: unknown) {
  return badRequest(
    `Invalid XUID ${show(value)}: XUIDs are positive 64-bit integers.`,
    'XUID_INVALID',
  )
}

function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(`${what} must be a JSON object.`)
  }
  return value as Record<string, unknown>
}

function arrayOf(value: unknown, what: string): unknown[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw badRequest(`${what} must be an array.`)
  if (value.length > MAX_FILTER_ENTRIES) {
    throw badRequest(`${what} holds at most ${MAX_FILTER_ENTRIES} entries.`)
  }
  return value
}

function textOf(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > MAX_TEXT) {
    throw badRequest(`${what} must be a string of at most ${MAX_TEXT} characters.`)
  }
  return value
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw badRequest(`${what} must be one of ${allowed.join(', ')}, got ${show(value)}.`)
}

function prohibitOthers(o: Record<string, unknown>, allowed: readonly string[], what: string) {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) {
      throw badRequest(
        `Prohibited member ${show(key)} in ${what}; allowed: ${allowed.join(', ')}.`,
        'PROHIBITED_MEMBER',
      )
    }
  }
}

function show(value: unknown): string {
  // String() of an object or array says "[object Object]" or its items: name its kind instead
  if (value !== null && typeof value === 'object')
    return Array.isArray(value) ? 'an array' : 'an object'
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

// OpenAPI documentation of the routes (validation is above).
const id = { type: ['integer', 'string'] }

export const batchBodySchema = {
  type: 'object',
  required: ['users'],
  additionalProperties: false,
  properties: {
    users: { type: 'array', minItems: 1, maxItems: MAX_BATCH_USERS, items: id },
    deviceTypes: { type: 'array', items: { type: 'string' } },
    titles: { type: 'array', items: id },
    level: { type: 'string', enum: xboxLevels },
    onlineOnly: { type: 'boolean' },
  },
}

export const titleRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id,
    state: { type: 'string', enum: titleStates },
    placement: { type: 'string', enum: placements },
    activity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        richPresence: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            scid: { type: 'string' },
            params: { type: 'array', items: { type: 'string' } },
          },
        },
        media: { type: 'object' },
      },
    },
  },
}

export const stateRequestSchema = {
  type: 'object',
  required: ['state'],
  additionalProperties: false,
  properties: { state: { type: 'string', enum: ['Active', 'Cloaked'] } },
}

export const levelQuerySchema = {
  type: 'object',
  properties: { level: { type: 'string', enum: xboxLevels } },
}
