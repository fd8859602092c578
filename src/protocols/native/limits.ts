import { fail, type PresenceError } from '../../core/errors.js'

/** What a user's real-time connections may hold and ask for (docs/reference/native.md). */
export interface RealtimeLimits {
  /** Open connections per user. */
  streamsPerUser: number
  /** Users watched across one user's streams. */
  watchesPerUser: number
  /** Ids a connection may subscribe and unsubscribe per second (bursts of two seconds). */
  subscribeRate: number
}

/** Refused in band or as frames: the connection stays open. */
export const limitMessages = {
  streams: (max: number) =>
    `At most ${max} real-time connections per user: close one, or reuse one for more ids.`,
  watches: (max: number) =>
    `At most ${max} users watched across your real-time streams: unsubscribe some first.`,
  heartbeats: () =>
    'Too many heartbeats: they spend your request budget, as register-app-presence does. Send the next after retryAfterMs.',
  rate: (max: number) =>
    `At most ${max} ids per second subscribed or unsubscribed per connection: slow down.`,
  tooFast: (refusals: number, seconds: number) =>
    `Subscribing too fast: more than ${refusals} frames refused within ${seconds} s. The connection is closed: reconnect after retryAfterMs and resume.`,
}

/**
 * A refusal for more ids than a stream may watch (PRESENCED_REALTIME_MAX_IDS), on either
 * transport: it always says the limit in `maxIds` (the WebSocket `error` frame, the SSE 400
 * body), since a browser's WebSocket cannot read the upgrade's `x-presenced-max-ids` and a
 * client that knows the limit can split its ids over more streams rather than fail.
 * `counted` says what went past it: a frame's ids, a resume's positions, the stream's watches.
 *
 * @example tooManyIds(300, 'stream')
 * // { code: 'TOO_MANY_IDS', message: 'A stream watches at most 300 users.', maxIds: 300 }
 */
export function tooManyIds(
  maxIds: number,
  counted: 'ids' | 'frame' | 'positions' | 'stream',
): { code: 'TOO_MANY_IDS'; message: string; maxIds: number } {
  const message = {
    ids: `At most ${maxIds} ids.`,
    frame: `At most ${maxIds} ids per frame.`,
    positions: `At most ${maxIds} positions.`,
    stream: `A stream watches at most ${maxIds} users.`,
  }[counted]
  return { code: 'TOO_MANY_IDS', message, maxIds }
}

export function streamLimit(max: number): PresenceError {
  return fail('STREAM_LIMIT', limitMessages.streams(max), { retryAfter: 1 })
}

export function watchLimit(max: number): PresenceError {
  return fail('WATCH_LIMIT', limitMessages.watches(max))
}
