import type { ErrorCode } from '../../core/errors.js'
import { sendErrorRecord } from '../shared/error-record.js'

/** The native HTTP error shape: `{"error":{"code","message"}}`, with the status given. */
export const sendNativeError = sendErrorRecord

/** An in-band error frame; the connection stays open. */
export function errorFrame(
  code: ErrorCode,
  message: string,
  extra?: { retryAfterMs: number },
): string {
  return JSON.stringify({ type: 'error', code, message, ...extra })
}
