import type { Activity, Session, SessionSource, UserPresence } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'

/** A session as the Lua scripts keep it; the activity stays a JSON string (see heartbeat.lua). */
interface StoredSession {
  k: string
  src: SessionSource
  d: string
  a: string
  st: number
  up: number
  ex: number
}

interface StoredPresence {
  lo?: number
  /** cjson encodes an empty array as `{}`. */
  s?: StoredSession[] | Record<string, never>
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
  if (!raw) return { userId, sessions: [], lastOnline: undefined }
  const value = JSON.parse(raw) as StoredPresence
  const stored = Array.isArray(value.s) ? value.s : []
  const sessions: Session[] = []
  for (const s of stored) {
    if (now !== undefined && s.ex <= now) continue
    sessions.push({
      userId,
      key: s.k,
      source: s.src,
      deviceType: s.d,
      startedAt: s.st,
      updatedAt: s.up,
      expiresAt: s.ex,
      activity: JSON.parse(s.a) as Activity,
    })
  }
  return { userId, sessions, lastOnline: value.lo ?? undefined }
}
