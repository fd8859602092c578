/** Which API answered: the error's `code` is that protocol's own code. */
export type ErrorProtocol = 'roblox' | 'xbox' | 'native' | 'http' | 'network'

/**
 * Why the server refused a token (PresencedError.reason): `expired` (a fresh token will do: ask
 * your auth for one) or `invalid` (forged, malformed or revoked: sign in again).
 */
export type TokenRefusedReason = 'expired' | 'invalid'

/**
 * Every failure the client reports. `status` is the HTTP status (0 when no response arrived);
 * `code` is the protocol's error code when the body carried one (Roblox's numeric `code`, a
 * native string code), else undefined.
 *
 * @example
 * try { await client.getUserPresences([1]) }
 * catch (e) { if (e instanceof PresencedError && e.status === 429) console.log(e.retryAfterMs) }
 */
export class PresencedError extends Error {
  override readonly name = 'PresencedError'
  readonly status: number
  readonly code: number | string | undefined
  readonly protocol: ErrorProtocol
  /** Retry-After of a 429 or 503, in milliseconds, when the server sent one. */
  readonly retryAfterMs: number | undefined
  /** The parsed response body, for details the message leaves out. */
  readonly body: unknown
  /**
   * A 401 refusing the token sent, why: `expired` or `invalid`, as presenced tells it in the
   * reply's `WWW-Authenticate: Bearer error="invalid_token", error_description="token expired"`
   * (every API: Roblox, Xbox, native, the real-time upgrade and SSE request). Undefined for
   * other errors, and when the server did not say (no token sent, another server).
   *
   * @example
   * catch (e) { if (e instanceof PresencedError && e.reason === 'expired') await auth.refresh() }
   */
  readonly reason: TokenRefusedReason | undefined

  constructor(
    message: string,
    details: {
      status: number
      code?: number | string | undefined
      protocol: ErrorProtocol
      retryAfterMs?: number | undefined
      body?: unknown
      reason?: TokenRefusedReason | undefined
      cause?: unknown
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.status = details.status
    this.code = details.code
    this.protocol = details.protocol
    this.retryAfterMs = details.retryAfterMs
    this.body = details.body
    this.reason = details.reason
  }
}

/**
 * The reason a `WWW-Authenticate` header gives for refusing a token (presenced's
 * `error_description="token expired"` or `"token invalid"`), if it is one.
 */
export function tokenRefusedOf(
  header: string | string[] | null | undefined,
): TokenRefusedReason | undefined {
  const value = Array.isArray(header) ? header.join(', ') : (header ?? '')
  if (!/\berror="invalid_token"/i.test(value)) return undefined
  const said = /\berror_description="token (expired|invalid)"/i.exec(value)?.[1]?.toLowerCase()
  return said === 'expired' || said === 'invalid' ? said : undefined
}

/** A user id (or other int64 id) the client refused before sending anything. */
export class InvalidIdError extends TypeError {
  override readonly name = 'InvalidIdError'
  readonly value: unknown

  constructor(value: unknown, what = 'user id') {
    super(`Not a valid ${what}: ${describe(value)} (${expectation(value)})`)
    this.value = value
  }
}

function expectation(value: unknown): string {
  // the value shown is already the rounded one (2^53 + 1 arrives as 2^53), a valid int64: only
  // the type can be blamed
  if (typeof value === 'number' && Number.isFinite(value) && value > Number.MAX_SAFE_INTEGER) {
    return 'a number above 2^53 - 1 is not a safe integer and may have been rounded: pass the id as a string or a bigint'
  }
  return 'expected a positive 64-bit integer'
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`
  // JSON.stringify writes them as null
  if (typeof value === 'number') return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
