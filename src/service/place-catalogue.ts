import type { Place } from '../core/catalogue.js'
import type { Activity, Session, UserPresence } from '../core/presence.js'
import type { PresenceSummary } from '../core/privacy.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import type { Clock } from './clock.js'

/** Places kept in memory; beyond this the cache starts over (a read reloads what it needs). */
const MAX_PLACES = 100_000
/**
 * How long a cached place is used before it is read again (bounds a lost announcement), unless
 * the service's settings say otherwise (PRESENCED_PLACE_TTL).
 */
export const PLACE_TRUST_MS = 60_000
/**
 * Sessions written up to this long after a change heard here are still checked: the writer may
 * have read the place just before the change, and another node's clock may run ahead.
 */
export const CHECK_MARGIN_MS = 5_000

interface Cached {
  /** null: the place is not in the catalogue (remembered too, so reads do not ask again). */
  place: Place | null
  at: number
}

/**
 * The places catalogue as reads see it: a place's universe, root place and name are applied to
 * every session in that place when it is read, so a change of the catalogue shows on every read
 * at once, in every store, without waiting for the sessions' next heartbeat.
 *
 * Heartbeats store a session with the catalogue's values as this memory has them (`place`). So
 * only a session written before the last change this node heard of (announced on the change
 * bus, or this node's start) can carry old values: those are checked against the catalogue kept
 * in memory, and corrected. Every other session costs one comparison of its `updatedAt`, and a
 * read allocates nothing unless something changed. A lost announcement heals at each session's
 * next heartbeat once the place is read again (within a minute).
 *
 * For a catalogued place the catalogue is the truth (a place belongs to one universe, as game
 * server reports are held to); an uncatalogued place keeps what the client sent.
 */
export class PlaceCatalogue {
  readonly #store: Pick<CatalogueStore, 'getPlace'>
  readonly #clock: Clock
  readonly #trustMs: number
  readonly #places = new Map<string, Cached>()
  /** Sessions updated at or before this instant may predate the catalogue: they are checked. */
  #checkUpTo: number
  /** Moves on every change: a load that started before one must not cache what it read. */
  #generation = 0

  constructor(store: Pick<CatalogueStore, 'getPlace'>, clock: Clock, trustMs = PLACE_TRUST_MS) {
    this.#store = store
    this.#clock = clock
    this.#trustMs = trustMs
    // what other nodes stored before this one started was never checked here
    this.#checkUpTo = clock.now() + CHECK_MARGIN_MS
  }

  /** A place changed (every place, without an id), here or on another node. */
  forget(placeId?: string): void {
    this.#generation++
    if (placeId === undefined) this.#places.clear()
    else this.#places.delete(placeId)
    this.#checkUpTo = Math.max(this.#checkUpTo, this.#clock.now() + CHECK_MARGIN_MS)
  }

  /**
   * One place for a write to carry, from memory when it was read or loaded within the trust
   * time (a minute by default) and no change was heard since (measured: a store read per heartbeat was 6 % of its
   * CPU in embedded mode, a second round trip in Redis mode). A heartbeat that carries a value
   * the change bus has not yet told this node about is written before the change is heard here,
   * so every node's reads check it (see `forget`'s margin); were the announcement lost, the
   * cached place is read again within the trust time and the next heartbeat heals the session.
   */
  place(placeId: string): Place | undefined | Promise<Place | undefined> {
    const now = this.#clock.now()
    const cached = this.#places.get(placeId)
    if (cached !== undefined && now - cached.at < this.#trustMs && now >= cached.at) {
      return cached.place ?? undefined
    }
    return this.#load([placeId], now).then((loaded) => loaded.get(placeId) ?? undefined)
  }

  /**
   * `presences` (read at `now`) with every session's place as the catalogue has it now. The
   * input itself, synchronously, when nothing needs loading or changing: the common case.
   */
  resolve(presences: UserPresence[], now: number): UserPresence[] | Promise<UserPresence[]> {
    const checkUpTo = this.#checkUpTo
    let missing: string[] | undefined
    let differs = false
    for (const presence of presences) {
      for (const session of presence.sessions) {
        if (session.updatedAt > checkUpTo) continue
        const placeId = session.activity.placeId
        if (placeId === undefined) continue
        const cached = this.#places.get(placeId)
        if (cached === undefined || !(now - cached.at < this.#trustMs && now >= cached.at)) {
          ;(missing ??= []).push(placeId)
        } else if (cached.place !== null && !carries(session.activity, cached.place)) {
          differs = true
        }
      }
    }
    if (missing !== undefined) {
      return this.#load(missing, now).then((loaded) => this.#apply(presences, checkUpTo, loaded))
    }
    return differs ? this.#apply(presences, checkUpTo, undefined) : presences
  }

  /**
   * resolve() for summaries: each summary's activity (its primary session's, updated at its
   * `updatedAt`) with its place as the catalogue has it now. The input itself, synchronously,
   * when nothing needs loading or changing. The primary session does not depend on places, so
   * this is resolve() then summaryOf, without the sessions.
   */
  resolveSummaries(
    summaries: PresenceSummary[],
    now: number,
  ): PresenceSummary[] | Promise<PresenceSummary[]> {
    const checkUpTo = this.#checkUpTo
    let missing: string[] | undefined
    let differs = false
    for (let i = 0; i < summaries.length; i++) {
      const summary = summaries[i]!
      const placeId = summary.activity?.placeId
      if (placeId === undefined || summary.updatedAt > checkUpTo) continue
      const cached = this.#places.get(placeId)
      if (cached === undefined || !(now - cached.at < this.#trustMs && now >= cached.at)) {
        ;(missing ??= []).push(placeId)
      } else if (cached.place !== null && !carries(summary.activity!, cached.place)) {
        differs = true
      }
    }
    if (missing !== undefined) {
      return this.#load(missing, now).then((loaded) =>
        this.#applySummaries(summaries, checkUpTo, loaded),
      )
    }
    return differs ? this.#applySummaries(summaries, checkUpTo, undefined) : summaries
  }

  #applySummaries(
    summaries: PresenceSummary[],
    checkUpTo: number,
    loaded: ReadonlyMap<string, Place | null> | undefined,
  ): PresenceSummary[] {
    let out: PresenceSummary[] | undefined
    for (let i = 0; i < summaries.length; i++) {
      const summary = summaries[i]!
      const activity = summary.activity
      const placeId = activity?.placeId
      if (activity === undefined || placeId === undefined || summary.updatedAt > checkUpTo) {
        continue
      }
      const place = loaded?.get(placeId) ?? this.#places.get(placeId)?.place
      if (place === undefined || place === null || carries(activity, place)) continue
      out ??= summaries.slice()
      out[i] = { ...summary, activity: withPlace(activity, place) }
    }
    return out ?? summaries
  }

  async #load(placeIds: readonly string[], now: number): Promise<Map<string, Place | null>> {
    const generation = this.#generation
    const unique = [...new Set(placeIds)]
    const places = await Promise.all(unique.map((id) => this.#store.getPlace(id)))
    const loaded = new Map(unique.map((id, i) => [id, places[i] ?? null]))
    if (generation === this.#generation) {
      if (this.#places.size + unique.length > MAX_PLACES) this.#places.clear()
      for (const [id, place] of loaded) this.#places.set(id, { place, at: now })
    }
    return loaded
  }

  #apply(
    presences: UserPresence[],
    checkUpTo: number,
    loaded: ReadonlyMap<string, Place | null> | undefined,
  ): UserPresence[] {
    let out: UserPresence[] | undefined
    for (let i = 0; i < presences.length; i++) {
      const presence = presences[i]!
      let sessions: Session[] | undefined
      for (let j = 0; j < presence.sessions.length; j++) {
        const session = presence.sessions[j]!
        const placeId = session.activity.placeId
        if (session.updatedAt > checkUpTo || placeId === undefined) continue
        const place = loaded?.get(placeId) ?? this.#places.get(placeId)?.place
        if (place === undefined || place === null || carries(session.activity, place)) continue
        sessions ??= presence.sessions.slice()
        sessions[j] = { ...session, activity: withPlace(session.activity, place) }
      }
      if (sessions !== undefined) {
        out ??= presences.slice()
        out[i] = { ...presence, sessions }
      }
    }
    return out ?? presences
  }
}

/** An activity in `place`, with the catalogue's universe, root place and name. */
export function withPlace(activity: Activity, place: Place): Activity {
  // The members copied one by one, then the place's set: the same members in the same order as
  // `{ ...activity, universeId, rootPlaceId, location }` (a member the activity has keeps its
  // place), so the same JSON. Measured on Node 20: adding members to a spread copy took V8 about
  // 1 µs each (3 µs of a heartbeat's ~14), this copy ~0.05 µs.
  // Each of Roblox's members copied by its name (a store site of its own, which sees a few
  // shapes), anything else by key: one keyed site for every member was megamorphic, a stub's
  // generic store per member (~0.25k instructions each under callgrind, issue 19).
  const placed: Record<string, unknown> = {}
  for (const key in activity) {
    switch (key) {
      case 'kind':
        placed.kind = activity.kind
        break
      case 'location':
        placed.location = activity.location
        break
      case 'placeId':
        placed.placeId = activity.placeId
        break
      case 'gameId':
        placed.gameId = activity.gameId
        break
      default:
        placed[key] = activity[key as keyof Activity]
    }
  }
  placed.universeId = place.universeId
  placed.rootPlaceId = place.rootPlaceId
  placed.location = place.name
  return placed as unknown as Activity
}

function carries(activity: Activity, place: Place): boolean {
  return (
    activity.universeId === place.universeId &&
    activity.rootPlaceId === place.rootPlaceId &&
    activity.location === place.name
  )
}
