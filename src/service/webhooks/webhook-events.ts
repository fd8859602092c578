import { PresenceType, type OfflineReason, type UserPresence } from '../../core/presence.js'
import {
  accessKey,
  accessOf,
  strangers,
  visiblePresence,
  type Access,
  type UserSettings,
  type Viewer,
  type VisiblePresence,
} from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { QueuedEvent, WebhookEventType, WebhookRecord } from '../../store/webhook-store.js'

/** An endpoint that receives events now, with the viewer its key makes it. */
export interface Subscriber {
  webhook: WebhookRecord
  viewer: Viewer
  events: ReadonlySet<WebhookEventType>
  users: ReadonlySet<string> | undefined
  universes: ReadonlySet<string> | undefined
  titles: ReadonlySet<string> | undefined
}

export function subscriberOf(webhook: WebhookRecord, viewer: Viewer): Subscriber {
  const set = (list: readonly string[]) => (list.length > 0 ? new Set(list) : undefined)
  return {
    webhook,
    viewer,
    events: new Set(webhook.events),
    users: set(webhook.filter.users),
    universes: set(webhook.filter.universes),
    titles: set(webhook.filter.titles),
  }
}

/** One side of a change: the presence, the settings in force and the instant to read it at. */
export interface Side {
  presence: UserPresence
  settings: UserSettings
  at: number
}

/** A change of what someone may see of a user: sessions moved, or settings changed. */
export interface Judged {
  userId: UserId
  before: Side
  after: Side
  /** Why, should the change make the user offline to someone. */
  reason: OfflineReason
}

/** The wire view of a presence in payloads: the native API's (docs/reference/native.md). */
export type PresenceView = (presence: VisiblePresence) => unknown

interface Outcome {
  type: WebhookEventType | undefined
  before: VisiblePresence
  after: VisiblePresence
  presence: unknown
}

/**
 * The events one change makes, one per subscriber that may see a difference and wants it.
 *
 * Each subscriber sees the user through the core's privacy, exactly as its key does on the HTTP
 * read (`accessOf` + `visiblePresence`, a service viewer being a stranger to every user): a
 * `presence:read` key sees an invisible user as offline and a friends-only user without a place;
 * `presence:read:private` sees everything. The event type is the difference between the two
 * views: offline → not offline is `online`, the reverse `offline`, any other visible difference
 * `update`. Place filters match only what the subscriber may see, so a filter cannot reveal a
 * hidden place. Projections are shared by subscribers with the same access.
 */
export function eventsOf(
  judged: Judged,
  subscribers: readonly Subscriber[],
  view: PresenceView,
  eventId: () => string,
  occurredAt: number,
): QueuedEvent[] {
  const { userId, before, after } = judged
  const outcomes = new Map<string, Outcome>()
  const events: QueuedEvent[] = []
  let id: string | undefined
  for (const subscriber of subscribers) {
    if (subscriber.users && !subscriber.users.has(userId)) continue
    const beforeAccess = accessOf(subscriber.viewer, userId, before.settings, strangers)
    const afterAccess = accessOf(subscriber.viewer, userId, after.settings, strangers)
    const key = `${accessKey(beforeAccess)}|${accessKey(afterAccess)}`
    let outcome = outcomes.get(key)
    if (!outcome) {
      outcome = judge(judged, beforeAccess, afterAccess, view)
      outcomes.set(key, outcome)
    }
    const { type } = outcome
    if (!type || !subscriber.events.has(type)) continue
    if (!placeMatches(subscriber, outcome.before, outcome.after)) continue
    id ??= eventId()
    events.push({
      webhookId: subscriber.webhook.id,
      eventId: id,
      userId,
      type,
      createdAt: occurredAt,
      body: JSON.stringify({
        id,
        type,
        webhookId: subscriber.webhook.id,
        occurredAt: new Date(occurredAt).toISOString(),
        userId,
        presence: outcome.presence,
        ...(type === 'offline' && { reason: judged.reason }),
      }),
    })
  }
  return events
}

function judge(judged: Judged, beforeAccess: Access, afterAccess: Access, view: PresenceView) {
  const { before: b, after: a } = judged
  const before = visiblePresence(b.presence, beforeAccess, b.settings, b.at)
  const after = visiblePresence(a.presence, afterAccess, a.settings, a.at)
  const presence = view(after)
  const wasOffline = before.state === PresenceType.Offline
  const isOffline = after.state === PresenceType.Offline
  let type: WebhookEventType | undefined
  if (wasOffline && !isOffline) type = 'online'
  else if (!wasOffline && isOffline) type = 'offline'
  else if (!wasOffline && JSON.stringify(view(before)) !== JSON.stringify(presence)) type = 'update'
  return { type, before, after, presence }
}

function placeMatches(s: Subscriber, before: VisiblePresence, after: VisiblePresence): boolean {
  const { universes, titles } = s
  if (!universes && !titles) return true
  const sessions = [...before.sessions, ...after.sessions]
  if (universes && !sessions.some((x) => universes.has(x.activity.universeId ?? ''))) return false
  if (titles && !sessions.some((x) => titles.has(x.activity.titleId ?? ''))) return false
  return true
}
