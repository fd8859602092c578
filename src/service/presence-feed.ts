import {
  PresenceType,
  deriveUserState,
  expiredAt,
  expiryOf,
  instantBefore,
  instantBeforeUnswept,
  liveSessions,
  primarySession,
  type Activity,
  type OfflineReason,
  type Session,
  type UserPresence,
} from '../core/presence.js'
import {
  settingsAt,
  settingsOfChangeAt,
  type UserSettings,
  type Visibility,
} from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { BusEvent, ChangeBus } from '../realtime/change-bus.js'
import type { PresenceChange } from '../core/presence.js'
import type { CatalogueStore } from '../store/catalogue-store.js'
import type { PresenceStore } from '../store/presence-store.js'
import type { PrivacyStore } from '../store/privacy-store.js'
import { CatalogueNames } from './catalogue-names.js'
import type { Clock } from './clock.js'

export type FeedState = 'offline' | 'online' | 'inGame' | 'inStudio'
export type FeedType = 'online' | 'update' | 'offline'

/**
 * Where, as the public feed may show it: only for users whose location everyone may see. Names
 * come from the catalogues, as in the dashboard's top lists (a universe is named after its root
 * place); `location` is the text the client reported, or the place name.
 */
export interface FeedWhere {
  universeId?: string
  universeName?: string
  placeId?: string
  placeName?: string
  titleId?: string
  titleName?: string
  location?: string
}

/** A change as anyone may see it: a pseudonym, never the id, and no invisible user at all. */
export interface PublicFeedItem {
  at: number
  /** A short keyed hash of the user id; the key rotates daily. */
  user: string
  type: FeedType
  state: FeedState
  /** Why the user went offline; on `offline` items only. */
  reason?: OfflineReason
  /** Absent when the user's location is not public (or they are nowhere in particular). */
  where?: FeedWhere
}

/** A change as operators see it (admin key): ids, settings and every live session. */
export interface AdminFeedItem {
  at: number
  userId: UserId
  type: FeedType | 'settings'
  state: FeedState
  before: FeedState
  reason?: OfflineReason
  invisible: boolean
  visibility: Visibility
  sessions: Array<
    Pick<Session, 'key' | 'source' | 'deviceType' | 'activity'> & { where?: FeedWhere }
  >
}

/**
 * What one flush sends: items, and (admin only) how many changes were left out to keep the feed
 * small. The public feed says nothing of what it left out: the changes left out may include
 * invisible users'.
 */
export interface FeedBatch<Item> {
  items: Item[]
  dropped?: number
}

export type FeedListener =
  | { kind: 'public'; send(batch: FeedBatch<PublicFeedItem>): void }
  | { kind: 'admin'; send(batch: FeedBatch<AdminFeedItem>): void }

export interface PresenceFeedDeps {
  bus: ChangeBus
  profiles: Pick<PrivacyStore, 'getSettings'> & Pick<CatalogueStore, 'getPlace' | 'getTitle'>
  /** Read when a user's settings change, to tell the public what that changed for them. */
  presence: Pick<PresenceStore, 'getMany'>
  clock: Clock
  /** The public pseudonym of a user id at an instant (see PublicFeedItem.user). */
  pseudonym(userId: UserId, at: number): string
}

export interface PresenceFeedOptions {
  /** Changes are gathered for this long, then sent as one batch; default 250 ms. */
  flushMs?: number
  /** At most this many items per batch; the admin feed counts the rest in `dropped`; default 50. */
  maxPerFlush?: number
  /**
   * Changes kept between two flushes; default 10,000. Past it changes are dropped, and the public
   * part of the batch is withheld: a dropped change could be the one that says how to judge a
   * kept one.
   */
  maxPending?: number
}

const stateNames: Record<number, FeedState> = {
  [PresenceType.Offline]: 'offline',
  [PresenceType.Online]: 'online',
  [PresenceType.InGame]: 'inGame',
  [PresenceType.InStudio]: 'inStudio',
}

interface PresenceEntry {
  kind: 'presence'
  seq: number
  /** The grid instant (performance.now()) of the flush that sends it. */
  due: number
  at: number
  change: PresenceChange
  type: FeedType
  before: PresenceType
  after: PresenceType
  /** Settings read as the change arrived; null when they could not be read. */
  settings?: UserSettings | null
  ready: Promise<unknown>
}

interface SettingsEntry {
  kind: 'settings'
  seq: number
  due: number
  at: number
  userId: UserId
  /** From the event; absent on events of bulk imports. */
  before: UserSettings | undefined
  after: UserSettings | undefined
  /** `after`, or read as the change arrived; null when it could not be read. */
  current?: UserSettings | null
  /**
   * Read as the change arrived, with every stored session (expired and not swept yet too): the
   * operators' item shows it, and the public judge reads it when the change matters to the
   * public (`judged`); null on failure.
   */
  presence?: UserPresence | null
  /** The change may alter what the public sees (its level of sight changed). */
  judged: boolean
  ready: Promise<unknown>
}

type Entry = PresenceEntry | SettingsEntry

/** Where an activity is, before naming: the root place is kept to name the universe by. */
interface Place {
  universeId?: string
  rootPlaceId?: string
  placeId?: string
  titleId?: string
  location?: string
}

/** What the public may see of a user: Roblox's anonymous view, reduced to what the feed shows. */
interface PublicView {
  state: PresenceType
  where: Place | undefined
}

interface Decided {
  at: number
  userId: UserId
  type: FeedType
  view: PublicView
  reason?: OfflineReason
}

/**
 * A sampled, privacy-safe stream of every presence change on the bus (all nodes), for the
 * dashboard. Listens to the bus only while someone listens to it.
 *
 * The public projection is the diff of what an anonymous caller may see of each user: a user
 * who is invisible is offline (turning invisible reads as going offline, turning visible as
 * coming online), and a place is shown only when everyone may see it (a friends-only user who
 * moves makes no public event). Each change is judged by the settings in force when it
 * happened, in the bus's order: the `before` of the user's next settings change when one
 * follows in the batch, else those the change carries (PresenceChange.settings), else the
 * settings read as the change arrived. So a change made while
 * invisible stays hidden even if invisibility ends before the flush.
 *
 * Batches are flushed on a fixed grid of `flushMs`, so when a visible change is published
 * depends only on when it happened, never on whether someone hidden changed something first.
 */
export class PresenceFeed {
  readonly #deps: PresenceFeedDeps
  readonly #flushMs: number
  readonly #max: number
  readonly #maxPending: number
  readonly #names: CatalogueNames
  readonly #listeners = new Set<FeedListener>()
  #entries: Entry[] = []
  #seq = 0
  /** Entries with a lower seq may be missing a later change that judges them. */
  #incompleteBefore = 0
  #dropped = 0
  #timer: NodeJS.Timeout | undefined
  #flushing = false
  #unsubscribe: (() => void) | undefined
  #settingsBatch: { ids: UserId[]; read: Promise<UserSettings[] | undefined> } | undefined

  constructor(deps: PresenceFeedDeps, options: PresenceFeedOptions = {}) {
    this.#deps = deps
    this.#flushMs = options.flushMs ?? 250
    this.#max = options.maxPerFlush ?? 50
    this.#maxPending = options.maxPending ?? 10_000
    this.#names = new CatalogueNames(deps.profiles, deps.clock)
  }

  /** Adds a listener; returns its removal. */
  listen(listener: FeedListener): () => void {
    this.#listeners.add(listener)
    this.#unsubscribe ??= this.#deps.bus.subscribe((event) => this.#onEvent(event))
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.stop()
    }
  }

  get listeners(): number {
    return this.#listeners.size
  }

  listenersByKind(): { public: number; admin: number } {
    const counts = { public: 0, admin: 0 }
    for (const listener of this.#listeners) counts[listener.kind]++
    return counts
  }

  /** Resolves once every change received so far has been sent or dropped (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#entries.length > 0 || this.#flushing || this.#timer !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  stop(): void {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#entries = []
    this.#incompleteBefore = this.#seq
    this.#dropped = 0
  }

  #onEvent(event: BusEvent): void {
    const at = this.#deps.clock.now()
    if (event.type === 'settings') {
      this.#onSettings(event.userId, event.before, event.after, at)
      return
    }
    if (event.type !== 'presence') return
    const { change } = event
    // an expiry the write told first (a heartbeat before the sweep): as the sweep's change
    const expiry = expiryOf(change)
    if (expiry) this.#onPresence(expiry, expiredAt(change, at))
    this.#onPresence(change, at)
  }

  #onPresence(change: PresenceChange, at: number): void {
    const beforeAt = instantBefore(change, at)
    const before = deriveUserState(change.before.sessions, beforeAt)
    const after = deriveUserState(change.after.sessions, at)
    let type: FeedType
    if (before === PresenceType.Offline && after === PresenceType.Offline) return
    if (before === PresenceType.Offline) type = 'online'
    else if (after === PresenceType.Offline) type = 'offline'
    else if (
      before !== after ||
      whereKey(change.before.sessions, beforeAt) !== whereKey(change.after.sessions, at)
    ) {
      type = 'update'
    } else return
    if (this.#full()) return
    const entry: PresenceEntry = {
      kind: 'presence',
      seq: this.#seq++,
      due: this.#due(),
      at,
      change,
      type,
      before,
      after,
      ready: Promise.resolve(),
    }
    // the settings it was stored under, where the store says (fleet: folded into the value; an
    // expiry stored with a settings write: those the write replaced), else read as it arrives
    if (change.settings) entry.settings = change.settings
    else entry.ready = this.#readSettings(change.userId).then((s) => (entry.settings = s ?? null))
    this.#append(entry)
  }

  #onSettings(
    userId: UserId,
    before: UserSettings | undefined,
    after: UserSettings | undefined,
    at: number,
  ): void {
    if (this.#full()) return
    const entry: SettingsEntry = {
      kind: 'settings',
      seq: this.#seq++,
      due: this.#due(),
      at,
      userId,
      before,
      after,
      judged: !!before && !!after && publicLevel(before) !== publicLevel(after),
      ready: Promise.resolve(),
    }
    const reads: Array<Promise<unknown>> = []
    if (after) entry.current = after
    else reads.push(this.#readSettings(userId).then((s) => (entry.current = s ?? null)))
    // every stored session: one expired and not swept yet is judged alive before (judgeSettings);
    // the operators' item shows those alive as the change was made
    reads.push(
      this.#deps.presence.getMany([userId], -Infinity).then(
        ([presence]) => (entry.presence = presence ?? null),
        () => (entry.presence = null),
      ),
    )
    entry.ready = Promise.all(reads)
    this.#append(entry)
  }

  /** True (and the change counted as dropped) when the batch has no room left. */
  #full(): boolean {
    if (this.#entries.length < this.#maxPending) return false
    this.#dropped++
    this.#incompleteBefore = this.#seq
    return true
  }

  #append(entry: Entry): void {
    this.#entries.push(entry)
    this.#schedule()
  }

  /**
   * The next instant of the flush grid. On the timers' own time base, whatever the (possibly
   * manual) clock says.
   */
  #due(): number {
    return (Math.floor(performance.now() / this.#flushMs) + 1) * this.#flushMs
  }

  #schedule(): void {
    const first = this.#entries[0]
    if (this.#timer || this.#flushing || !this.#unsubscribe || !first) return
    const wait = Math.max(0, Math.ceil(first.due - performance.now()))
    this.#timer = setTimeout(() => void this.#flush(), wait)
  }

  /** Settings of the users whose changes arrive in one turn of the event loop, in one read. */
  #readSettings(userId: UserId): Promise<UserSettings | undefined> {
    let batch = this.#settingsBatch
    if (!batch) {
      const ids: UserId[] = []
      const read = Promise.resolve().then(() => {
        this.#settingsBatch = undefined
        return this.#deps.profiles.getSettings(ids)
      })
      batch = this.#settingsBatch = { ids, read: read.catch(() => undefined) }
    }
    const index = batch.ids.push(userId) - 1
    return batch.read.then((all) => all?.[index])
  }

  async #flush(): Promise<void> {
    this.#timer = undefined
    this.#flushing = true
    const subscription = this.#unsubscribe
    try {
      // a change that arrived after the grid instant waits for the next one, even when the
      // timer ran late: it is never sent earlier for having had company
      const now = performance.now()
      let count = 0
      while (count < this.#entries.length && this.#entries[count]!.due <= now) count++
      if (count === 0) return
      await Promise.all(this.#entries.slice(0, count).map((e) => e.ready))
      // a change published while those reads ran may judge one of this batch: let any change
      // already handed to the bus arrive before deciding
      await new Promise<void>((resolve) => setImmediate(resolve))
      if (this.#unsubscribe !== subscription) return
      const entries = this.#entries
      this.#entries = entries.slice(count)
      const dropped = this.#dropped
      this.#dropped = 0
      await this.#send(entries, count, dropped)
    } finally {
      this.#flushing = false
      if (this.#entries.length > 0) this.#schedule()
    }
  }

  /** Sends the first `count` entries; the ones after them may still judge them. */
  async #send(entries: readonly Entry[], count: number, dropped: number): Promise<void> {
    const nextSettings: Array<SettingsEntry | undefined> = []
    const nextPresence: Array<PresenceEntry | undefined> = []
    const settingsAfter = new Map<UserId, SettingsEntry>()
    const presenceAfter = new Map<UserId, PresenceEntry>()
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!
      if (entry.kind === 'presence') {
        if (i < count) nextSettings[i] = settingsAfter.get(entry.change.userId)
        presenceAfter.set(entry.change.userId, entry)
      } else {
        if (i < count) nextPresence[i] = presenceAfter.get(entry.userId)
        settingsAfter.set(entry.userId, entry)
      }
    }
    const decided: Decided[] = []
    const admin: AdminFeedItem[] = []
    let adminDropped = dropped
    for (let i = 0; i < count; i++) {
      const entry = entries[i]!
      const complete = entry.seq >= this.#incompleteBefore
      if (entry.kind === 'presence') {
        const next = nextSettings[i]
        const settings = next ? next.before : entry.settings
        if (complete && settings) {
          const item = judgePresence(entry, settings)
          if (item) decided.push(item)
        }
        const shown = settings ?? entry.settings
        if (!shown) adminDropped++
        else if (admin.length < this.#max) admin.push(await this.#adminPresence(entry, shown))
        else adminDropped++
      } else {
        const next = nextPresence[i]?.change.before
        const presence = next ? withUnswept(next, entry.presence, entry.at) : entry.presence
        const judged = next ? presence : entry.judged ? entry.presence : undefined
        if (complete && judged) {
          const item = judgeSettings(entry, judged)
          if (item) decided.push(item)
        }
        if (!entry.current || !presence) adminDropped++
        else if (admin.length < this.#max) {
          admin.push(await this.#adminSettings(entry, entry.current, presence))
        } else adminDropped++
      }
    }
    const publicItems: PublicFeedItem[] = []
    for (const item of decided.slice(0, this.#max)) publicItems.push(await this.#publicItem(item))
    for (const listener of this.#listeners) {
      if (listener.kind === 'admin') {
        if (admin.length > 0 || adminDropped > 0) {
          listener.send({ items: admin, dropped: adminDropped })
        }
      } else if (publicItems.length > 0) {
        listener.send({ items: publicItems })
      }
    }
  }

  async #publicItem(item: Decided): Promise<PublicFeedItem> {
    const where = item.view.where && (await this.#named(item.view.where))
    return {
      at: item.at,
      user: this.#deps.pseudonym(item.userId, item.at),
      type: item.type,
      state: stateNames[item.view.state]!,
      ...(item.reason !== undefined && { reason: item.reason }),
      ...(where && { where }),
    }
  }

  async #adminPresence(entry: PresenceEntry, settings: UserSettings): Promise<AdminFeedItem> {
    const { change } = entry
    return {
      at: entry.at,
      userId: change.userId,
      type: entry.type,
      state: stateNames[entry.after]!,
      before: stateNames[entry.before]!,
      ...(change.reason !== undefined && { reason: change.reason }),
      invisible: settings.invisible,
      visibility: settings.visibility,
      sessions: await this.#adminSessions(change.after.sessions),
    }
  }

  /**
   * A settings change as operators see it: the user's presence itself, which no setting hides
   * from them, alive as the change was made (both sides: settings move no session).
   */
  async #adminSettings(
    entry: SettingsEntry,
    settings: UserSettings,
    presence: UserPresence,
  ): Promise<AdminFeedItem> {
    const state = stateNames[deriveUserState(presence.sessions, entry.at)]!
    return {
      at: entry.at,
      userId: entry.userId,
      type: 'settings',
      state,
      before: state,
      invisible: settings.invisible,
      visibility: settings.visibility,
      sessions: await this.#adminSessions(liveSessions(presence.sessions, entry.at)),
    }
  }

  async #adminSessions(sessions: readonly Session[]): Promise<AdminFeedItem['sessions']> {
    return Promise.all(
      sessions.map(async ({ key, source, deviceType, activity }) => {
        const where = whereOf(activity)
        return {
          key,
          source,
          deviceType,
          activity,
          ...(where && { where: await this.#named(where) }),
        }
      }),
    )
  }

  /** The place, universe and title names, as the top lists show them. */
  async #named(place: Place): Promise<FeedWhere> {
    const { universeId, rootPlaceId, placeId, titleId, location } = place
    const [universeName, placeName, titleName] = await Promise.all([
      universeId === undefined || rootPlaceId === undefined ? null : this.#names.place(rootPlaceId),
      placeId === undefined ? null : this.#names.place(placeId),
      titleId === undefined ? null : this.#names.title(titleId),
    ])
    const where: FeedWhere = {}
    if (universeId !== undefined) where.universeId = universeId
    if (universeName !== null) where.universeName = universeName
    if (placeId !== undefined) where.placeId = placeId
    if (placeName !== null) where.placeName = placeName
    if (titleId !== undefined) where.titleId = titleId
    if (titleName !== null) where.titleName = titleName
    if (location !== undefined) where.location = location
    return where
  }
}

/**
 * A presence change as the public sees it, by `settings`, those in force as it was made. Its
 * `before` may lie earlier than a settings change already told (a sweep's expiry, told late): it
 * is judged by the settings of that instant (settingsAt), so that a session that expired while
 * the user was invisible and was swept after invisibility ended shows nothing (52ebbc3 for the
 * webhooks; here it was an `offline` (timeout) of a user the public saw offline throughout).
 */
function judgePresence(entry: PresenceEntry, settings: UserSettings): Decided | undefined {
  const { change, at } = entry
  const beforeAt = instantBefore(change, at)
  const before = publicView(change.before.sessions, settingsAt(settings, beforeAt), beforeAt)
  const after = publicView(change.after.sessions, settings, at)
  const type = diffType(before, after)
  if (!type) return undefined
  return {
    at,
    userId: change.userId,
    type,
    view: after,
    ...(type === 'offline' && change.reason !== undefined && { reason: change.reason }),
  }
}

/**
 * A change of settings is, to the public, the change of what they see of the user: turning
 * invisible while online reads as an ordinary sign-out, turning visible as coming online.
 * `presence` holds every stored session, those expired and not swept yet too: both sides are
 * read just before the first of those expired (instantBeforeUnswept), where the sweep's change
 * will begin, so that a user whose session expired and who turned invisible before the sweep goes
 * offline here (the sweep, judged invisible, says nothing: the public kept the user online),
 * while any other change leaves the expiry to the sweep.
 */
function judgeSettings(entry: SettingsEntry, presence: UserPresence): Decided | undefined {
  if (!entry.before || !entry.after) return undefined
  const beforeAt = instantBeforeUnswept(presence, entry.at)
  const before = publicView(presence.sessions, settingsAt(entry.before, beforeAt), beforeAt)
  // both sides at that instant: the sweep will tell the expiry itself, judged by the settings
  // after this change (an offline here too would make two), unless they hide the user then;
  // never showing more than the settings of that instant did (a place left while hidden)
  const after = publicView(
    presence.sessions,
    settingsOfChangeAt(entry.before, entry.after, beforeAt, entry.at),
    beforeAt,
  )
  const type = diffType(before, after)
  if (!type) return undefined
  return {
    at: entry.at,
    userId: entry.userId,
    type,
    view: after,
    ...(type === 'offline' && { reason: 'explicit' as const }),
  }
}

/**
 * `next` (the `before` of the user's next presence change, what stood until it) with the sessions
 * it leaves out that had expired by the settings change at `at` and were not swept yet as it
 * arrived (`read` then, every stored session): a store answers a write's `before` with its live
 * sessions only, and such a session must count alive just before it expired (judgeSettings), as
 * the sweep's own change will. Without them a user who hid after an expiry, with a sign-in
 * (hidden) in the same batch, stayed online to the public for good.
 */
function withUnswept(
  next: UserPresence,
  read: UserPresence | null | undefined,
  at: number,
): UserPresence {
  if (!read) return next
  const keys = new Set(next.sessions.map((s) => s.key))
  const unswept = read.sessions.filter((s) => s.expiresAt <= at && !keys.has(s.key))
  return unswept.length === 0 ? next : { ...next, sessions: [...next.sessions, ...unswept] }
}

function publicLevel(settings: UserSettings): 'hidden' | 'presence' | 'full' {
  if (settings.invisible) return 'hidden'
  return settings.visibility === 'everyone' ? 'full' : 'presence'
}

const offlineView: PublicView = { state: PresenceType.Offline, where: undefined }

function publicView(sessions: readonly Session[], settings: UserSettings, at: number): PublicView {
  if (settings.invisible) return offlineView
  const state = deriveUserState(sessions, at)
  if (state === PresenceType.Offline) return offlineView
  const primary = settings.visibility === 'everyone' ? primarySession(sessions, at) : undefined
  return { state, where: primary && whereOf(primary.activity) }
}

function diffType(before: PublicView, after: PublicView): FeedType | undefined {
  if (
    before.state === after.state &&
    JSON.stringify(before.where) === JSON.stringify(after.where)
  ) {
    return undefined
  }
  if (before.state === PresenceType.Offline) return 'online'
  if (after.state === PresenceType.Offline) return 'offline'
  return 'update'
}

function whereOf(activity: Activity): Place | undefined {
  const where: Place = {}
  if (activity.universeId !== undefined) where.universeId = activity.universeId
  if (activity.rootPlaceId !== undefined) where.rootPlaceId = activity.rootPlaceId
  if (activity.placeId !== undefined) where.placeId = activity.placeId
  if (activity.titleId !== undefined) where.titleId = activity.titleId
  if (activity.location !== undefined) where.location = activity.location
  return Object.keys(where).length > 0 ? where : undefined
}

function whereKey(sessions: readonly Session[], now: number): string {
  const primary = primarySession(sessions, now)
  return primary ? JSON.stringify(whereOf(primary.activity) ?? {}) : ''
}
