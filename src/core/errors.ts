/**
 * The error catalogue: every failure presenced reports has a stable code here. Protocols map
 * the kind to their own status and wire shape at the edge; nothing below them picks a status.
 */
export type ErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'not_acceptable'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'

export class PresenceError extends Error {
  readonly kind: ErrorKind
  /** A stable machine-readable code, e.g. USER_ID_INVALID. */
  readonly code: string
  /** Seconds the caller should wait, for rate_limited and unavailable. */
  readonly retryAfter: number | undefined

  constructor(kind: ErrorKind, code: string, message: string, retryAfter?: number) {
    super(message)
    this.name = 'PresenceError'
    this.kind = kind
    this.code = code
    this.retryAfter = retryAfter
  }
}

export const statusOfKind: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  not_acceptable: 406,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
}

export const errors = {
  userIdInvalid: (value: unknown) =>
    new PresenceError(
      'bad_request',
      'USER_ID_INVALID',
      `Invalid user id ${JSON.stringify(String(value)).slice(0, 60)}: user ids are positive 64-bit integers.`,
    ),
  storeUnavailable: () =>
    new PresenceError(
      'unavailable',
      'STORE_UNAVAILABLE',
      'The presence store is unavailable. Try again shortly.',
      1,
    ),
  unauthenticated: () =>
    new PresenceError(
      'unauthorized',
      'UNAUTHENTICATED',
      'Authorization has been denied for this request.',
    ),
  forbidden: (message: string) => new PresenceError('forbidden', 'FORBIDDEN', message),
  notFound: (message: string) => new PresenceError('not_found', 'NOT_FOUND', message),
} as const
