import type { TokenRefusedReason } from './errors.js'

/**
 * What the provider is asked: `forceRefresh` is true when the server refused the last token it
 * gave (a 401, a stream ended `token expired`): a cached token will not do, get a new one.
 * `reason` says why, when the server did (`expired`: refresh it; `invalid`: forged, malformed
 * or revoked, a refresh token may not help, a new sign-in will).
 */
export interface TokenRequest {
  forceRefresh: boolean
  reason?: TokenRefusedReason
}

/**
 * Gives the access token for each request and connection: called before each one (return a
 * cached token while it is valid), and with `forceRefresh: true` once the server refused the
 * one it gave. Never logged by the client.
 *
 * @example
 * const client = createClient({
 *   baseUrl,
 *   token: ({ forceRefresh }) => auth.getAccessToken({ ignoreCache: forceRefresh }),
 * })
 */
export type TokenProvider = (request: TokenRequest) => string | Promise<string>

/**
 * The client's token: a fixed string, or a provider asked for the current one. Concurrent
 * refreshes of the same stale token share one call of the provider.
 */
export class TokenSource {
  readonly #provider: TokenProvider | undefined
  /** The last token known (the fixed one, or the provider's latest answer). */
  #value: string | undefined
  #refreshing: Promise<string> | undefined

  constructor(token: string | TokenProvider | undefined) {
    if (typeof token === 'function') this.#provider = token
    else this.#value = token
  }

  /** Whether there is a token at all (fixed or provided). */
  get present(): boolean {
    return this.#provider !== undefined || this.#value !== undefined
  }

  /** Whether a new token can be asked for (a provider, not a fixed string). */
  get refreshable(): boolean {
    return this.#provider !== undefined
  }

  /** The last token known, without asking the provider (undefined before its first answer). */
  get last(): string | undefined {
    return this.#value
  }

  /** The token to send now: the fixed one, or the provider's (a refresh under way: its result). */
  async get(): Promise<string | undefined> {
    if (this.#provider === undefined) return this.#value
    if (this.#refreshing !== undefined) return this.#refreshing
    return this.#keep(await this.#provider({ forceRefresh: false }))
  }

  /**
   * A new token after the server refused `stale`: asks the provider with `forceRefresh`, once
   * for any number of callers holding the same stale token (one already replaced is not
   * refreshed again: the newer one is returned). Undefined without a provider.
   */
  async refresh(
    stale: string | undefined,
    reason?: TokenRefusedReason,
  ): Promise<string | undefined> {
    const provider = this.#provider
    if (provider === undefined) return undefined
    if (this.#refreshing !== undefined) return this.#refreshing
    if (this.#value !== undefined && this.#value !== stale) return this.#value
    const request: TokenRequest = { forceRefresh: true, ...(reason !== undefined && { reason }) }
    const refreshing = (async () => this.#keep(await provider(request)))()
    this.#refreshing = refreshing
    try {
      return await refreshing
    } finally {
      if (this.#refreshing === refreshing) this.#refreshing = undefined
    }
  }

  #keep(token: unknown): string {
    if (typeof token !== 'string' || token === '') {
      // the value is not echoed: it may be a credential of another shape
      throw new TypeError(
        `The token provider gave ${token === '' ? 'an empty string' : typeof token}, not a token`,
      )
    }
    this.#value = token
    return token
  }
}
