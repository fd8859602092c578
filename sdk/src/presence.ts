import { isObject } from './http.js'
import type { RobloxUserPresence } from './wire.js'

/** The user's state, with Roblox's integer values. The highest live session wins. */
export enum PresenceType {
  Offline = 0,
  Online = 1,
  InGame = 2,
  InStudio = 3,
  /** Only ever shown to the user themself, when they appear offline to everyone else. */
  Invisible = 4,
}

/** A place, root place or universe: int64 ids are decimal strings, never rounded numbers. */
export interface Place {
  readonly id: string
}
export type Universe = Place

/** The game server instance the user is in. */
export interface Job {
  readonly id: string
}

/** One user's presence, as the viewer is allowed to see it. */
export interface Presence {
  readonly userId: string
  readonly type: PresenceType
  /**
   * Free text or the place's name; presenced says `Offline`, `Website`, `Playing` or `Studio`
   * when there is none or the viewer may not see it (the same from a subscription).
   */
  readonly lastLocation: string
  readonly place: Place | null
  readonly rootPlace: Place | null
  readonly universe: Universe | null
  readonly job: Job | null
  /** When a session of the user was last alive (the epoch when never seen). */
  readonly lastOnline: Date
}

/** Turns a Roblox v1 record into a Presence; tolerant of missing optional fields. */
export function presenceFromWire(record: RobloxUserPresence): Presence {
  const r = record as unknown as Record<string, unknown>
  return {
    userId: idOf(r.userId) ?? '0',
    type: presenceTypeOf(r.userPresenceType),
    lastLocation: typeof r.lastLocation === 'string' ? r.lastLocation : '',
    place: placeOf(r.placeId),
    rootPlace: placeOf(r.rootPlaceId),
    universe: placeOf(r.universeId),
    job: typeof r.gameId === 'string' && r.gameId !== '' ? { id: r.gameId } : null,
    lastOnline: dateOf(r.lastOnline),
  }
}

/**
 * What the lookups' lastLocation says when there is no location text, or the viewer may not see
 * it (presenced's Roblox view): by the state, or the primary session's kind.
 */
export function genericLocation(type: PresenceType): string {
  switch (type) {
    case PresenceType.Online:
      return 'Website'
    case PresenceType.InGame:
      return 'Playing'
    case PresenceType.InStudio:
      return 'Studio'
    default:
      return 'Offline'
  }
}

export function presenceTypeOf(value: unknown): PresenceType {
  return typeof value === 'number' && value in PresenceType
    ? (value as PresenceType)
    : PresenceType.Offline
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return String(value)
  if (typeof value === 'string' && /^\d+$/.test(value) && value !== '0') return value
  if (isObject(value)) return idOf(value.id)
  return undefined
}

/** A place, root place or universe id as the lookups give it: positive, else null. */
export function placeOf(value: unknown): Place | null {
  const id = idOf(value)
  return id === undefined ? null : { id }
}

export function dateOf(value: unknown): Date {
  if (typeof value === 'string' || typeof value === 'number') {
    const date = new Date(value)
    if (!Number.isNaN(date.getTime())) return date
  }
  return new Date(0)
}
