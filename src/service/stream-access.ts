import type { UserCaller } from '../core/caller.js'
import type { Revocable } from './authenticator.js'
import type { Clock } from './clock.js'

/** Why a stream's credential no longer lets it deliver: the WebSocket close reason, the SSE message. */
export type StreamEnd = 'token expired' | 'token revoked'

/** The transport a stream is served on: told when its credential stops allowing it. */
export interface StreamHolder {
  /** Called once, when the token expires or is revoked: the stream sends nothing more. */
  accessEnded(reason: StreamEnd): void
}

/**
 * How often a stream looks again whether its token was revoked, before a frame goes out: the
 * revocation itself ends the stream at once (the service tells every holder of the token), so
 * this only bounds how long a frame could follow a revocation that was not told.
 */
export const STREAM_RECHECK_MS = 1000

/** What a StreamAccess reads: the service's clock, its revocations, and who tells of one at once. */
export interface StreamAccessDeps {
  clock: Clock
  /** The revoked tokens this node knows of (Revocations: in memory). */
  revocations: { has(tokenId: string): boolean }
  /** Tells a holder when its token is revoked (Authenticator: `hold` checks the list too). */
  holds: {
    hold(tokenId: string | undefined, holder: Revocable): void
    release(tokenId: string | undefined, holder: Revocable): void
  }
  /** See STREAM_RECHECK_MS. */
  recheckMs: number
}

/**
 * Whether a long-lived stream (a WebSocket, an SSE response) may still deliver to the caller
 * whose token opened it: a token does what it was issued for, for as long as it was issued, so
 * a stream ends when its token expires or is revoked. Made by `PresenceService.streamAccess`;
 * the transports only ask `stillAllowed` before each frame and call `watchExpiry` on each
 * keepalive; the holder ends the stream with the reason it is told (4001 on a WebSocket, a last
 * error event on SSE).
 *
 * The check is cheap enough for every frame: the expiry is one comparison, and the revocation
 * list (in memory, kept by Revocations) is looked up at most every `recheckMs`.
 *
 * @example
 * const access = service.streamAccess(caller, { accessEnded: (reason) => close(4001, reason) })
 * if (!access.stillAllowed()) return // before each frame: closed with 4001 already
 * access.watchExpiry(2 * keepaliveMs) // on each keepalive: a timer only near the expiry
 * access.release() // when the stream ends on its own
 */
export class StreamAccess implements Revocable {
  /** The caller's token: its id and expiry (kept by reference: the connection holds it anyway). */
  readonly #token: Pick<UserCaller, 'tokenId' | 'expiresAt'>
  readonly #deps: StreamAccessDeps
  readonly #holder: StreamHolder
  /** When the revocations were last looked at (epoch ms). */
  #checkedAt: number
  #reason: StreamEnd | undefined
  #timer: NodeJS.Timeout | undefined
  #released = false

  constructor(
    caller: Pick<UserCaller, 'tokenId' | 'expiresAt'>,
    holder: StreamHolder,
    deps: StreamAccessDeps,
  ) {
    this.#token = caller
    this.#holder = holder
    this.#deps = deps
    this.#checkedAt = deps.clock.now()
    // a token revoked already ends the stream now (the holder is told before this returns)
    deps.holds.hold(caller.tokenId, this)
  }

  /** When the token expires (epoch ms). */
  get expiresAt(): number {
    return this.#token.expiresAt
  }

  /** Why the stream may deliver no more; undefined while it may. */
  get reason(): StreamEnd | undefined {
    return this.#reason
  }

  /**
   * Whether a frame may go out at `now`: false from the token's expiry on, and once its
   * revocation is known (looked up at most every `recheckMs`). The first false tells the holder
   * (`accessEnded`) before it returns, so a transport need only return; false stays false.
   */
  stillAllowed(now = this.#deps.clock.now()): boolean {
    if (this.#reason !== undefined) return false
    const { tokenId, expiresAt } = this.#token
    if (now >= expiresAt) {
      this.#reason = 'token expired'
    } else if (tokenId !== undefined && now - this.#checkedAt >= this.#deps.recheckMs) {
      this.#checkedAt = now
      if (this.#deps.revocations.has(tokenId)) this.#reason = 'token revoked'
    }
    if (this.#reason === undefined) return true
    this.#end()
    return false
  }

  /**
   * Ends the stream at its token's expiry even when no frame goes out, once fewer than
   * `horizonMs` are left: called on each keepalive with two of its periods, so only streams
   * about to expire hold a timer. Tells the holder at once when the token is past already.
   */
  watchExpiry(horizonMs: number): void {
    if (this.#timer !== undefined || this.#released || !this.stillAllowed()) return
    const left = this.#token.expiresAt - this.#deps.clock.now()
    if (left > horizonMs) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.watchExpiry(horizonMs)
    }, left)
    // prevents the timer from keeping the process alive
    this.#timer.unref()
  }

  /** The token was revoked (a logout, on any node): the service tells at once. */
  revoked(): void {
    if (this.#released) return
    this.#reason ??= 'token revoked'
    this.#end()
  }

  /** The stream ended: no timer is left, and the holder is told nothing more. */
  release(): void {
    if (this.#released) return
    this.#released = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#deps.holds.release(this.#token.tokenId, this)
  }

  #end(): void {
    if (this.#released || this.#reason === undefined) return
    this.release()
    this.#holder.accessEnded(this.#reason)
  }
}
