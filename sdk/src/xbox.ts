import type { CallOptions } from './client.js'
import { InvalidIdError } from './errors.js'
import { startHeartbeat, type HeartbeatHandle } from './heartbeat.js'
import { isObject, subjectOf, type Transport } from './http.js'
import { listOf, toIdString, toIdStrings } from './ids.js'
import { mapConcurrent } from './pool.js'
import { dateOf } from './presence.js'
import type { XboxDeviceType, XboxLevel, XboxTitleRequest } from './wire.js'

export type { XboxDeviceType, XboxLevel } from './wire.js'

/** The most XUIDs one `POST /users/batch` accepts. */
export const XBOX_BATCH_LIMIT = 1100

export interface XboxTitle {
  readonly id: string
  readonly name: string
  readonly lastModified: Date
  readonly placement: string | undefined
  readonly state: string | undefined
  /** The rendered rich presence string (level `all` only). */
  readonly richPresence: string | undefined
}

export interface XboxDevice {
  /** Xbox device type name (XboxOne, Scarlett, PC, iOS, Android, Web, ...), kept as given. */
  readonly type: XboxDeviceType
  readonly titles: readonly XboxTitle[]
}

export interface XboxPresence {
  readonly xuid: string
  readonly state: 'Online' | 'Away' | 'Offline'
  readonly devices: readonly XboxDevice[]
  /** Where the user was last seen; only when no device is online. */
  readonly lastSeen: {
    readonly deviceType: XboxDeviceType
    readonly titleId: string
    readonly titleName: string
    readonly timestamp: Date
  } | null
}

export interface XboxBatchQuery {
  /** XUIDs (or objects with an `id`): an array, a Set, any iterable object of them. */
  users: Iterable<Xuid | { id: Xuid }> & object
  level?: XboxLevel
  deviceTypes?: Iterable<XboxDeviceType> & object
  titles?: Iterable<string | number> & object
  onlineOnly?: boolean
  /** Aborting cancels the call (requests in flight and backoff waits). */
  signal?: AbortSignal
}

export interface TitlePresenceOptions {
  /** The title id; required unless the token names the title. */
  titleId?: string | number
  state?: 'active' | 'inactive'
  placement?: 'full' | 'fill' | 'snapped' | 'background'
  richPresence?: { id: string; scid: string; params?: string[] }
  /** Whose presence to write; default: the token's own user. */
  xuid?: string | number | bigint
  /** The device the title runs on (sent as x-xbl-device-type); the server has a default. */
  deviceType?: XboxDeviceType
  /** Called when a heartbeat fails (it is retried). */
  onError?: (error: unknown) => void
  signal?: AbortSignal
}

/** An XUID as the calls take it. */
type Xuid = string | number | bigint

/** The title presence heartbeat's default when the server sends no X-Heartbeat-After. */
const DEFAULT_HEARTBEAT_MS = 300_000

/**
 * The Xbox Live presence API of presenced: XBL3.0 authentication, contract version 3.
 *
 * @example
 * const me = await client.xbox.me('all')
 * const handle = client.xbox.setTitlePresence({ titleId: 1717113201, richPresence: {...} })
 * await handle.stop() // removes the title presence
 */
export class XboxClient {
  readonly #transport: Transport
  readonly #concurrency: number
  readonly #locale: string | undefined
  #me: string | undefined

  constructor(transport: Transport, concurrency: number, locale?: string) {
    this.#transport = transport
    this.#concurrency = concurrency
    this.#locale = locale
  }

  /**
   * Presence of many users, in the order given (duplicates answered alike); above 1100 distinct
   * XUIDs the call is split. With `onlineOnly`, users the server leaves out are left out.
   */
  async batch(query: XboxBatchQuery): Promise<XboxPresence[]> {
    const users = toIdStrings(query.users, 'XUID')
    const deviceTypes =
      query.deviceTypes === undefined ? undefined : listOf(query.deviceTypes, 'deviceTypes')
    const titles =
      query.titles === undefined ? undefined : listOf(query.titles, 'titles').map(String)
    // The server answers each XUID once, so duplicates are asked once and matched by xuid.
    const distinct = [...new Set(users)]
    const chunks: string[][] = []
    for (let i = 0; i < distinct.length; i += XBOX_BATCH_LIMIT) {
      chunks.push(distinct.slice(i, i + XBOX_BATCH_LIMIT))
    }
    if (chunks.length === 0) return []
    // the first chunk to fail stops the others (requests and backoff waits): see mapConcurrent
    const run = async (chunk: string[], _index: number, signal: AbortSignal) => {
      const body: Record<string, unknown> = { users: chunk }
      if (query.level !== undefined) body.level = query.level
      if (deviceTypes !== undefined) body.deviceTypes = deviceTypes
      if (titles !== undefined) body.titles = titles
      if (query.onlineOnly !== undefined) body.onlineOnly = query.onlineOnly
      // a POST that only reads
      const response = await this.#request('POST', '/users/batch', JSON.stringify(body), {
        signal,
        idempotent: true,
      })
      return Array.isArray(response) ? response.map(xboxPresenceOf) : []
    }
    const results = await mapConcurrent(chunks, this.#concurrency, run, query.signal)
    const byXuid = new Map(results.flat().map((record) => [record.xuid, record]))
    return users.flatMap((xuid) => {
      const record = byXuid.get(xuid)
      return record === undefined ? [] : [record]
    })
  }

  /** One user's presence at a level (default `title`). */
  async user(
    xuid: string | number | bigint,
    level?: XboxLevel,
    options: { signal?: AbortSignal } = {},
  ): Promise<XboxPresence> {
    const id = toIdString(xuid, 'XUID')
    const path = `/users/xuid(${id})${levelQuery(level)}`
    return xboxPresenceOf(await this.#request('GET', path, undefined, options))
  }

  /** The caller's own presence. */
  async me(level?: XboxLevel, options: { signal?: AbortSignal } = {}): Promise<XboxPresence> {
    const path = `/users/me${levelQuery(level)}`
    return xboxPresenceOf(await this.#request('GET', path, undefined, options))
  }

  /** The presence of the caller's friends (the People group), or of another user's. */
  async friends(
    options: { xuid?: string | number | bigint; level?: XboxLevel; signal?: AbortSignal } = {},
  ) {
    const who = options.xuid === undefined ? 'me' : `xuid(${toIdString(options.xuid, 'XUID')})`
    const body = await this.#request(
      'GET',
      `/users/${who}/groups/People${levelQuery(options.level)}`,
      undefined,
      options,
    )
    return Array.isArray(body) ? body.map(xboxPresenceOf) : []
  }

  /**
   * Writes the caller's title presence now and keeps it alive at the X-Heartbeat-After interval
   * the server asks for. `stop()` ends the heartbeat and removes the title presence.
   */
  setTitlePresence(options: TitlePresenceOptions = {}): HeartbeatHandle {
    const request: XboxTitleRequest = { state: options.state ?? 'active' }
    if (options.titleId !== undefined) request.id = String(options.titleId)
    if (options.placement !== undefined) request.placement = options.placement
    if (options.richPresence !== undefined) {
      request.activity = { richPresence: { params: [], ...options.richPresence } }
    }
    const body = JSON.stringify(request)
    return startHeartbeat({
      beat: async () => {
        const path = await this.#titlePath(options.xuid, options.signal)
        const response = await this.#transport.request(path, {
          method: 'POST',
          body,
          protocol: 'xbox',
          auth: 'xbl',
          headers: this.#headers(options.deviceType),
          signal: options.signal,
          // a heartbeat writes the same title presence each time: a repeat is harmless
          idempotent: true,
        })
        return heartbeatAfterMs(response.headers)
      },
      end: () =>
        this.clearTitlePresence({
          xuid: options.xuid,
          titleId: options.titleId,
          deviceType: options.deviceType,
        }),
      fallbackIntervalMs: DEFAULT_HEARTBEAT_MS,
      onError: options.onError,
      signal: options.signal,
    })
  }

  /**
   * Removes the caller's title presence at once.
   *
   * @example
   * await client.xbox.clearTitlePresence({ titleId: 1717113201, signal: AbortSignal.timeout(5000) })
   */
  async clearTitlePresence(
    options: {
      xuid?: string | number | bigint
      titleId?: string | number | undefined
      deviceType?: string | undefined
    } & CallOptions = {},
  ): Promise<void> {
    const path = await this.#titlePath(options.xuid, options.signal)
    // encoded, so that the server judges the id as given: '6#7' was cut at the '#' (a URL's
    // fragment) and ended title 6
    const query =
      options.titleId === undefined ? '' : `?titleId=${encodeURIComponent(String(options.titleId))}`
    await this.#request('DELETE', path + query, undefined, {
      deviceType: options.deviceType,
      signal: options.signal,
    })
  }

  /**
   * Appear offline (`true`, Cloaked) or visible again (`false`, Active); for the caller, or for
   * `xuid`.
   *
   * @example
   * await client.xbox.cloak(true, { signal: AbortSignal.timeout(5000) })
   * await client.xbox.cloak(false, '2533274790395904', { signal })
   */
  async cloak(cloaked: boolean, options?: CallOptions & { xuid?: Xuid }): Promise<void>
  async cloak(cloaked: boolean, xuid: Xuid | undefined, options?: CallOptions): Promise<void>
  async cloak(
    cloaked: boolean,
    xuidOrOptions?: Xuid | (CallOptions & { xuid?: Xuid }),
    options: CallOptions = {},
  ): Promise<void> {
    const named = typeof xuidOrOptions === 'object' ? xuidOrOptions : { xuid: xuidOrOptions }
    const signal = options.signal ?? (typeof xuidOrOptions === 'object' ? named.signal : undefined)
    const id = await this.#xuidOf(named.xuid, signal)
    const body = JSON.stringify({ state: cloaked ? 'Cloaked' : 'Active' })
    await this.#request('PUT', `/users/xuid(${id})/state`, body, { signal })
  }

  async #titlePath(xuid: Xuid | undefined, signal: AbortSignal | undefined): Promise<string> {
    return `/users/xuid(${await this.#xuidOf(xuid, signal)})/devices/current/titles/current`
  }

  /** The XUID to write for: the given one, else the token's subject, else asked of /users/me. */
  async #xuidOf(xuid: Xuid | undefined, signal: AbortSignal | undefined): Promise<string> {
    if (xuid !== undefined) return toIdString(xuid, 'XUID')
    if (this.#me !== undefined) return this.#me
    const token = await this.#transport.currentToken()
    const fromToken = token && subjectOf(token)
    this.#me = fromToken || (await this.me('user', { signal })).xuid
    if (!this.#me) throw new InvalidIdError(this.#me, 'XUID')
    return this.#me
  }

  #headers(deviceType?: string): Record<string, string> {
    const headers: Record<string, string> = { 'x-xbl-contract-version': '3' }
    if (deviceType !== undefined) headers['x-xbl-device-type'] = deviceType
    if (this.#locale !== undefined) headers['accept-language'] = this.#locale
    return headers
  }

  async #request(
    method: string,
    path: string,
    body: string | undefined,
    options: {
      deviceType?: string | undefined
      signal?: AbortSignal | undefined
      idempotent?: boolean
    } = {},
  ): Promise<unknown> {
    options.signal?.throwIfAborted()
    const response = await this.#transport.request(path, {
      method,
      body,
      protocol: 'xbox',
      auth: 'xbl',
      headers: this.#headers(options.deviceType),
      signal: options.signal,
      idempotent: options.idempotent,
    })
    return response.body
  }
}

function levelQuery(level: XboxLevel | undefined): string {
  return level === undefined ? '' : `?level=${level}`
}

/** X-Heartbeat-After (seconds) as milliseconds. */
export function heartbeatAfterMs(headers: Headers, name = 'x-heartbeat-after'): number | undefined {
  const raw = headers.get(name)
  const seconds = raw === null ? NaN : Number(raw)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined
}

export function xboxPresenceOf(value: unknown): XboxPresence {
  const r = isObject(value) ? value : {}
  const state = r.state === 'Online' || r.state === 'Away' ? r.state : 'Offline'
  const devices = Array.isArray(r.devices) ? r.devices.filter(isObject).map(deviceOf) : []
  const seen = isObject(r.lastSeen) ? r.lastSeen : undefined
  return {
    xuid: String(r.xuid ?? ''),
    state,
    devices,
    lastSeen: seen
      ? {
          deviceType: String(seen.deviceType ?? ''),
          titleId: String(seen.titleId ?? ''),
          titleName: String(seen.titleName ?? ''),
          timestamp: dateOf(seen.timestamp),
        }
      : null,
  }
}

function deviceOf(d: Record<string, unknown>): XboxDevice {
  const titles = Array.isArray(d.titles) ? d.titles.filter(isObject) : []
  return {
    type: String(d.type ?? ''),
    titles: titles.map((t) => {
      const activity = isObject(t.activity) ? t.activity : undefined
      return {
        id: String(t.id ?? ''),
        name: String(t.name ?? ''),
        lastModified: dateOf(t.lastModified),
        placement: typeof t.placement === 'string' ? t.placement : undefined,
        state: typeof t.state === 'string' ? t.state : undefined,
        richPresence:
          typeof activity?.richPresence === 'string' ? activity.richPresence : undefined,
      }
    }),
  }
}
