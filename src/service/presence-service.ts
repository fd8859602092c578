import type { Activity, OfflineReason, UserPresence } from '../core/presence.js'
import {
  accessOf,
  strangers,
  visiblePresence,
  type Relation,
  type UserSettings,
  type Viewer,
  type VisiblePresence,
} from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { ChangeBus } from '../realtime/change-bus.js'
import type { PresenceChange, PresenceStore, SessionWrite } from '../store/presence-store.js'
import type { Place, ProfileStore } from '../store/profile-store.js'
import type { Clock } from './clock.js'

export interface PresenceServiceDeps {
  presence: PresenceStore
  profiles: ProfileStore
  bus: ChangeBus
  clock: Clock
  /** How long a session lives after each heartbeat unless the write says otherwise. */
  sessionTtlMs: number
}

export type HeartbeatInput = Omit<SessionWrite, 'ttlMs'> & { ttlMs?: number }

/** The use cases every protocol calls. Privacy is applied here, through the core, once. */
export class PresenceService {
  readonly presence: PresenceStore
  readonly profiles: ProfileStore
  readonly bus: ChangeBus
  readonly clock: Clock
  readonly sessionTtlMs: number

  constructor(deps: PresenceServiceDeps) {
    this.presence = deps.presence
    this.profiles = deps.profiles
    this.bus = deps.bus
    this.clock = deps.clock
    this.sessionTtlMs = deps.sessionTtlMs
  }

  /** Creates or refreshes a session and tells every node. */
  async heartbeat(input: HeartbeatInput): Promise<PresenceChange> {
    const activity = await this.#resolvePlace(input.activity)
    const change = await this.presence.heartbeat(
      { ...input, activity, ttlMs: input.ttlMs ?? this.sessionTtlMs },
      this.clock.now(),
    )
    await this.bus.publish({ type: 'presence', change })
    return change
  }

  async endSession(
    userId: UserId,
    key: string,
    reason: OfflineReason = 'explicit',
  ): Promise<PresenceChange | undefined> {
    const change = await this.presence.end(userId, key, this.clock.now(), reason)
    if (change) await this.bus.publish({ type: 'presence', change })
    return change
  }

  /** The raw presences, without privacy: for trusted code paths (admin, self) only. */
  async rawPresences(ids: readonly UserId[]): Promise<UserPresence[]> {
    return this.presence.getMany(ids, this.clock.now())
  }

  /** The presences of `ids` as `viewer` may see them, in order. */
  async lookup(viewer: Viewer, ids: readonly UserId[]): Promise<VisiblePresence[]> {
    const now = this.clock.now()
    const [presences, settings, relations] = await Promise.all([
      this.presence.getMany(ids, now),
      this.profiles.getSettings(ids),
      this.#relationsOf(viewer, ids),
    ])
    return presences.map((presence, i) => {
      const targetSettings = settings[i]!
      const access = accessOf(viewer, presence.userId, targetSettings, relations?.[i] ?? strangers)
      return visiblePresence(presence, access, targetSettings, now)
    })
  }

  async getSettings(id: UserId): Promise<UserSettings> {
    const [settings] = await this.profiles.getSettings([id])
    return settings!
  }

  /**
   * Changes a user's privacy settings. Going invisible freezes the lastOnline others see at
   * its current value, so nothing about the invisible period leaks.
   */
  async putSettings(
    id: UserId,
    next: Pick<UserSettings, 'visibility' | 'invisible'>,
  ): Promise<UserSettings> {
    const current = await this.getSettings(id)
    let frozenLastOnline = current.invisible ? current.frozenLastOnline : undefined
    if (next.invisible && !current.invisible) {
      const [presence] = await this.presence.getMany([id], this.clock.now())
      frozenLastOnline = presence?.lastOnline
    }
    const settings: UserSettings = next.invisible
      ? { visibility: next.visibility, invisible: true, frozenLastOnline }
      : { visibility: next.visibility, invisible: false }
    await this.profiles.putSettings(id, settings)
    await this.bus.publish({ type: 'settings', userId: id, before: current, after: settings })
    return settings
  }

  async setFriends(a: UserId, b: UserId, friends: boolean): Promise<void> {
    await this.profiles.setFriends(a, b, friends)
    await this.bus.publish({ type: 'relation', users: [a, b] })
  }

  async setBlocked(blocker: UserId, blocked: UserId, isBlocked: boolean): Promise<void> {
    await this.profiles.setBlocked(blocker, blocked, isBlocked)
    await this.bus.publish({ type: 'relation', users: [blocker, blocked] })
  }

  async putPlace(place: Place): Promise<void> {
    await this.profiles.putPlace(place)
  }

  async #relationsOf(viewer: Viewer, ids: readonly UserId[]): Promise<Relation[] | undefined> {
    return viewer.kind === 'user' ? this.profiles.getRelations(viewer.userId, ids) : undefined
  }

  /** Fills universe, root place and place name from the catalogue, at write time. */
  async #resolvePlace(activity: Activity): Promise<Activity> {
    if (activity.placeId === undefined) return activity
    const place = await this.profiles.getPlace(activity.placeId)
    if (!place) return activity
    return {
      ...activity,
      universeId: activity.universeId ?? place.universeId,
      rootPlaceId: activity.rootPlaceId ?? place.rootPlaceId,
      location: place.name,
    }
  }
}
