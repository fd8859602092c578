import type { ErrorCode } from '../../core/errors.js'
import type { Activity, ActivityKind } from '../../core/presence.js'
import { canonicalGameId } from '../../core/game-id.js'
import { parseInt64Id, parseUserId, type UserId } from '../../core/user-id.js'
import { parseJsonLossless } from '../shared/lossless-json.js'
import { ANSWERED_FRAMES, type AnsweredFrame } from './errors.js'
import { tooManyIds } from './limits.js'

/** What a client may send over the WebSocket (docs/reference/native.md). */
export type ClientFrame =
  | { type: 'subscribe'; ids: UserId[]; positions: boolean }
  | { type: 'unsubscribe'; ids: UserId[] }
  | { type: 'heartbeat'; deviceType: string; activity: Activity }
  | {
      type: 'resume'
      /** The stream's token and last seq: resumes it on the node that holds it. */
      token: string | undefined
      since: number
      /** Per user, the `pos` of the last frame about it: resumes on any node. */
      positions: Array<[UserId, string]> | undefined
    }

/** Why a frame was refused; sent back as `{"type":"error",code,message}`. */
export interface FrameError {
  /** `maxIds`: the limit a TOO_MANY_IDS refusal tells (tooManyIds). */
  error: { code: ErrorCode; message: string; maxIds?: number }
  /** The frame's type, when it was a JSON object of a known type: the error's `for`. */
  answered?: AnsweredFrame
}

const ANSWERED: ReadonlySet<unknown> = new Set<AnsweredFrame>(ANSWERED_FRAMES)

const KINDS = new Set<ActivityKind>(['online', 'inGame', 'inStudio'])
const ACTIVITY_KEYS = new Set([
  'kind',
  'placeId',
  'rootPlaceId',
  'universeId',
  'gameId',
  'location',
])
const DEVICE_TYPE = /^[A-Za-z0-9]{1,32}$/
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/
// 22 characters: a token of an earlier version, which reads as not ours (a reset, not an error)
const POSITION = /^(?:[A-Za-z0-9_-]{22}|[A-Za-z0-9_-]{32})$/

function fail(code: ErrorCode, message: string): FrameError {
  return { error: { code, message } }
}

/**
 * Parses one client frame. Never throws: anything malformed comes back as a FrameError naming
 * the problem, so the connection can answer it and stay open.
 *
 * @example parseClientFrame('{"type":"subscribe","ids":["1",2]}', 1000)
 * // { type: 'subscribe', ids: ['1', '2'] }
 */
export function parseClientFrame(text: string, maxIds: number): ClientFrame | FrameError {
  let value: unknown
  try {
    value = parseJsonLossless(text)
  } catch {
    return fail('FRAME_INVALID', 'The frame is not valid JSON.')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('FRAME_INVALID', 'A frame is a JSON object with a "type".')
  }
  const frame = value as Record<string, unknown>
  const parsed = parseFrameObject(frame, maxIds)
  // a client waiting on several frames learns which one was refused, as for later refusals
  if (isFrameError(parsed) && ANSWERED.has(frame.type)) {
    return { ...parsed, answered: frame.type as AnsweredFrame }
  }
  return parsed
}

function parseFrameObject(
  frame: Record<string, unknown>,
  maxIds: number,
): ClientFrame | FrameError {
  switch (frame.type) {
    case 'subscribe': {
      const parsed = parseIds(frame.type, frame.ids ?? frame.userIds, maxIds)
      if (isFrameError(parsed) || frame.positions === undefined) return parsed
      if (typeof frame.positions !== 'boolean') {
        return fail('FRAME_INVALID', '"positions" must be true or false.')
      }
      return { ...parsed, positions: frame.positions } as ClientFrame
    }
    case 'unsubscribe':
      return parseIds(frame.type, frame.ids ?? frame.userIds, maxIds)
    case 'heartbeat':
      return parseHeartbeat(frame)
    case 'resume': {
      const token = frame.resume ?? frame.token
      // with positions alone (no stream token) there is no sequence to continue
      const since = frame.since ?? (frame.positions !== undefined ? 0 : undefined)
      let positions: Array<[UserId, string]> | undefined
      if (frame.positions !== undefined) {
        const parsed = parsePositions(frame.positions, maxIds)
        if (!Array.isArray(parsed)) return parsed
        positions = parsed
      }
      if (token === undefined && positions) return { type: 'resume', token, since: 0, positions }
      if (typeof token !== 'string' || !TOKEN.test(token)) {
        return fail('FRAME_INVALID', '"resume" must be the token of an earlier snapshot.')
      }
      if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
        return fail('FRAME_INVALID', '"since" must be the last sequence number received (>= 0).')
      }
      return { type: 'resume', token, since, positions }
    }
    default:
      return fail(
        'TYPE_UNKNOWN',
        `Unknown frame type ${JSON.stringify(shown(frame.type)).slice(0, 40)}: expected subscribe, unsubscribe, heartbeat or resume.`,
      )
  }
}

/**
 * `{"<userId>": "<pos>", ...}`: the position held for each watched user (a WebSocket `resume`
 * frame, or the body of `POST /api/v1/realtime/sse`).
 */
export function parsePositions(raw: unknown, maxIds: number): Array<[UserId, string]> | FrameError {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail('FRAME_INVALID', '"positions" must map user ids to the "pos" last received.')
  }
  const entries = Object.entries(raw as Record<string, unknown>)
  // a resume frame's or an SSE body's: one position a watched user, so no more than it watches
  if (entries.length > maxIds) return { error: tooManyIds(maxIds, 'positions') }
  const out: Array<[UserId, string]> = []
  for (const [key, value] of entries) {
    const id = parseUserId(key)
    if (!id) {
      return fail(
        'IDS_INVALID',
        `Invalid user id ${JSON.stringify(key).slice(0, 40)}: user ids are positive 64-bit integers.`,
      )
    }
    if (typeof value !== 'string' || !POSITION.test(value)) {
      return fail('FRAME_INVALID', `"positions" values must be "pos" values of earlier frames.`)
    }
    out.push([id, value])
  }
  return out
}

/**
 * An id as the client sent it, for an error message: `[1]` and `{"1":1}` as JSON, not as
 * `String()` has them ("1", "[object Object]"), which would name a valid id or nothing.
 */
function shownId(item: unknown): string {
  return JSON.stringify(shown(item)).slice(0, 40)
}

/**
 * A value of a frame as text for a message. A frame may nest arrays 20,000 deep within its 64 KiB,
 * deeper than JSON.stringify (or String(), which joins arrays recursively) can walk: such a value
 * is named by its first characters, which say what it is.
 */
function shown(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value)
  try {
    return JSON.stringify(value)
  } catch {
    return Array.isArray(value) ? '[[[…' : '{…'
  }
}

function parseIds(
  type: 'subscribe' | 'unsubscribe',
  raw: unknown,
  maxIds: number,
): ClientFrame | FrameError {
  if (!Array.isArray(raw) || raw.length === 0) {
    return fail('IDS_INVALID', `"ids" must be a non-empty array of user ids.`)
  }
  if (raw.length > maxIds) return { error: tooManyIds(maxIds, 'frame') }
  const ids: UserId[] = []
  for (const item of raw) {
    const id = parseUserId(item)
    if (!id) {
      return fail(
        'IDS_INVALID',
        `Invalid user id ${shownId(item)}: user ids are positive 64-bit integers.`,
      )
    }
    ids.push(id)
  }
  return type === 'subscribe' ? { type, ids, positions: false } : { type, ids }
}

function parseHeartbeat(frame: Record<string, unknown>): ClientFrame | FrameError {
  const deviceType = frame.deviceType ?? 'Web'
  if (typeof deviceType !== 'string' || !DEVICE_TYPE.test(deviceType)) {
    return fail('HEARTBEAT_INVALID', '"deviceType" must be 1-32 letters or digits, e.g. "Web".')
  }
  const raw = frame.activity ?? { kind: 'online' }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail('HEARTBEAT_INVALID', '"activity" must be an object such as {"kind":"online"}.')
  }
  const input = raw as Record<string, unknown>
  for (const key of Object.keys(input)) {
    if (!ACTIVITY_KEYS.has(key)) {
      return fail(
        'HEARTBEAT_INVALID',
        `Unknown activity member ${JSON.stringify(key).slice(0, 40)}.`,
      )
    }
  }
  const kind = input.kind ?? 'online'
  if (typeof kind !== 'string' || !KINDS.has(kind as ActivityKind)) {
    return fail('HEARTBEAT_INVALID', '"activity.kind" must be online, inGame or inStudio.')
  }
  const activity: Activity = { kind: kind as ActivityKind }
  for (const key of ['placeId', 'rootPlaceId', 'universeId'] as const) {
    if (input[key] === undefined || input[key] === null) continue
    const id = parseInt64Id(input[key])
    if (!id)
      return fail('HEARTBEAT_INVALID', `"activity.${key}" must be a positive 64-bit integer.`)
    activity[key] = id
  }
  if (input.gameId !== undefined && input.gameId !== null) {
    const gameId = typeof input.gameId === 'string' ? canonicalGameId(input.gameId) : undefined
    if (gameId === undefined) {
      return fail('HEARTBEAT_INVALID', '"activity.gameId" must be a server instance id (uuid).')
    }
    activity.gameId = gameId
  }
  if (input.location !== undefined && input.location !== null) {
    if (typeof input.location !== 'string' || input.location.length > 256) {
      return fail(
        'HEARTBEAT_INVALID',
        '"activity.location" must be a string of at most 256 characters.',
      )
    }
    activity.location = input.location
  }
  return { type: 'heartbeat', deviceType, activity }
}

export function isFrameError(frame: ClientFrame | FrameError): frame is FrameError {
  return 'error' in frame
}
