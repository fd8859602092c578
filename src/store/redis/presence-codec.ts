import type {
  Activity,
  ActivityKind,
  OfflineReason,
  RichPresence,
  Session,
  SessionSource,
  UserPresence,
} from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import { sweepReason, type PresenceChange } from '../presence-store.js'

/*
 * A user's presence as Redis keeps it: one value that is a JSON document, so a read decodes it
 * with one JSON.parse, laid out in lines, so the Lua scripts (presence.lua) edit it with string
 * functions instead of a cjson round trip:
 *
 *   [<lastOnline>
 *   ,[<expiresAt>,<expiresAt - updatedAt>,<updatedAt - startedAt>,<key>,<source>,<device>,<activity>]
 *   ,[… one line per session]
 *   ]
 *
 * The numbers lead so that Lua reads them with one pattern, and the key follows as its JSON text,
 * which is how scripts find a session. JSON.stringify never writes a raw line break, so no string
 * can split a line. Fields are positions, not names (an app session takes ~90 B, a game server's
 * player ~150 B), because Redis memory per live session is what a fleet pays for.
 */

/** A session line: see above. */
type StoredSession = [
  expiresAt: number,
  ttl: number,
  age: number,
  key: string,
  source: string,
  deviceType: string,
  activity: StoredActivity,
]

/** `[lastOnline, ...sessions]` */
type StoredValue = [number, ...StoredSession[]]

/**
 * `[kind, placeId, rootPlaceId, universeId, gameId, location, titleId, placement, titleState,
 * richPresence]`, kind as its rank (1 online, 2 inGame, 3 inStudio), 0 for a field that is
 * absent, trailing absent fields left out. A game server player's gameId repeats its session key
 * `server:<gameId>`: it is stored as `=` then (and a gameId starting with `=` gets one more).
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

export function encodeActivity(activity: Activity, key: string): string {
  const { gameId, richPresence: rp } = activity
  const stored: unknown[] = [
    KIND_RANKS[activity.kind],
    activity.placeId ?? 0,
    activity.rootPlaceId ?? 0,
    activity.universeId ?? 0,
    gameId === undefined
      ? 0
      : key.length === SERVER_KEY.length + gameId.length && key === SERVER_KEY + gameId
        ? '='
        : gameId.startsWith('=')
          ? `=${gameId}`
          : gameId,
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
  if (n > 2 && stored[2] !== 0) activity.rootPlaceId = stored[2] as string
  if (n > 3 && stored[3] !== 0) activity.universeId = stored[3] as string
  if (n > 4 && stored[4] !== 0) {
    const gameId = stored[4] as string
    activity.gameId =
      gameId === '='
        ? key.slice(SERVER_KEY.length)
        : gameId.startsWith('=')
          ? gameId.slice(1)
          : gameId
  }
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
): UserPresence {
  if (value === null) return { userId, sessions: [], lastOnline: undefined }
  const sessions: Session[] = []
  for (let i = 1; i < value.length; i++) {
    const s = value[i] as StoredSession
    const expiresAt = s[0]
    if (now !== undefined && expiresAt <= now) continue
    const updatedAt = expiresAt - s[1]
    sessions.push({
      userId,
      key: s[3],
      source: SOURCES[s[4]]!,
      deviceType: s[5],
      startedAt: updatedAt - s[2],
      updatedAt,
      expiresAt,
      activity: decodeActivity(s[6], s[3]),
    })
  }
  return { userId, sessions, lastOnline: value[0] }
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
  return presenceOf(userId, raw ? (JSON.parse(raw) as StoredValue) : null, now)
}

/**
 * One user's change as a script returns it and publishes it (presence.lua `change`):
 * kind `h` ended nothing, `e` ended the session `key` for `reason`, `s` is a sweep (it ended the
 * sessions of before that after no longer holds).
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
  c: ChangeRecord
}

/** The PresenceChange of a record: the same on the node that made it and on every other. */
export function changeOf(record: ChangeRecord): PresenceChange {
  const [id, now, kind, reason, key, before, after] = record
  const userId = id as UserId
  if (kind === 's') {
    const claimed = presenceOf(userId, before, undefined)
    const kept = new Set<string>()
    for (let i = 1; i < after.length; i++) kept.add((after[i] as StoredSession)[3])
    const ended = claimed.sessions.filter((s) => !kept.has(s.key))
    return {
      userId,
      before: claimed,
      after: presenceOf(userId, after, now),
      reason: sweepReason(ended),
      ended,
    }
  }
  const previous = presenceOf(userId, before, now)
  const next = presenceOf(userId, after, now)
  if (kind === 'h') return { userId, before: previous, after: next }
  return {
    userId,
    before: previous,
    after: next,
    reason: reason as OfflineReason,
    ended: previous.sessions.filter((s) => s.key === key),
  }
}

/** The change a script replied with (a ChangeMessage's text). */
export function changeOfReply(reply: string): PresenceChange {
  return changeOf((JSON.parse(reply) as ChangeMessage).c)
}
