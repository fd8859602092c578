import { PresenceType, type Activity, type SessionSource } from '../../core/presence.js'
import type { VisiblePresence } from '../../core/privacy.js'

export type NativeState = 'offline' | 'online' | 'inGame' | 'inStudio' | 'invisible'

export interface NativeSession {
  source: SessionSource
  deviceType: string
  activity: Activity
}

/** A presence on the native wire (docs/reference/native.md). */
export interface NativePresence {
  userId: string
  state: NativeState
  /** ISO-8601; only while offline (an online user is online now), null when not known. */
  lastOnline: string | null
  locationHidden: boolean
  sessions: NativeSession[]
}

const STATES: Record<PresenceType, NativeState> = {
  [PresenceType.Offline]: 'offline',
  [PresenceType.Online]: 'online',
  [PresenceType.InGame]: 'inGame',
  [PresenceType.InStudio]: 'inStudio',
  [PresenceType.Invisible]: 'invisible',
}

/**
 * The native view of a presence the core has already filtered for one viewer. It leaves out
 * what moves on every heartbeat (expiry, refresh time, lastOnline while online), so equal views
 * mean "nothing to tell", and everything that would tell an offline user's settings apart: an
 * offline user looks the same whether visible, hidden by `visibility`, or invisible.
 */
export function nativeView(presence: VisiblePresence): NativePresence {
  const offline = presence.state === PresenceType.Offline
  return {
    userId: presence.userId,
    state: STATES[presence.state],
    lastOnline:
      offline && presence.lastOnline !== undefined
        ? new Date(presence.lastOnline).toISOString()
        : null,
    locationHidden: offline ? false : presence.locationHidden,
    sessions: offline
      ? []
      : presence.sessions.map((s) => ({
          source: s.source,
          deviceType: s.deviceType,
          activity: s.activity,
        })),
  }
}

/** The view as JSON text: what the fanout compares and sends. */
export function renderNative(presence: VisiblePresence): string {
  return JSON.stringify(nativeView(presence))
}
