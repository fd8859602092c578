import type { UserId } from '../core/user-id.js'

/** What one user holds in real time: open streams (connections) and the users they watch. */
export interface Holdings {
  streams: number
  watches: number
}

/** `set`'s answer: written, or refused with what the other nodes hold (nothing written). */
export type HoldingsVerdict = { ok: true } | { ok: false; others: Holdings }

/**
 * Each user's real-time holdings summed over a fleet, so that the per-user limits hold across
 * nodes, not per node. Every node sets its own share of a user's holdings; a share counts for
 * `leaseMs` after it was set, and its node sets it again on a timer while it holds anything, so
 * the share of a node that crashed stops counting within `leaseMs` of its last renewal.
 *
 * Only fleet mode has an adapter (RedisStreamHoldings); an embedded server is the whole fleet,
 * and its Fanout counts alone. The Fanout decides what counts and what the limits are; the
 * adapter only compares and sets atomically, so that two nodes admitting the same user at once
 * cannot both take the last place.
 *
 * @example
 * // one more stream of user 42 here, if the fleet holds fewer than 10
 * const verdict = await holdings.set('42' as UserId, { streams: 3, watches: 120 }, { streams: 10 })
 */
export interface StreamHoldings {
  /** How long a share counts after it was last set. */
  readonly leaseMs: number
  /**
   * Sets this node's share of `viewer`'s holdings (zeros remove it). With `max`, only when the
   * fleet's totals, this share included, stay within each maximum given; else nothing is set.
   */
  set(viewer: UserId, share: Holdings, max?: Partial<Holdings>): Promise<HoldingsVerdict>
  /** What the other nodes hold of `viewer`'s (live shares only). */
  others(viewer: UserId): Promise<Holdings>
}
