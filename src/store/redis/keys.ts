import type { UserId } from '../../core/user-id.js'

/** How many buckets users are spread over, unless configured: see RedisKeys. */
export const DEFAULT_BUCKETS = 64

/** How many expiry shards each bucket's index is split into, unless configured: see RedisKeys. */
export const DEFAULT_DUE_SHARDS = 128

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
 * A bucket's expiry index is split into `dueShards` small sorted sets (a user's shard is its id's
 * last six digits mod `dueShards`, cheap in Lua too) under one timer that says when each shard
 * may next have something due. Redis keeps a sorted set of up to 128 members as one compact
 * listpack (~20 B a member) and a larger one as a skiplist (~110 B a member): at the defaults,
 * shards stay compact up to about a million users.
 *
 * 64 buckets are 64 slots, enough to spread a cluster of up to ~16 masters; every node of a
 * fleet must use the same prefix, bucket and shard counts (changing one orphans the data).
 */
export class RedisKeys {
  readonly prefix: string
  readonly buckets: number
  readonly dueShards: number

  constructor(prefix: string, buckets = DEFAULT_BUCKETS, dueShards = DEFAULT_DUE_SHARDS) {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 16384) {
      throw new RangeError(`buckets must be an integer in 1..16384, got ${buckets}`)
    }
    if (!Number.isInteger(dueShards) || dueShards < 1 || dueShards > 1_000_000) {
      throw new RangeError(`dueShards must be an integer in 1..1000000, got ${dueShards}`)
    }
    this.prefix = prefix
    this.buckets = buckets
    this.dueShards = dueShards
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

  /** The expiry shard of a user in its bucket; the scripts compute the same (presence.lua). */
  dueShardOf(id: string): number {
    return Number(id.slice(-6)) % this.dueShards
  }

  /** `<prefix>:{b<bucket>}:<kind>:` by kind, then bucket: a key is then one concatenation. */
  readonly #heads = new Map<string, string[]>()

  #user(id: string, kind: string): string {
    return this.userKeyHeads(kind)[this.bucketOf(id)]! + id
  }

  /** What precedes the id in a user's key of `kind` (`p`, `s`…), by bucket; one array per kind. */
  userKeyHeads(kind: string): readonly string[] {
    let heads = this.#heads.get(kind)
    if (heads === undefined) {
      heads = Array.from({ length: this.buckets }, (_, b) => `${this.prefix}:{b${b}}:${kind}:`)
      this.#heads.set(kind, heads)
    }
    return heads
  }

  /** String: the user's presence as one value (see presence-codec.ts): one GET per user. */
  presence(id: UserId): string {
    return this.#user(id, 'p')
  }

  /** presence(id) is `presenceHeads()[bucketOf(id)] + id` (RedisConnection.mgetUsers). */
  presenceHeads(): readonly string[] {
    return this.userKeyHeads('p')
  }

  /** The presence key of the bucket's users without the id: the sweep script appends ids. */
  presencePrefix(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:p:`
  }

  /** Sorted set of one expiry shard of the bucket: userId scored by its earliest expiresAt. */
  due(bucket: number, shard: number): string {
    return `${this.duePrefix(bucket)}${shard}`
  }

  /** The expiry shard keys of the bucket without the shard: scripts append it. */
  duePrefix(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:d:`
  }

  /**
   * Sorted set of the bucket: shard scored by a time at or before its earliest expiresAt, so a
   * sweep looks only at shards that may have something due. Writes only lower a score; the sweep
   * raises it again to the shard's real earliest.
   */
  dueTimer(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:t`
  }

  /** Hash of the bucket: `s` sessions and `u` users it holds (live, or expired and not swept). */
  counts(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:c`
  }

  /**
   * String: a game server's last report, JSON `{p: [players], a, d, up, ex}`, kept twice its ttl
   * so a late report still finds who left; its own hash tag, so servers spread over the cluster.
   * (A set of players per server and bucket cost ~75 B per player in key overhead.)
   */
  server(gameId: string): string {
    return `${this.prefix}:{g:${gameId}}:srv`
  }

  /**
   * String: UserSettings as JSON. A copy is folded into the presence value (presence-codec.ts),
   * whose scripts find this key by putting `s:` where the presence key has `p:` before the id.
   */
  settings(id: UserId): string {
    return this.#user(id, 's')
  }

  /** A SCAN pattern of every user's settings key. */
  settingsPattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}:{b*}:s:*`
  }

  /** String: set once every settings key stored before settings were folded has been folded. */
  settingsFolded(): string {
    return `${this.prefix}:settings-folded`
  }

  /** settings(id) is `settingsHeads()[bucketOf(id)] + id` (RedisConnection.mgetUsers). */
  settingsHeads(): readonly string[] {
    return this.userKeyHeads('s')
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

  /**
   * Hash: for each user blocked either way, that user's lastOnline as this user saw it when the
   * block was made ('' when none); once no block stands between them, `e<since>:<saw>`: the
   * instant the block ended and what this user saw through it (Relation.since). Read with the
   * sets above in getRelations' round trip.
   */
  blockSight(id: UserId): string {
    return this.#user(id, 'bs')
  }

  /** String: UserProfile as JSON. */
  userProfile(id: UserId): string {
    return this.#user(id, 'n')
  }

  /**
   * Set of the ids of the users named `name`, ASCII case folded (a name index; reads check each
   * id's profile, so an entry a concurrent rename left behind is harmless).
   */
  userName(name: string): string {
    return `${this.prefix}:uname:${foldName(name)}`
  }

  place(placeId: string): string {
    return `${this.prefix}:place:${placeId}`
  }

  title(titleId: string): string {
    return `${this.prefix}:title:${titleId}`
  }

  /**
   * Sorted set: the ended blocks' records kept in the sights (blockSight), as
   * `<viewer>:<target>` scored by the instant the block ended, so that the janitor walks them
   * oldest first by rank ranges (RedisProfileStore.blockEnds).
   */
  blockEnds(): string {
    return `${this.prefix}:block-ends`
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
   * Sorted sets of revoked tokens (member: token id): scored by when they were revoked (nodes
   * poll for new ones) and by when they expire (pruning). One hash tag: one script updates both.
   */
  revokedByTime(): string {
    return `${this.prefix}:{rev}:t`
  }

  revokedByExpiry(): string {
    return `${this.prefix}:{rev}:x`
  }

  /**
   * Counter of one fixed window of one rule for one caller. All rules of a caller share a hash
   * tag so one script checks them together: the caller key's own, or for one user's budget
   * (`near`) the user's bucket, so that the user's heartbeat counts it in its own script on a
   * cluster too. Braces in the caller key would break the tag, so they are escaped, and `%` too,
   * so that two callers never share a key.
   */
  rateWindow(key: string, rule: string, window: number, near?: UserId): string {
    const [before, after] = this.rateWindowAround(key, rule, window, near)
    return before + after
  }

  /**
   * rateWindow(key + suffix, …) as the text before and after the (escaped) suffix, for a script
   * that learns the suffix as it runs (end-titles.lua: a title id); `before` is the same for
   * every rule and window.
   */
  rateWindowAround(key: string, rule: string, window: number, near?: UserId): [string, string] {
    const escaped = key.replace(/[%{}]/g, escapeTagChar)
    return near === undefined
      ? [`${this.prefix}:rl:{${escaped}`, `}:${rule}:${window}`]
      : [`${this.prefix}:{b${this.bucketOf(near)}}:rl:${escaped}`, `:${rule}:${window}`]
  }

  /**
   * The bucket's change history keys without `m:<id>` (a user's "<epoch> <offset>"), `l:<id>`
   * (a user's list of recent changes), `k:<id>` (its latest privacy mark) or `c:<id>` (its latest
   * marks and whom they concern): scripts append
   * them, in the user's slot.
   */
  historyPrefix(bucket: number): string {
    return `${this.prefix}:{b${bucket}}:h`
  }

  /** String: "<epoch> <offset>", where the user's change history stands. */
  historyPosition(id: UserId): string {
    return `${this.historyPrefix(this.bucketOf(id))}m:${id}`
  }

  /** String: "<epoch> <offset>" of the user's latest privacy mark (offset 0: none in the epoch). */
  historyMark(id: UserId): string {
    return `${this.historyPrefix(this.bucketOf(id))}k:${id}`
  }

  /**
   * List of the user's latest privacy marks, "<epoch> <offset> <previous mark's offset>
   * <concern>", oldest first (history.ts MarkRecord).
   */
  historyConcerns(id: UserId): string {
    return `${this.historyPrefix(this.bucketOf(id))}c:${id}`
  }

  /** List of the user's recent changes, "<at> <message>", oldest first. */
  historyList(id: UserId): string {
    return `${this.historyPrefix(this.bucketOf(id))}l:${id}`
  }

  /**
   * String: the checkpoint of an SSE stream ended by a shutdown (JSON), in the viewer's slot;
   * the viewer is part of the key, so only the viewer's own request can find it.
   */
  streamCheckpoint(viewer: UserId, token: string): string {
    return `${this.#user(viewer, 'ck')}:${token}`
  }

  /**
   * Hash: what each node holds of the user's real-time streams, `<node id>` → "<streams>
   * <watches> <until>" (stream-holdings.lua), in the user's slot; one script reads and sets it.
   */
  streamHoldings(id: UserId): string {
    return this.#user(id, 'rt')
  }

  /**
   * A fleet duty's lease (string: the holding node's id, with a TTL) and its published result
   * (string, with a TTL): RedisFleetDuties. One key each, no hash tag needed.
   */
  dutyLease(duty: string): string {
    return `${this.prefix}:duty:${duty}:lease`
  }

  dutyResult(duty: string): string {
    return `${this.prefix}:duty:${duty}:result`
  }

  /** Pub/sub channel of the change bus. */
  channel(): string {
    return `${this.prefix}:bus`
  }
}

function escapeTagChar(char: string): string {
  return char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'
}

/** A name with its ASCII letters lower-cased: how names are matched (as SQLite's NOCASE). */
export function foldName(name: string): string {
  return name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase())
}

/**
 * What decides a key's cluster slot: the text between its first `{` and the next `}` when not
 * empty, else the whole key (Redis's hash tag rule).
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{')
  if (open === -1) return key
  const close = key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}
