import type { OfflineReason, SessionSource } from '../core/presence.js'
import type { BusEvent } from '../realtime/change-bus.js'
import type { AuthFailureSettings } from './auth-failures.js'
import type { FleetCountOperation } from '../realtime/fanout.js'
import type { DeliveryOutcome } from './webhooks/endpoint-worker.js'

/**
 * What the service tells whoever watches it work (metrics): every write, whatever protocol or
 * background duty made it, passes here, so a counter cannot miss a source.
 */
export interface ServiceObserver {
  /** Sessions created or refreshed: one per device heartbeat, one per player of a server report. */
  heartbeats?(source: SessionSource, count: number): void
  /** Sessions ended on request or because their server left or ended (not by expiry). */
  sessionsEnded?(reason: OfflineReason, count: number): void
  /** A sweep turned expired sessions into offline changes, `latenessMs` after expiresAt. */
  swept?(users: number, latenessMs: number): void
  /**
   * A write of this node (a heartbeat, a report, an end) ended `users`' sessions past expiry
   * before the sweep found them (PresenceChange.expired): an expiry each, as the sweep's would
   * have been. Counted where the write was made, never by a node that hears it on the bus.
   */
  expiredByWrite?(users: number): void
  /** This node published an event on the change bus. */
  busPublished?(type: BusEvent['type']): void
  /** This node heard an event on the change bus (its own included). */
  busReceived?(type: BusEvent['type']): void
  /**
   * A webhook delivery attempt of this node ended: delivered, failed and to be retried, parked
   * after its last attempt, or dropped (its key was revoked). `ageMs`: since the change happened.
   */
  webhookOutcome?(outcome: DeliveryOutcome, ageMs: number): void
  /**
   * Changes whose webhook events were never stored: held while the webhook store failed, then
   * dropped (more than the bound waited, or the node stopped first).
   */
  webhookUnstored?(count: number): void
  /** A request was refused (429) because its client address sent too many guessed credentials. */
  authRefused?(): void
  /** `address` has just crossed the limit of guessed credentials (once per window, fleet-wide). */
  authLimitReached?(address: string, limit: AuthFailureSettings): void
  /**
   * Fleet mode: a read or write of the fleet-wide real-time count (the per-user limits) failed,
   * its store out of reach; this node's own count decided instead.
   */
  fleetCountFailed?(operation: FleetCountOperation): void
}
