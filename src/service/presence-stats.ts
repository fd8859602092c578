import type { Place } from '../core/catalogue.js'
import { PresenceType, type Activity } from '../core/presence.js'
import type { UserSettings } from '../core/privacy.js'
import type { ChangeBus } from '../realtime/change-bus.js'
import type { LiveUser, PresenceStore } from '../store/presence-store.js'
import type { PrivacyStore } from '../store/privacy-store.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import type { FleetDuties } from '../store/fleet-duties.js'
import { CatalogueNames } from './catalogue-names.js'
import type { Clock } from './clock.js'
import {
  decodeStatsRecord,
  encodeStatsRecord,
  type Aggregate,
  type Ranked,
  type StatsRecord,
} from './stats-record.js'

/** Users counted by state; `online` counts every user shown online, whatever the state. */
export interface StatsTotals {
  online: number
  inGame: number
  inStudio: number
  /** Xbox's Away: signed in with no title, game or studio session (e.g. only an app). */
  away: number
  sessions: number
  /** Online users whose location only friends (or nobody) may see: not in any breakdown. */
  locationHidden: number
}

export interface TopEntry {
  id: string
  /** From the places or titles catalogue; a universe takes its root place's name. */
  name: string | null
  users: number
}

export interface StatsTop {
  universes: TopEntry[]
  places: TopEntry[]
  titles: TopEntry[]
}

/** One sample of the time series: epoch ms, users online, users in game (public counts). */
export type StatsSample = readonly [at: number, online: number, inGame: number]

/** What everyone may see: invisible users are not counted at all, nowhere. */
export interface PublicStats {
  at: number
  /** False when the presence store cannot list live users: counts are then zero. */
  available: boolean
  nodes: number
  totals: StatsTotals
  top: StatsTop
  series: { intervalMs: number; samples: StatsSample[] }
}

/** Operators' view (admin key): every user counted, and how many are invisible. */
export interface AdminStats extends PublicStats {
  all: { totals: StatsTotals; top: StatsTop; invisibleUsers: number; invisibleSessions: number }
}

export interface PresenceStatsDeps {
  presence: PresenceStore
  profiles: Pick<PrivacyStore, 'getSettings'> & Pick<CatalogueStore, 'getPlace' | 'getTitle'>
  bus: ChangeBus
  clock: Clock
  /**
   * A catalogued place as reads apply it (PlaceCatalogue.place): a session stored before its
   * place was catalogued or moved is counted in the universe the catalogue gives, as
   * `POST /v1/presence/users` shows it, not in the one its last heartbeat carried.
   */
  place(placeId: string): Place | undefined | Promise<Place | undefined>
  /**
   * Fleet mode: one node at a time (the holder of the `stats` duty) makes the passes and
   * publishes them; every node serves what was published. Absent: this node makes its own.
   */
  duties?: FleetDuties | undefined
}

export interface PresenceStatsOptions {
  /**
   * How often the time series samples the online count; default 10 s. Stretched to 20 times a
   * pass's duration, so that sampling a big store costs at most ~5% of a core.
   */
  sampleIntervalMs?: number
  /** How many samples the series keeps; default 360 (an hour at 10 s). */
  samples?: number
  /** A computed aggregate is reused for at least this long; default 1000 ms. */
  minCacheMs?: number
  /** Users read from the store and settings per batch; default 5000. */
  batchSize?: number
  /**
   * Fleet mode: how long the stats node's lease lasts unless renewed (it renews it each pass);
   * another node takes over within it when the holder dies. Default 30 000 ms; stretched to three
   * intervals when the passes are further apart.
   */
  leaseMs?: number
}

/** The fleet duty's name (FleetDuties): its lease and its published record. */
const DUTY = 'stats'

export const MAX_TOP = 100

/** How many distinct activities a tally holds before folding them into its counts. */
const MAX_PENDING_ACTIVITIES = 4096

/** The catalogue's places a pass has looked up, by id (undefined: not catalogued). */
type PlacesSeen = Map<string, Place | undefined>

/** An activity's universe and root place: the catalogue's for a catalogued place, else its own. */
function whereOf(
  activity: Activity,
  places: PlacesSeen,
): { universeId?: string; rootPlaceId?: string } {
  const place = activity.placeId === undefined ? undefined : places.get(activity.placeId)
  return place ?? activity
}

/** Counts of one population (public or all) while a pass runs. */
class Tally {
  readonly #places: PlacesSeen

  constructor(places: PlacesSeen) {
    this.#places = places
  }

  readonly totals: StatsTotals = {
    online: 0,
    inGame: 0,
    inStudio: 0,
    away: 0,
    sessions: 0,
    locationHidden: 0,
  }
  readonly universes = new Map<string, number>()
  readonly places = new Map<string, number>()
  readonly titles = new Map<string, number>()
  /**
   * A root place seen per universe, from this population's users only: a universe is named after
   * its root place, and a name known only from a hidden user's session would betray them.
   */
  readonly rootOf = new Map<string, string>()
  /**
   * Users of one session by their activity, in the order the activities were first seen (a
   * user of several sessions adds theirs with no count, for that order): the stores share one
   * frozen object per distinct activity, so a million users are a few thousand entries, and
   * counting one is a look-up by identity instead of one per id it names (measured: the
   * per-id counting was half of a pass).
   */
  readonly #pending = new Map<Activity, number>()

  add(user: LiveUser, showsWhere: boolean): void {
    let state: PresenceType = PresenceType.Offline
    let inTitle = false
    for (const session of user.sessions) {
      const rank = rankOf(session.activity)
      if (rank > state) state = rank
      if (session.source === 'title' || session.activity.kind !== 'online') inTitle = true
    }
    const t = this.totals
    t.online++
    t.sessions += user.sessions.length
    if (state === PresenceType.InGame) t.inGame++
    if (state === PresenceType.InStudio) t.inStudio++
    if (!inTitle) t.away++
    if (!showsWhere) {
      t.locationHidden++
      return
    }
    const pending = this.#pending
    if (user.sessions.length === 1) {
      const { activity } = user.sessions[0]!
      pending.set(activity, (pending.get(activity) ?? 0) + 1)
    } else {
      // a user in two places of one universe is one player of that universe
      const universes = new Set<string>()
      const places = new Set<string>()
      const titles = new Set<string>()
      for (const { activity } of user.sessions) {
        if (!pending.has(activity)) pending.set(activity, 0)
        const { universeId } = whereOf(activity, this.#places)
        if (universeId !== undefined) universes.add(universeId)
        if (activity.placeId !== undefined) places.add(activity.placeId)
        if (activity.titleId !== undefined) titles.add(activity.titleId)
      }
      for (const id of universes) count(this.universes, id, 1)
      for (const id of places) count(this.places, id, 1)
      for (const id of titles) count(this.titles, id, 1)
    }
    // activities a store did not share would each be an entry: fold them now and then
    if (pending.size >= MAX_PENDING_ACTIVITIES) this.fold()
  }

  /** Adds the users counted by activity to the counts by id (call before reading them). */
  fold(): void {
    for (const [activity, users] of this.#pending) {
      const { placeId, titleId } = activity
      const { universeId, rootPlaceId } = whereOf(activity, this.#places)
      if (universeId !== undefined && rootPlaceId !== undefined && !this.rootOf.has(universeId)) {
        this.rootOf.set(universeId, rootPlaceId)
      }
      if (users === 0) continue
      if (universeId !== undefined) count(this.universes, universeId, users)
      if (placeId !== undefined) count(this.places, placeId, users)
      if (titleId !== undefined) count(this.titles, titleId, users)
    }
    this.#pending.clear()
  }
}

function count(map: Map<string, number>, id: string, users: number): void {
  map.set(id, (map.get(id) ?? 0) + users)
}

/** A published record as this node read it. */
interface SharedRecord extends StatsRecord {
  /** When this node read it (performance.now(): the read cache goes by real time). */
  readAt: number
}

/**
 * Aggregate presence for the dashboard: totals by state, concurrent users per universe, place
 * and title, and a time series of the online count.
 *
 * Privacy: the public numbers count an invisible user nowhere (not online, no session, no
 * place, not even as the source of a universe's name), so no count moves with what an
 * invisible user does; a user whose location only friends may see counts as online but in no
 * breakdown. Operators with the admin key get a second set over everyone.
 *
 * Cost: a pass reads every live user and their settings, so its result is reused for at least
 * `minCacheMs`, and for four times as long as it took (a large store is not re-read per request);
 * concurrent callers share one pass.
 *
 * Fleet mode (`duties`): one node at a time holds the `stats` lease and makes the passes, one per
 * interval, each published with the series (one Redis key); every node, the holder too, serves
 * the last published record (one GET, reused for `minCacheMs`), so every node serves the same
 * numbers and the fleet pays one pass per interval whatever its size. A new holder continues the
 * published series. A record older than its author's lease (its pass time plus the lease's
 * time: the holder died, or Redis refused its write while it kept the lease) is not served: the
 * node then counts for itself, as embedded, until a fresh record comes, so no number served is
 * older than that bound. A holder that is merely slow (a loaded node, a long pass) is waited for:
 * every node counting for itself then would multiply the load on a fleet already loaded.
 */
export class PresenceStats {
  readonly #deps: PresenceStatsDeps
  readonly #options: Required<PresenceStatsOptions>
  readonly #samples: StatsSample[] = []
  #cached: Aggregate | undefined
  #pending: Promise<Aggregate> | undefined
  /** Fleet mode: the last record read (or published by this node), and a read under way. */
  #shared: SharedRecord | undefined
  #reading: Promise<SharedRecord | undefined> | undefined
  /** Fleet mode: whether this node held the lease at its last sample. */
  #leader = false
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #names: CatalogueNames

  constructor(deps: PresenceStatsDeps, options: PresenceStatsOptions = {}) {
    this.#deps = deps
    this.#names = new CatalogueNames(deps.profiles, deps.clock)
    this.#options = {
      sampleIntervalMs: options.sampleIntervalMs ?? 10_000,
      samples: options.samples ?? 360,
      minCacheMs: options.minCacheMs ?? 1000,
      batchSize: options.batchSize ?? 5000,
      leaseMs: options.leaseMs ?? 30_000,
    }
  }

  /** Fleet mode: whether this node makes the fleet's passes (it held the lease at its last sample). */
  get leader(): boolean {
    return this.#leader
  }

  /** Starts sampling the time series (one sample now, then every interval). */
  start(): void {
    if (this.#timer || this.#stopped) return
    const next = (delayMs: number) => {
      if (this.#stopped) return
      this.#timer = setTimeout(() => {
        this.sample()
          .catch(() => undefined)
          // a node that only reads the fleet's record tries for the lease every interval
          .finally(() =>
            next(
              this.#deps.duties && !this.#leader
                ? this.#options.sampleIntervalMs
                : this.#interval(),
            ),
          )
      }, delayMs)
      this.#timer.unref()
    }
    next(0)
  }

  /** Stops sampling; in fleet mode, gives the lease up so that another node takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#pending?.catch(() => undefined)
    if (this.#leader) {
      this.#leader = false
      await this.#deps.duties?.release(DUTY).catch(() => undefined)
    }
  }

  /** The stats lease as this node takes it: three of its intervals when longer than leaseMs. */
  #leaseTtl(): number {
    return Math.max(this.#options.leaseMs, 3 * this.#interval())
  }

  /** A pass over a big store is not run more often than 1/20 of the time. */
  #interval(): number {
    return Math.max(this.#options.sampleIntervalMs, (this.#cached?.computeMs ?? 0) * 20)
  }

  /**
   * Takes one sample of the time series now. Fleet mode: takes or renews the lease first; its
   * holder makes a pass and publishes it with the series, another node reads the record.
   */
  async sample(): Promise<void> {
    const duties = this.#deps.duties
    let wasLeader = false
    if (duties) {
      wasLeader = this.#leader
      this.#leader = await duties.take(DUTY, this.#leaseTtl()).catch(() => false)
      if (!this.#leader) {
        await this.#read()
        return
      }
      // a new holder continues the series the fleet showed
      if (!wasLeader) {
        const shared = this.#shared ?? (await this.#read().catch(() => undefined))
        if (shared) this.#samples.splice(0, this.#samples.length, ...shared.samples)
      }
    }
    const aggregate = duties ? await this.#pass() : await this.#aggregate()
    if (duties) {
      // a slow pass stretches the interval (#interval): renewed for the next sample now, or the
      // lease would lapse before this holder samples again and the fleet would change hands
      this.#leader = await duties.take(DUTY, this.#leaseTtl()).catch(() => false)
      if (!this.#leader) return
    }
    this.#samples.push([
      aggregate.at,
      aggregate.visible.totals.online,
      aggregate.visible.totals.inGame,
    ])
    if (this.#samples.length > this.#options.samples) this.#samples.shift()
    if (!duties) return
    const record: StatsRecord = {
      aggregate,
      samples: [...this.#samples],
      everyMs: this.#interval(),
    }
    // kept as long as the series spans, so that a later holder can continue it
    const keepMs = Math.max(
      this.#options.leaseMs,
      this.#options.samples * this.#options.sampleIntervalMs,
    )
    await duties.publish(DUTY, encodeStatsRecord(record, MAX_TOP), keepMs)
    this.#shared = { ...record, readAt: performance.now() }
  }

  /** The public numbers, with the `top` largest universes, places and titles. */
  async publicStats(top: number): Promise<PublicStats> {
    const { aggregate, samples } = await this.#current()
    return this.#publicView(aggregate, samples, top)
  }

  /** The public numbers plus the same over every user, invisible ones included. */
  async adminStats(top: number): Promise<AdminStats> {
    const { aggregate, samples } = await this.#current()
    return {
      ...(await this.#publicView(aggregate, samples, top)),
      all: {
        totals: { ...aggregate.all.totals },
        top: await this.#top(aggregate.all, top),
        invisibleUsers: aggregate.invisibleUsers,
        invisibleSessions: aggregate.invisibleSessions,
      },
    }
  }

  async #publicView(
    aggregate: Aggregate,
    samples: readonly StatsSample[],
    top: number,
  ): Promise<PublicStats> {
    return {
      at: aggregate.at,
      available: aggregate.available,
      nodes: aggregate.nodes,
      totals: { ...aggregate.visible.totals },
      top: await this.#top(aggregate.visible, top),
      series: { intervalMs: this.#options.sampleIntervalMs, samples: [...samples] },
    }
  }

  /**
   * What to serve now. Embedded: this node's aggregate and series. Fleet mode: the published
   * record (read again once `minCacheMs` old), while its author's lease could still hold
   * (isFresh); past that (no holder for now), this node's own aggregate
   * with the last series seen.
   */
  async #current(): Promise<{ aggregate: Aggregate; samples: readonly StatsSample[] }> {
    if (!this.#deps.duties) return { aggregate: await this.#aggregate(), samples: this.#samples }
    let shared = this.#shared
    if (!shared || performance.now() - shared.readAt >= this.#options.minCacheMs) {
      shared = await this.#read()
    }
    if (shared && isFresh(shared, this.#deps.clock.now(), this.#options.leaseMs)) return shared
    return {
      aggregate: await this.#aggregate(),
      samples: shared?.samples ?? this.#samples,
    }
  }

  /** Reads the published record (concurrent callers share one read); undefined when none. */
  #read(): Promise<SharedRecord | undefined> {
    const duties = this.#deps.duties!
    this.#reading ??= duties
      .read(DUTY)
      .then((text) => {
        const record = text === null ? undefined : decodeStatsRecord(text)
        if (!record) return undefined
        const shared = { ...record, readAt: performance.now() }
        this.#shared = shared
        return shared
      })
      .finally(() => (this.#reading = undefined))
    return this.#reading
  }

  #aggregate(): Promise<Aggregate> {
    const cached = this.#cached
    const now = this.#deps.clock.now()
    if (cached) {
      const maxAge = Math.max(this.#options.minCacheMs, cached.computeMs * 4)
      if (now - cached.at < maxAge && now >= cached.at) return Promise.resolve(cached)
    }
    return this.#pass()
  }

  /** A pass now, shared by concurrent callers. */
  #pass(): Promise<Aggregate> {
    this.#pending ??= this.#compute().finally(() => (this.#pending = undefined))
    return this.#pending
  }

  async #compute(): Promise<Aggregate> {
    const { presence, profiles, bus, clock } = this.#deps
    const now = clock.now()
    const started = performance.now()
    const places: PlacesSeen = new Map()
    const visible = new Tally(places)
    const all = new Tally(places)
    let invisibleUsers = 0
    let invisibleSessions = 0
    const nodes = bus.nodes ? bus.nodes() : Promise.resolve(1)
    // a rejected count must not go unhandled while the pass runs
    nodes.catch(() => undefined)
    if (presence.liveUsers) {
      for await (const batch of presence.liveUsers(now, this.#options.batchSize)) {
        // let requests in between batches: a pass over a million users takes seconds
        await new Promise<void>((resolve) => setImmediate(resolve))
        const settings = await profiles.getSettings(batch.map((u) => u.userId))
        await this.#lookUpPlaces(batch, places)
        batch.forEach((user, i) => {
          const s: UserSettings = settings[i]!
          all.add(user, true)
          if (s.invisible) {
            invisibleUsers++
            invisibleSessions += user.sessions.length
            return
          }
          visible.add(user, s.visibility === 'everyone')
        })
      }
    }
    const aggregate: Aggregate = {
      at: now,
      available: presence.liveUsers !== undefined,
      nodes: await nodes.catch(() => 0),
      computeMs: performance.now() - started,
      visible: rank(visible),
      all: rank(all),
      invisibleUsers,
      invisibleSessions,
    }
    this.#cached = aggregate
    return aggregate
  }

  /** Adds the places of `batch` not seen yet in this pass to `places` (from memory, mostly). */
  async #lookUpPlaces(batch: readonly LiveUser[], places: PlacesSeen): Promise<void> {
    let unseen: Set<string> | undefined
    for (const user of batch) {
      for (const { activity } of user.sessions) {
        const id = activity.placeId
        if (id !== undefined && !places.has(id)) (unseen ??= new Set()).add(id)
      }
    }
    if (unseen === undefined) return
    const ids = [...unseen]
    const found = await Promise.all(ids.map((id) => this.#deps.place(id)))
    ids.forEach((id, i) => places.set(id, found[i]))
  }

  async #top(ranked: Ranked, n: number): Promise<StatsTop> {
    const take = Math.max(0, Math.min(MAX_TOP, Math.floor(n)))
    const named = async (
      entries: Array<[string, number]>,
      nameOf: (id: string) => Promise<string | null>,
    ): Promise<TopEntry[]> =>
      Promise.all(
        entries.slice(0, take).map(async ([id, users]) => ({ id, name: await nameOf(id), users })),
      )
    return {
      universes: await named(ranked.universes, (id) => {
        const root = ranked.rootOf.get(id)
        return root === undefined ? Promise.resolve(null) : this.#names.place(root)
      }),
      places: await named(ranked.places, (id) => this.#names.place(id)),
      titles: await named(ranked.titles, (id) => this.#names.title(id)),
    }
  }
}

/**
 * Whether a published record may be served: no older than its pass took plus the lease its author
 * took (`leaseMs`, or three of its intervals when longer). A living holder renews the lease and
 * publishes again within that time; past it the lease has lapsed or its writes fail.
 */
function isFresh(record: StatsRecord, now: number, leaseMs: number): boolean {
  const leaseTtlMs = Math.max(leaseMs, 3 * record.everyMs)
  return now - record.aggregate.at <= record.aggregate.computeMs + leaseTtlMs
}

function rankOf(activity: Activity): PresenceType {
  switch (activity.kind) {
    case 'inStudio':
      return PresenceType.InStudio
    case 'inGame':
      return PresenceType.InGame
    default:
      return PresenceType.Online
  }
}

function rank(tally: Tally): Ranked {
  tally.fold()
  const sorted = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1] || compareIds(a[0], b[0]))
  return {
    totals: tally.totals,
    universes: sorted(tally.universes),
    places: sorted(tally.places),
    titles: sorted(tally.titles),
    rootOf: tally.rootOf,
  }
}

/** Decimal ids by value (shorter is smaller), other ids as text: a stable order for ties. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
}
