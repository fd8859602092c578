import { errors } from '../core/errors.js'

/** What a try returns when another write landed between its read and its own (compare-and-set). */
export const LOST_TO_ANOTHER = Symbol('lost to another write')

/** Tries of one change against others landing at once, before it is answered 503. */
const TRIES = 8

/**
 * Runs `attempt` (read, compute, write only if unchanged) again while another write landed in
 * between, so a change is never lost to one made at once, on this node or another; this many
 * lost in a row is a client gone wrong: 503.
 */
export async function retryLostWrites<T>(
  attempt: () => Promise<T | typeof LOST_TO_ANOTHER>,
): Promise<T> {
  for (let tried = 1; ; tried++) {
    const result = await attempt()
    if (result !== LOST_TO_ANOTHER) return result
    if (tried === TRIES) throw errors.storeUnavailable()
  }
}
