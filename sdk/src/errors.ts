/** Which API answered: the error's `code` is that protocol's own code. */
export type ErrorProtocol = 'roblox' | 'xbox' | 'native' | 'http' | 'network'

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

  constructor(
    message: string,
    details: {
      status: number
      code?: number | string | undefined
      protocol: ErrorProtocol
      retryAfterMs?: number | undefined
      body?: unknown
      cause?: unknown
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.status = details.status
    this.code = details.code
    this.protocol = details.protocol
    this.retryAfterMs = details.retryAfterMs
    this.body = details.body
  }
}

/** A user id (or other int64 id) the client refused before sending anything. */
export class InvalidIdError extends TypeError {
  override readonly name = 'InvalidIdError'
  readonly value: unknown

  constructor(value: unknown, what = 'user id') {
    super(`Not a valid ${what}: ${describe(value)} (expected a positive 64-bit integer)`)
    this.value = value
  }
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
