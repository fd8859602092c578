import type { ApiKeyRecord } from '../core/api-key.js'

/** A revoked access token: refused until it would have expired anyway. */
export interface Revocation {
  /** The token's id (jti). */
  tokenId: string
  /** Epoch ms after which the token is refused anyway, so the entry may be forgotten. */
  expiresAt: number
  revokedAt: number
}

/**
 * Credentials that outlive a process and are shared by every node: scoped API keys (only their
 * hash) and revoked access tokens. Adapters: SqliteProfileStore, RedisProfileStore.
 */
export interface CredentialStore {
  putApiKey(key: ApiKeyRecord): Promise<void>
  /** The key with this secret hash, revoked or expired ones included (the caller decides). */
  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>
  /** The key with this id, revoked or expired ones included (a webhook's delivery checks it). */
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>
  listApiKeys(): Promise<ApiKeyRecord[]>
  /** Records a revocation; revoking a token twice keeps the first. */
  revokeToken(revocation: Revocation): Promise<void>
  /**
   * Revocations recorded at or after `since` (epoch ms) that have not expired at `now`: every
   * node loads them at start and then polls with the newest `revokedAt` it has seen.
   */
  revocationsSince(since: number, now: number): Promise<Revocation[]>
  /** Forgets revocations whose tokens expired before `now`. */
  pruneRevocations(now: number): Promise<void>
}
