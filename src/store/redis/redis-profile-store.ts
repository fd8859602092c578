import {
  befriended,
  defaultSettings,
  sameSettings,
  strangers,
  strangersOf,
  type BlockEnd,
  type BlockSight,
  type Relation,
  type UserSettings,
} from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { Cluster, Redis } from 'ioredis'
import type { ApiKeyRecord } from '../../core/api-key.js'
import type {
  CatalogueRecord,
  Place,
  PrivacyRecord,
  Title,
  UserProfile,
} from '../../core/catalogue.js'
import type { Revocation } from '../credential-store.js'
import type { ProfileStore } from '../profile-store.js'
import { foldName, hashTagOf, type RedisKeys } from './keys.js'
import { settingsOfText, settingsText } from './presence-codec.js'
import type { RedisConnection } from './redis-connection.js'

type Op = [command: string, ...args: string[]]

/** Commands per MULTI of an import on a single Redis: bounded so no transaction is huge. */
const IMPORT_CHUNK = 5000

/**
 * Durable data in Redis, for fleet mode: settings and profiles as JSON strings, relationships as
 * sets, all under the user's hash tag. Each user keeps, beside the friends and blocks sets, the
 * set of users who blocked them, so `getRelations(viewer, targets)` reads three sets of the
 * viewer's own slot: one round trip. Durable as far as Redis is: run it with AOF (README).
 */
export class RedisProfileStore implements ProfileStore {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  #settingsFolded = false

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection.retain()
    this.#keys = keys
  }

  /**
   * Whether this node knows every settings key is folded into a presence value
   * (foldStoredSettings has run on this Redis): until then, a user with no presence value may
   * still have settings an older version stored, which reads must not take for the defaults.
   */
  get settingsFolded(): boolean {
    return this.#settingsFolded
  }

  get #client() {
    return this.#connection.client
  }

  getSettings(ids: readonly UserId[]): Promise<UserSettings[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.#connection.run(async () => {
      const k = this.#keys
      const raws = await this.#connection.mgetUsers(k.settingsHeads(), ids, k)
      return raws.map((raw) => (raw ? settingsOfText(raw) : defaultSettings))
    })
  }

  putSettings(id: UserId, settings: UserSettings): Promise<void> {
    return this.#run([this.#settingsOp(id, settings)])
  }

  replaceSettings(id: UserId, expected: UserSettings, next: UserSettings): Promise<boolean> {
    const k = this.#keys
    const text = settingsText(next)
    return this.#connection.run(async () => {
      let expectedText = settingsText(expected)
      // a second try when the stored text says the same in other words (another version wrote it)
      for (let attempt = 0; attempt < 2; attempt++) {
        const stored = await this.#client.presencedSettings(
          k.settings(id),
          k.presence(id),
          text,
          expectedText,
        )
        if (stored === null) return true
        if (stored === expectedText || !sameSettings(settingsOfText(stored), expected)) return false
        expectedText = stored
      }
      return false
    })
  }

  getRelations(viewer: UserId, targets: readonly UserId[]): Promise<readonly Relation[]> {
    if (targets.length === 0) return Promise.resolve(strangersOf(0))
    const k = this.#keys
    return this.#connection.run(async () => {
      // issued together, in the write of the tick's MGET (one round trip to the viewer's shard)
      const c = this.#connection
      const member = (key: string) =>
        c.beside<number[]>('smismember', [key, ...targets], (client) =>
          client.smismember(key, ...targets),
        )
      const sightKey = k.blockSight(viewer)
      const sets = [k.friends(viewer), k.blocks(viewer), k.blockedBy(viewer)] as const
      // on a cluster, read again each on its own when a slot move may have misled them
      const [friends, blocks, blockedBy, sights] = await c.together(
        () =>
          Promise.all([
            member(sets[0]),
            member(sets[1]),
            member(sets[2]),
            c.beside<(string | null)[]>('hmget', [sightKey, ...targets], (client) =>
              client.hmget(sightKey, ...targets),
            ),
          ]),
        () => {
          const alone = (set: string) => c.alone<number[]>('smismember', [set, ...targets])
          return Promise.all([
            alone(sets[0]),
            alone(sets[1]),
            alone(sets[2]),
            c.alone<(string | null)[]>('hmget', [sightKey, ...targets]),
          ])
        },
      )
      return targets.map((_, i): Relation => {
        const isFriend = friends[i] === 1
        let sight = sights[i]
        // a block that ended: `e<since>:<saw>` (see #dropSightsUnlessBlocked)
        let since: number | undefined
        if (sight?.startsWith('e')) {
          const colon = sight.indexOf(':')
          since = Number(sight.slice(1, colon))
          sight = sight.slice(colon + 1)
        }
        if (blocks[i] !== 1 && blockedBy[i] !== 1) {
          // shared frozen relations: nothing allocated per target but blocks, ended or not
          if (since === undefined) return isFriend ? befriended : strangers
          return sight
            ? { friends: isFriend, blocked: false, lastOnline: Number(sight), since }
            : { friends: isFriend, blocked: false, since }
        }
        return sight
          ? { friends: isFriend, blocked: true, lastOnline: Number(sight) }
          : { friends: isFriend, blocked: true }
      })
    })
  }

  setFriends(a: UserId, b: UserId, friends: boolean): Promise<void> {
    return this.#connection.run(async () => {
      await this.#applySteps(this.#friendSteps(a, b, friends))
    })
  }

  setBlocked(
    blocker: UserId,
    blocked: UserId,
    isBlocked: boolean,
    sight?: BlockSight,
  ): Promise<void> {
    return this.#connection.run(async () => {
      if (isBlocked) {
        await this.#applySteps(this.#blockSteps(blocker, blocked, sight))
        return
      }
      const [reverse] = await this.#blockStands([[blocked, blocker]])
      await this.#applySteps(this.#unblockSteps(blocker, blocked, reverse === 1, sight))
    })
  }

  blockEnds(offset: number, limit: number): Promise<BlockEnd[]> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const client = this.#client
      const range = [k.blockEnds(), String(offset), String(offset + limit - 1), 'WITHSCORES']
      const listed = await this.#connection.read<string[]>('zrange', range, (c) =>
        c.zrange(k.blockEnds(), offset, offset + limit - 1, 'WITHSCORES'),
      )
      const members: string[] = []
      const ends: BlockEnd[] = []
      for (let i = 0; i < listed.length; i += 2) {
        const member = listed[i]!
        const colon = member.indexOf(':')
        members.push(member)
        ends.push({
          viewer: member.slice(0, colon) as UserId,
          target: member.slice(colon + 1) as UserId,
          saw: undefined,
          since: Number(listed[i + 1]),
        })
      }
      const sights = await Promise.all(
        ends.map((end) => this.#hget(k.blockSight(end.viewer), end.target)),
      )
      const found: BlockEnd[] = []
      const gone: Promise<number>[] = []
      ends.forEach((end, i) => {
        const head = `e${end.since}:`
        const sight = sights[i]
        if (sight?.startsWith(head)) {
          const saw = sight.slice(head.length)
          found.push(saw === '' ? end : { ...end, saw: Number(saw) })
          return
        }
        // the record is gone or replaced (a block made again): its entry goes, unless a later
        // end scored it anew meanwhile
        gone.push(client.presencedBlockEndForget(k.blockEnds(), members[i]!, String(end.since)))
      })
      await Promise.all(gone)
      return found
    })
  }

  dropBlockEnds(ends: readonly BlockEnd[]): Promise<void> {
    if (ends.length === 0) return Promise.resolve()
    const k = this.#keys
    return this.#connection.run(async () => {
      const client = this.#client
      // the record first, then its entry in the index: lost between, the entry lists a record
      // that is gone, which the next walk forgets (blockEnds)
      await Promise.all(
        ends.map(async (end) => {
          const gone = await client.presencedBlockEndDrop(
            k.blockSight(end.viewer),
            k.blocks(end.viewer),
            k.blockedBy(end.viewer),
            end.target,
            `e${end.since}:`,
          )
          if (gone !== 1) return
          await client.presencedBlockEndForget(
            k.blockEnds(),
            `${end.viewer}:${end.target}`,
            String(end.since),
          )
        }),
      )
    })
  }

  listFriends(id: UserId): Promise<UserId[]> {
    return this.#connection.run(
      async () => (await this.#smembers(this.#keys.friends(id))) as UserId[],
    )
  }

  getPlace(placeId: string): Promise<Place | undefined> {
    return this.#getJson<Place>(this.#keys.place(placeId))
  }

  putPlace(place: Place): Promise<void> {
    return this.#run([['set', this.#keys.place(place.placeId), JSON.stringify(place)]])
  }

  getTitle(titleId: string): Promise<Title | undefined> {
    return this.#getJson<Title>(this.#keys.title(titleId))
  }

  putTitle(title: Title): Promise<void> {
    return this.#run([['set', this.#keys.title(title.titleId), JSON.stringify(title)]])
  }

  getUser(id: UserId): Promise<UserProfile | undefined> {
    return this.#getJson<UserProfile>(this.#keys.userProfile(id))
  }

  getUsersByNames(names: readonly string[]): Promise<(UserProfile | undefined)[]> {
    if (names.length === 0) return Promise.resolve([])
    return this.#connection.run(async () => {
      const candidates = await Promise.all(
        names.map((name) => this.#smembers(this.#keys.userName(name))),
      )
      const ids = [...new Set(candidates.flat())] as UserId[]
      const raws =
        ids.length > 0
          ? await this.#connection.mget(ids.map((id) => this.#keys.userProfile(id)))
          : []
      const profiles = new Map<string, UserProfile>()
      ids.forEach((id, i) => {
        const raw = raws[i]
        if (raw) profiles.set(id, JSON.parse(raw) as UserProfile)
      })
      return names.map((name, i) => {
        const folded = foldName(name)
        let found: UserProfile | undefined
        for (const id of candidates[i]!) {
          const profile = profiles.get(id)
          // an id the index still holds after a rename no longer carries the name
          if (!profile || foldName(profile.name) !== folded) continue
          if (found === undefined || smallerId(profile.userId, found.userId)) found = profile
        }
        return found
      })
    })
  }

  putUser(user: UserProfile): Promise<void> {
    return this.#connection.run(async () => {
      const [old] = await this.#profiles([user.userId])
      await this.#apply(this.#userOps(user, old))
    })
  }

  putApiKey(key: ApiKeyRecord): Promise<void> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const previous = await this.#hget(k.apiKeys(), key.id)
      const record = JSON.stringify(key)
      const ops: Op[] = [
        ['hset', k.apiKeys(), key.id, record],
        ['set', k.apiKeyByHash(key.hash), record],
      ]
      const oldHash = previous ? (JSON.parse(previous) as ApiKeyRecord).hash : undefined
      if (oldHash !== undefined && oldHash !== key.hash) ops.push(['del', k.apiKeyByHash(oldHash)])
      await this.#apply(ops)
    })
  }

  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.#getJson<ApiKeyRecord>(this.#keys.apiKeyByHash(hash))
  }

  getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return this.#connection.run(async () => {
      const raw = await this.#hget(this.#keys.apiKeys(), id)
      return raw === null ? undefined : (JSON.parse(raw) as ApiKeyRecord)
    })
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.#connection.run(async () =>
      Object.values(
        await this.#connection.read('hgetall', [this.#keys.apiKeys()], (c) =>
          c.hgetall(this.#keys.apiKeys()),
        ),
      )
        .map((raw) => JSON.parse(raw) as ApiKeyRecord)
        .sort((a, b) => a.id.localeCompare(b.id)),
    )
  }

  importPrivacy(records: readonly PrivacyRecord[]): Promise<number[]> {
    const unblocks = records.flatMap((r) => (r.type === 'block' && !r.isBlocked ? [r] : []))
    return this.#connection.run(async () => {
      // whether each unblocked pair is blocked the other way: as stored, then as the batch goes
      const stored = await this.#blockStands(unblocks.map((r) => [r.blocked, r.blocker]))
      const reverse = new Map(
        unblocks.map((r, i) => [`${r.blocked}>${r.blocker}`, stored[i] === 1]),
      )
      /**
       * The batch's commands by step (#applySteps): settings records in the first, each relation
       * record's steps in a row, starting no earlier than the last step of the pair's record
       * before it, so that each pair's commands stay in the batch's order on every slot (records
       * of other pairs touch other members and fields: their order does not matter).
       */
      const steps: Op[][] = [[]]
      const pairAt = new Map<string, number>()
      const put = (a: UserId, b: UserId, own: Op[][]) => {
        const pair = smallerId(a, b) ? `${a}:${b}` : `${b}:${a}`
        const start = pairAt.get(pair) ?? 0
        own.forEach((ops, i) => (steps[start + i] ??= []).push(...ops))
        pairAt.set(pair, start + own.length - 1)
      }
      /** Where each settings record's op is in the first step, by the record's index. */
      const settingsAt = new Map<number, number>()
      for (const [i, r] of records.entries()) {
        switch (r.type) {
          case 'settings':
            settingsAt.set(i, steps[0]!.length)
            steps[0]!.push(this.#settingsOp(r.userId, r.settings, r.expected))
            break
          case 'friends':
            put(r.a, r.b, this.#friendSteps(r.a, r.b, r.friends))
            break
          case 'block': {
            const reversed = reverse.get(`${r.blocked}>${r.blocker}`) === true
            reverse.set(`${r.blocker}>${r.blocked}`, r.isBlocked)
            put(
              r.blocker,
              r.blocked,
              r.isBlocked
                ? this.#blockSteps(r.blocker, r.blocked, r.sight)
                : this.#unblockSteps(r.blocker, r.blocked, reversed, r.sight),
            )
            break
          }
        }
      }
      const replies = (await this.#applySteps(steps))[0]!
      // settings.lua answers a refused compare-and-set with the stored text; one that says the
      // expected settings in other words (another version wrote it) is tried again alone, in
      // order, as replaceSettings does
      const refused: number[] = []
      for (const [i, at] of settingsAt) {
        const r = records[i] as Extract<PrivacyRecord, { type: 'settings' }>
        if (typeof replies[at] !== 'string') continue
        if (!(await this.replaceSettings(r.userId, r.expected!, r.settings))) refused.push(i)
      }
      return refused
    })
  }

  importCatalogue(records: readonly CatalogueRecord[]): Promise<void> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const users = records.flatMap((r) => (r.type === 'user' ? [r.user] : []))
      // the names users had before, to take them out of the name index
      const before = new Map<string, UserProfile | undefined>()
      const olds = await this.#profiles(users.map((u) => u.userId))
      users.forEach((user, i) => {
        if (!before.has(user.userId)) before.set(user.userId, olds[i])
      })
      const ops: Op[] = []
      for (const r of records) {
        switch (r.type) {
          case 'place':
            ops.push(['set', k.place(r.place.placeId), JSON.stringify(r.place)])
            break
          case 'title':
            ops.push(['set', k.title(r.title.titleId), JSON.stringify(r.title)])
            break
          case 'user':
            ops.push(...this.#userOps(r.user, before.get(r.user.userId)))
            before.set(r.user.userId, r.user)
            break
        }
      }
      await this.#apply(ops)
    })
  }

  revokeToken(revocation: Revocation): Promise<void> {
    const k = this.#keys
    // NX: revoking twice keeps the first instant; both sets share a slot, so MULTI works on a cluster
    return this.#connection.run(async () => {
      const results = await this.#client
        .multi()
        .zadd(k.revokedByTime(), 'NX', revocation.revokedAt, revocation.tokenId)
        .zadd(k.revokedByExpiry(), 'NX', revocation.expiresAt, revocation.tokenId)
        .exec()
      const failed = results?.find(([error]) => error)
      if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted')
    })
  }

  revocationsSince(since: number, now: number): Promise<Revocation[]> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const byTime = await this.#connection.read(
        'zrangebyscore',
        [k.revokedByTime(), String(since), '+inf', 'WITHSCORES'],
        (c) => c.zrangebyscore(k.revokedByTime(), since, '+inf', 'WITHSCORES'),
      )
      const ids: string[] = []
      const times: number[] = []
      for (let i = 0; i < byTime.length; i += 2) {
        ids.push(byTime[i]!)
        times.push(Number(byTime[i + 1]))
      }
      if (ids.length === 0) return []
      const expiries = await this.#connection.read('zmscore', [k.revokedByExpiry(), ...ids], (c) =>
        c.zmscore(k.revokedByExpiry(), ...ids),
      )
      const out: Revocation[] = []
      ids.forEach((tokenId, i) => {
        const expiresAt = Number(expiries[i])
        if (expiries[i] !== null && expiresAt > now) {
          out.push({ tokenId, expiresAt, revokedAt: times[i]! })
        }
      })
      return out
    })
  }

  pruneRevocations(now: number): Promise<void> {
    const k = this.#keys
    return this.#connection.run(async () => {
      const expired = await this.#client.zrangebyscore(k.revokedByExpiry(), '-inf', now)
      for (let i = 0; i < expired.length; i += 1000) {
        const chunk = expired.slice(i, i + 1000)
        await this.#client
          .multi()
          .zrem(k.revokedByTime(), ...chunk)
          .zrem(k.revokedByExpiry(), ...chunk)
          .exec()
      }
    })
  }

  /**
   * Folds every stored settings key into its user's presence value (settings.lua), for data an
   * older version stored before settings were folded: until then, reads take the settings key of
   * every user with no presence value too (settingsFolded). Once per Redis (a key marks it done; running it
   * again, or on two nodes at once, is harmless). Returns how many keys it folded.
   */
  foldStoredSettings(): Promise<number> {
    const k = this.#keys
    const client = this.#client
    return this.#connection.run(async () => {
      if ((await client.exists(k.settingsFolded())) === 1) {
        this.#settingsFolded = true
        return 0
      }
      const masters = this.#connection.isCluster ? (client as Cluster).nodes('master') : [client]
      let folded = 0
      for (const master of masters) {
        let cursor = '0'
        do {
          const [next, found] = await (master as Redis).scan(
            cursor,
            'MATCH',
            k.settingsPattern(),
            'COUNT',
            1000,
          )
          cursor = next
          await Promise.all(
            found.map((key) => {
              const id = key.slice(key.lastIndexOf(':') + 1)
              const presence = `${key.slice(0, key.length - id.length - 2)}p:${id}`
              return client.presencedSettings(key, presence, '')
            }),
          )
          folded += found.length
        } while (cursor !== '0')
      }
      await client.set(k.settingsFolded(), String(folded))
      this.#settingsFolded = true
      return folded
    })
  }

  ready(): Promise<boolean> {
    return this.#connection.ready()
  }

  close(): Promise<void> {
    return this.#connection.release()
  }

  /** The settings key, and the copy folded into the presence value (settings.lua). */
  /** settings.lua's op; with `expected`, a compare-and-set (replaceSettings). */
  #settingsOp(id: UserId, settings: UserSettings, expected?: UserSettings): Op {
    const k = this.#keys
    const op: Op = ['presencedSettings', k.settings(id), k.presence(id), settingsText(settings)]
    if (expected) op.push(settingsText(expected))
    return op
  }

  /**
   * Whether reads of `connection` and `keys` find the settings this store keeps folded into the
   * presence values (RedisPresenceStore.summarizeWithSettings): the same Redis and key layout.
   */
  foldsInto(connection: RedisConnection, keys: RedisKeys): boolean {
    return (
      connection === this.#connection &&
      keys.prefix === this.#keys.prefix &&
      keys.buckets === this.#keys.buckets
    )
  }

  /*
   * A relation's write, in steps (#applySteps): one per user, as each user's view of the other is
   * in that user's own slot (getRelations). The steps are ordered so that, written in part, the
   * first-named user (`a`, the blocker) is seen by the other no more than both the old and the
   * new relation show: the other's slot first when it narrows what the other sees (a block, an
   * end of friendship), last when it widens it (an unblock, a new friendship). The first-named
   * user's own view of the other is what lags or leads, and it is one the other's settings allow
   * without the block or with the friendship: docs/reference/admin.md, "Relations on a Redis
   * Cluster".
   */

  #friendSteps(a: UserId, b: UserId, friends: boolean): Op[][] {
    const k = this.#keys
    return friends
      ? [[['sadd', k.friends(a), b]], [['sadd', k.friends(b), a]]]
      : [[['srem', k.friends(b), a]], [['srem', k.friends(a), b]]]
  }

  /** The blocked user's side first: from then on it sees the blocker Offline. */
  #blockSteps(blocker: UserId, blocked: UserId, sight: BlockSight | undefined): Op[][] {
    const k = this.#keys
    return [
      [
        ['sadd', k.blockedBy(blocked), blocker],
        ['hset', k.blockSight(blocked), blocker, String(sight?.blockedSaw ?? '')],
      ],
      [
        ['sadd', k.blocks(blocker), blocked],
        ['hset', k.blockSight(blocker), blocked, String(sight?.blockerSaw ?? '')],
        // a block replaces an ended one's records (the sights above): their index entries go too
        ['zrem', k.blockEnds(), `${blocker}:${blocked}`, `${blocked}:${blocker}`],
      ],
    ]
  }

  /**
   * The blocker's side first, the blocked user's last: until then it still sees the blocker
   * Offline. Each side's sight goes in the same MULTI as its block (#endedSights), so no side is
   * ever unblocked with the sight of a standing block: a retry (the service reads the sights
   * through what each side shows) keeps what each saw through the block.
   */
  #unblockSteps(
    blocker: UserId,
    blocked: UserId,
    reverse: boolean,
    sight: BlockSight | undefined,
  ): Op[][] {
    const k = this.#keys
    const ended = this.#endedSights(blocker, blocked, reverse, sight)
    return [
      [...ended.blocker, ['srem', k.blocks(blocker), blocked]],
      [...ended.blocked, ['srem', k.blockedBy(blocked), blocker], ...ended.index],
    ]
  }

  /** For each pair `[blocker, blocked]`: 1 when that block stands. */
  #blockStands(pairs: readonly [UserId, UserId][]): Promise<number[]> {
    const k = this.#keys
    return Promise.all(
      pairs.map(([blocker, blocked]) =>
        this.#connection.read('sismember', [k.blocks(blocker), blocked], (c) =>
          c.sismember(k.blocks(blocker), blocked),
        ),
      ),
    )
  }

  /**
   * The sights of an unblock, by side, and their index entries. Once no block stands between two
   * users (`reverse`: one the other way still does), each keeps what it saw of the other through
   * it, with the instant it ended, when the unblock's `sight` has one (Relation.since), else
   * forgets it. A block the other way keeps it as it is: both blocks hold the same sight (the
   * second one saw through the first). A block made the other way between the check and the
   * write reads its sight from the ended block's (what the viewer saw through it), or, after a
   * delete, shows `lastOnline` as unknown: never more than the viewer may know. While a block
   * still stands on a side, reads take an ended sight as a standing block's.
   */
  #endedSights(
    blocker: UserId,
    blocked: UserId,
    reverse: boolean,
    sight: BlockSight | undefined,
  ): { blocker: Op[]; blocked: Op[]; index: Op[] } {
    if (reverse) return { blocker: [], blocked: [], index: [] }
    const k = this.#keys
    const since = sight?.since
    const members = [`${blocker}:${blocked}`, `${blocked}:${blocker}`]
    if (sight === undefined || since === undefined) {
      return {
        blocker: [['hdel', k.blockSight(blocker), blocked]],
        blocked: [['hdel', k.blockSight(blocked), blocker]],
        index: [['zrem', k.blockEnds(), ...members]],
      }
    }
    // the block ended: each keeps what it saw through it (Relation.since), as `e<since>:<saw>`,
    // listed in the index by its end for the janitor (blockEnds)
    return {
      blocker: [['hset', k.blockSight(blocker), blocked, `e${since}:${sight.blockerSaw ?? ''}`]],
      blocked: [['hset', k.blockSight(blocked), blocker, `e${since}:${sight.blockedSaw ?? ''}`]],
      index: [['zadd', k.blockEnds(), String(since), members[0]!, String(since), members[1]!]],
    }
  }

  /** A user's profile and name index entry; the old name's entry goes when the name changes. */
  #userOps(user: UserProfile, old: UserProfile | undefined): Op[] {
    const k = this.#keys
    const ops: Op[] = [
      ['set', k.userProfile(user.userId), JSON.stringify(user)],
      ['sadd', k.userName(user.name), user.userId],
    ]
    if (old && foldName(old.name) !== foldName(user.name)) {
      ops.push(['srem', k.userName(old.name), user.userId])
    }
    return ops
  }

  async #profiles(ids: readonly UserId[]): Promise<(UserProfile | undefined)[]> {
    if (ids.length === 0) return []
    const raws = await this.#connection.mget(ids.map((id) => this.#keys.userProfile(id)))
    return raws.map((raw) => (raw ? (JSON.parse(raw) as UserProfile) : undefined))
  }

  /**
   * Reads of the store's own keys go through RedisConnection.read: on a cluster, answered where
   * the key is while its slot is being moved (a friend never read as a stranger).
   */
  #smembers(key: string): Promise<string[]> {
    return this.#connection.read('smembers', [key], (c) => c.smembers(key))
  }

  #hget(key: string, field: string): Promise<string | null> {
    return this.#connection.read('hget', [key, field], (c) => c.hget(key, field))
  }

  async #getJson<T>(key: string): Promise<T | undefined> {
    return this.#connection.run(async () => {
      const raw = await this.#connection.read('get', [key], (c) => c.get(key))
      return raw ? (JSON.parse(raw) as T) : undefined
    })
  }

  #run(ops: Op[]): Promise<void> {
    return this.#connection.run(async () => {
      await this.#apply(ops)
    })
  }

  /**
   * Runs `ops` in order; their replies, in the same order. On a single Redis, one MULTI per
   * chunk. A cluster cannot span slots in a transaction: the commands are sent together
   * (auto-pipelined per node) and each is applied; a failure midway is reported, and retrying
   * the same write is safe because every command is idempotent. Writes of relations, whose
   * order matters, go through #applySteps.
   */
  async #apply(ops: Op[]): Promise<unknown[]> {
    if (ops.length === 0) return []
    const connection = this.#connection
    if (connection.isCluster) {
      // sent together, run by each master one after the other: each waits behind the batch
      // (RedisConnection.deadlineFor, a write per command)
      const deadline = connection.deadlineFor(ops.length)
      // a script's name is the command ioredis defines for it (EVALSHA), not a Redis command
      const send = (command: string, args: string[]): Promise<unknown> =>
        command === 'presencedSettings'
          ? connection.script(command, args, deadline)
          : connection.command(command, args, deadline)
      return Promise.all(ops.map(([command, ...args]) => send(command, args)))
    }
    const replies: unknown[] = []
    for (let i = 0; i < ops.length; i += IMPORT_CHUNK) {
      replies.push(...(await this.#multi(ops.slice(i, i + IMPORT_CHUNK))))
    }
    return replies
  }

  /**
   * Runs a write's steps in order; their replies, by step. Once a step failed, no later one is
   * sent, so a write lost midway leaves its earlier steps whole and its later ones undone (the
   * relations' steps are ordered for that: #friendSteps), and a retry of the same write
   * completes it, every command being idempotent.
   *
   * On a single Redis, the steps' commands in order, one MULTI per chunk: a relation lands whole.
   * On a cluster, which cannot span slots in a transaction, each step is one MULTI per slot it
   * touches (a user's keys share one), sent together: one round trip per slot and step; the
   * users' keys all in one slot, one step.
   */
  async #applySteps(steps: Op[][]): Promise<unknown[][]> {
    const byStep = (replies: unknown[]) => {
      let at = 0
      return steps.map((ops) => replies.slice(at, (at += ops.length)))
    }
    const ops = steps.flat()
    if (!this.#connection.isCluster) return byStep(await this.#apply(ops))
    // two users of one bucket: one MULTI (a key of no tag, the block ends' index, aside)
    const tags = new Set(ops.map((op) => hashTagOf(op[1]!)).filter((tag, i) => tag !== ops[i]![1]))
    const sent = tags.size <= 1 ? [ops] : steps
    const replies: unknown[][] = []
    for (const step of sent) {
      const bySlot = new Map<string, number[]>()
      step.forEach((op, i) => {
        const slot = hashTagOf(op[1]!)
        const at = bySlot.get(slot)
        if (at) at.push(i)
        else bySlot.set(slot, [i])
      })
      const stepReplies = new Array<unknown>(step.length)
      await Promise.all(
        [...bySlot.values()].map(async (at) => {
          for (let i = 0; i < at.length; i += IMPORT_CHUNK) {
            const chunk = at.slice(i, i + IMPORT_CHUNK)
            const results = await this.#multi(chunk.map((j) => step[j]!))
            chunk.forEach((j, n) => (stepReplies[j] = results[n]))
          }
        }),
      )
      replies.push(stepReplies)
    }
    return sent === steps ? replies : byStep(replies[0]!)
  }

  /**
   * One MULTI of `ops` (in one slot on a cluster); their replies. Redis runs the transaction
   * whole before answering its EXEC: its deadline grows with its commands (deadlineFor), where
   * the fixed timeout answered 503 to an import chunk Redis then applied.
   */
  async #multi(ops: Op[]): Promise<unknown[]> {
    const connection = this.#connection
    const results = await connection.transaction(ops, connection.deadlineFor(ops.length))
    const failed = results?.find(([error]) => error)
    if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted')
    return results.map(([, reply]) => reply)
  }
}

/** Numeric order of canonical decimal ids (no leading zeros): shorter first, then by text. */
function smallerId(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b
}
