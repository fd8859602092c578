/** How a wait grows between tries: doubled from `baseDelayMs`, capped, then jittered. */
export interface Backoff {
  baseDelayMs: number
  maxDelayMs: number
  /** Up to this fraction of the capped wait is taken off at random (1: "full jitter"). */
  jitter: number
}

/**
 * The wait before try number `attempt + 1`: `baseDelayMs * 2^(attempt-1)`, capped at `maxDelayMs`,
 * then shortened by up to `jitter` of itself. The jitter is applied inside the cap, never on top
 * of it: a capped wait stays at or below `maxDelayMs`, and clients that all reached the cap still
 * spread out instead of retrying in step.
 *
 * @example
 * backoffDelay(3, { baseDelayMs: 1000, maxDelayMs: 30_000, jitter: 0.2 }, Math.random) // 3200..4000
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number): number {
  const { baseDelayMs, maxDelayMs, jitter } = backoff
  const capped = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1))
  const fraction = Math.min(1, Math.max(0, jitter))
  return Math.round(capped * (1 - fraction * random()))
}
