/**
 * What every presenced a bench builds sets beside its own settings: no rate limit in the way of
 * the load, and the dashboard's stats pass (every live user read, at most 1/20 of the time) only
 * at the start: one running at a random instant fell in another target's rounds
 * (docs/performance.md, 2026-12-06 08:35).
 */
export const BENCH_SERVER_CONFIG = {
  rateLimitMax: 1_000_000_000,
  // the most a Node timer waits (config.ts's TIMER_MAX_MS)
  statsIntervalMs: 2_147_483_647,
} as const
