/**
 * Fleet mode: duties one node does for the whole fleet (the dashboard's pass over every live
 * user, the pruning of ended blocks), each behind a lease that its holder renews and another node
 * takes once it lapses (the holder died) or is given up (the holder stopped), and the result the
 * holder publishes for the others to read. Absent in embedded mode: the one process does all.
 * Each duty is two keys (its lease, its result), each on its own: fine on a Redis Cluster.
 */
export interface FleetDuties {
  /**
   * Takes `duty` for this node, or renews it when this node holds it already, for `ttlMs`; true
   * when this node holds it after the call, false while another node does.
   */
  take(duty: string, ttlMs: number): Promise<boolean>
  /** Gives `duty` up when this node holds it, so that another node may take it at once. */
  release(duty: string): Promise<void>
  /** Stores `value` as `duty`'s result, kept `ttlMs` (replacing the one before). */
  publish(duty: string, value: string, ttlMs: number): Promise<void>
  /** `duty`'s last published result, or null when none is kept. */
  read(duty: string): Promise<string | null>
}

/** One duty's lease as its user sees it: take (or renew) it, give it up. */
export interface DutyLease {
  /** True when this node holds the duty after the call; false while another node does. */
  take(): Promise<boolean>
  release(): Promise<void>
}

/** `duty`'s lease in `duties`, taken for `ttlMs` each time. */
export function dutyLease(duties: FleetDuties, duty: string, ttlMs: number): DutyLease {
  return {
    take: () => duties.take(duty, ttlMs),
    release: () => duties.release(duty),
  }
}
