import { parseInt64Id, parseUserId, type UserId } from '../../core/user-id.js'
import { badRequest, messages } from './errors.js'

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
    if (Array.isArray(value)) values.push(...(value as unknown[]))
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
    const id = parseUserId(typeof value === 'string' ? value.trim() : value)
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

/**
 * The common JSON body `{"userIds":[1,2,…]}` read in one pass over the text, without JSON.parse
 * or an object per id: distinct ids in first-occurrence order, as parseUsersRequest would give
 * them. Only 1 to MAX_USER_IDS ids of at most 15 digits (exact as JSON numbers), JSON
 * whitespace anywhere; undefined for anything else (another member, strings, an error), which
 * then takes the general path and its errors.
 */
export function parseUsersJson(text: string): UserId[] | undefined {
  const n = text.length
  let i = skipSpace(text, 0)
  if (text.charCodeAt(i) !== 0x7b /* { */) return undefined
  i = skipSpace(text, i + 1)
  if (!text.startsWith('"userIds"', i)) return undefined
  i = skipSpace(text, i + 9)
  if (text.charCodeAt(i) !== 0x3a /* : */) return undefined
  i = skipSpace(text, i + 1)
  if (text.charCodeAt(i) !== 0x5b /* [ */) return undefined
  i = skipSpace(text, i + 1)
  const ids: UserId[] = []
  let count = 0
  for (;;) {
    const start = i
    const first = text.charCodeAt(i)
    // NaN past the end fails these tests too
    if (!(first >= 0x31 && first <= 0x39)) return undefined
    let value = first - 0x30
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (!(c >= 0x30 && c <= 0x39)) break
      value = value * 10 + (c - 0x30)
      i++
    }
    if (i - start > 15 || ++count > MAX_USER_IDS) return undefined
    // duplicates found by value (exact below 10^15): comparing the sliced strings was 3 % of a
    // 50-id read
    if (!seenBefore(value, ids.length)) {
      seenValues[ids.length] = value
      ids.push(text.slice(start, i) as UserId)
    }
    i = skipSpace(text, i)
    const c = text.charCodeAt(i)
    i = skipSpace(text, i + 1)
    if (c === 0x5d /* ] */) break
    if (c !== 0x2c /* , */) return undefined
  }
  if (text.charCodeAt(i) !== 0x7d /* } */) return undefined
  return skipSpace(text, i + 1) === n ? ids : undefined
}

/** parseUsersJson's distinct ids so far, as numbers (at most MAX_USER_IDS of them). */
const seenValues = new Float64Array(MAX_USER_IDS)

function seenBefore(value: number, count: number): boolean {
  for (let k = 0; k < count; k++) if (seenValues[k] === value) return true
  return false
}

/** The index of the first character at or after `i` that is not JSON whitespace. */
function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i)
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const PLATFORM = /^[A-Za-z0-9._-]{1,32}$/
const MAX_LOCATION = 200

function single(body: Body, key: string): unknown {
  const value = body[key]
  if (Array.isArray(value) && Object.getPrototypeOf(body) === null) {
    throw badRequest(`${key} was given more than once.`)
  }
  return value
}

function optionalString(body: Body, key: string, max: number): string | undefined {
  const value = single(body, key)
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

  const location = optionalString(object, 'location', MAX_LOCATION)

  const rawPlace = single(object, 'placeId')
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

  const gameId = optionalString(object, 'gameId', 36)
  if (gameId !== undefined && !UUID.test(gameId)) {
    throw badRequest(`gameId ${describe(gameId)} is not a uuid.`)
  }
  if (gameId !== undefined && placeId === undefined) {
    throw badRequest('gameId is only meaningful with a placeId.')
  }

  const rawDisconnect = single(object, 'disconnect')
  let disconnect: boolean
  if (rawDisconnect === undefined || rawDisconnect === null) disconnect = false
  else if (typeof rawDisconnect === 'boolean') disconnect = rawDisconnect
  else if (rawDisconnect === 'true' || rawDisconnect === 'True') disconnect = true
  else if (rawDisconnect === 'false' || rawDisconnect === 'False') disconnect = false
  else throw badRequest(`disconnect must be true or false, got ${describe(rawDisconnect)}.`)

  const platform = optionalString(object, 'platform', 32)
  if (platform !== undefined && !PLATFORM.test(platform)) {
    throw badRequest(
      `platform ${describe(platform)} must be 1-32 letters, digits, '.', '_' or '-'.`,
    )
  }

  return { location, placeId, gameId: gameId?.toLowerCase(), disconnect, platform }
}

/**
 * Known platforms, by lower-cased name → canonical name and Xbox-style device type. A Map: the
 * name is the client's, and a plain object would answer `__proto__` or `constructor` with what
 * it inherits.
 */
const platforms = new Map<string, { name: string; deviceType: string }>([
  ['ios', { name: 'iOS', deviceType: 'iOS' }],
  ['android', { name: 'Android', deviceType: 'Android' }],
  ['xbox', { name: 'XboxOne', deviceType: 'XboxOne' }],
  ['xboxone', { name: 'XboxOne', deviceType: 'XboxOne' }],
  ['scarlett', { name: 'Scarlett', deviceType: 'Scarlett' }],
  ['studio', { name: 'Studio', deviceType: 'PC' }],
  ['pc', { name: 'PC', deviceType: 'PC' }],
  ['windows', { name: 'PC', deviceType: 'PC' }],
  ['mac', { name: 'Mac', deviceType: 'PC' }],
  ['web', { name: 'Web', deviceType: 'Web' }],
])

export interface Device {
  /** Names the session: `app:<platform>`. One session per platform and user. */
  platform: string
  deviceType: string
}

/**
 * The device a heartbeat stands for: the body's `platform` if given; else `Studio` when the
 * location says so (a studio runs beside the user's other apps); else from the User-Agent.
 */
export function deviceOf(request: RegisterRequest, userAgent: string | undefined): Device {
  const given =
    request.platform ?? (isStudio(request.location) ? 'studio' : platformOfAgent(userAgent))
  const known = platforms.get(given.toLowerCase())
  return known
    ? { platform: known.name, deviceType: known.deviceType }
    : { platform: given, deviceType: 'Web' }
}

export function isStudio(location: string | undefined): boolean {
  return location !== undefined && location.trim().toLowerCase() === 'studio'
}

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
