/** The longest delay a timer holds: setTimeout takes a signed 32-bit number of milliseconds. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * setTimeout, except that a delay past MAX_TIMER_MS (about 24.8 days), Infinity included, waits
 * that long. setTimeout itself replaces such a delay by 1 ms (with a TimeoutOverflowWarning): a
 * server asking for a heartbeat every five weeks was beaten every millisecond, and
 * `timeoutMs: Infinity` failed every call at once.
 *
 * @example
 * const timer = setTimer(beat, heartbeatAfterMs) // heartbeatAfterMs as the server asked
 */
export function setTimer(callback: () => void, ms: number): ReturnType<typeof setTimeout> {
  return setTimeout(callback, Math.min(ms, MAX_TIMER_MS))
}
