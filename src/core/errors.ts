/**
 * The error catalogue: every failure presenced reports has a stable code here, and each code one
 * kind. Protocols map the kind to their status and the code to their own wire shape (Roblox's
 * numeric codes, Xbox's error records, the native `{"error":{code,message}}`); nothing below them
 * picks a status.
 */
export type ErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'not_acceptable'
  | 'payload_too_large'
  | 'uri_too_long'
  | 'unsupported_media_type'
  | 'upgrade_required'
  | 'rate_limited'
  | 'internal'
  | 'unavailable'

export const statusOfKind: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  upgrade_required: 426,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
}

const catalogue = {
  // the request as a whole
  INVALID_REQUEST: 'bad_request',
  INVALID_JSON: 'bad_request',
  INVALID_URL: 'bad_request',
  URI_TOO_LONG: 'uri_too_long',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  NOT_ACCEPTABLE: 'not_acceptable',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  NOT_FOUND: 'not_found',
  UPGRADE_REQUIRED: 'upgrade_required',
  CONTRACT_VERSION_UNSUPPORTED: 'bad_request',
  // ids and fields
  USER_ID_INVALID: 'bad_request',
  USER_IDS_INVALID: 'bad_request',
  TOO_MANY_USER_IDS: 'bad_request',
  PROHIBITED_MEMBER: 'bad_request',
  XUID_INVALID: 'bad_request',
  PLACE_ID_INVALID: 'bad_request',
  UNIVERSE_ID_INVALID: 'bad_request',
  UNIVERSE_MISMATCH: 'bad_request',
  GAME_ID_INVALID: 'bad_request',
  PLAYERS_INVALID: 'bad_request',
  PLAYER_DUPLICATE: 'bad_request',
  TOO_MANY_PLAYERS: 'bad_request',
  IMPORT_LINE_INVALID: 'bad_request',
  IDS_INVALID: 'bad_request',
  TOO_MANY_IDS: 'bad_request',
  TOP_INVALID: 'bad_request',
  // real-time frames (sent in-band; the connection stays open)
  FRAME_INVALID: 'bad_request',
  TYPE_UNKNOWN: 'bad_request',
  HEARTBEAT_INVALID: 'bad_request',
  RESUME_LATE: 'bad_request',
  // who calls
  UNAUTHENTICATED: 'unauthorized',
  /** Xbox: no Authorization at all is 403 (an invalid one is 401, so clients know to refresh). */
  AUTHORIZATION_MISSING: 'forbidden',
  API_KEY_MISSING: 'unauthorized',
  API_KEY_INVALID: 'unauthorized',
  SCOPE_MISSING: 'forbidden',
  /** A valid API key on a route for users (a key is no user): 403, not 401, it is valid. */
  USER_REQUIRED: 'forbidden',
  FORBIDDEN: 'forbidden',
  CSRF_INVALID: 'forbidden',
  UNIVERSE_FORBIDDEN: 'forbidden',
  // what is not there
  ADMIN_OFF: 'not_found',
  METRICS_OFF: 'not_found',
  SERVER_NOT_FOUND: 'not_found',
  USER_NOT_FOUND: 'not_found',
  // limits
  RATE_LIMITED: 'rate_limited',
  TOO_MANY_STREAMS: 'unavailable',
  STREAM_LIMIT: 'rate_limited',
  WATCH_LIMIT: 'rate_limited',
  SLOW_CONSUMER: 'rate_limited',
  /**
   * A token that cannot be checked now: the platform's keys (its JWKS) cannot be loaded. Not
   * the token's fault, so no 401: 503 with Retry-After, and the client keeps its token.
   */
  AUTH_UNAVAILABLE: 'unavailable',
  // the service itself
  STORE_UNAVAILABLE: 'unavailable',
  UNAVAILABLE: 'unavailable',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorKind>

export type ErrorCode = keyof typeof catalogue

/** Why a token was refused, as far as a client may know (ErrorDetails.tokenRefused). */
export type TokenRefused = 'expired' | 'invalid'

/** What a protocol may need beyond code and message to render an error in its own shape. */
export interface ErrorDetails {
  /** Seconds the caller should wait (rate_limited, unavailable): a Retry-After header. */
  retryAfter?: number
  /** A fresh CSRF token for the caller (Roblox's x-csrf-token challenge). */
  csrfToken?: string
  /**
   * UNAUTHENTICATED for a token it was given, why, and no more: `expired` when the token was
   * genuinely signed and is no longer valid (a fresh one will do), `invalid` for anything else
   * (forged, malformed, revoked). Protocols tell it in a `WWW-Authenticate` header (RFC 6750).
   */
  tokenRefused?: TokenRefused
  /** The methods the path serves (405). */
  allow?: string
  /** The rate-limit rule that refused (Xbox renders it in its 429 body). */
  rateLimit?: { rule: string; count: number; max: number; windowMs: number }
  /** The line of a refused import. */
  line?: number
  /**
   * STORE_UNAVAILABLE only: the store answered and refused a write (Redis full, or unable to
   * persist), where reads may still be served; unset when it could not be reached at all.
   */
  refusesWrites?: boolean
}

export class PresenceError extends Error {
  readonly kind: ErrorKind
  /** A stable machine-readable code from the catalogue, e.g. USER_ID_INVALID. */
  readonly code: ErrorCode
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message)
    this.name = 'PresenceError'
    this.code = code
    this.kind = catalogue[code]
    this.details = details
  }

  /** Seconds the caller should wait, for rate_limited and unavailable. */
  get retryAfter(): number | undefined {
    return this.details.retryAfter
  }

  get status(): number {
    return statusOfKind[this.kind]
  }
}

/**
 * A catalogued failure.
 *
 * @example throw fail('PLACE_ID_INVALID', 'placeId must be a positive 64-bit integer.')
 */
export function fail(code: ErrorCode, message: string, details?: ErrorDetails): PresenceError {
  return new PresenceError(code, message, details)
}

/**
 * Whether `error` is STORE_UNAVAILABLE: Redis unreachable or refusing. Its reason is logged where
 * it is met (StoreOutages, rate-limited), so a caller meeting it logs nothing of its own.
 */
export function isStoreUnavailable(error: unknown): boolean {
  return error instanceof PresenceError && error.code === 'STORE_UNAVAILABLE'
}

/**
 * Whether `error` is a failure said once where it is met, not by each request that meets it:
 * STORE_UNAVAILABLE (StoreOutages) and AUTH_UNAVAILABLE (the platform's JWKS, JwksKeys).
 */
export function isSaidWhereMet(error: unknown): boolean {
  return (
    error instanceof PresenceError &&
    (error.code === 'STORE_UNAVAILABLE' || error.code === 'AUTH_UNAVAILABLE')
  )
}

export const errors = {
  userIdInvalid: (value: unknown) =>
    fail(
      'USER_ID_INVALID',
      `Invalid user id ${JSON.stringify(String(value)).slice(0, 60)}: user ids are positive 64-bit integers.`,
    ),
  storeUnavailable: (refusesWrites = false) =>
    fail('STORE_UNAVAILABLE', 'The presence store is unavailable. Try again shortly.', {
      retryAfter: 1,
      ...(refusesWrites ? { refusesWrites } : {}),
    }),
  /** A token the platform's keys cannot tell now (TokenRefusal `unavailable`). */
  authUnavailable: (retryAfter: number) =>
    fail(
      'AUTH_UNAVAILABLE',
      "The identity provider's keys cannot be loaded, so this token cannot be checked now. Try again shortly.",
      { retryAfter },
    ),
  unauthenticated: () => fail('UNAUTHENTICATED', 'Authorization has been denied for this request.'),
  notFound: (message: string) => fail('NOT_FOUND', message),
} as const
