import type { UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { PresenceChange } from '../core/presence.js'

/**
 * What crosses nodes: raw changes, never projections. Each node projects per subscriber.
 * - presence: a user's sessions changed;
 * - settings: a user's privacy settings changed (every watcher must re-project them); `before`
 *   and `after` let a listener judge each change by the settings in force when it happened;
 * - relation: two users' friendship or block changed;
 * - revoked: an access token was revoked (logout): every node refuses it from now on;
 * - auth-blocked: a client address crossed the limit of guessed credentials: every node refuses
 *   its credentials until `until` (epoch ms) without asking the shared counter;
 * - place: a place of the catalogue changed (every place, without `placeId`): every node reads
 *   it again.
 */
export type BusEvent =
  | { type: 'presence'; change: PresenceChange }
  | { type: 'settings'; userId: UserId; before?: UserSettings; after?: UserSettings }
  | { type: 'relation'; users: readonly [UserId, UserId] }
  | { type: 'revoked'; tokenId: string; expiresAt: number }
  | { type: 'auth-blocked'; address: string; until: number }
  | { type: 'place'; placeId?: string }

/** Carries BusEvents to every node. Adapters: LocalChangeBus (one process), RedisChangeBus. */
export interface ChangeBus {
  /**
   * `batch`: how many events are published together with this one (a bulk import's), which a
   * shared bus runs one after the other: this one's deadline grows with them
   * (RedisConnection.deadlineFor) instead of being one command's.
   */
  publish(event: BusEvent, batch?: number): Promise<void>
  /**
   * publish(), done at once (a single-process bus: its handlers run in the call); a failure is
   * thrown. Absent where a publish must wait (fleet mode).
   */
  publishNow?(event: BusEvent): void
  /** Handlers run for events published on any node, this one included. Returns unsubscribe. */
  subscribe(handler: (event: BusEvent) => void): () => void
  /**
   * Calls `handler` each time this node listens again after losing the bus (a reconnect to
   * Redis): what was published meanwhile never reached it. Absent on a single-process bus.
   */
  onResubscribed?(handler: () => void): () => void
  /**
   * Whether this node hears the fleet now (fleet mode: its subscription holds); absent on a
   * single-process bus, which always does.
   */
  readonly listening?: boolean
  /** How many nodes listen on the bus now (fleet mode); absent on a single-process bus. */
  nodes?(): Promise<number>
  close(): Promise<void>
}
