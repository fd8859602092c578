import type { CredentialStore } from '../store/credential-store.js'
import type { Clock } from './clock.js'

export interface RevocationsOptions {
  /** How often the store is polled for revocations made on other nodes. */
  syncIntervalMs: number
  /** Called when a sync fails (the store is unavailable): the next one retries. */
  onError?: (error: unknown) => void
  /** Tells the other nodes at once (the change bus); they would otherwise learn at their next poll. */
  announce?: (tokenId: string, expiresAt: number) => Promise<void>
}

/**
 * The revoked access tokens this node refuses, kept in memory so checking a token costs no
 * round trip. The store is the truth, shared by every node and durable: this node loads it at
 * start, hears revocations made elsewhere on the change bus at once (`remember`), and polls the
 * store every `syncIntervalMs` for any it missed (a pub/sub message is at most once). An entry is
 * dropped when its token expires, since the token is refused then anyway.
 */
export class Revocations {
  readonly #store: CredentialStore
  readonly #clock: Clock
  readonly #options: RevocationsOptions
  /** token id → when the token expires (epoch ms) */
  readonly #revoked = new Map<string, number>()
  /** The newest revokedAt seen: polls ask for revocations from a little before it. */
  #since = 0
  #timer: NodeJS.Timeout | undefined
  #syncing: Promise<void> | undefined
  #onRevoked: ((tokenId: string) => void) | undefined

  constructor(store: CredentialStore, clock: Clock, options: RevocationsOptions) {
    this.#store = store
    this.#clock = clock
    this.#options = options
  }

  has(tokenId: string): boolean {
    // none revoked (the usual case): the id's string is not read. A Map lookup reads its hash
    // from the string's header, a cache line of its own that is cold at speed: in a timed
    // heartbeat the Map's lookup builtin was the largest, its samples on such reads (issue 19)
    if (this.#revoked.size === 0) return false
    const expiresAt = this.#revoked.get(tokenId)
    if (expiresAt === undefined) return false
    if (expiresAt > this.#clock.now()) return true
    this.#revoked.delete(tokenId)
    return false
  }

  /** Revokes durably (every node, every restart) and at once on this node. */
  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    const now = this.#clock.now()
    this.remember(tokenId, expiresAt)
    await this.#store.revokeToken({ tokenId, expiresAt, revokedAt: now })
    await this.#options.announce?.(tokenId, expiresAt)
  }

  /** A revocation heard from another node. */
  remember(tokenId: string, expiresAt: number): void {
    if (expiresAt <= this.#clock.now()) return
    const known = this.#revoked.has(tokenId)
    this.#revoked.set(tokenId, expiresAt)
    if (!known) this.#onRevoked?.(tokenId)
  }

  /** Called once for each token revoked from now on, however this node learns of it. */
  onRevoked(listener: (tokenId: string) => void): void {
    this.#onRevoked = listener
  }

  get size(): number {
    return this.#revoked.size
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.sync(), this.#options.syncIntervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#syncing
  }

  /** Loads what the store has that this node has not seen; failures are reported, not thrown. */
  sync(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => (this.#syncing = undefined))
    return this.#syncing
  }

  async #sync(): Promise<void> {
    const now = this.#clock.now()
    try {
      // a little overlap: a revocation written by a node whose clock lags ours is still seen
      const found = await this.#store.revocationsSince(Math.max(0, this.#since - 60_000), now)
      for (const r of found) {
        this.remember(r.tokenId, r.expiresAt)
        if (r.revokedAt > this.#since) this.#since = r.revokedAt
      }
      for (const [id, expiresAt] of this.#revoked) if (expiresAt <= now) this.#revoked.delete(id)
      await this.#store.pruneRevocations(now)
    } catch (error) {
      this.#options.onError?.(error)
    }
  }
}
