import { startHeartbeat, type HeartbeatHandle } from './heartbeat.js'
import {
  Transport,
  checkNumber,
  redactUrls,
  type FetchLike,
  type RetryOptions,
  type Sleep,
} from './http.js'
import { stringifyJson, toIdString, toIdStrings, type HasId, type Id, type Ids } from './ids.js'
import type { TokenProvider } from './token.js'
import { mapConcurrent } from './pool.js'
import { PresenceType, genericLocation, presenceFromWire, type Presence } from './presence.js'
import { subscribe, type Subscription } from './subscription.js'
import type { SubscribeOptions, WebSocketLike } from './watch.js'
import type { RobloxUserPresence, RobloxUserPresencesResponse } from './wire.js'
import { XboxClient, heartbeatAfterMs } from './xbox.js'

export interface ClientOptions {
  /** Where presenced listens, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string
  /**
   * An access token (`presenced token --user 123`), sent as `Authorization: Bearer`; or a
   * provider of one, for tokens that expire: asked before each request and connection (return
   * your cached token while it is valid), and with `{ forceRefresh: true }` when the server
   * refused the one it gave. A call answered 401 is then sent once more with the new token; a
   * subscription ended `token expired` reconnects with it and resumes (`token revoked` ends it).
   *
   * @example
   * createClient({ baseUrl, token: ({ forceRefresh }) => session.accessToken(forceRefresh) })
   */
  token?: string | TokenProvider
  /** A `.ROBLOSECURITY` value (or a whole Cookie header); x-csrf-token is handled for you. */
  cookie?: string
  /** Defaults to the global fetch. */
  fetch?: FetchLike
  /** How many requests one call (a large batch) keeps in flight. @default 4 */
  maxConcurrency?: number
  /**
   * Retries: a 429 for any call; 502/503/504 and a refused or reset connection for idempotent
   * calls (all of this client's); backoff from 1 s, doubled, capped, jittered, never sooner than
   * Retry-After. `false` disables retrying.
   */
  retry?: RetryOptions | false
  /**
   * How long one attempt of a call may take, its answer read whole; an attempt past it is
   * abandoned and, as a broken connection is, tried again (all of this client's calls are
   * idempotent) unless `retry.connectionErrors` is false, else the call fails with a
   * PresencedError of status 0. A `signal` bounds the whole call instead. `false`: no limit
   * (undici's own 300 s ones still apply). Real-time streams are not bounded by it (see
   * `idleTimeoutMs`). @default 30000
   */
  timeoutMs?: number | false
  /**
   * A WebSocket constructor for `subscribe` (browsers and Node 22+ have a global one; in Node 20
   * pass `ws`'s). Without either, subscriptions use Server-Sent Events over fetch.
   */
  WebSocket?: WebSocketLike
  /** Accept-Language for Xbox rich presence strings. */
  locale?: string
  /** Replaces the timer used for backoff waits (tests make it instant). */
  sleep?: Sleep
  /** Replaces Math.random as the source of backoff jitter (tests make it fixed). */
  random?: () => number
}

export interface AppPresenceInput {
  /** Free text shown as lastLocation; `Studio` means the user is in the studio. */
  location?: string
  /** The place the user is in: the user shows InGame. */
  placeId?: Id | null
  /** The game server instance (uuid), a presenced extension. */
  gameId?: string
  /** Device platform; otherwise the server derives it from the User-Agent. */
  platform?: string
  /** Ends this device's session at once. */
  disconnect?: boolean
}

/** Per-call options. */
export interface CallOptions {
  /**
   * Aborting cancels the call: requests in flight and any backoff wait before a retry; the call
   * rejects with the signal's reason. `AbortSignal.timeout(ms)` makes a deadline.
   */
  signal?: AbortSignal
}

export interface AppPresenceResult {
  /** When the server wants the next heartbeat, in milliseconds. */
  heartbeatAfterMs: number | undefined
}

export interface KeepAliveOptions extends Omit<AppPresenceInput, 'disconnect'> {
  /**
   * Called when a beat fails; the loop keeps going, except on a failure retrying cannot fix (a
   * refused credential or request: a 4xx but 408 and 429), which ends it (`ended` rejects).
   */
  onError?: (error: unknown) => void
  /** Aborting stops the heartbeat like stop(). */
  signal?: AbortSignal
}

/** The most user ids one `POST /v1/presence/users` accepts. */
export const ROBLOX_BATCH_LIMIT = 50

/** The interval when the server does not say (its default session TTL is 60 s). */
const DEFAULT_KEEPALIVE_MS = 30_000

/** Header names a server may use to ask for the next heartbeat, in seconds. */
const HEARTBEAT_HEADERS = ['x-presence-heartbeat-after', 'x-heartbeat-after']

/**
 * A client for presenced (and any server speaking the Roblox presence v1 / Xbox Live presence
 * APIs). Create it once and share it.
 *
 * @example
 * const client = createClient({ baseUrl: 'http://127.0.0.1:8080', token })
 * const [me] = await client.getUserPresences([123])
 * if (me.type === PresenceType.InGame) console.log('playing', me.place?.id)
 */
export class PresencedClient {
  readonly xbox: XboxClient
  readonly #transport: Transport
  readonly #concurrency: number
  readonly #WebSocket: WebSocketLike | undefined

  constructor(options: ClientOptions) {
    if (typeof options?.baseUrl !== 'string' || !/^https?:\/\//i.test(options.baseUrl)) {
      throw new TypeError(
        `baseUrl must be an http(s) URL, got ${typeof options?.baseUrl === 'string' ? JSON.stringify(redactUrls(options.baseUrl)) : String(options?.baseUrl)}`,
      )
    }
    // NaN made no worker run: every lookup answered Offline without a request
    checkNumber('maxConcurrency', options.maxConcurrency)
    this.#transport = new Transport(options)
    this.#concurrency = Math.max(1, options.maxConcurrency ?? 4)
    this.#WebSocket = options.WebSocket
    this.xbox = new XboxClient(this.#transport, this.#concurrency, options.locale)
  }

  get baseUrl(): string {
    return this.#transport.baseUrl
  }

  /**
   * The presence of each user, in the order given (duplicates answered alike). Accepts ids or
   * objects with an `id`; splits into batches of 50 run with bounded concurrency.
   */
  async getUserPresences(users: Ids, options: CallOptions = {}): Promise<Presence[]> {
    options.signal?.throwIfAborted()
    const ids = toIdStrings(users)
    const distinct = [...new Set(ids)]
    const batches: string[][] = []
    for (let i = 0; i < distinct.length; i += ROBLOX_BATCH_LIMIT) {
      batches.push(distinct.slice(i, i + ROBLOX_BATCH_LIMIT))
    }
    const byId = new Map<string, Presence>()
    // the first batch to fail stops the others (requests and backoff waits): see mapConcurrent
    const run = async (batch: string[], _index: number, signal: AbortSignal) => {
      const { body } = await this.#transport.request<RobloxUserPresencesResponse>(
        '/v1/presence/users',
        {
          method: 'POST',
          body: stringifyJson({ userIds: batch.map((id) => BigInt(id)) }),
          protocol: 'roblox',
          signal,
          // a POST that only reads
          idempotent: true,
        },
      )
      const records: unknown[] = Array.isArray(body?.userPresences) ? body.userPresences : []
      for (const record of records) {
        const presence = presenceFromWire(record as RobloxUserPresence)
        byId.set(presence.userId, presence)
      }
    }
    await mapConcurrent(batches, this.#concurrency, run, options.signal)
    return ids.map((id) => byId.get(id) ?? offline(id))
  }

  /** One user's presence. */
  async getUserPresence(user: Id | HasId, options: CallOptions = {}): Promise<Presence> {
    const [presence] = await this.getUserPresences([user], options)
    return presence as Presence
  }

  /** One heartbeat of the caller's app presence (needs a token or cookie). */
  async registerAppPresence(
    input: AppPresenceInput = {},
    options: CallOptions = {},
  ): Promise<AppPresenceResult> {
    const body: Record<string, unknown> = {
      location: input.location ?? '',
      placeId:
        input.placeId === undefined || input.placeId === null
          ? null
          : BigInt(toIdString(input.placeId, 'place id')),
      disconnect: input.disconnect ?? false,
    }
    if (input.gameId !== undefined) body.gameId = input.gameId
    if (input.platform !== undefined) body.platform = input.platform
    const response = await this.#transport.request('/v1/presence/register-app-presence', {
      method: 'POST',
      body: stringifyJson(body),
      protocol: 'roblox',
      signal: options.signal,
      // a heartbeat sets the same state each time: a repeat is harmless
      idempotent: true,
    })
    let heartbeat: number | undefined
    for (const name of HEARTBEAT_HEADERS) heartbeat ??= heartbeatAfterMs(response.headers, name)
    return { heartbeatAfterMs: heartbeat }
  }

  /**
   * Keeps the caller online: registers now, then again at the interval the server asks for.
   * `stop()` sends `disconnect: true`, so watchers see the user leave at once. An invalid
   * `placeId` throws InvalidIdError here, before anything is sent.
   *
   * @example
   * const alive = client.keepAlive({ placeId: 1818, location: 'Crossroads' })
   * await alive.ready
   * process.on('SIGINT', () => alive.stop().then(() => process.exit(0)))
   */
  keepAlive(options: KeepAliveOptions = {}): HeartbeatHandle {
    const { onError, signal, ...presence } = options
    // every beat, and stop()'s disconnect, would be refused the same way: refuse it once, now
    if (presence.placeId !== undefined && presence.placeId !== null) {
      toIdString(presence.placeId, 'place id')
    }
    return startHeartbeat({
      beat: async () => (await this.registerAppPresence(presence)).heartbeatAfterMs,
      end: async () => {
        await this.registerAppPresence({ ...presence, disconnect: true })
      },
      fallbackIntervalMs: DEFAULT_KEEPALIVE_MS,
      onError,
      signal,
    })
  }

  /**
   * Live presence of users: a snapshot, then every change. Iterate it or listen to events.
   * More users than one stream may watch (the server's `maxIds`, 1000) are spread over as many
   * streams as that takes, behind this one subscription.
   *
   * @example
   * const sub = client.subscribe([1, 2, 3])
   * for await (const event of sub) console.log(event.type, event.presence.userId)
   */
  subscribe(users: Ids, options: SubscribeOptions = {}): Subscription {
    return subscribe(this.#transport, toIdStrings(users), {
      WebSocket: this.#WebSocket,
      ...options,
    })
  }
}

/** Creates a client. See ClientOptions. */
export function createClient(options: ClientOptions): PresencedClient {
  return new PresencedClient(options)
}

function offline(userId: string): Presence {
  return {
    userId,
    type: PresenceType.Offline,
    // what presenced's own record of an offline user says
    lastLocation: genericLocation(PresenceType.Offline),
    place: null,
    rootPlace: null,
    universe: null,
    job: null,
    lastOnline: new Date(0),
  }
}
