import type { Activity, OfflineReason, UserPresence } from '../../core/presence.js'
import {
  defaultSettings,
  sameSettings,
  type PresenceSummary,
  type UserSettings,
} from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { titleSessionKey } from '../../core/presence.js'
import type {
  LimitedTitlesEnd,
  LimitedWrite,
  LiveUser,
  PresenceChange,
  PresenceStore,
  SessionWrite,
  SettingsReplaced,
  SettingsReplacement,
  TitleEnd,
  TitlesEnded,
} from '../presence-store.js'
import {
  rulesOf,
  verdictOf,
  windowOf,
  type RateLimitHit,
  type RateLimiter,
  type TitleBudget,
} from '../rate-limiter.js'
import {
  MAX_SESSIONS_PER_USER,
  rosterWritable,
  serverSessionKey,
  ServerUniverseRefused,
  type ServerReport,
  type ServerRoster,
} from '../presence-store.js'
import type { PrivacyStore } from '../privacy-store.js'
import type { RedisKeys } from './keys.js'
import {
  changeOfReply,
  decodePresence,
  inheritedElements,
  keyText,
  sessionTail,
  settingsOfBytes,
  settingsOfText,
  settingsText,
  summarizeAll,
  summarizeBytes,
} from './presence-codec.js'
import type { NearCache } from './near-cache.js'
import { RedisProfileStore } from './redis-profile-store.js'
import type { RedisConnection } from './redis-connection.js'
import { RedisRateLimiter, windowArgs } from './redis-rate-limiter.js'

export interface RedisPresenceStoreOptions {
  /**
   * Publish every change on this pub/sub channel from the script that makes it, in the same
   * atomic step, as the message RedisChangeBus reads (`nodeId` is the bus's, so it skips its own
   * echo). The bus then publishes none of these changes itself (see `publishedByStore`): a
   * heartbeat costs one round trip, and every node hears a user's changes in the order they
   * were made. Without it, changes are only returned.
   */
  changes?: { channel: string; nodeId: string }
  /**
   * Record every change in its user's history (realtime/redis-history.ts) in the same script:
   * changes kept per user and their age bound. Without it, no history is kept.
   */
  history?: { entries: number; ageSeconds: number }
  /**
   * Keep up to this many users' presence values in this node's memory, exact by Redis's
   * client-side caching (NearCache; PRESENCED_REDIS_NEAR_CACHE); 0 or absent: none. A single
   * Redis only: ignored on a cluster.
   */
  nearCache?: number
  /** The live sessions a user may hold (MAX_SESSIONS_PER_USER by default). */
  maxSessions?: number
}

/** Changes this process's stores already published from their scripts. */
const published = new WeakSet<PresenceChange>()

/** Whether a RedisPresenceStore published this change already: a bus must not again. */
export function publishedByStore(change: PresenceChange): boolean {
  return published.has(change)
}

/**
 * Fleet mode: every session in Redis (or a Redis Cluster), shared by any number of stateless
 * nodes. A user's presence is one value (presence-codec.ts), so a batch read is one MGET on a
 * single Redis, and one pipelined round trip per shard on a cluster. Heartbeat, end, server
 * reports and the expiry claim are Lua scripts (./scripts) that update the value and its
 * bucket's expiry index atomically, and publish the change. lastOnline lives in the same value
 * and is as durable as Redis is (run it with AOF).
 */
export class RedisPresenceStore implements PresenceStore {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys
  readonly #channel: string
  readonly #nodeId: string
  readonly #history: { entries: string; ageMs: string } | undefined
  /** The live sessions a user may hold, as the scripts take it (make_room in presence.lua). */
  readonly #maxSessions: string
  /** The bucket a sweep starts from, rotating so no bucket waits behind busier ones. */
  #nextBucket = 0
  /** Where reads take the values this node holds (options.nearCache), if anywhere. */
  readonly nearCache: NearCache | undefined

  constructor(
    connection: RedisConnection,
    keys: RedisKeys,
    options: RedisPresenceStoreOptions = {},
  ) {
    this.#connection = connection.retain()
    this.#keys = keys
    this.#channel = options.changes?.channel ?? ''
    this.#nodeId = options.changes?.nodeId ?? ''
    const history = options.history
    this.#history = history && {
      entries: String(history.entries),
      ageMs: String(history.ageSeconds * 1000),
    }
    this.nearCache = connection.nearCache(keys.presenceHeads(), options.nearCache ?? 0)
    this.#maxSessions = String(options.maxSessions ?? MAX_SESSIONS_PER_USER)
  }

  /** The scripts' three history arguments for `bucket` (presence.lua `history`). */
  #hist(bucket: number): [string, string, string] {
    const h = this.#history
    return h ? [this.#keys.historyPrefix(bucket), h.entries, h.ageMs] : ['', '0', '0']
  }

  heartbeat(write: SessionWrite, now: number): Promise<PresenceChange> {
    const client = this.#connection.client
    return this.#connection.run(async () => {
      const [keys, args] = this.#heartbeatArgs(write, now)
      return this.#change(await client.presencedHeartbeat(...(keys as Quad), ...args))
    })
  }

  /**
   * One script (limited-heartbeat.lua) counts the hit and, when every rule allows it, writes.
   * On a cluster only for a budget of the user's own (`hit.near`): its windows are in the
   * user's slot; any other caller's hash elsewhere.
   */
  limitedHeartbeat(
    write: SessionWrite,
    now: number,
    hit: RateLimitHit,
    limiter: RateLimiter,
  ): Promise<LimitedWrite> | undefined {
    const connection = this.#connection
    if (
      // on a cluster the counters must be in the user's slot: a budget of the user's own
      (connection.isCluster && hit.near !== write.userId) ||
      !(limiter instanceof RedisRateLimiter) ||
      !limiter.countsIn(connection, this.#keys)
    ) {
      return undefined
    }
    return connection.run(async () => {
      const [keys, args] = this.#heartbeatArgs(write, now)
      const { windows, lengths } = windowArgs(this.#keys, hit, now)
      for (const window of windows) keys.push(window)
      for (const length of lengths) args.push(length)
      const rules = rulesOf(hit)
      for (const rule of rules) args.push(String(rule.max))
      const reply = await connection.variadic<string | number[]>(
        'presencedLimitedHeartbeat',
        keys,
        args,
      )
      return typeof reply === 'string'
        ? { change: this.#change(reply) }
        : { refused: verdictOf(rules, reply, now) }
    })
  }

  /**
   * The keys every script of one user's sessions takes first (heartbeat.lua, end.lua, expire.lua,
   * expire-settings.lua, end-titles.lua: value, its expiry shard, the bucket's timer, its counts),
   * with the bucket and the shard (an argument of each).
   */
  #sessionKeys(id: UserId): {
    keys: [value: string, due: string, timer: string, counts: string]
    bucket: number
    shard: string
  } {
    const k = this.#keys
    const bucket = k.bucketOf(id)
    const shard = k.dueShardOf(id)
    return {
      keys: [k.presence(id), k.due(bucket, shard), k.dueTimer(bucket), k.counts(bucket)],
      bucket,
      shard: String(shard),
    }
  }

  /** heartbeat.lua's keys and arguments. */
  #heartbeatArgs(write: SessionWrite, now: number): [keys: string[], args: string[]] {
    const id = write.userId
    const { keys: userKeys, bucket, shard } = this.#sessionKeys(id)
    // a fresh array each call: limitedHeartbeat pushes its windows after these
    const keys: string[] = userKeys
    const args = [
      id,
      String(now),
      shard,
      keyText(write.key),
      String(write.ttlMs),
      sessionTail(write.source, write.deviceType, write.activity, write.key),
      this.#channel,
      this.#nodeId,
      ...this.#hist(bucket),
      inheritedElements(write.inherit),
      this.#maxSessions,
    ]
    return [keys, args]
  }

  end(
    userId: UserId,
    key: string,
    now: number,
    reason: OfflineReason,
  ): Promise<PresenceChange | undefined> {
    const { keys, bucket, shard } = this.#sessionKeys(userId)
    return this.#connection.run(async () => {
      const reply = await this.#connection.client.presencedEnd(
        ...keys,
        userId,
        String(now),
        shard,
        keyText(key),
        reason,
        this.#channel,
        this.#nodeId,
        ...this.#hist(bucket),
      )
      return reply ? this.#change(reply) : undefined
    })
  }

  // expire - see PresenceStore interface description.
  expire(userId: UserId, now: number): Promise<PresenceChange | undefined> {
    const { keys, bucket, shard } = this.#sessionKeys(userId)
    return this.#connection.run(async () => {
      const reply = await this.#connection.client.presencedExpire(
        ...keys,
        userId,
        String(now),
        shard,
        this.#channel,
        this.#nodeId,
        ...this.#hist(bucket),
      )
      return reply ? this.#change(reply) : undefined
    })
  }

  // replaceSettingsAfterExpiry - see PresenceStore interface description.
  replaceSettingsAfterExpiry(
    writes: readonly SettingsReplacement[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<SettingsReplaced[]> {
    if (!(privacy instanceof RedisProfileStore) || !privacy.foldsInto(this.#connection, this.#keys))
      return this.#replaceSettingsApart(writes, now, privacy)
    // sent together, in order: a user's writes reach its slot's master one after the other
    return this.#connection.run(() =>
      Promise.all(writes.map((write) => this.#expireSettings(write, String(now)))),
    )
  }

  /** One write of replaceSettingsAfterExpiry: expire-settings.lua. */
  async #expireSettings(
    { userId, expected, next }: SettingsReplacement,
    now: string,
  ): Promise<SettingsReplaced> {
    const { keys, bucket, shard } = this.#sessionKeys(userId)
    const text = settingsText(next)
    let expectedText = settingsText(expected)
    let expired: PresenceChange | undefined
    // a second try when the stored text says the same in other words (another version wrote
    // it), as RedisProfileStore.replaceSettings; the expiry is made by the first
    for (let attempt = 0; attempt < 2; attempt++) {
      const [message, stored] = await this.#connection.client.presencedExpireSettings(
        ...keys,
        this.#keys.settings(userId),
        userId,
        now,
        shard,
        this.#channel,
        this.#nodeId,
        ...this.#hist(bucket),
        text,
        expectedText,
      )
      if (message !== '') expired = this.#change(message)
      const done: SettingsReplaced = expired ? { landed: true, expired } : { landed: true }
      if (stored === undefined) return done
      done.landed = false
      if (stored === expectedText || !sameSettings(settingsOfText(stored), expected)) return done
      expectedText = stored
    }
    return expired ? { landed: false, expired } : { landed: false }
  }

  /** replaceSettingsAfterExpiry with settings kept elsewhere: the expiry, then the write. */
  async #replaceSettingsApart(
    writes: readonly SettingsReplacement[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<SettingsReplaced[]> {
    const done: SettingsReplaced[] = []
    for (const { userId, expected, next } of writes) {
      const expired = await this.expire(userId, now)
      const landed = await privacy.replaceSettings(userId, expected, next)
      done.push(expired ? { landed, expired } : { landed })
    }
    return done
  }

  endTitles(end: TitleEnd, now: number): Promise<TitlesEnded> {
    return this.#connection.run(async () => {
      const reply = await this.#endTitles(end, now, undefined)
      return this.#titlesEnded(reply)
    })
  }

  /**
   * One script (end-titles.lua) finds the device's titles, counts each one's hit and, when
   * every rule allows them, ends them: one round trip. On a cluster only for a budget of the
   * user's own (`budget.near`), whose counters are in the user's slot.
   */
  limitedEndTitles(
    end: TitleEnd,
    now: number,
    budget: TitleBudget,
    limiter: RateLimiter,
  ): Promise<LimitedTitlesEnd> | undefined {
    const connection = this.#connection
    if (
      (connection.isCluster && budget.near !== end.userId) ||
      !(limiter instanceof RedisRateLimiter) ||
      !limiter.countsIn(connection, this.#keys)
    ) {
      return undefined
    }
    return connection.run(async () => {
      const reply = await this.#endTitles(end, now, budget)
      if (reply[0] === -1) {
        return { refused: verdictOf(budget.rules, reply.slice(1) as number[], now) }
      }
      return this.#titlesEnded(reply)
    })
  }

  /** end-titles.lua, with `budget`'s hits counted first when given. */
  #endTitles(
    end: TitleEnd,
    now: number,
    budget: TitleBudget | undefined,
  ): Promise<Array<string | number>> {
    const k = this.#keys
    const { userId, deviceType, titleId } = end
    const { keys, bucket, shard } = this.#sessionKeys(userId)
    const rules = budget?.rules ?? []
    const args = [
      userId,
      String(now),
      shard,
      JSON.stringify(deviceType),
      titleId ?? '',
      titleId === undefined ? '' : keyText(titleSessionKey(titleId, deviceType)),
      end.reason,
      this.#channel,
      this.#nodeId,
      ...this.#hist(bucket),
      String(rules.length),
      budget?.idleTitleId ?? '',
    ]
    if (budget !== undefined && rules.length > 0) {
      const afters: string[] = []
      let head = ''
      for (const rule of rules) {
        const index = windowOf(rule, now).index
        const [before, after] = k.rateWindowAround(budget.key, rule.name, index, budget.near)
        head = before
        afters.push(after)
      }
      args.push(head, ...afters)
      for (const rule of rules) args.push(String(rule.windowMs))
      for (const rule of rules) args.push(String(rule.max))
    } else {
      args.push('')
    }
    return this.#connection.client.presencedEndTitles(...keys, ...args)
  }

  /** end-titles.lua's reply when nothing refused: the titles it counted, then its messages. */
  #titlesEnded(reply: Array<string | number>): TitlesEnded {
    const count = reply[0] as number
    const titleIds = reply.slice(1, 1 + count) as string[]
    const changes = (reply.slice(1 + count) as string[]).map((m) => this.#change(m))
    return { titleIds, changes }
  }

  getMany(ids: readonly UserId[], now: number): Promise<UserPresence[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.#connection.run(async () => {
      const raws = await this.#mgetPresences(ids)
      return ids.map((id, i) => decodePresence(id, raws[i], now))
    })
  }

  #mgetPresences(ids: readonly UserId[]): Promise<(string | null)[]> {
    const keys = this.#keys
    return this.#connection.mgetUsers(keys.presenceHeads(), ids, keys)
  }

  /** The presence values of `ids` as the bytes Redis sent (see summarizeBytes). */
  #mgetPresenceBytes(ids: readonly UserId[]): Promise<(Buffer | null)[]> {
    const keys = this.#keys
    return this.#connection.mgetUsersBytes(keys.presenceHeads(), ids, keys)
  }

  /** getMany's answer as summaries, read from the stored text without its Session objects. */
  summarize(ids: readonly UserId[], now: number): Promise<PresenceSummary[]> {
    if (ids.length === 0) return Promise.resolve([])
    const near = this.nearCache
    if (near !== undefined) {
      const keys = this.#keys
      return this.#connection.run(async () => {
        const read = await this.#connection.mgetUsersNear(
          keys.presenceHeads(),
          ids,
          keys,
          near,
          now,
          true,
        )
        return read.summaries
      })
    }
    return this.#connection.run(async () => {
      const raws = await this.#mgetPresenceBytes(ids)
      const summaries = new Array<PresenceSummary>(ids.length)
      for (let i = 0; i < ids.length; i++) summaries[i] = summarizeBytes(ids[i]!, raws[i], now)
      return summaries
    })
  }

  getManyWithSettings(
    ids: readonly UserId[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<[UserPresence[], UserSettings[]]> | undefined {
    return this.#withSettings(ids, privacy, (raws, settings, foldDone) => {
      const presences = new Array<UserPresence>(ids.length)
      for (let i = 0; i < ids.length; i++) {
        const raw = raws[i]
        presences[i] = decodePresence(ids[i]!, raw?.toString('utf8'), now)
        settings[i] = (raw && raw.length > 0) || foldDone ? settingsOfBytes(raw) : undefined
      }
      return presences
    })
  }

  summarizeWithSettings(
    ids: readonly UserId[],
    now: number,
    privacy: PrivacyStore,
  ): Promise<[PresenceSummary[], UserSettings[]]> | undefined {
    const near = this.nearCache
    if (near === undefined) {
      return this.#withSettings(ids, privacy, (raws, settings, foldDone) =>
        summarizeAll(ids, raws, now, settings, foldDone),
      )
    }
    if (!(privacy instanceof RedisProfileStore) || !privacy.foldsInto(this.#connection, this.#keys))
      return undefined
    if (ids.length === 0) return Promise.resolve([[], []])
    const keys = this.#keys
    return this.#connection.runThen(
      this.#connection.mgetUsersNear(
        keys.presenceHeads(),
        ids,
        keys,
        near,
        now,
        privacy.settingsFolded,
      ),
      (read, ids) => this.#unfolded(ids, read.summaries, read.settings),
      ids,
      undefined,
    )
  }

  /**
   * Values of `ids` decoded, with the settings folded into them (settings.lua): one MGET. Values
   * written before settings were folded take their users' settings keys in a second one, and so
   * do missing values until this node knows the fold pass has run (settingsFolded).
   * `decode`: the values decoded, each one's folded settings set in `settings` (undefined for
   * one to take from its settings key), in one loop (a call per value through closures cost
   * ~350 instructions a value more, callgrind).
   */
  #withSettings<T>(
    ids: readonly UserId[],
    privacy: PrivacyStore,
    decode: (
      raws: readonly (Buffer | null)[],
      settings: Array<Readonly<UserSettings> | undefined>,
      foldDone: boolean,
    ) => T[],
  ): Promise<[T[], UserSettings[]]> | undefined {
    if (!(privacy instanceof RedisProfileStore) || !privacy.foldsInto(this.#connection, this.#keys))
      return undefined
    if (ids.length === 0) return Promise.resolve([[], []])
    // before the fold pass, a user with no value may have settings an older version stored
    const foldDone = privacy.settingsFolded
    const connection = this.#connection
    // runThen, not run(async …): two microtask turns fewer for every read
    return connection.runThen(
      this.#mgetPresenceBytes(ids),
      (raws, ids, foldDone): [T[], UserSettings[]] | Promise<[T[], UserSettings[]]> => {
        const settings = new Array<Readonly<UserSettings> | undefined>(ids.length)
        return this.#unfolded(ids, decode(raws, settings, foldDone), settings)
      },
      ids,
      foldDone,
    )
  }

  /**
   * `decoded` and `settings` of `ids`, the settings of the values that had none folded in (set
   * undefined) read from their users' settings keys, in a second MGET (see #withSettings).
   */
  #unfolded<T>(
    ids: readonly UserId[],
    decoded: T[],
    settings: Array<Readonly<UserSettings> | undefined>,
  ): [T[], UserSettings[]] | Promise<[T[], UserSettings[]]> {
    let unfolded: number[] | undefined
    for (let i = 0; i < ids.length; i++) {
      if (settings[i] === undefined) (unfolded ??= []).push(i)
    }
    if (unfolded === undefined) return [decoded, settings as UserSettings[]]
    const missing = unfolded
    const connection = this.#connection
    return connection.run(async () => {
      const k = this.#keys
      const texts = await connection.mgetUsers(
        k.settingsHeads(),
        missing.map((i) => ids[i]!),
        k,
      )
      missing.forEach((i, j) => {
        const text = texts[j]
        settings[i] = text ? settingsOfText(text) : defaultSettings
      })
      return [decoded, settings as UserSettings[]]
    })
  }

  /**
   * The buckets' claims are sent together and Redis runs them one after the other, so each is
   * given the deadline of the users the sweep claims in all (RedisConnection.deadlineFor), as a
   * server's report is: a fixed timeout failed a big sweep that Redis then applied whole.
   */
  sweepExpired(now: number, limit: number): Promise<PresenceChange[]> {
    const k = this.#keys
    const connection = this.#connection
    const client = connection.client
    return connection.run(async () => {
      // how many users each bucket has due: one cheap round trip (per node) when nothing is
      const buckets = this.#bucketOrder()
      const counts = await Promise.all(
        buckets.map((b) => client.presencedDue(k.dueTimer(b), String(now), k.duePrefix(b))),
      )
      let budget = limit
      const takes: Array<[bucket: number, take: number]> = []
      buckets.forEach((bucket, i) => {
        const take = Math.min(counts[i]!, budget)
        if (take <= 0) return
        budget -= take
        takes.push([bucket, take])
      })
      const deadline = connection.deadlineFor(limit - budget)
      const claims = takes.map(([bucket, take]) =>
        connection.script<string[]>(
          'presencedSweep',
          [
            k.dueTimer(bucket),
            k.counts(bucket),
            String(now),
            String(take),
            k.presencePrefix(bucket),
            k.duePrefix(bucket),
            this.#channel,
            this.#nodeId,
            ...this.#hist(bucket),
          ],
          deadline,
        ),
      )
      // a bucket that failed (e.g. its shard is failing over) is tried again next sweep, but
      // what other buckets claimed is already removed from Redis and must be reported now
      const settled = await Promise.allSettled(claims)
      const failed = settled.find((r) => r.status === 'rejected')
      if (failed && settled.every((r) => r.status === 'rejected')) throw failed.reason
      const changes: PresenceChange[] = []
      for (const result of settled) {
        if (result.status === 'fulfilled')
          for (const reply of result.value) changes.push(this.#change(reply))
      }
      return changes
    })
  }

  /**
   * The report's players are applied by one script per bucket they fall in, issued together with
   * the swap of the server's last report (which lists its players), all sent before any reply is
   * waited for: one round trip per shard. Each is given a deadline that grows with the report's
   * players (RedisConnection.deadlineFor): Redis runs them one after the other, and a fixed
   * timeout answered 503 to a large report it then applied whole. Players of the previous report who are not listed now leave in a
   * second round trip, only when there are any, and a third drops them from the last report
   * (server-settle.lua): until then it keeps them (server-roster.lua). A report that fails
   * midway (Redis unavailable) may be partly applied; reports are idempotent, and the retry
   * finds the players who left in the last report whatever step failed, so it converges.
   */
  reportServer(report: ServerReport, now: number): Promise<PresenceChange[]> {
    const index: StoredServer = {
      p: [...report.players],
      a: JSON.stringify(report.activity),
      d: report.deviceType,
      up: now,
      ex: now + report.ttlMs,
    }
    // the report outlives its sessions, so a late report still finds who left
    const keepMs = String(2 * report.ttlMs)
    const apply = this.#applyRoster(report.gameId, now, {
      tail: sessionTail(
        'server',
        report.deviceType,
        report.activity,
        serverSessionKey(report.gameId),
      ),
      ttlMs: report.ttlMs,
      reason: 'explicit',
    })
    const connection = this.#connection
    const serverKey = this.#keys.server(report.gameId)
    const written = JSON.stringify(index)
    const universes = report.universes
    // every command of a step waits in Redis behind the others (see RedisConnection.deadlineFor)
    const listedDeadline = connection.deadlineFor(report.players.length)
    return thrownIfRefused(
      this.#connection.run(async (): Promise<PresenceChange[] | ServerUniverseRefused> => {
        let left: string[]
        let replies: string[][]
        if (universes !== undefined && universes.length > 0) {
          // a writer limited to universes: the roster swapped first, in the step that checks whose
          // it is, and the sessions written only once it is ours (a round trip more, as the read
          // it replaces was)
          left = await connection.script<string[]>(
            'presencedServerRoster',
            [serverKey, written, keepMs, String(now), ...universes],
            listedDeadline,
          )
          if (left[0] === '!') return new ServerUniverseRefused(left[1] || undefined)
          replies = await Promise.all(
            this.#byBucket(report.players).map(([bucket, ids]) =>
              apply(bucket, ids, [], listedDeadline),
            ),
          )
        } else {
          // the roster swapped beside the listed players' sessions (one round trip); it keeps the
          // players who left until their sessions are ended, so a retry after a failure ends them
          ;[left, ...replies] = await Promise.all([
            connection.script<string[]>(
              'presencedServerRoster',
              [serverKey, written, keepMs],
              listedDeadline,
            ),
            ...this.#byBucket(report.players).map(([bucket, ids]) =>
              apply(bucket, ids, [], listedDeadline),
            ),
          ])
        }
        if (left.length > 0) {
          const leftDeadline = connection.deadlineFor(left.length)
          replies.push(
            ...(await Promise.all(
              this.#byBucket(left as UserId[]).map(([bucket, ids]) =>
                apply(bucket, [], ids, leftDeadline),
              ),
            )),
          )
          const kept = `${written.slice(0, -1)},"l":${JSON.stringify(left)}}`
          await connection.script(
            'presencedServerSettle',
            [serverKey, kept, written],
            connection.deadlineFor(left.length + report.players.length),
          )
        }
        return replies.flatMap((reply) => reply.map((m) => this.#change(m)))
      }),
    )
  }

  endServer(
    gameId: string,
    now: number,
    reason: OfflineReason,
    universes?: readonly string[],
  ): Promise<PresenceChange[]> {
    const connection = this.#connection
    const serverKey = this.#keys.server(gameId)
    return thrownIfRefused(
      this.#connection.run(async (): Promise<PresenceChange[] | ServerUniverseRefused> => {
        // forgotten only once its players are ended: a retry after a failure finds them again
        const previous = await connection.read('get', [serverKey], (c) => c.get(serverKey))
        if (previous === null) return []
        // whose it is, as read here: only its players are ended, and it is dropped only if it is
        // still this report; while it is live, no writer of another universe can replace it
        const stored = JSON.parse(previous) as StoredServer
        const universeId = (JSON.parse(stored.a) as Activity).universeId
        if (!rosterWritable(universes, universeId)) {
          if (!(stored.ex > now)) return []
          return new ServerUniverseRefused(universeId)
        }
        const apply = this.#applyRoster(gameId, now, { tail: '', ttlMs: 0, reason })
        const players = playersOf(previous)
        const deadline = connection.deadlineFor(players.length)
        const replies = await Promise.all(
          this.#byBucket(players).map(([bucket, ids]) => apply(bucket, [], ids, deadline)),
        )
        await connection.script('presencedServerDrop', [serverKey, previous], deadline)
        return replies.flatMap((reply) => reply.map((m) => this.#change(m)))
      }),
    )
  }

  getServer(gameId: string, now: number): Promise<ServerRoster | undefined> {
    const connection = this.#connection
    const key = this.#keys.server(gameId)
    return connection.run(async () => {
      const raw = await connection.read('get', [key], (c) => c.get(key))
      if (!raw) return undefined
      const stored = JSON.parse(raw) as StoredServer
      if (!(stored.ex > now)) return undefined
      return {
        gameId,
        players: stored.p,
        activity: JSON.parse(stored.a) as Activity,
        updatedAt: stored.up,
        expiresAt: stored.ex,
      }
    })
  }

  #byBucket(ids: readonly UserId[]): Array<[number, UserId[]]> {
    const byBucket = new Map<number, UserId[]>()
    for (const id of ids) {
      const bucket = this.#keys.bucketOf(id)
      const group = byBucket.get(bucket)
      if (group) group.push(id)
      else byBucket.set(bucket, [id])
    }
    return [...byBucket]
  }

  #applyRoster(
    gameId: string,
    now: number,
    how: { tail: string; ttlMs: number; reason: OfflineReason },
  ): (
    bucket: number,
    listed: readonly UserId[],
    left: readonly UserId[],
    deadlineMs: number,
  ) => Promise<string[]> {
    const k = this.#keys
    const connection = this.#connection
    const key = keyText(serverSessionKey(gameId))
    return (bucket, listed, left, deadlineMs) =>
      connection.script<string[]>(
        'presencedServerReport',
        [
          k.dueTimer(bucket),
          k.counts(bucket),
          String(now),
          key,
          how.tail,
          String(how.ttlMs),
          k.presencePrefix(bucket),
          k.duePrefix(bucket),
          String(k.dueShards),
          how.reason,
          this.#channel,
          this.#nodeId,
          ...this.#hist(bucket),
          this.#maxSessions,
          String(listed.length),
          ...listed,
          ...left,
        ],
        deadlineMs,
      )
  }

  /** The change of a script's message, marked as published when the script published it. */
  #change(message: string): PresenceChange {
    const change = changeOfReply(message)
    if (this.#channel !== '') published.add(change)
    return change
  }

  #bucketOrder(): number[] {
    const n = this.#keys.buckets
    const start = this.#nextBucket
    this.#nextBucket = (start + 1) % n
    return Array.from({ length: n }, (_, i) => (start + i) % n)
  }

  /**
   * Every bucket's expiry index lists the users holding sessions (live, or expired and not yet
   * swept): read its shards, then their values by MGET in batches, keeping the live sessions.
   * One bucket at a time, so a node never holds more than a bucket's ids.
   */
  async *liveUsers(now: number, batchSize: number): AsyncIterable<LiveUser[]> {
    const k = this.#keys
    const connection = this.#connection
    const all = (key: string) =>
      connection.read<string[]>('zrange', [key, '0', '-1'], (c) => c.zrange(key, 0, -1))
    for (let bucket = 0; bucket < k.buckets; bucket++) {
      // the timer lists every shard that holds someone (and perhaps a few emptied ones)
      const ids = (await this.#connection.run(async () => {
        const shards = await all(k.dueTimer(bucket))
        const members = await Promise.all(
          shards.map((shard) => all(`${k.duePrefix(bucket)}${shard}`)),
        )
        return members.flat()
      })) as UserId[]
      for (let i = 0; i < ids.length; i += batchSize) {
        const chunk = ids.slice(i, i + batchSize)
        const raws = await this.#connection.run(() =>
          this.#connection.mget(chunk.map((id) => k.presence(id))),
        )
        const batch: LiveUser[] = []
        chunk.forEach((id, j) => {
          const presence = decodePresence(id, raws[j], now)
          if (presence.sessions.length > 0) batch.push(presence)
        })
        if (batch.length > 0) yield batch
      }
    }
  }

  /** Sessions and users stored (live, or expired and awaiting the sweep), like the memory store. */
  stats(now: number): Promise<{ sessions: number; users: number }> {
    void now
    const k = this.#keys
    const connection = this.#connection
    return connection.run(async () => {
      const all = Array.from({ length: k.buckets }, (_, b) => b)
      const counts = await Promise.all(
        all.map((b) =>
          connection.read('hmget', [k.counts(b), 's', 'u'], (c) => c.hmget(k.counts(b), 's', 'u')),
        ),
      )
      return {
        sessions: counts.reduce((sum, [s]) => sum + Number(s ?? 0), 0),
        users: counts.reduce((sum, [, u]) => sum + Number(u ?? 0), 0),
      }
    })
  }

  ready(): Promise<boolean> {
    return this.#connection.ready()
  }

  close(): Promise<void> {
    return this.#connection.release()
  }
}

type Quad = [string, string, string, string]

/** A game server's last report as kept in Redis (see RedisKeys.server). */
interface StoredServer {
  /** Its players. */
  p: UserId[]
  /** Activity JSON. */
  a: string
  d: string
  up: number
  ex: number
  /** Players it left out whose sessions were not known to be ended yet (server-roster.lua). */
  l?: UserId[]
}

/** The players of a last report, and those it left out whose sessions may not be ended yet. */
function playersOf(raw: string): UserId[] {
  const stored = JSON.parse(raw) as StoredServer
  return stored.l ? [...new Set([...stored.p, ...stored.l])] : stored.p
}

/** A roster write's changes, or its refusal thrown (out of `run`, which would make it a 503). */
async function thrownIfRefused(
  written: Promise<PresenceChange[] | ServerUniverseRefused>,
): Promise<PresenceChange[]> {
  const result = await written
  if (result instanceof ServerUniverseRefused) throw result
  return result
}
