import type { Place } from '../core/catalogue.js'
import type { Activity, Session, UserPresence } from '../core/presence.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import type { Clock } from './clock.js'

/** Places kept in memory; beyond this the cache starts over (a read reloads what it needs). */
const MAX_PLACES = 100_000
/**
 * How long the cache is trusted without hearing of a change. Changes are announced on the
 * change bus at once; this only bounds how long a lost announcement (pub/sub delivers at most
 * once) could leave a node showing an old name: the whole cache starts over this often.
 */
const TRUST_MS = 60_000

/**
 * The places catalogue as reads see it: a place's universe, root place and name are applied to
 * every session in that place when it is read, so a change of the catalogue shows on every read
 * at once, in every store, without waiting for the sessions' next heartbeat. The catalogue is
 * kept in memory: a read whose places are all cached does no I/O, and allocates nothing when
 * its sessions already carry the catalogue's values (heartbeats store them so).
 *
 * For a catalogued place the catalogue is the truth (a place belongs to one universe, as game
 * server reports are held to); an uncatalogued place keeps what the client sent.
 */
export class PlaceCatalogue {
  readonly #store: Pick<CatalogueStore, 'getPlace'>
  readonly #clock: Clock
  /** null: the place is not in the catalogue (remembered too, so reads do not ask again). */
  readonly #places = new Map<string, Place | null>()
  #since: number
  /** Moves on every change: a load that started before one must not cache what it read. */
  #generation = 0

  constructor(store: Pick<CatalogueStore, 'getPlace'>, clock: Clock) {
    this.#store = store
    this.#clock = clock
    this.#since = clock.now()
  }

  /** Drops what is cached of a place (or of every place): it changed, here or on another node. */
  forget(placeId?: string): void {
    this.#generation++
    if (placeId === undefined) this.#places.clear()
    else this.#places.delete(placeId)
  }

  /** One place as the catalogue has it now. */
  async place(placeId: string): Promise<Place | undefined> {
    this.#expire(this.#clock.now())
    const cached = this.#places.get(placeId)
    if (cached !== undefined) return cached ?? undefined
    return (await this.#load([placeId])).get(placeId) ?? undefined
  }

  /**
   * `presences` (read at `now`) with every session's place as the catalogue has it now. The
   * input itself, synchronously, when nothing needs loading or changing: the common case.
   */
  resolve(presences: UserPresence[], now: number): UserPresence[] | Promise<UserPresence[]> {
    this.#expire(now)
    let missing: string[] | undefined
    let differs = false
    for (const presence of presences) {
      for (const session of presence.sessions) {
        const placeId = session.activity.placeId
        if (placeId === undefined) continue
        const cached = this.#places.get(placeId)
        if (cached === undefined) (missing ??= []).push(placeId)
        else if (cached !== null && !carries(session.activity, cached)) differs = true
      }
    }
    if (missing !== undefined) {
      return this.#load(missing).then((loaded) => this.#apply(presences, loaded))
    }
    return differs ? this.#apply(presences, undefined) : presences
  }

  #expire(now: number): void {
    if (now - this.#since < TRUST_MS && now >= this.#since) return
    this.forget()
    this.#since = now
  }

  async #load(placeIds: readonly string[]): Promise<Map<string, Place | null>> {
    const generation = this.#generation
    const unique = [...new Set(placeIds)]
    const places = await Promise.all(unique.map((id) => this.#store.getPlace(id)))
    const loaded = new Map(unique.map((id, i) => [id, places[i] ?? null]))
    if (generation === this.#generation) {
      if (this.#places.size + unique.length > MAX_PLACES) this.#places.clear()
      for (const [id, place] of loaded) this.#places.set(id, place)
    }
    return loaded
  }

  #apply(
    presences: UserPresence[],
    loaded: ReadonlyMap<string, Place | null> | undefined,
  ): UserPresence[] {
    let out: UserPresence[] | undefined
    for (let i = 0; i < presences.length; i++) {
      const presence = presences[i]!
      let sessions: Session[] | undefined
      for (let j = 0; j < presence.sessions.length; j++) {
        const session = presence.sessions[j]!
        const placeId = session.activity.placeId
        if (placeId === undefined) continue
        const place = loaded?.get(placeId) ?? this.#places.get(placeId)
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
  return {
    ...activity,
    universeId: place.universeId,
    rootPlaceId: place.rootPlaceId,
    location: place.name,
  }
}

function carries(activity: Activity, place: Place): boolean {
  return (
    activity.universeId === place.universeId &&
    activity.rootPlaceId === place.rootPlaceId &&
    activity.location === place.name
  )
}
