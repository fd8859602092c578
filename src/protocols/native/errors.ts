import { PresenceError, type ErrorCode } from '../../core/errors.js'
import { sendErrorRecord } from '../shared/error-record.js'
import { limitMessages } from './limits.js'

/** The native HTTP error shape: `{"error":{"code","message"}}`, with the status given. */
export const sendNativeError = sendErrorRecord

/** The client frame an error frame answers, sent as its `for`. */
export const ANSWERED_FRAMES = ['subscribe', 'unsubscribe', 'heartbeat', 'resume'] as const
export type AnsweredFrame = (typeof ANSWERED_FRAMES)[number]

/**
 * An in-band error frame; the connection stays open, unless `close` says the close code that
 * ends it next. `for` names the client frame it answers when that is known, so a client can tell
 * a refused heartbeat from a refused subscribe. `maxIds` is the limit a TOO_MANY_IDS refusal tells
 * (limits.ts tooManyIds).
 */
export function errorFrame(
  code: ErrorCode,
  message: string,
  extra?: { retryAfterMs?: number; for?: AnsweredFrame; close?: number; maxIds?: number },
): string {
  return JSON.stringify({ type: 'error', code, message, ...extra })
}

/** What an in-band failure of the store is told (STORE_UNAVAILABLE, or a failure of no kind). */
const STORE_FAILURE = 'The presence store is unavailable. Try again shortly.'

/**
 * The error frame answering a client frame (`answered`) whose work failed with `error`: a
 * catalogued failure that is not the store's (a refusal or bad input met by the service) says its
 * own code and message; the store unreachable or refusing (STORE_UNAVAILABLE), and a failure of
 * no known kind, are `UNAVAILABLE`.
 */
export function failureFrame(error: unknown, answered: AnsweredFrame): string {
  if (error instanceof PresenceError && error.code !== 'STORE_UNAVAILABLE') {
    const extra: { retryAfterMs?: number; for: AnsweredFrame } = { for: answered }
    if (error.retryAfter !== undefined) extra.retryAfterMs = error.retryAfter * 1000
    return errorFrame(error.code, error.message, extra)
  }
  return errorFrame('UNAVAILABLE', STORE_FAILURE, { for: answered })
}

/**
 * What a client is told when a stream's recovery from positions did not simply work (both
 * transports): `reset` (history gone, or the store unreadable) or the watch limit; undefined
 * when it recovered.
 */
export function recoveryFrame(
  outcome: 'ok' | 'reset' | 'watch_limit' | 'unavailable',
  watchesPerUser: number,
): string | undefined {
  if (outcome === 'ok') return undefined
  if (outcome === 'watch_limit') {
    return errorFrame('WATCH_LIMIT', limitMessages.watches(watchesPerUser), { for: 'resume' })
  }
  return JSON.stringify({ type: 'reset', reason: outcome === 'reset' ? 'too_old' : outcome })
}
