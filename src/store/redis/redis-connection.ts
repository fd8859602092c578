import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Cluster,
  Command,
  Redis,
  type ClusterOptions,
  type RedisCommander,
  type RedisOptions,
  type Result,
} from 'ioredis'
import { PresenceError, errors } from '../../core/errors.js'
import type { PresenceSummary, UserSettings } from '../../core/privacy.js'
import { hashTagOf } from './keys.js'
import { NearCache, readInto, type NearPlan, type NearRead } from './near-cache.js'
import { StoreOutages } from './store-outages.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    presencedHeartbeat(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string, Context>
    presencedLimitedHeartbeat(
      numberOfKeys: string,
      ...keysThenArgs: string[]
    ): Result<string | number[], Context>
    presencedEnd(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string | null, Context>
    presencedExpire(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string | null, Context>
    /** [expiry message or '', stored settings text when refused] (expire-settings.lua) */
    presencedExpireSettings(
      value: string,
      due: string,
      timer: string,
      counts: string,
      settings: string,
      ...args: string[]
    ): Result<[string, string?], Context>
    presencedEndTitles(
      value: string,
      due: string,
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<Array<string | number>, Context>
    presencedDue(timer: string, ...args: string[]): Result<number, Context>
    /** 1 when `owner` holds the lease after the call: a webhook queue's, or a fleet duty's */
    presencedLease(key: string, owner: string, ttlMs: string): Result<number, Context>
    /** 1 when `owner` held the lease and gave it up */
    presencedLeaseRelease(key: string, owner: string): Result<number, Context>
    presencedSweep(timer: string, counts: string, ...args: string[]): Result<string[], Context>
    presencedServerReport(
      timer: string,
      counts: string,
      ...args: string[]
    ): Result<string[], Context>
    /** the players who left; with `now` and universes, ['!', universe] when refused */
    presencedServerRoster(
      server: string,
      report: string,
      keepMs: string,
      ...nowThenUniverses: string[]
    ): Result<string[], Context>
    presencedServerSettle(server: string, kept: string, report: string): Result<number, Context>
    presencedServerDrop(server: string, report: string): Result<number, Context>
    presencedHistoryAppend(
      position: string,
      list: string,
      mark: string,
      concerns: string,
      ...args: string[]
    ): Result<[string, number] | null, Context>
    presencedHistoryRead(
      position: string,
      list: string,
      mark: string,
      concerns: string,
      from: string,
    ): Result<string[], Context>
    presencedStreamHoldings(
      holdings: string,
      nodeId: string,
      leaseMs: string,
      streams: string,
      watches: string,
      maxStreams: string,
      maxWatches: string,
    ): Result<[number, number, number], Context>
    presencedRateLimit(...keysThenArgs: string[]): Result<number[], Context>
    /** 1 when the ended block's record is gone (see block-end-drop.lua), 0 when replaced */
    presencedBlockEndDrop(
      sights: string,
      blocks: string,
      blockedBy: string,
      target: string,
      prefix: string,
    ): Result<number, Context>
    presencedBlockEndForget(index: string, member: string, since: string): Result<number, Context>
    /** null once stored; with `expected`, the stored settings' text instead when they differ */
    presencedSettings(
      settings: string,
      presence: string,
      text: string,
      expected?: string,
    ): Result<string | null, Context>
  }
}

export type RedisClient = Redis | Cluster

/** The scripts RedisConnection defines on its client (see fixedScripts). */
export type PresencedScript = Extract<keyof RedisCommander, `presenced${string}`>

/** The scripts whose number of keys varies: it is their first argument (see `variadic`). */
export type VariadicScript = 'presencedLimitedHeartbeat' | 'presencedRateLimit'

/** Where to connect: one Redis by URL, or a cluster by its seed nodes (host:port). */
export type RedisTarget = { url: string } | { cluster: readonly string[] }

export interface RedisConnectionOptions {
  /** A command that gets no reply within this many ms fails (as unavailable); default 500. */
  commandTimeoutMs?: number
  /** A connection attempt gives up after this many ms; default 1000. */
  connectTimeoutMs?: number
  /** Upper bound of the delay between reconnection attempts; default 500 ms. */
  maxReconnectDelayMs?: number
  /** Where outages are said and refusals counted (rate-limited there); default: nowhere. */
  outages?: StoreOutages
}

const scriptsDir = new URL('./scripts/', import.meta.url)

function lua(name: string): string {
  return readFileSync(new URL(name, scriptsDir), 'utf8')
}

/** A presence script with the functions it shares with the others in front of it. */
function presenceLua(name: string): string {
  return lua('presence.lua') + lua(name)
}

/** A script that counts rate-limit hits (limit.lua) and then does `names` in that order. */
function limitLua(...names: string[]): string {
  return lua('limit.lua') + names.map(lua).join('')
}

/**
 * The scripts of a fixed number of keys, as ioredis defines them: `[command, keys, script]`
 * (variadic ones: RedisConnection.#defineVariadic).
 */
function fixedScripts(): Array<[name: string, numberOfKeys: number, lua: string]> {
  return [
    ['presencedHeartbeat', 4, presenceLua('heartbeat.lua')],
    ['presencedEnd', 4, presenceLua('end.lua')],
    ['presencedExpire', 4, presenceLua('expire.lua')],
    ['presencedExpireSettings', 5, presenceLua('expire-settings.lua')],
    ['presencedEndTitles', 4, limitLua('presence.lua', 'end-titles.lua')],
    ['presencedDue', 1, lua('due.lua')],
    // one lease, one meaning: a webhook queue's delivery (RedisWebhookStore), a fleet duty's
    // (RedisFleetDuties)
    ['presencedLease', 1, lua('lease.lua')],
    ['presencedLeaseRelease', 1, lua('lease-release.lua')],
    ['presencedSweep', 2, presenceLua('sweep.lua')],
    ['presencedServerReport', 2, presenceLua('server-report.lua')],
    // a game server's last report, swapped, settled and dropped (RedisPresenceStore.reportServer)
    ['presencedServerRoster', 1, lua('server-roster.lua')],
    ['presencedServerSettle', 1, lua('server-settle.lua')],
    ['presencedServerDrop', 1, lua('server-drop.lua')],
    ['presencedHistoryAppend', 4, presenceLua('history-append.lua')],
    ['presencedHistoryRead', 4, lua('history-read.lua')],
    ['presencedStreamHoldings', 1, lua('stream-holdings.lua')],
    ['presencedBlockEndDrop', 3, lua('block-end-drop.lua')],
    ['presencedBlockEndForget', 1, lua('block-end-forget.lua')],
    ['presencedSettings', 2, presenceLua('settings.lua')],
  ]
}

/**
 * ms a command's deadline grows by for each user whose writes it waits on (see
 * RedisConnection.deadlineFor): 5,000 users a second, a quarter of the rate at which Redis joined
 * players of reports while the machine was loaded (docs/reference/servers.md: 17,882 a second end
 * to end, load average 7-18); idle, a 10,000-player first report kept Redis ~300 ms.
 */
export const DEADLINE_MS_PER_USER = 0.2

/** A script ioredis defined (defineCommand): its command class sends EVAL on a socket's first use. */
interface DefinedScript {
  Command: new (
    name: string,
    args: Array<string | number>,
    options: { replyEncoding: 'utf8' | null },
  ) => Command
  sha: string
  numberOfKeys: number | null
}

/** Keys of one joined MGET at most (see RedisConnection.mget): a bigger batch starts another. */
const MAX_JOINED_KEYS = 5000

/**
 * Callers' MGETs in one write at most: the write goes, with what else is in it, as soon as this
 * many have joined it (in a microtask, so that what the last caller asks for beside its MGET in
 * the same turn goes too), not after the turn's I/O callbacks. Redis then answers the first
 * requests while the node reads the next ones: with every request of a turn in one write, the
 * node waited idle for the whole batch's reply, then Redis for the node. Measured on the Redis
 * HTTP bench (bench/redis-http-diag.ts, 32 connections, 100k users, 50 ids; 7 interleaved rounds
 * on 2 cores, load average 1.6-2.7): 4 a write 0.83-1.57x the req/s of one write a turn (median
 * 1.38x; ~14 reads a write there), 8 a write 1.08-1.18x (3 rounds), 2 a write 1.14-1.75x (4),
 * one a read 0.82-1.60x (7); node CPU per request level (130-200 µs for all). Counted
 * (read-callgrind, 16 connections): 4 a write 438.9k instructions a read against 428.4k, one a
 * read 464.6k: the joining's saving is mostly in its first few callers.
 */
const MAX_JOINED_READS = 4

/** One caller's keys in a joined MGET, and what waits for their values. */
interface MgetWaiter extends MgetKeys {
  /** The values as strings, or as the reply's Buffers (mgetUsersBytes). */
  strings: boolean
  /**
   * The near cache these keys are read through (RedisConnection.mgetUsersNear), if any: then
   * the answer is a NearRead of the values at `now`.
   */
  cache: NearCache | undefined
  /**
   * A near-cached read's key heads by bucket, and its ids' buckets (mgetUsersNear): `heads` is
   * left unset, and an id's head is found only when its key is read from Redis (a read the
   * cache serves whole hashes none of its ids).
   */
  bucketHeads?: readonly string[] | undefined
  buckets?: UserBuckets | undefined
  now: number
  foldDone: boolean
  resolve: (values: (string | null)[] | (Buffer | null)[] | NearRead) => void
  reject: (error: unknown) => void
}

/** Where a user's keys live: its bucket, the index of its key's head (RedisKeys). */
export interface UserBuckets {
  bucketOf(id: string): number
}

/**
 * Each id's key head (see mgetUsers). A loop calling `buckets`' method, which V8 inlines when
 * one class answers it (RedisKeys): the ids mapped through a closure per caller, which called a
 * closure of the store's, cost ~300 instructions an id (callgrind, 50-id read, issue 19).
 */
function headsOf(heads: readonly string[], ids: readonly string[], buckets: UserBuckets) {
  const out = new Array<string>(ids.length)
  for (let i = 0; i < ids.length; i++) out[i] = heads[buckets.bucketOf(ids[i]!)]!
  return out
}

/** The heads of `ids`' keys, for a near-cached waiter's ids it reads from Redis. */
function keyHeadsOf(w: MgetWaiter, ids: readonly string[]): string[] {
  return headsOf(w.bucketHeads ?? [], ids, w.buckets!)
}

/** Keys of an MGET: `heads[i]` (when given) followed by `keys[i]` (see mgetText). */
export interface MgetKeys {
  keys: readonly string[]
  heads?: ReadonlyArray<string | undefined> | undefined
}

/** A command of the tick's write (RedisConnection.beside) and what waits for its reply. */
interface TickCall {
  /** Hands the call's command to the client, written to `out`; settles with the reply. */
  send: (client: Redis, out: BatchWrite) => Promise<unknown>
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** Where the commands of a batch are written (see RedisConnection.#send). */
interface BatchWrite {
  writable: boolean
  write(writable: string | Buffer): boolean
}

/**
 * `command` sent by `client`, written to `out` (ioredis writes a command to the stream it is
 * given, as its Pipeline does; its type names sockets only).
 */
function sendTo(client: Redis, command: Command, out: BatchWrite): void {
  client.sendCommand(command, out as unknown as Parameters<Redis['sendCommand']>[1])
}

/**
 * A command whose RESP text is given whole (see MgetCommand): for commands the node sends per
 * request, whose text is one template.
 */
class TextCommand extends Command {
  readonly #text: string

  constructor(name: string, text: string) {
    super(name)
    this.#text = text
  }

  override toWritable(): string {
    return this.#text
  }
}

/**
 * The `SET <window> 0 PX <2 x length> NX` that starts a rate-limit window's counter with its
 * expiry, sent just before the `INCRBY` that counts the write's hits of it (sendWindowHits): an
 * error of it fails those hits (`incr`), and it has no timer of its own (Redis answers it before
 * the `INCRBY`, whose timer covers both). Its own promise is never settled.
 */
class WindowStart extends TextCommand {
  constructor(text: string, incr: Command) {
    super('set', text)
    this.resolve = noReply
    this.reject = (error) => incr.reject(error)
  }

  override setTimeout(): void {}
}

function noReply(): void {}

/** One besideHits call of a batch: its counts, filled window by window (sendWindowHits). */
interface HitCall {
  counts: number[]
  /** Windows whose count is not in yet. */
  left: number
  resolve: (counts: number[]) => void
  reject: (error: unknown) => void
}

/**
 * A batch's hits of one rate-limit window: `calls[k]` counts `units[k]` hits of it (a lease of
 * RedisRateLimiter takes several at once) as its window `slots[k]`.
 */
interface WindowHits {
  /** The window's length in ms, as text. */
  length: string
  calls: HitCall[]
  slots: number[]
  units: number[]
  /** The sum of `units`. */
  total: number
}

/**
 * Sends the `n` hits of one rate-limit window in a write (RedisConnection.besideHits) to `out`:
 * `SET <window> 0 PX <2 lengths> NX`, so the counter starts with its expiry, then one
 * `INCRBY <window> n` (`INCR` for one); the k-th hit (from 1) gets `total - n + k`, the count
 * n `INCR`s in the hits' order would have given it (a call of several units, the count of its
 * last one: its units are consecutive counts). Sent together, so the expiry is set before
 * a count is (a process that dies between the two leaves a key that still expires, and never
 * an immortal one). Counted (bench/redis-server-callgrind.ts, 8 hits of a caller in a write):
 * redis-server spends ~6k instructions a hit on a `SET` and 8 `INCR`s, ~2.3k on a `SET` and one
 * `INCRBY 8`.
 */
function sendWindowHits(client: Redis, out: BatchWrite, window: string, hits: WindowHits): void {
  const n = hits.total
  const key = `$${Buffer.byteLength(window, 'utf8')}\r\n${window}\r\n`
  const by = String(n)
  const incr = new TextCommand(
    n === 1 ? 'incr' : 'incrby',
    n === 1
      ? `*2\r\n$4\r\nINCR\r\n${key}`
      : `*3\r\n$6\r\nINCRBY\r\n${key}$${by.length}\r\n${by}\r\n`,
  )
  const ttl = String(2 * Number(hits.length))
  const start = `*6\r\n$3\r\nSET\r\n${key}$1\r\n0\r\n$2\r\nPX\r\n$${ttl.length}\r\n${ttl}\r\n$2\r\nNX\r\n`
  sendTo(client, new WindowStart(start, incr), out)
  sendTo(client, incr, out)
  ;(incr.promise as Promise<number>).then(
    (total) => {
      const { calls, slots, units } = hits
      let count = total - n
      for (let k = 0; k < calls.length; k++) {
        const call = calls[k]!
        call.counts[slots[k]!] = count += units[k]!
        if (--call.left === 0) call.resolve(call.counts)
      }
    },
    (error: unknown) => {
      for (const call of hits.calls) call.reject(error)
    },
  )
}

/** How a near-cached waiter is answered (RedisConnection.#finishCached). */
type FinishCached = (
  w: MgetWaiter,
  cache: NearCache,
  plan: NearPlan,
  values: readonly (Buffer | null)[],
  trusted: boolean,
) => void

/**
 * What a joined MGET with near-cached waiters waits for (RedisConnection.#sendCachedMget): its
 * reply, and the barrier of each cache some waiter took hits from. A waiter is answered as soon
 * as what it needs is in: its part of the reply, and, when it took hits, its cache's barrier.
 */
class CachedMget {
  readonly #waiters: readonly MgetWaiter[]
  /** Per waiter: its plan, or undefined when it reads without its cache. */
  readonly #plans: ReadonlyArray<NearPlan | undefined>
  /** Per waiter: how many of the MGET's values are its. */
  readonly #counts: readonly number[]
  /** The caches whose barrier is waited for, and each one's outcome (undefined: not in). */
  readonly #caches: readonly NearCache[]
  readonly #trusted: Array<boolean | undefined>
  readonly #finish: FinishCached
  #values: (Buffer | null)[] | undefined

  constructor(
    waiters: readonly MgetWaiter[],
    plans: ReadonlyArray<NearPlan | undefined>,
    counts: readonly number[],
    caches: readonly NearCache[],
    finish: FinishCached,
  ) {
    this.#waiters = waiters
    this.#plans = plans
    this.#counts = counts
    this.#caches = caches
    this.#trusted = new Array<boolean | undefined>(caches.length).fill(undefined)
    this.#finish = finish
  }

  /** How many barriers it waits for (sendBarriers sends them). */
  get barriers(): number {
    return this.#caches.length
  }

  /** Each cache's barrier, as `barrierOf` gives it (a PING sent after the plans). */
  sendBarriers(barrierOf: (cache: NearCache) => Promise<unknown>): void {
    const caches = this.#caches
    for (let k = 0; k < caches.length; k++) {
      barrierOf(caches[k]!).then(
        () => this.barrierIn(k, true),
        () => this.barrierIn(k, false),
      )
    }
  }

  replied(values: (Buffer | null)[]): void {
    this.#values = values
    this.#answer(-1)
  }

  /** The MGET failed: every waiter fails with it, its plan's flights ended. */
  failed(error: unknown): void {
    const waiters = this.#waiters
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!
      const plan = this.#plans[i]
      if (plan !== undefined) w.cache!.abandon(plan)
      w.reject(error)
    }
  }

  /** The barrier of `caches[index]` arrived (`trusted`) or failed. */
  barrierIn(index: number, trusted: boolean): void {
    this.#trusted[index] = trusted
    if (this.#values !== undefined) this.#answer(index)
  }

  /**
   * Answers the waiters that wait for nothing more: at the reply (`barrier` -1) those without
   * hits and those whose barrier is in; at the barrier of `caches[barrier]` after the reply, the
   * ones waiting for it. One waiter's answer failing (a value it cannot decode) fails it alone.
   */
  #answer(barrier: number): void {
    const values = this.#values!
    const waiters = this.#waiters
    const trusted = this.#trusted
    let from = 0
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!
      const start = from
      const count = this.#counts[i]!
      from += count
      const plan = this.#plans[i]
      const waits = plan === undefined || plan.hits === 0 ? -1 : this.#caches.indexOf(w.cache!)
      if (barrier < 0 ? waits >= 0 && trusted[waits] === undefined : waits !== barrier) continue
      const mine = count === values.length ? values : values.slice(start, start + count)
      try {
        if (plan === undefined) w.resolve(plainAnswer(w, mine, count))
        else this.#finish(w, w.cache!, plan, mine, waits < 0 || trusted[waits]!)
      } catch (error) {
        w.reject(error)
      }
    }
  }
}

/** The callers who share one joined MGET, each with its keys, in order. */
interface MgetGroup {
  /** Keys of all waiters. */
  size: number
  waiters: MgetWaiter[]
}

/** What goes out in one write (single Redis): joined MGETs and calls beside them. */
interface Batch {
  mgets: MgetGroup[]
  calls: TickCall[]
  /** Rate-limit hits by window (besideHits), in the order of their first hit. */
  hits: Map<string, WindowHits>
  /** Callers whose MGET keys are in it (see MAX_JOINED_READS). */
  reads: number
}

/**
 * An MGET whose RESP text is written here (mgetText) instead of by ioredis, which makes a
 * string per key and a Buffer per argument. Relies on ioredis writing a command as what its
 * `toWritable` returns (true of every command, as custom scripts rely on it too);
 * redis-connection.test.ts checks replies against Redis, which would refuse an MGET sent
 * without this text. Its reply is the values as the parser gives them (Buffers, or null): the
 * joined MGET turns each into its caller's string once (`stringsOf`), instead of ioredis
 * converting the whole reply into another array first.
 */
export class MgetCommand extends Command {
  readonly #text: string

  constructor(parts: readonly MgetKeys[]) {
    super('mget', [], { replyEncoding: null })
    this.#text = mgetText(parts)
  }

  override toWritable(): string {
    return this.#text
  }
}

/** A joined MGET's reply split among its waiters, each as it asked (strings or Buffers). */
function splitMget(group: MgetGroup, values: (Buffer | null)[]): void {
  let from = 0
  for (const w of group.waiters) {
    const count = w.keys.length
    if (w.strings) w.resolve(stringsOf(values, from, count))
    else w.resolve(count === values.length ? values : values.slice(from, from + count))
    from += count
  }
}

/** A waiter's answer of its values read without its near cache: as it asked for them. */
function plainAnswer(
  w: MgetWaiter,
  values: (Buffer | null)[],
  count: number,
): (string | null)[] | (Buffer | null)[] | NearRead {
  if (w.strings) return stringsOf(values, 0, count)
  if (w.cache === undefined) return values
  const read: NearRead = {
    summaries: new Array<PresenceSummary>(count),
    settings: new Array<Readonly<UserSettings> | undefined>(count),
  }
  readInto(read, w.keys, undefined, values, w.now, w.foldDone)
  return read
}

/** `count` values of an MGET reply of Buffers from `from` on, as utf-8 strings (or null). */
function stringsOf(values: readonly (Buffer | null)[], from: number, count: number) {
  const out = new Array<string | null>(count)
  for (let i = 0; i < count; i++) {
    const value = values[from + i]
    out[i] = value == null ? null : value.toString('utf8')
  }
  return out
}

/**
 * `MGET key…` of the keys of every part in order, as RESP text: `*<n+1>\r\n$4\r\nMGET\r\n`
 * then `$<bytes>\r\n<key>\r\n` per key, where the key is `heads[i]` (when given) followed by
 * `keys[i]`. Built as one string with each key's length in characters, which are its bytes
 * when the whole text is ASCII (one native check); else again with each key's byte length.
 * Measured (callgrind, 50-id read): writing the keys' bytes one by one from JS cost ~1,100
 * instructions per key, most of the MGET's own cost on the node. Each key adds two pieces, its
 * line (which starts with the CRLF that ends the key before it) and the key, not three: V8
 * flattening the string (for Buffer.byteLength, then the socket) costs ~200 instructions a piece.
 */
export function mgetText(parts: readonly MgetKeys[]): string {
  let count = 0
  let text = ''
  for (const { keys, heads } of parts) {
    count += keys.length
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!
      text = text + keyLine(heads?.[k] ?? '', key.length) + key
    }
  }
  text = `*${count + 1}\r\n$4\r\nMGET${text}\r\n`
  if (Buffer.byteLength(text, 'utf8') === text.length) return text
  text = `*${count + 1}\r\n$4\r\nMGET\r\n`
  for (const { keys, heads } of parts) {
    for (let k = 0; k < keys.length; k++) {
      const key = (heads?.[k] ?? '') + keys[k]!
      text += `$${Buffer.byteLength(key, 'utf8')}\r\n${key}\r\n`
    }
  }
  return text
}

/** Per key head, `\r\n$<length>\r\n<head>` by the length of the id after it (keyLine). */
const keyLines = new Map<string, string[]>()
const MAX_KEY_LINES = 1024

/**
 * The end of the argument before a key (`\r\n`) and the start of the key's bulk string,
 * `$<length>\r\n<head>`, for a key of `head` and `idLength` characters after it (their count,
 * which mgetText checks to be their bytes), made once per head and length: a read's keys share
 * their heads (RedisKeys.userKeyHeads).
 */
function keyLine(head: string, idLength: number): string {
  let byLength = keyLines.get(head)
  if (byLength === undefined) {
    if (keyLines.size >= MAX_KEY_LINES) keyLines.clear()
    keyLines.set(head, (byLength = []))
  }
  return (byLength[idLength] ??= `\r\n$${head.length + idLength}\r\n${head}`)
}

/** The hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384

/**
 * Reply errors that mean "Redis cannot serve now", not "this command is wrong": among them a
 * Redis that is full (OOM: maxmemory reached with noeviction) or cannot persist (MISCONF), which
 * refuse writes until an operator acts, and a script's error when a command it ran was refused so
 * (the message starts with the command's).
 */
const TRANSIENT_REPLY =
  /^(MOVED|ASK|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|BUSY|OOM|MISCONF)\b/

/**
 * Whether a reply error is transient (TRANSIENT_REPLY). A MULTI whose commands Redis refused as
 * they were queued fails as EXECABORT, the refusals in `previousErrors` (ioredis): transient when
 * every one is.
 */
function isTransientReply(error: Error & { previousErrors?: unknown }): boolean {
  return replyIs(error, TRANSIENT_REPLY)
}

/** Whether a reply error, or every refusal of an EXECABORT (previousErrors), matches `kind`. */
function replyIs(error: Error & { previousErrors?: unknown }, kind: RegExp): boolean {
  if (kind.test(error.message)) return true
  const previous = error.previousErrors
  return (
    error.message.startsWith('EXECABORT') &&
    Array.isArray(previous) &&
    previous.length > 0 &&
    previous.every((e) => e instanceof Error && kind.test(e.message))
  )
}

/** ms a cluster command waits before it is sent again after CLUSTERDOWN, TRYAGAIN or a lost connection. */
const RETRY_DELAY_MS = 100

/** How ioredis's Cluster goes on after a refusal: each function sends the command again, or fails it. */
interface ClusterRetries {
  moved(slot: string, key: string): void
  ask(slot: string, key: string): void
  tryagain(): void
  clusterDown(): void
  connectionClosed(): void
  maxRedirections(error: Error): void
  defaults(): void
}

/** The retry state ioredis keeps per command (or per pipeline), with when its first refusal came. */
interface RetryState {
  value?: number
  since?: number
}

/**
 * A Cluster whose command (or auto-pipelined batch) is retried after a refusal for `budgetMs` at
 * most, counted from its first refusal, then fails with that refusal: the command timeout a
 * single Redis gets. ioredis retries CLUSTERDOWN, TRYAGAIN and a lost connection every 100 ms
 * (RETRY_DELAY_MS) up to 16 times (`maxRedirections`) a command: with a master killed and no
 * replica, every request touching the cluster (CLUSTERDOWN on every slot once the cluster marks it
 * failed) waited 1.7-3.5 s for its 503 (test/fleet/cluster-outage.test.ts), against 0.5-1.5 s
 * on a single Redis. A redirection (MOVED, ASK: a slot moved or moving) is followed at once, as
 * before, while the budget lasts: a slot move costs a round trip, never a 503. A refusal that
 * passes within the budget is ridden out; a longer one (a failover waiting for the node timeout)
 * is answered 503, as a restarting single Redis is.
 *
 * A retry is not started when its delay would end past the budget. The refresh of the slot map
 * ioredis makes before some retries (bounded by `slotsRefreshTimeout`) and the retry's own round
 * trip can still end a little later: the budget decides whether to retry, not a timer.
 */
class BoundedCluster extends Cluster {
  readonly #budgetMs: number
  /**
   * How many refusals ASK (a slot being moved) this client met, a command's or a batch's: a read
   * that saw it change may have been answered by the wrong master (RedisConnection.#clusterMget).
   */
  asks = 0

  constructor(
    nodes: ConstructorParameters<typeof Cluster>[0],
    options: ClusterOptions,
    budgetMs: number,
  ) {
    super(nodes, options)
    this.#budgetMs = budgetMs
  }

  override handleError(error: Error, ttl: RetryState, handlers: ClusterRetries): void {
    const now = performance.now()
    const since = (ttl.since ??= now)
    const word = error.message.split(' ', 1)[0]
    if (word === 'ASK') this.asks++
    // MOVED and ASK are followed at once (retryDelayOnMoved is 0); the others after a delay
    const delay = word === 'MOVED' || word === 'ASK' ? 0 : RETRY_DELAY_MS
    if (now + delay - since > this.#budgetMs) {
      // the refusal itself, so that its cause (CLUSTERDOWN, a lost connection) is what is said
      handlers.maxRedirections(error)
      return
    }
    super.handleError(error, ttl, handlers)
  }
}

/**
 * One ioredis client (single Redis or Cluster) set up to fail fast: no offline queue, a command
 * timeout, no retries of a request, and reconnection forever in the background. A request made
 * while Redis is away therefore fails at once with STORE_UNAVAILABLE (503) instead of hanging,
 * and the node serves again as soon as the client reconnects, with no restart.
 *
 * Shared by the adapters of one node: each `retain`s it and `release`s it on close; the last
 * release disconnects.
 */
export class RedisConnection {
  readonly client: RedisClient
  readonly isCluster: boolean
  readonly #target: RedisTarget
  readonly #options: Required<Omit<RedisConnectionOptions, 'outages'>>
  /** Says (once, then at most a reminder a minute) that Redis is unreachable or refuses. */
  readonly outages: StoreOutages
  #users = 0
  #closed = false
  #refreshing = false

  constructor(target: RedisTarget, options: RedisConnectionOptions = {}) {
    this.#target = target
    this.#options = {
      commandTimeoutMs: options.commandTimeoutMs ?? 500,
      connectTimeoutMs: options.connectTimeoutMs ?? 1000,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 500,
    }
    this.isCluster = 'cluster' in target
    this.outages = options.outages ?? new StoreOutages()
    this.client = this.#create(false)
    // errors surface through the commands that hit them; an unhandled 'error' would crash. The
    // client's own (a reconnection attempt that fails, some every second while Redis is down)
    // go to `outages`, which says the first and then a reminder now and then, never each one
    this.client.on('error', (error: unknown) => {
      if (this.#closed) return
      // a database refused is for an operator to mend: said at once, in an outage begun otherwise
      // (a restart) too, not with the next reminder
      this.outages.lost(reasonOf(error), error instanceof Error && selectRefused(error))
    })
    this.client.on('ready', () => this.outages.back())
    for (const [name, numberOfKeys, text] of fixedScripts()) {
      this.client.defineCommand(name, { numberOfKeys, lua: text })
    }
    // the number of keys varies with the number of rules: passed as the first argument
    this.#defineVariadic(
      'presencedLimitedHeartbeat',
      limitLua('presence.lua', 'limited-heartbeat.lua', 'heartbeat.lua'),
    )
    this.#defineVariadic('presencedRateLimit', limitLua('rate-limit.lua'))
  }

  /** The text and SHA1 of each variadic script, for EVALSHA and EVAL on a cluster. */
  readonly #variadic = new Map<VariadicScript, { lua: string; sha: string }>()

  #defineVariadic(name: VariadicScript, text: string): void {
    this.client.defineCommand(name, { lua: text })
    this.#variadic.set(name, { lua: text, sha: createHash('sha1').update(text).digest('hex') })
  }

  /**
   * Runs a script whose number of keys varies on `keys` and `args`. On a cluster as EVALSHA (EVAL
   * when Redis does not have it yet), not as the command ioredis defines: ioredis's
   * auto-pipelining puts a command in the pipeline of the master serving its first key, which
   * for a defined script of no fixed number of keys is its first argument, the number ("2"). Every
   * such call went to the pipeline of the master serving slot("2"), and a pipeline holding keys
   * of two masters fails whole ("All keys in the pipeline should belong to the same slots
   * allocation group"): a 503 for each request in it. EVALSHA's keys are known to ioredis.
   */
  variadic<T>(name: VariadicScript, keys: readonly string[], args: readonly string[]): Promise<T> {
    const client = this.client
    if (!this.isCluster) {
      return client[name](String(keys.length), ...keys, ...args) as Promise<T>
    }
    const script = this.#variadic.get(name)!
    return (client.evalsha(script.sha, keys.length, ...keys, ...args) as Promise<T>).catch(
      (error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
        return client.eval(script.lua, keys.length, ...keys, ...args) as Promise<T>
      },
    )
  }

  /**
   * The deadline of a command that carries, or waits in Redis behind, the writes of `users` users
   * (a game server's report: its roster swap and its buckets' scripts, which Redis runs one after
   * the other, so the last one's reply comes once the whole report is done; an expiry sweep's
   * claims; an import's transaction, a write per command): the command timeout plus
   * DEADLINE_MS_PER_USER a user. The one rule for every step whose work grows with its batch: a
   * fixed timeout answered 503 to a 10,000-player report that Redis then applied whole
   * (test/fleet/report-deadline.test.ts), and failed sweeps and imports of big batches the same way
   * (test/fleet/batch-deadline.test.ts).
   */
  deadlineFor(users: number): number {
    return this.#options.commandTimeoutMs + Math.ceil(users * DEADLINE_MS_PER_USER)
  }

  /**
   * Defined script `name` run on `args` (its keys, then its arguments), failing as timed out after
   * `deadlineMs` (deadlineFor) instead of the command timeout. Sent on its own, not through
   * ioredis's auto-pipelining, which gives every command the client's timeout: the commands of one
   * turn still all go out before any reply is waited for (a report stays one round trip a master).
   * On a connection's first use of the script it goes as EVAL (ioredis's script command does
   * that), and again as EVAL when Redis no longer has it (NOSCRIPT: Redis restarted, SCRIPT FLUSH).
   */
  script<T>(name: PresencedScript, args: readonly string[], deadlineMs: number): Promise<T> {
    const scripts = (this.client as unknown as { scriptsSet: Record<string, DefinedScript> })
      .scriptsSet
    const script = scripts[name]!
    const send = () =>
      this.#within<T>(
        new script.Command('evalsha', [script.sha, script.numberOfKeys ?? 0, ...args], {
          replyEncoding: 'utf8',
        }),
        deadlineMs,
      )
    return send().catch((error: unknown) => {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
      return send()
    })
  }

  /**
   * Redis command `name` on `args`, failing as timed out after `deadlineMs` (deadlineFor) instead
   * of the command timeout; sent on its own, as `script` is.
   */
  command<T>(name: string, args: readonly string[], deadlineMs: number): Promise<T> {
    return this.#within<T>(new Command(name, [...args], { replyEncoding: 'utf8' }), deadlineMs)
  }

  /** `command` sent on its own, timed out after `deadlineMs` rather than the command timeout. */
  #within<T>(command: Command, deadlineMs: number): Promise<T> {
    // set before the client's own (sendCommand), which then keeps this one
    command.setTimeout(deadlineMs)
    return this.client.sendCommand(command) as Promise<T>
  }

  /**
   * `ops` in one MULTI (keys of one slot on a cluster), every command of it, EXEC above all (Redis
   * runs the whole transaction before answering it), failing as timed out after `deadlineMs`
   * (deadlineFor the transaction's commands) instead of the command timeout; its replies as
   * ioredis's `exec` gives them.
   */
  transaction(
    ops: ReadonlyArray<readonly [command: string, ...args: string[]]>,
    deadlineMs: number,
  ): Promise<Array<[error: Error | null, reply: unknown]> | null> {
    const pipeline = this.client.multi()
    // ioredis queues MULTI at once and EXEC only in exec(): each command gets the deadline as it
    // is queued, before the client's own timeout (which then keeps this one)
    const queue = pipeline as unknown as {
      _queue: Command[]
      sendCommand(command: Command): unknown
      addBatch(commands: ReadonlyArray<readonly string[]>): unknown
    }
    for (const queued of queue._queue) queued.setTimeout(deadlineMs)
    const own = queue.sendCommand
    queue.sendCommand = function (command: Command) {
      command.setTimeout(deadlineMs)
      return own.call(this, command)
    }
    queue.addBatch(ops)
    return pipeline.exec()
  }

  /**
   * A new client to the same Redis for pub/sub. It keeps an offline queue, so that subscribing
   * before the connection is up (or while it is re-established) waits instead of failing. It
   * does not subscribe again by itself on a reconnect: ioredis's own SUBSCRIBE then had no
   * handler, so a timed-out one (a Redis slow to answer) was an unhandled rejection, which ends
   * the process, and was never tried again. Its owner subscribes again on 'ready'
   * (RedisChangeBus).
   *
   * On a cluster, a plain client to one node (a message published anywhere reaches every node),
   * the next one each call, that does not reconnect: when its node goes, it ends ('end') and its
   * owner asks for another. ioredis's cluster subscriber moved to another node by itself, said
   * nothing of it (its owner could not tell its watchers to catch up on the gap), gave up on a
   * failed re-subscription, and stayed for good on a node that hangs.
   */
  subscriber(): RedisClient {
    const client = this.isCluster ? this.#nodeSubscriber() : this.#create(true, false)
    client.on('error', () => {})
    return client
  }

  /** The near caches of this connection's reads, by their key heads (see nearCache). */
  readonly #nearCaches = new Map<string, NearCache>()

  /**
   * A near cache (NearCache) of the values of keys that start with one of `heads`, of
   * `maxEntries` at most, on its own subscriber connection; one per set of heads, shared.
   * Undefined on a cluster (tracking is per node there: each master would need its own
   * subscriber, and a slot moving between them its own clear; not done) and when `maxEntries`
   * is 0.
   */
  nearCache(heads: readonly string[], maxEntries: number): NearCache | undefined {
    if (this.isCluster || maxEntries <= 0 || this.#closed) return undefined
    const name = heads.join('\n')
    let cache = this.#nearCaches.get(name)
    if (cache === undefined) {
      const subscriber = this.#create(true, false) as Redis
      subscriber.on('error', () => {})
      const client = this.client
      cache = new NearCache(
        subscriber,
        heads,
        maxEntries,
        () => client.status === 'ready',
        (reason) => this.outages.nearCacheRefused(reason),
      )
      this.#nearCaches.set(name, cache)
      // values read on a connection that dropped were read from a Redis that may have restarted
      if (this.#nearCaches.size === 1) {
        client.on('close', () => {
          for (const near of this.#nearCaches.values()) near.drop()
        })
      }
    }
    return cache
  }

  /** Which node the next cluster subscriber connects to (an index in the node list). */
  #nextSubscriberNode = Math.floor(Math.random() * 1024)

  #nodeSubscriber(): Redis {
    // the nodes the cluster client knows now (a failed-over master gone), else the seeds
    const known = (this.client as Cluster).nodes('all').map((node) => ({
      host: node.options.host ?? '127.0.0.1',
      port: node.options.port ?? 6379,
    }))
    const nodes = known.length > 0 ? known : this.#seeds()
    const node = nodes[this.#nextSubscriberNode++ % nodes.length]!
    return new Redis(node.port, node.host, {
      ...this.#common(),
      enableOfflineQueue: true,
      autoResubscribe: false,
      retryStrategy: () => null,
    })
  }

  #seeds(): Array<{ host: string; port: number }> {
    if (!('cluster' in this.#target)) return []
    return this.#target.cluster.map((seed) => {
      const at = seed.lastIndexOf(':')
      return at < 0
        ? { host: seed, port: 6379 }
        : { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) }
    })
  }

  #common(): RedisOptions {
    const o = this.#options
    return {
      connectTimeout: o.connectTimeoutMs,
      commandTimeout: o.commandTimeoutMs,
      maxRetriesPerRequest: 0,
      // commands issued in the same tick go out together: one round trip per node for a batch
      enableAutoPipelining: true,
    }
  }

  #create(offlineQueue: boolean, autoResubscribe = true): RedisClient {
    const o = this.#options
    const retryStrategy = (times: number) => Math.min(times * 100, o.maxReconnectDelayMs)
    const common = this.#common()
    if ('url' in this.#target) {
      return new Redis(this.#target.url, {
        ...common,
        enableOfflineQueue: offlineQueue,
        autoResubscribe,
        retryStrategy,
        // the URL's database (redis://host:port/N) is selected on each connection; a connection
        // whose SELECT Redis refuses (restarted with fewer `databases`, an ACL without SELECT)
        // is dropped and tried again, like one Redis refuses outright. ioredis only emitted the
        // refusal as an 'error' and made the connection ready on database 0, where the node then
        // read and wrote (another deployment's data, perhaps), its log saying Redis was back.
        reconnectOnError: selectRefused,
      })
    }
    const nodes = this.#seeds()
    const options: ClusterOptions = {
      enableOfflineQueue: offlineQueue,
      enableAutoPipelining: true,
      clusterRetryStrategy: retryStrategy,
      retryDelayOnFailover: RETRY_DELAY_MS,
      retryDelayOnClusterDown: RETRY_DELAY_MS,
      retryDelayOnTryAgain: RETRY_DELAY_MS,
      slotsRefreshTimeout: o.connectTimeoutMs,
      // the cluster batches a tick's commands per master itself (enableAutoPipelining above). A
      // master's own client must send at once what the cluster hands it: to follow an ASK, the
      // cluster calls its `asking()` then sends the command, and an ASKING auto-pipelined there went
      // out a tick after the command, which the target then refused (MOVED back to the source, ASK
      // again, until ioredis gave up: "Too many Cluster redirections", a 503)
      redisOptions: { ...common, enableAutoPipelining: false },
    }
    return new BoundedCluster(nodes, options, o.commandTimeoutMs)
  }

  retain(): this {
    this.#users++
    return this
  }

  async release(): Promise<void> {
    if (--this.#users > 0 || this.#closed) return
    this.#closed = true
    for (const cache of this.#nearCaches.values()) cache.close()
    await this.client.quit().catch(() => this.client.disconnect())
  }

  /**
   * Resolves true once connected and, on a cluster, once the client's slot map has a master for
   * every slot (coveredSlots); false after `timeoutMs` regardless (ready() tells the truth then).
   */
  async waitReady(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    if (!(await this.#connected(timeoutMs))) return false
    while (this.coveredSlots() < CLUSTER_SLOTS) {
      const left = deadline - Date.now()
      if (this.#closed || left <= 0) return false
      await new Promise<void>((resolve) =>
        (this.client as Cluster).refreshSlotsCache(() => resolve()),
      )
      if (this.coveredSlots() < CLUSTER_SLOTS) await sleep(Math.min(100, left))
    }
    return true
  }

  #connected(timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer)
        this.client.off('ready', onReady)
        resolve(ready)
      }
      const onReady = () => done(true)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.client.once('ready', onReady)
    })
  }

  /** Once every slot had a master in the slot map (ioredis moves a slot, never forgets it). */
  #covered = false

  /**
   * How many of the 16384 slots have a master in the client's slot map (all of them on a single
   * Redis). A cluster client learns the map from one node's CLUSTER SLOTS: while slots are still
   * being assigned (or that node has not yet heard of all of them), a command for a slot missing
   * from the map fails, and ioredis asks again only when told to.
   */
  coveredSlots(): number {
    if (!this.isCluster || this.#covered) return CLUSTER_SLOTS
    const slots = (this.client as Cluster).slots
    let covered = 0
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) if (slots[slot]?.length) covered++
    this.#covered = covered === CLUSTER_SLOTS
    return covered
  }

  /**
   * True when Redis answers a PING now (fails fast while disconnected). On a cluster, when the
   * slot map has a master for every slot (when it has not, the map is asked for again) and the
   * cluster serves every slot (clusterServes).
   */
  async ready(): Promise<boolean> {
    if (this.#closed) return false
    if (this.coveredSlots() < CLUSTER_SLOTS) {
      this.#refreshSlots()
      return false
    }
    if (this.isCluster) return this.#clusterServes()
    try {
      return (await this.client.ping()) === 'PONG'
    } catch {
      return false
    }
  }

  /** The last cluster check (clusterServes), and when it began (performance.now()). */
  #servesCheck: { at: number; serves: Promise<boolean> } | undefined

  /**
   * Whether every master of the slot map answers `CLUSTER INFO` (within the command timeout)
   * with cluster_state:ok and all 16384 slots ok (none whose master it finds failing, PFAIL, or
   * the cluster has failed, FAIL). A PING answered by any live master said ready while a master
   * was down and every request was answered 503 (CLUSTERDOWN). The answer is shared by the
   * checks of the next READY_REUSE_MS (the presence and profile stores' of one /readyz, and
   * probes coming faster than that): one `CLUSTER INFO` per master a second at most.
   */
  #clusterServes(): Promise<boolean> {
    const now = performance.now()
    const last = this.#servesCheck
    if (last !== undefined && now - last.at < READY_REUSE_MS) return last.serves
    const serves = this.#askMasters()
    this.#servesCheck = { at: now, serves }
    return serves
  }

  async #askMasters(): Promise<boolean> {
    const masters = (this.client as Cluster).nodes('master')
    const answers = await Promise.all(
      masters.map((node) => node.cluster('INFO').then(String, () => '')),
    )
    const serves = masters.length > 0 && answers.every(servesEverySlot)
    // the map may name a master that is gone (failed over): the next check asks the new one
    if (!serves) this.#refreshSlots()
    return serves
  }

  /**
   * One MGET on a single Redis, joined with the other MGETs of the same tick. On a cluster, MGET only spans one slot, so keys are grouped by
   * hash tag (a user's bucket is one slot) and the MGETs, issued together, are auto-pipelined per node.
   */
  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    if (!this.isCluster) return this.#joinedMget(true, keys)
    return this.#clusterMget(keys, 'utf8', (client, slotKeys) => client.mget(...slotKeys))
  }

  /**
   * MGET on a cluster: one per hash tag (a user's bucket is one slot), issued together. A slot
   * being migrated whose keys are split between its two masters refuses an MGET of keys on both
   * (TRYAGAIN) until the last of them moved, which takes as long as the migration of the slot's
   * keys: once ioredis's retries of it gave up (BoundedCluster), its keys are read one by one,
   * each where it is (the source, or the target after ASK). The values of different users are
   * independent: read apart, each is still a value some write left. Those GETs bypass ioredis's
   * auto-pipelining: a batch in which some commands are answered ASK is sent again whole to the
   * target, the commands the source had served too, and there a key still on the source reads
   * as missing (a user online shown offline).
   *
   * The MGETs themselves are auto-pipelined (one write per master for a read of many buckets), and
   * meet that same fault: a tick's MGETs of a slot being moved, some answered by the source and
   * some refused ASK, are sent again whole to the target, where the keys still on the source read
   * as missing (measured: 4 of 8 single-user reads in one tick shown offline). So an MGET refused
   * ASK is read key by key, and when any ASK was met while the read was out (BoundedCluster.asks:
   * only while a slot is being moved), each key read as missing is read again alone, where it is.
   * The normal read pays one comparison.
   */
  async #clusterMget<T>(
    keys: readonly string[],
    encoding: 'utf8' | null,
    mget: (client: RedisClient, keys: string[]) => Promise<(T | null)[]>,
  ): Promise<(T | null)[]> {
    const client = this.client
    const cluster = client as BoundedCluster
    const asks = cluster.asks
    const groups = new Map<string, number[]>()
    keys.forEach((key, i) => {
      const tag = hashTagOf(key)
      const group = groups.get(tag)
      if (group) group.push(i)
      else groups.set(tag, [i])
    })
    const out = new Array<T | null>(keys.length).fill(null)
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const slotKeys = indexes.map((i) => keys[i]!)
        const values = await mget(client, slotKeys).catch((error: unknown) => {
          // ASK: a batch refused partly ASK and partly otherwise is not followed by ioredis;
          // TRYAGAIN: the slot's keys are split between its two masters (one key never is)
          const readApart =
            error instanceof Error &&
            (replyIs(error, ASK) || (slotKeys.length > 1 && replyIs(error, TRY_AGAIN)))
          if (!readApart) throw error
          return readEach<T>(client, slotKeys, encoding)
        })
        if (cluster.asks !== asks) {
          const missing = slotKeys.filter((_, j) => values[j] == null)
          if (missing.length > 0) {
            const again = await readEach<T>(client, missing, encoding)
            let m = 0
            slotKeys.forEach((_, j) => {
              if (values[j] == null) values[j] = again[m++] ?? null
            })
          }
        }
        indexes.forEach((index, j) => (out[index] = values[j] ?? null))
      }),
    )
    return out
  }

  /**
   * mget() of `heads[bucketOf(id)] + id` for each of `ids` (RedisKeys.userKeyHeads), whose
   * command text is written from the head and the id on a single Redis, without the text of
   * each key.
   */
  mgetUsers(
    heads: readonly string[],
    ids: readonly string[],
    buckets: UserBuckets,
  ): Promise<(string | null)[]> {
    if (this.isCluster) return this.mget(ids.map((id) => heads[buckets.bucketOf(id)]! + id))
    return this.#joinedMget(true, ids, headsOf(heads, ids, buckets))
  }

  /**
   * mgetUsers() with the values as the bytes Redis sent (the reply's Buffers, no string made of
   * them): for readers that decode bytes (summarizeBytes).
   */
  mgetUsersBytes(
    heads: readonly string[],
    ids: readonly string[],
    buckets: UserBuckets,
  ): Promise<(Buffer | null)[]> {
    if (this.isCluster) {
      const keys = ids.map((id) => heads[buckets.bucketOf(id)]! + id)
      return this.#clusterMget(keys, null, (client, slotKeys) => client.mgetBuffer(...slotKeys))
    }
    return this.#joinedMget(false, ids, headsOf(heads, ids, buckets))
  }

  /**
   * The summaries at `now` of the values of `heads[bucketOf(id)] + id` and their folded settings
   * (as summarizeAll decodes them), read through `cache` (a single Redis's: NearCache): the ids
   * it holds for `now` are not read, and each value read is kept there.
   */
  mgetUsersNear(
    heads: readonly string[],
    ids: readonly string[],
    buckets: UserBuckets,
    cache: NearCache,
    now: number,
    foldDone: boolean,
  ): Promise<NearRead> {
    if (ids.length === 0) return Promise.resolve({ summaries: [], settings: [] })
    return this.#joinedMget(false, ids, undefined, cache, now, foldDone, heads, buckets)
  }

  /**
   * What was asked for and not yet sent (single Redis): one write for all of it, after this turn's
   * I/O callbacks, so that requests that arrived together go together, or sooner once
   * MAX_JOINED_READS callers read in it. Batches do not wait for
   * the one in flight (as ioredis's auto-pipelining does): on a busy machine that wait, a Redis
   * round trip, left the node idle with requests queued (Redis HTTP bench: 1.14x the req/s of
   * one batch in flight, 0.06 writes per request either way).
   */
  #pending: Batch | undefined

  /** The batch not yet sent, started (and its sending scheduled) when there is none. */
  #batch(): Batch {
    let batch = this.#pending
    if (batch === undefined) {
      const started = (batch = this.#pending = { mgets: [], calls: [], hits: new Map(), reads: 0 })
      setImmediate(() => this.#flush(started, true))
    }
    return batch
  }

  /**
   * Sends `batch` unless it has gone already (MAX_JOINED_READS); `endOfTurn` from its
   * setImmediate, when the turn's reads are done.
   */
  #flush(batch: Batch, endOfTurn: boolean): void {
    if (this.#pending !== batch) return
    this.#pending = undefined
    this.#send(batch, endOfTurn)
  }

  /**
   * The MGETs of one tick (a lookup's presences and settings, and other requests' in flight) go
   * as one MGET, whose reply is split among them. Measured on the Redis HTTP bench: each command
   * costs the node a Command, a timeout timer, a pipeline slot and a reply frame, more than its
   * keys do.
   */
  #joinedMget(
    strings: true,
    keys: readonly string[],
    heads?: readonly string[],
  ): Promise<(string | null)[]>
  #joinedMget(
    strings: false,
    keys: readonly string[],
    heads?: readonly string[],
  ): Promise<(Buffer | null)[]>
  #joinedMget(
    strings: false,
    keys: readonly string[],
    heads: undefined,
    cache: NearCache,
    now: number,
    foldDone: boolean,
    bucketHeads: readonly string[],
    buckets: UserBuckets,
  ): Promise<NearRead>
  #joinedMget(
    strings: boolean,
    keys: readonly string[],
    heads?: readonly string[],
    cache?: NearCache,
    now = 0,
    foldDone = false,
    bucketHeads?: readonly string[],
    buckets?: UserBuckets,
  ): Promise<(string | null)[] | (Buffer | null)[] | NearRead> {
    if (keys.length === 0) return Promise.resolve([])
    const batch = this.#batch()
    if (++batch.reads === MAX_JOINED_READS) queueMicrotask(() => this.#flush(batch, false))
    const mgets = batch.mgets
    let group = mgets[mgets.length - 1]
    if (group === undefined || group.size + keys.length > MAX_JOINED_KEYS) {
      group = { size: 0, waiters: [] }
      mgets.push(group)
    }
    group.size += keys.length
    const joined = group
    return new Promise((resolve, reject) => {
      // every waiter of one shape, near-cached or not (fields added after would make two)
      joined.waiters.push({
        keys,
        heads,
        strings,
        cache,
        bucketHeads,
        buckets,
        now,
        foldDone,
        resolve,
        reject,
      })
    })
  }

  /**
   * A command that goes out in the same write as this tick's MGET, so that, e.g., a request's
   * relations cost no round trip of their own beside its read: `name` with `args`, its reply as
   * ioredis's command functions give it (strings as utf-8); resolves with the reply. On a
   * cluster, a write spans one node, so it goes through the client's auto-pipelining instead
   * (`direct`): its caller makes it safe while a slot is being moved (together()).
   */
  beside<T>(
    name: string,
    args: readonly string[],
    direct: (client: RedisClient) => Promise<T>,
  ): Promise<T> {
    if (this.isCluster) return direct(this.client)
    return this.#beside((client, out) => {
      const command = new Command(name, args as string[], { replyEncoding: 'utf8' })
      sendTo(client, command, out)
      return command.promise
    })
  }

  /**
   * A read-only command of one key, `name` on `args`, as `direct` sends it (the client's command
   * function: auto-pipelined, its reply as that function gives it). On a single Redis, just that.
   * On a cluster, read where its key is while a slot is being moved (together()).
   */
  read<T>(
    name: string,
    args: readonly string[],
    direct: (client: RedisClient) => Promise<T>,
  ): Promise<T> {
    const client = this.client
    if (!this.isCluster) return direct(client)
    return this.together(
      () => direct(client),
      () => this.alone<T>(name, args),
    )
  }

  /**
   * Reads sent together through the client (`send`, auto-pipelined: read-only commands of one
   * key each), made safe on a cluster while a slot is being moved, as mget() is: ioredis sends an
   * auto-pipelined batch some of whose commands were refused ASK (the others served, all reads)
   * again whole to the ASK's target, where a key still on the source reads as missing (a friend
   * shown as a stranger, a game server's roster as gone) and a key of another slot is refused
   * MOVED (a 503). So when one of them is refused ASK or MOVED, or any ASK was met while they were
   * out (BoundedCluster.asks, which changes only while a slot is being moved), they are read again
   * by `again`, each on its own (alone()). One check for the reads of a call, not one each: the
   * normal read pays a comparison and one promise. On a single Redis, `send()`.
   */
  together<T>(send: () => Promise<T>, again: () => Promise<T>): Promise<T> {
    if (!this.isCluster) return send()
    const cluster = this.client as BoundedCluster
    const asks = cluster.asks
    return send().then(
      (value) => (cluster.asks === asks ? value : again()),
      (error: unknown) => {
        if (error instanceof Error && replyIs(error, SLOT_MOVING)) return again()
        throw error
      },
    )
  }

  /**
   * `name` on `args` sent on its own, not auto-pipelined, its reply as ioredis's command
   * functions give it (utf-8): on a cluster, ioredis follows its ASK or MOVED to where its key is.
   */
  alone<T>(name: string, args: readonly string[]): Promise<T> {
    return this.client.sendCommand(
      new Command(name, args as string[], { replyEncoding: 'utf8' }),
    ) as unknown as Promise<T>
  }

  /**
   * Counts one hit in each of `windows` (a caller's rule windows, lengths in ms), as limit.lua
   * does, in the write of this tick's MGET: resolves with each window's count, this hit
   * included. On a single Redis as plain commands, per window of the write's hits
   * `SET <window> 0 PX <2 lengths> NX` then one `INCRBY <window> <its hits>` (sendWindowHits):
   * the window's counter starts with its expiry (limit.lua sets it on the first hit: the same
   * expiry), every hit counts once and sees the count it would have seen alone. Counted
   * (bench/redis-server-callgrind.ts): redis-server spends ~27k instructions per EVALSHA of
   * rate-limit.lua (its Lua call) against ~11k for `SET` + `INCR`. On a cluster, rate-limit.lua
   * as `variadic` (its keys share one slot), not plain commands:
   * there the tick's commands go through the client's auto-pipelining per master, not one write
   * of ours (nothing to join a caller's hits in), and ioredis sends a command redirected (MOVED,
   * ASK: a slot moving) again on its own, so an `INCR` could reach the new master before its
   * `SET … NX` and make a counter with no expiry; the script counts and sets the expiry in one
   * step wherever it runs.
   *
   * `units[i]` (single Redis only; default 1): hits counted at once in `windows[i]`, a lease of
   * RedisRateLimiter; its count is then that of the last of them.
   */
  besideHits(
    windows: readonly string[],
    lengths: readonly string[],
    units?: readonly number[],
  ): Promise<number[]> {
    if (this.isCluster) return this.variadic('presencedRateLimit', windows, lengths)
    const hits = this.#batch().hits
    return new Promise((resolve, reject) => {
      const call: HitCall = {
        counts: new Array<number>(windows.length),
        left: windows.length,
        resolve,
        reject,
      }
      for (let i = 0; i < windows.length; i++) {
        const window = windows[i]!
        let pending = hits.get(window)
        if (pending === undefined) {
          pending = { length: lengths[i]!, calls: [], slots: [], units: [], total: 0 }
          hits.set(window, pending)
        }
        const n = units === undefined ? 1 : units[i]!
        pending.calls.push(call)
        pending.slots.push(i)
        pending.units.push(n)
        pending.total += n
      }
    })
  }

  #beside<T>(send: TickCall['send']): Promise<T> {
    const batch = this.#batch()
    return new Promise<T>((resolve, reject) => {
      batch.calls.push({ send, resolve: resolve as (value: unknown) => void, reject })
    })
  }

  /**
   * Sends a batch in one write: each command handed to the client as it is (queued for its
   * reply, with its timeout, as ioredis sends any command), its bytes gathered and written
   * together, as a Pipeline does. Not a Pipeline: building one per batch (it copies every
   * defined script onto itself), each script's EVALSHA through its Script wrapper and the exec's
   * result arrays cost more than the commands (issue 19: 0.75x the node CPU of a 50-id read).
   */
  #send(batch: Batch, endOfTurn: boolean): void {
    const client = this.client as Redis
    const parts: Array<string | Buffer> = []
    let gathering = true
    // a command ioredis writes again later (a resend after reconnection) goes to the socket
    const out: BatchWrite = {
      writable: true,
      write: (writable) => {
        if (gathering) return parts.push(writable) > 0
        return client.stream.write(writable)
      },
    }
    for (const call of batch.calls) call.send(client, out).then(call.resolve, call.reject)
    for (const [window, hits] of batch.hits) sendWindowHits(client, out, window, hits)
    let barriers: CachedMget[] | undefined
    for (const group of batch.mgets) {
      if (group.waiters.some((w) => w.cache !== undefined)) {
        const wait = this.#sendCachedMget(client, out, group)
        if (wait.barriers > 0) (barriers ??= []).push(wait)
        continue
      }
      const command = new MgetCommand(group.waiters)
      // Redis answers a joined MGET once it has read every key: an import's 5,000 waited out
      // the plain timeout on a loaded machine (503) where a report's deadline held
      command.setTimeout(this.deadlineFor(group.size))
      sendTo(client, command, out)
      command.promise.then(
        (reply) => splitMget(group, reply as unknown as (Buffer | null)[]),
        (error: unknown) => {
          for (const w of group.waiters) w.reject(error)
        },
      )
    }
    gathering = false
    // nothing gathered when the client refused every command (not connected)
    if (parts.length > 0) {
      // commands' text joined into one string (the usual batch: EVALSHAs and MGETs): a Buffer
      // made of each and then concatenated cost more
      client.stream.write(
        parts.length === 1
          ? parts[0]!
          : parts.every((p) => typeof p === 'string')
            ? parts.join('')
            : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))),
      )
    }
    if (barriers === undefined) return
    const unbarriered = this.#unbarriered
    if (unbarriered !== undefined) {
      unbarriered.push(...barriers)
    } else {
      this.#unbarriered = barriers
      if (endOfTurn) this.#sendBarriers()
      else setImmediate(this.#sendBarriers)
    }
  }

  /**
   * Near-cached reads sent this turn whose barriers are not sent yet: a batch sent before the
   * turn's end (MAX_JOINED_READS) leaves its barriers to the turn's end (#sendBarriers), where
   * one PING per cache serves every plan made in the turn.
   */
  #unbarriered: CachedMget[] | undefined

  /**
   * Sends the barriers of the reads sent this turn (#unbarriered), one per cache for them all,
   * after the batch begun since (sent now: its own setImmediate comes later in this check phase)
   * so that its plans share it too. A PING sent after every plan it covers is all a barrier
   * needs (NearCache.barrier); sent per batch, it was a write on the subscriber's socket (a
   * wake-up of Redis) for every 4 reads under load.
   */
  readonly #sendBarriers = (): void => {
    const pending = this.#pending
    if (pending !== undefined) {
      this.#pending = undefined
      this.#send(pending, false)
    }
    const waits = this.#unbarriered
    this.#unbarriered = undefined
    if (waits === undefined) return
    let sent: Map<NearCache, Promise<unknown>> | undefined
    const barrierOf = (cache: NearCache): Promise<unknown> => {
      let barrier = (sent ??= new Map()).get(cache)
      if (barrier === undefined) sent.set(cache, (barrier = cache.barrier()))
      return barrier
    }
    for (const wait of waits) wait.sendBarriers(barrierOf)
  }

  /**
   * A joined MGET of waiters some of which read through a near cache (NearCache): each such
   * waiter's ids held there are not sent; the MGET (when anything is left to read) goes in this
   * write, and one barrier per cache (a PING on its subscriber) beside it. A waiter that took
   * anything from its cache is answered once both replied; its ids dropped from the cache
   * meanwhile (or all of them, when the barrier failed) are read again by a plain MGET. The
   * group waits as one (CachedMget): a callback for the reply and one per barrier, not a
   * promise per waiter and a Promise.all of its part and its barrier. The barriers are sent
   * after the write, at the turn's end (#sendBarriers).
   */
  #sendCachedMget(client: Redis, out: BatchWrite, group: MgetGroup): CachedMget {
    const waiters = group.waiters
    const n = waiters.length
    const plans = new Array<NearPlan | undefined>(n)
    const parts = new Array<MgetKeys>(n)
    const counts = new Array<number>(n)
    const caches: NearCache[] = []
    let size = 0
    for (let i = 0; i < n; i++) {
      const w = waiters[i]!
      const cache = w.cache
      if (cache === undefined || !cache.usable) {
        plans[i] = undefined
        parts[i] = w.buckets === undefined ? w : { keys: w.keys, heads: keyHeadsOf(w, w.keys) }
        counts[i] = w.keys.length
        size += w.keys.length
        continue
      }
      const plan = cache.plan(w.keys, w.bucketHeads ?? [], w.buckets!, w.now, w.foldDone)
      plans[i] = plan
      parts[i] = plan
      counts[i] = plan.keys.length
      size += plan.keys.length
      if (plan.hits > 0 && !caches.includes(cache)) caches.push(cache)
    }
    const wait = new CachedMget(waiters, plans, counts, caches, this.#finishCached)
    if (size === 0) {
      wait.replied([])
      return wait
    }
    const command = new MgetCommand(parts)
    command.setTimeout(this.deadlineFor(size))
    sendTo(client, command, out)
    ;(command.promise as unknown as Promise<(Buffer | null)[]>).then(
      (values) => wait.replied(values),
      (error: unknown) => wait.failed(error),
    )
    return wait
  }

  /** A cached waiter's answer (see #sendCachedMget), its lost hits read again first. */
  readonly #finishCached: FinishCached = (w, cache, plan, values, trusted) => {
    const { read, lost } = cache.finish(plan, values, trusted)
    if (lost === undefined) return w.resolve(read)
    const ids = lost.map((i) => w.keys[i]!)
    this.#joinedMget(false, ids, keyHeadsOf(w, ids)).then((again) => {
      readInto(read, w.keys, lost, again, w.now, w.foldDone)
      w.resolve(read)
    }, w.reject)
  }

  /** Runs Redis commands, turning "Redis is not there" into STORE_UNAVAILABLE. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await work()
      this.#answered()
      return result
    } catch (error) {
      throw this.#failed(error)
    }
  }

  /**
   * run() of commands already sent (`sent`), `then` made of their reply: the same answer and
   * errors in one step, where `run(async () => then(await sent))` took two more microtask
   * turns (the async function's and run's own await) for a rate-limit hit and a read, each
   * waited for by every request. `a` and `b` are handed to `then`, so a caller can pass a
   * function made once instead of a closure per call.
   */
  runThen<T, R, A, B>(
    sent: Promise<T>,
    then: (value: T, a: A, b: B) => R | PromiseLike<R>,
    a: A,
    b: B,
  ): Promise<R> {
    return sent.then(
      (value) => {
        this.#answered()
        return then(value, a, b)
      },
      (error: unknown) => {
        throw this.#failed(error)
      },
    )
  }

  /** A Redis that hung (commands timed out on a connection that stayed up) answers again. */
  #answered(): void {
    if (this.outages.unreachable && this.client.status === 'ready') this.outages.back()
  }

  /** What run() throws for `error` (said to `outages` when it is Redis's absence). */
  #failed(error: unknown): unknown {
    const mapped = toStoreError(error)
    if (mapped !== error) this.#report(error)
    if (this.isCluster && mapped !== error) this.#refreshSlots()
    return mapped
  }

  /**
   * Gives `outages` the reason of a failure that becomes STORE_UNAVAILABLE: Redis's refusal (OOM,
   * MISCONF...) or a command that timed out on a connection that looks up. A connection that is
   * down is said by the client's own 'error' events (with the address it could not reach).
   */
  #report(error: unknown): void {
    if (!(error instanceof Error) || this.#closed) return
    if (error.name === 'ReplyError') {
      const previous = (error as { previousErrors?: unknown }).previousErrors
      const first = Array.isArray(previous) ? previous[0] : undefined
      this.outages.refused(first instanceof Error ? first.message : error.message)
    } else if (this.client.status === 'ready' && /timed out/i.test(error.message)) {
      this.outages.lost(error.message)
    }
  }

  /**
   * After a failover, ioredis follows MOVED for a lone command but not inside an auto-pipelined
   * batch of mixed commands: the batch fails and the slot map stays stale. Refreshing it here
   * lets the next request reach the new master. The failed request is not retried, since part
   * of it may have been applied; the caller retries (a 503 says so).
   */
  #refreshSlots(): void {
    if (this.#refreshing) return
    this.#refreshing = true
    ;(this.client as Cluster).refreshSlotsCache(() => {
      this.#refreshing = false
    })
  }
}

/** How long a cluster check of ready() is reused (see RedisConnection.clusterServes). */
const READY_REUSE_MS = 1000

/** Whether a node's `CLUSTER INFO` says the cluster serves every slot. */
function servesEverySlot(info: string): boolean {
  return (
    /^cluster_state:ok\r?$/m.test(info) &&
    /^cluster_slots_ok:(\d+)\r?$/m.exec(info)?.[1] === String(CLUSTER_SLOTS)
  )
}

/** The command a reply error answers (ioredis sets it on each). */
function commandOf(error: Error): { name?: unknown; args?: unknown } | undefined {
  return (error as { command?: { name?: unknown; args?: unknown } }).command
}

/** Whether a reply error refuses the SELECT of the URL's database (see #create). */
function selectRefused(error: Error): boolean {
  return commandOf(error)?.name === 'select'
}

/** What a connection error says (`connect ECONNREFUSED 127.0.0.1:6390`), never a stack. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  if (selectRefused(error)) {
    const args = commandOf(error)?.args
    const db = Array.isArray(args) ? String(args[0]) : '?'
    return `SELECT ${db} (the database of the Redis URL) refused: ${error.message}`
  }
  const last = (error as { lastNodeError?: unknown }).lastNodeError
  // a cluster that cannot refresh its slots says why its last node failed
  return last instanceof Error ? `${error.message}: ${last.message}` : error.message
}

/**
 * Connection failures, timeouts and cluster outages become STORE_UNAVAILABLE (503 in every
 * protocol); a reply error that is not transient is a bug and stays what it is, and so does a
 * catalogued failure met in the work (a refusal or bad input found there is the caller's, not
 * the store's: it keeps its own code and status).
 */
export function toStoreError(error: unknown): unknown {
  if (error instanceof PresenceError) return error
  if (error instanceof Error && error.name === 'ReplyError') {
    if (!isTransientReply(error)) return error
    return errors.storeUnavailable(replyIs(error, WRITE_REFUSAL))
  }
  return errors.storeUnavailable()
}

/**
 * GETs of `keys` on a cluster, each sent on its own (not auto-pipelined), so that each is
 * followed where its key is: served by the source of a slot being moved, or sent to the target
 * with ASKING (see RedisConnection.#clusterMget).
 */
function readEach<T>(
  client: RedisClient,
  keys: readonly string[],
  encoding: 'utf8' | null,
): Promise<(T | null)[]> {
  return Promise.all(
    keys.map(
      (key) =>
        client.sendCommand(
          new Command('get', [key], { replyEncoding: encoding }),
        ) as Promise<T | null>,
    ),
  )
}

/** A multi-key command over keys of a slot being migrated, some moved and some not. */
const TRY_AGAIN = /^TRYAGAIN\b/

/** A command whose keys all left a slot being migrated: to be sent to its target with ASKING. */
const ASK = /^ASK\b/

/** A refusal of a key's slot being moved (ASK) or moved (MOVED): see RedisConnection.read. */
const SLOT_MOVING = /^(ASK|MOVED)\b/

/** A Redis full (OOM) or unable to persist (MISCONF): it refuses writes and still serves reads. */
const WRITE_REFUSAL = /^(OOM|MISCONF)\b/
