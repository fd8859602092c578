import type { UserSettings } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import type { PresenceChange } from '../store/presence-store.js'

/**
 * What crosses nodes: raw changes, never projections. Each node projects per subscriber.
 * - presence: a user's sessions changed;
 * - settings: a user's privacy settings changed (every watcher must re-project them); `before`
 *   and `after` let a listener judge each change by the settings in force when it happened
 *   (absent from events of bulk imports);
 * - relation: two users' friendship or block changed.
 */
export type BusEvent =
  | { type: 'presence'; change: PresenceChange }
  | { type: 'settings'; userId: UserId; before?: UserSettings; after?: UserSettings }
  | { type: 'relation'; users: readonly [UserId, UserId] }

/** Carries BusEvents to every node. Adapters: LocalChangeBus (one process), RedisChangeBus. */
export interface ChangeBus {
  publish(event: BusEvent): Promise<void>
  /** Handlers run for events published on any node, this one included. Returns unsubscribe. */
  subscribe(handler: (event: BusEvent) => void): () => void
  /** How many nodes listen on the bus now (fleet mode); absent on a single-process bus. */
  nodes?(): Promise<number>
  close(): Promise<void>
}
