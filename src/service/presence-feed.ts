import {
  PresenceType,
  deriveUserState,
  primarySession,
  type Activity,
  type OfflineReason,
  type Session,
} from '../core/presence.js'
import type { Visibility } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { BusEvent, ChangeBus } from '../realtime/change-bus.js'
import type { PresenceChange } from '../core/presence.js'
import type { PrivacyStore } from '../store/privacy-store.js'
import type { Clock } from './clock.js'

export type FeedState = 'offline' | 'online' | 'inGame' | 'inStudio'
export type FeedType = 'online' | 'update' | 'offline'

/** Where, as the public feed may show it: only for users whose location everyone may see. */
export interface FeedWhere {
  universeId?: string
  placeId?: string
  titleId?: string
  location?: string
}

/** A change as anyone may see it: a pseudonym, never the id, and no invisible user at all. */
export interface PublicFeedItem {
  at: number
  /** A short keyed hash of the user id; the key rotates daily. */
  user: string
  type: FeedType
  state: FeedState
  reason?: OfflineReason
  /** Absent when the user's location is not public. */
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
  sessions: Array<Pick<Session, 'key' | 'source' | 'deviceType' | 'activity'>>
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
  profiles: Pick<PrivacyStore, 'getSettings'>
  clock: Clock
  /** The public pseudonym of a user id at an instant (see PublicFeedItem.user). */
  pseudonym(userId: UserId, at: number): string
}

export interface PresenceFeedOptions {
  /** Changes are gathered for this long, then sent as one batch; default 250 ms. */
  flushMs?: number
  /** At most this many items per batch; the admin feed counts the rest in `dropped`; default 50. */
  maxPerFlush?: number
}

const stateNames: Record<number, FeedState> = {
  [PresenceType.Offline]: 'offline',
  [PresenceType.Online]: 'online',
  [PresenceType.InGame]: 'inGame',
  [PresenceType.InStudio]: 'inStudio',
}

interface Pending {
  at: number
  change?: PresenceChange
  /** A settings change (admin feed only). */
  settingsOf?: UserId
  type: FeedType | 'settings'
  before: PresenceType
  after: PresenceType
}

/**
 * A sampled, privacy-safe stream of every presence change on the bus (all nodes), for the
 * dashboard. Visible changes only: a refresh heartbeat that changes neither state nor place is
 * not an event. The public projection leaves invisible users out entirely (their changes are
 * not events: a feed that showed "someone hidden moved" would leak), replaces ids by a
 * pseudonym and shows a place only when everyone may see it. Listens to the bus only while
 * someone listens to it.
 */
export class PresenceFeed {
  readonly #deps: PresenceFeedDeps
  readonly #flushMs: number
  readonly #max: number
  readonly #listeners = new Set<FeedListener>()
  #pending: Pending[] = []
  #dropped = 0
  #timer: NodeJS.Timeout | undefined
  #unsubscribe: (() => void) | undefined

  constructor(deps: PresenceFeedDeps, options: PresenceFeedOptions = {}) {
    this.#deps = deps
    this.#flushMs = options.flushMs ?? 250
    this.#max = options.maxPerFlush ?? 50
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

  stop(): void {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending = []
    this.#dropped = 0
  }

  #onEvent(event: BusEvent): void {
    const at = this.#deps.clock.now()
    if (event.type === 'settings') {
      this.#push({ at, settingsOf: event.userId, type: 'settings', before: 0, after: 0 })
      return
    }
    if (event.type !== 'presence') return
    const { change } = event
    const before = deriveUserState(change.before.sessions, at)
    const after = deriveUserState(change.after.sessions, at)
    let type: FeedType
    if (before === PresenceType.Offline && after === PresenceType.Offline) return
    if (before === PresenceType.Offline) type = 'online'
    else if (after === PresenceType.Offline) type = 'offline'
    else if (
      before !== after ||
      whereKey(change.before.sessions, at) !== whereKey(change.after.sessions, at)
    ) {
      type = 'update'
    } else return
    this.#push({ at, change, type, before, after })
  }

  #push(item: Pending): void {
    // room for changes the public feed will leave out (invisible users, settings)
    if (this.#pending.length >= this.#max * 4) {
      this.#dropped++
      return
    }
    this.#pending.push(item)
    this.#timer ??= setTimeout(() => void this.#flush(), this.#flushMs)
  }

  async #flush(): Promise<void> {
    this.#timer = undefined
    const pending = this.#pending
    const dropped = this.#dropped
    this.#pending = []
    this.#dropped = 0
    if (pending.length === 0) return
    const ids = pending.map((p) => p.change?.userId ?? p.settingsOf!)
    const settings = await this.#deps.profiles.getSettings(ids).catch(() => undefined)
    // without settings nobody's privacy can be known: send nothing rather than guess
    if (!settings) return
    const publicItems: PublicFeedItem[] = []
    const adminItems: AdminFeedItem[] = []
    pending.forEach((p, i) => {
      const s = settings[i]!
      const userId = ids[i]!
      const sessions = p.change?.after.sessions ?? []
      adminItems.push({
        at: p.at,
        userId,
        type: p.type,
        state: stateNames[p.after]!,
        before: stateNames[p.before]!,
        ...(p.change?.reason !== undefined && { reason: p.change.reason }),
        invisible: s.invisible,
        visibility: s.visibility,
        sessions: sessions.map(({ key, source, deviceType, activity }) => ({
          key,
          source,
          deviceType,
          activity,
        })),
      })
      if (p.type === 'settings' || s.invisible) return
      const primary = primarySession(sessions, p.at)
      publicItems.push({
        at: p.at,
        user: this.#deps.pseudonym(userId, p.at),
        type: p.type,
        state: stateNames[p.after]!,
        ...(p.change?.reason !== undefined && { reason: p.change.reason }),
        ...(s.visibility === 'everyone' && primary && { where: whereOf(primary.activity) }),
      })
    })
    const admin = {
      items: adminItems.slice(0, this.#max),
      dropped: dropped + Math.max(0, adminItems.length - this.#max),
    }
    const shown = { items: publicItems.slice(0, this.#max) }
    for (const listener of this.#listeners) {
      if (listener.kind === 'admin') listener.send(admin)
      else if (shown.items.length > 0) listener.send(shown)
    }
  }
}

function whereOf(activity: Activity): FeedWhere {
  const where: FeedWhere = {}
  if (activity.universeId !== undefined) where.universeId = activity.universeId
  if (activity.placeId !== undefined) where.placeId = activity.placeId
  if (activity.titleId !== undefined) where.titleId = activity.titleId
  if (activity.location !== undefined) where.location = activity.location
  return where
}

function whereKey(sessions: readonly Session[], now: number): string {
  const primary = primarySession(sessions, now)
  return primary ? JSON.stringify(whereOf(primary.activity)) : ''
}
