import { canonicalGameId } from '../../core/game-id.js'
import { parseInt64Id, parseUserId, type UserId } from '../../core/user-id.js'
import { badRequest, messages } from './errors.js'
import { byteAt, holdsAt, skipSpace } from '../shared/json-bytes.js'

/** Roblox refuses more ids than this per POST /v1/presence/users. */
export const MAX_USER_IDS = 50

/*
 * Bodies are checked here, strictly, rather than by the shared Ajv: its `coerceTypes` would
 * turn `true` into user id 1 and `null` into 0. The same functions take JSON bodies (ids as
 * numbers, or as strings when beyond 2^53) and form bodies (every value a string, repeated keys
 * as arrays, `userIds[]=` and `userIds[0]=` spellings).
 */

type Body = Record<string, unknown>

function asObject(body: unknown): Body {
  if (body === undefined) throw badRequest('The request body is required.')
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object.')
  }
  return body as Body
}

/** `key`, `key[]` and `key[N]` members of a body, merged in order (form spellings of a list). */
function field(body: Body, key: string): unknown {
  const values: unknown[] = []
  let list = false
  for (const [name, value] of Object.entries(body)) {
    const bracketed =
      name !== key && name.startsWith(`${key}[`) && /^\[\d*\]$/.test(name.slice(key.length))
    if (name !== key && !bracketed) continue
    // one push per element: a spread of a list of 300,000 ids (within the body limit) overflows the stack
    if (Array.isArray(value)) for (const element of value as unknown[]) values.push(element)
    else values.push(value)
    list ||= bracketed || Array.isArray(value)
  }
  if (values.length === 0) return undefined
  return list || values.length > 1 ? values : values[0]
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)
  if (value === null) return 'null'
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

/**
 * `{userIds: [...]}` → distinct ids in first-occurrence order.
 * A single form value (`userIds=1`) counts as a one-id list.
 */
export function parseUsersRequest(body: unknown): UserId[] {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest(
      `${messages.invalidUserIds} The body must be an object with a userIds array.`,
      'USER_IDS_INVALID',
    )
  }
  let raw = field(body as Body, 'userIds')
  if (typeof raw === 'string' && Object.getPrototypeOf(body) === null) raw = [raw]
  if (!Array.isArray(raw) || raw.length === 0) {
    throw badRequest(
      `${messages.invalidUserIds} userIds must be a non-empty array of user ids.`,
      'USER_IDS_INVALID',
    )
  }
  if (raw.length > MAX_USER_IDS) throw badRequest(messages.tooManyUserIds, 'TOO_MANY_USER_IDS')
  const seen = new Set<UserId>()
  const ids: UserId[] = []
  for (const value of raw as unknown[]) {
    const id = parseUserId(value)
    if (id === undefined) {
      throw badRequest(
        `${messages.invalidUserIds} ${describe(value)} is not a positive 64-bit integer.`,
        'USER_IDS_INVALID',
      )
    }
    if (!seen.has(id)) {
      seen.add(id)
      ids.push(id)
    }
  }
  return ids
}

/** parseUsersJson's ids, with the value of each as the parser read it. */
export interface ParsedUserIds {
  ids: UserId[]
  /**
   * `ids[i]` as a number, when every id has at most 15 digits (exact), for the store to find
   * them by without reading their digits again (PresenceStore.summarize); undefined when one has
   * more (as a number it could be rounded: the store reads its digits).
   */
  values: number[] | undefined
}

/** `"userIds"`, the one member parseUsersJson reads. */
const USER_IDS_MEMBER = Buffer.from('"userIds"', 'latin1')
/** The largest int64's digits: a 19-digit id is compared with them. */
const MAX_INT64_DIGITS = Buffer.from('9223372036854775807', 'latin1')

/**
 * The common JSON body `{"userIds":[1,2,…]}` read in one pass over its bytes, without decoding
 * it as utf-8, JSON.parse or an object per id: distinct ids in first-occurrence order, as
 * parseUsersRequest would give them for the body decoded. Only 1 to MAX_USER_IDS ids written as
 * integers up to the largest int64 (an id of 16 to 19 digits is kept as its digits, never read
 * as a number), JSON whitespace anywhere; undefined for anything else (another member, strings,
 * escapes, a byte-order mark, any other byte outside that grammar, an error), which then takes
 * the general path and its errors. Measured (callgrind, 1M users, 50 random ids): the parse
 * 23.1k -> 20.9k instructions a read, and the body's utf-8 decode gone, against the same loop
 * over the decoded text (issue 19).
 *
 * @example
 * parseUsersJson(Buffer.from('{"userIds":[3,1,3]}')) // { ids: ['3', '1'], values: [3, 1] }
 */
export function parseUsersJson(body: Buffer): ParsedUserIds | undefined {
  const n = body.length
  let i = skipSpace(body, 0, n)
  if (byteAt(body, i, n) !== 0x7b /* { */) return undefined
  i = skipSpace(body, i + 1, n)
  if (!holdsAt(body, i, n, USER_IDS_MEMBER)) return undefined
  i = skipSpace(body, i + USER_IDS_MEMBER.length, n)
  if (byteAt(body, i, n) !== 0x3a /* : */) return undefined
  i = skipSpace(body, i + 1, n)
  if (byteAt(body, i, n) !== 0x5b /* [ */) return undefined
  i = skipSpace(body, i + 1, n)
  // the ids are slices of the body as latin1 text: one copy of its bytes into a string, where
  // decoding it as utf-8 was a pass over them, and reading a string's characters cost more than
  // its bytes; a string made per id from its digits (String.fromCharCode) was ~7k instructions
  // a 50-id parse more (callgrind, issue 19)
  const text = body.toString('latin1')
  let distinct = 0
  let count = 0
  /** Distinct ids of more than 15 digits: when there are any, no values are given. */
  let long = 0
  // a new array per parse, filled in place and copied out once (`slice`): pushing onto a new
  // array was a builtin call per id (about 130 instructions each, callgrind), and storing each
  // new id string into a long-lived array took the write barrier's slow path (about 40 each)
  const seenIds = new Array<UserId>(MAX_USER_IDS)
  newParse()
  for (;;) {
    const start = i
    const first = byteAt(body, i, n)
    if (!(first >= 0x31 && first <= 0x39)) return undefined
    let value = first - 0x30
    i++
    while (i < n) {
      const c = body[i]!
      if (!(c >= 0x30 && c <= 0x39)) break
      value = value * 10 + (c - 0x30)
      i++
    }
    if (++count > MAX_USER_IDS) return undefined
    const digits = i - start
    if (digits <= 15) {
      // duplicates found by value (exact below 10^15): comparing the id strings was 3 % of a
      // 50-id read
      if (firstSeen(value)) {
        seenValues[distinct] = value
        seenIds[distinct++] = text.slice(start, i) as UserId
      }
    } else {
      // beyond 15 digits `value` may be rounded: the id is its digits, compared as text (no
      // shorter id can equal it: none has a leading zero)
      if (!isInt64(body, start, digits)) return undefined
      const id = text.slice(start, i) as UserId
      if (!seenIds.includes(id)) {
        seenIds[distinct++] = id
        long++
      }
    }
    // `,` then the next id, as most clients write a list: no whitespace to skip (the two skips
    // and their checks were ~2.4k instructions a 50-id parse, callgrind in process)
    if (i + 1 < n && body[i] === 0x2c /* , */ && body[i + 1]! > 0x20) {
      i++
      continue
    }
    i = skipSpace(body, i, n)
    const c = byteAt(body, i, n)
    i = skipSpace(body, i + 1, n)
    if (c === 0x5d /* ] */) break
    if (c !== 0x2c /* , */) return undefined
  }
  if (byteAt(body, i, n) !== 0x7d /* } */) return undefined
  if (skipSpace(body, i + 1, n) !== n) return undefined
  return {
    ids: seenIds.slice(0, distinct),
    values: long === 0 ? seenValues.slice(0, distinct) : undefined,
  }
}

/** Whether the `digits` digits at `start` (no leading zero) are at most the largest int64. */
function isInt64(body: Uint8Array, start: number, digits: number): boolean {
  if (digits !== MAX_INT64_DIGITS.length) return digits < MAX_INT64_DIGITS.length
  for (let k = 0; k < digits; k++) {
    const d = body[start + k]!
    const max = MAX_INT64_DIGITS[k]!
    if (d !== max) return d < max
  }
  return true
}

/**
 * The value of each distinct id so far: an array of doubles from the start (0.5), so its copies
 * are too (doubles are stored without a write barrier: this one may be long-lived). A plain
 * array, not a Float64Array, whose copy would take a backing store outside the heap.
 */
const seenValues: number[] = new Array<number>(MAX_USER_IDS).fill(0.5)

/*
 * parseUsersJson's ids so far, as numbers (exact below 10^15), in a small open-addressing set:
 * a slot is in the current parse's set when its stamp is the parse's. Measured (callgrind):
 * comparing each id with every one before it was about 10,000 instructions of a 50-id parse.
 */
const SLOTS = 128 // a power of two, at least twice MAX_USER_IDS
const slotValues = new Float64Array(SLOTS)
const slotStamps = new Int32Array(SLOTS)
let stamp = 0

/** Empties the set (in one step: a new stamp). */
function newParse(): void {
  if (++stamp === 0x7fffffff) {
    slotStamps.fill(0)
    stamp = 1
  }
}

/** Adds `value` to the set; false if it was there already. */
function firstSeen(value: number): boolean {
  // ToInt32 keeps the low 32 bits of the integer value
  let slot = Math.imul(value | 0, 0x9e3779b1) >>> 25
  for (;;) {
    if (slotStamps[slot] !== stamp) {
      slotStamps[slot] = stamp
      slotValues[slot] = value
      return true
    }
    if (slotValues[slot] === value) return false
    slot = (slot + 1) & (SLOTS - 1)
  }
}

export interface RegisterRequest {
  /** The client's free text, e.g. `Home`, `Game`, `Studio`; the place name overrides it. */
  location: string | undefined
  placeId: string | undefined
  /** Our extension: the game server instance (uuid). */
  gameId: string | undefined
  disconnect: boolean
  /** Our extension: the device or app this session stands for. */
  platform: string | undefined
}

const PLATFORM = /^[A-Za-z0-9._-]{1,32}$/
const MAX_LOCATION = 200

/**
 * `value`, body's member `key` read by the caller by name: a read by a key variable (`body[key]`)
 * was a megamorphic keyed load per member of each heartbeat (~0.5k instructions, issue 19).
 */
function single(body: Body, key: string, value: unknown): unknown {
  if (Array.isArray(value) && Object.getPrototypeOf(body) === null) {
    throw badRequest(`${key} was given more than once.`)
  }
  return value
}

function optionalString(body: Body, key: string, member: unknown, max: number): string | undefined {
  const value = single(body, key, member)
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string')
    throw badRequest(`${key} must be a string, got ${describe(value)}.`)
  if (value.length > max) throw badRequest(`${key} must be at most ${max} characters.`)
  return value
}

/**
 * `{location, placeId, disconnect}` (+ `gameId`, `platform`). An absent body is an Online
 * heartbeat. placeId null or 0 (what typed clients send outside a game) means no place.
 */
export function parseRegisterRequest(body: unknown): RegisterRequest {
  const object = body === undefined ? {} : asObject(body)

  const location = optionalString(object, 'location', object.location, MAX_LOCATION)

  const rawPlace = single(object, 'placeId', object.placeId)
  let placeId: string | undefined
  if (
    rawPlace !== undefined &&
    rawPlace !== null &&
    rawPlace !== 0 &&
    rawPlace !== '0' &&
    rawPlace !== ''
  ) {
    placeId =
      typeof rawPlace === 'number' || typeof rawPlace === 'string'
        ? parseInt64Id(rawPlace)
        : undefined
    if (placeId === undefined) {
      throw badRequest(`placeId ${describe(rawPlace)} is not a positive 64-bit integer.`)
    }
  }

  const rawGameId = optionalString(object, 'gameId', object.gameId, 36)
  const gameId = rawGameId === undefined ? undefined : canonicalGameId(rawGameId)
  if (rawGameId !== undefined && gameId === undefined) {
    throw badRequest(`gameId ${describe(rawGameId)} is not a uuid.`)
  }
  if (gameId !== undefined && placeId === undefined) {
    throw badRequest('gameId is only meaningful with a placeId.')
  }

  const rawDisconnect = single(object, 'disconnect', object.disconnect)
  let disconnect: boolean
  if (rawDisconnect === undefined || rawDisconnect === null) disconnect = false
  else if (typeof rawDisconnect === 'boolean') disconnect = rawDisconnect
  else if (rawDisconnect === 'true' || rawDisconnect === 'True') disconnect = true
  else if (rawDisconnect === 'false' || rawDisconnect === 'False') disconnect = false
  else throw badRequest(`disconnect must be true or false, got ${describe(rawDisconnect)}.`)

  const platform = optionalString(object, 'platform', object.platform, 32)
  if (platform !== undefined && !PLATFORM.test(platform)) {
    throw badRequest(
      `platform ${describe(platform)} must be 1-32 letters, digits, '.', '_' or '-'.`,
    )
  }

  return { location, placeId, gameId, disconnect, platform }
}

/** register-app-presence's members, as quickRegisterBody reads them (undefined: absent). */
interface RegisterMembers {
  location: unknown
  placeId: unknown
  gameId: unknown
  disconnect: unknown
  platform: unknown
}

/**
 * A register-app-presence JSON body read by hand when it is written as clients write one:
 * `{"location":"Home","placeId":1818}`, no whitespace, each member one of the five the route
 * reads and given once, each value a string without escapes, an integer of at most 15 digits,
 * `true` or `false`. parseRegisterRequest takes the members it answers as it takes what
 * parseJsonBody would answer for the same text (JSON.parse's values: an absent member and an
 * undefined one read alike). Anything else answers undefined, and the caller parses the text
 * as before (errors included). Measured: JSON.parse of such a body was ~3k instructions of a
 * heartbeat (a call into V8's runtime), the object it made keyed by its text (issue 19).
 */
export function quickRegisterBody(text: string): RegisterMembers | undefined {
  const n = text.length
  if (n < 2 || text.charCodeAt(0) !== 0x7b || text.charCodeAt(n - 1) !== 0x7d) return undefined
  const members: RegisterMembers = {
    location: undefined,
    placeId: undefined,
    gameId: undefined,
    disconnect: undefined,
    platform: undefined,
  }
  if (n === 2) return members
  let i = 1
  for (;;) {
    // "name":
    if (text.charCodeAt(i) !== 0x22) return undefined
    const nameEnd = text.indexOf('"', i + 1)
    if (nameEnd < 0 || text.charCodeAt(nameEnd + 1) !== 0x3a) return undefined
    const name = text.slice(i + 1, nameEnd)
    i = nameEnd + 2
    // the value, to the `,` or the closing `}`
    let value: unknown
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      const start = i + 1
      let j = start
      for (; j < n; j++) {
        const d = text.charCodeAt(j)
        if (d === 0x22) break
        if (d < 0x20 || d === 0x5c) return undefined
      }
      if (j === n) return undefined
      value = text.slice(start, j)
      i = j + 1
    } else if (c >= 0x31 && c <= 0x39) {
      // summed as read: 15 digits at most are exact as a number (and not rewritten by
      // parseJsonLossless), the number JSON.parse gives, without a slice and V8's conversion
      let j = i + 1
      let number = c - 0x30
      for (; j < n; j++) {
        const d = text.charCodeAt(j) - 0x30
        if (d < 0 || d > 9) break
        number = number * 10 + d
      }
      if (j - i > 15) return undefined
      value = number
      i = j
    } else if (text.startsWith('true', i)) {
      value = true
      i += 4
    } else if (text.startsWith('false', i)) {
      value = false
      i += 5
    } else return undefined
    // each member once: JSON.parse keeps the last of repeated ones
    if (name === 'location' && members.location === undefined) members.location = value
    else if (name === 'placeId' && members.placeId === undefined) members.placeId = value
    else if (name === 'gameId' && members.gameId === undefined) members.gameId = value
    else if (name === 'disconnect' && members.disconnect === undefined) members.disconnect = value
    else if (name === 'platform' && members.platform === undefined) members.platform = value
    else return undefined
    const next = text.charCodeAt(i)
    if (next === 0x7d) return i === n - 1 ? members : undefined
    if (next !== 0x2c) return undefined
    i++
  }
}

/**
 * Known platforms, by lower-cased name → canonical name and Xbox-style device type. A Map: the
 * name is the client's, and a plain object would answer `__proto__` or `constructor` with what
 * it inherits.
 */
/** Known platforms by their lower-case spelling: each one's Device, made once (frozen). */
const platforms = new Map<string, Readonly<Device>>(
  (
    [
      ['ios', 'iOS', 'iOS'],
      ['android', 'Android', 'Android'],
      ['xbox', 'XboxOne', 'XboxOne'],
      ['xboxone', 'XboxOne', 'XboxOne'],
      ['scarlett', 'Scarlett', 'Scarlett'],
      ['studio', 'Studio', 'PC'],
      ['pc', 'PC', 'PC'],
      ['windows', 'PC', 'PC'],
      ['mac', 'Mac', 'PC'],
      ['web', 'Web', 'Web'],
    ] as const
  ).map(([spelling, platform, deviceType]) => [
    spelling,
    Object.freeze({ platform, deviceType, key: `app:${platform}` }),
  ]),
)

export interface Device {
  /** Names the session: `app:<platform>`. One session per platform and user. */
  platform: string
  deviceType: string
  /** The session's key, `app:<platform>`. */
  key: string
}

/**
 * The device a heartbeat stands for: the body's `platform` if given; else `Studio` when the
 * location says so (a studio runs beside the user's other apps); else from the User-Agent. A
 * known platform's Device is shared (frozen), with its key made once: a heartbeat made a
 * device and a key string per request, then hashed the key (issue 19).
 */
export function deviceOf(request: RegisterRequest, userAgent: string | undefined): Device {
  const given =
    request.platform ?? (isStudio(request.location) ? 'studio' : platformOfAgent(userAgent))
  // a name given as the table has it (lower case: 'web' unless said otherwise) is found as it
  // is, without lower-casing it first
  return (
    platforms.get(given) ??
    platforms.get(given.toLowerCase()) ?? {
      platform: given,
      deviceType: 'Web',
      key: `app:${given}`,
    }
  )
}

/**
 * Whether a location names Roblox Studio. A text shorter than `studio` cannot trim nor
 * lower-case to it (no character lower-cases to more than one of its letters): answered
 * without the two strings `trim` and `toLowerCase` made for every heartbeat's "Home" or "Game".
 */
export function isStudio(location: string | undefined): boolean {
  return (
    location !== undefined &&
    location.length >= STUDIO.length &&
    location.trim().toLowerCase() === STUDIO
  )
}

const STUDIO = 'studio'

function platformOfAgent(agent: string | undefined): string {
  if (!agent) return 'web'
  if (/RobloxStudio/i.test(agent)) return 'studio'
  if (/Xbox/i.test(agent)) return 'xboxone'
  if (/iPhone|iPad|iPod|\biOS\b/i.test(agent)) return 'ios'
  if (/Android/i.test(agent)) return 'android'
  // the desktop player (Roblox/WinInet, RobloxPlayer/…); browsers never name Roblox
  if (/Roblox/i.test(agent)) return /Mac|OSX/i.test(agent) ? 'mac' : 'pc'
  return 'web'
}
