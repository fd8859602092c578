import type { UserId } from '../../core/user-id.js'

/** How many buckets users are spread over, unless configured: see RedisKeys. */
export const DEFAULT_BUCKETS = 64

/**
 * Key builders for the Redis adapters: the one place that knows the key layout.
 *
 * Every key of a user carries the hash tag of the user's bucket (`{b<n>}`, n = hash(userId) mod
 * `buckets`), and so does the bucket's expiry index. A user's presence value and the index entry
 * that says when it expires therefore share one cluster slot, which lets one Lua script update
 * both atomically: a heartbeat, an end and an expiry claim each touch exactly one slot, and a
 * sweep can claim and remove an expired session in one step, exactly once across nodes. A tag
 * per user would put the index on another shard than the value and need a two-step claim.
 *
 * 64 buckets are 64 slots, enough to spread a cluster of up to ~16 masters; every node of a
 * fleet must use the same prefix and bucket count (changing either orphans the data).
 */
export class RedisKeys {
  readonly prefix: string
  readonly buckets: number

  constructor(prefix: string, buckets = DEFAULT_BUCKETS) {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 16384) {
      throw new RangeError(`buckets must be an integer in 1..16384, got ${buckets}`)
    }
    this.prefix = prefix
    this.buckets = buckets
  }

  /** FNV-1a of the decimal id: cheap, stable across nodes and languages. */
  bucketOf(id: string): number {
    let hash = 0x811c9dc5
    for (let i = 0; i < id.length; i++) {
      hash ^= id.charCodeAt(i)
      hash = Math.imul(hash, 0x01000193)
    }
    return (hash >>> 0) % this.buckets
  }

  #user(id: string, kind: string): string {
    return `${this.prefix}:{b${this.bucketOf(id)}}:${kind}:${id}`
  }

  /** String: the user's presence as one JSON value `{lo, s: [sessions]}` (one GET per user). */
  presence(id: UserId): string {
    return this.#user(id, 'p')
  }

  /** The presence key of the bucket's users without the id: the sweep script appends ids. */
  presencePrefix(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:p:`
  }

  /** Sorted set of the bucket: userId scored by the earliest expiresAt among its sessions. */
  due(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:due`
  }

  /** Integer: how many sessions the bucket holds. */
  sessionCount(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:n`
  }

  /** Set: the user ids of one game server's roster that fall in this bucket. */
  serverRoster(bucket: number, gameId: string): string {
    return `${this.prefix}:{b${bucket}}:srv:${gameId}`
  }

  /**
   * String: a game server's last report, JSON `{b: [buckets of its roster], a, d, up, ex}`; its
   * own hash tag, so servers spread over the cluster.
   */
  server(gameId: string): string {
    return `${this.prefix}:{g:${gameId}}:srv`
  }

  /** String: UserSettings as JSON. */
  settings(id: UserId): string {
    return this.#user(id, 's')
  }

  /** Set of the user's friends. */
  friends(id: UserId): string {
    return this.#user(id, 'f')
  }

  /** Set of the users this user blocked. */
  blocks(id: UserId): string {
    return this.#user(id, 'b')
  }

  /** Set of the users who blocked this user: kept beside the viewer's own sets for getRelations. */
  blockedBy(id: UserId): string {
    return this.#user(id, 'bb')
  }

  /** String: UserProfile as JSON. */
  userProfile(id: UserId): string {
    return this.#user(id, 'n')
  }

  place(placeId: string): string {
    return `${this.prefix}:place:${placeId}`
  }

  title(titleId: string): string {
    return `${this.prefix}:title:${titleId}`
  }

  /** Hash: key id → ApiKeyRecord JSON. */
  apiKeys(): string {
    return `${this.prefix}:apikeys`
  }

  /** String: ApiKeyRecord JSON, indexed by the secret's hash. */
  apiKeyByHash(hash: string): string {
    return `${this.prefix}:apikey:${hash}`
  }

  /**
   * Counter of one fixed window of one rule for one caller. All rules of a caller share a hash
   * tag so one script checks them together. Braces in the caller key would break the tag, so
   * they are escaped, and `%` too, so that two callers never share a key.
   */
  rateWindow(key: string, rule: string, window: number): string {
    return `${this.prefix}:rl:{${key.replace(/[%{}]/g, escapeTagChar)}}:${rule}:${window}`
  }

  /** Pub/sub channel of the change bus. */
  channel(): string {
    return `${this.prefix}:bus`
  }
}

function escapeTagChar(char: string): string {
  return char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'
}
