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

export function streamLimit(max: number): PresenceError {
  return fail('STREAM_LIMIT', limitMessages.streams(max), { retryAfter: 1 })
}

export function watchLimit(max: number): PresenceError {
  return fail('WATCH_LIMIT', limitMessages.watches(max))
}
