/**
 * How long to wait after the `attempt`-th failed try: exponential from `baseMs`, capped at
 * `maxMs`, with "equal jitter" (half fixed, half random) so endpoints failing together do not
 * retry in lockstep yet each wait keeps growing.
 *
 * @example retryDelay(3, 1000, 60_000, Math.random) // between 2000 and 4000 ms
 */
export function retryDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}
