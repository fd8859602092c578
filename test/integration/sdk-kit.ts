/**
 * What the SDK's real-time tests share: a real server per test, ids, a `ws` constructor that
 * records its sockets (to cut one) and holds a later socket's frames (to order a resume after a
 * change), a subscription through a TCP proxy (to cut or freeze its connections), and a bounded
 * wait for a promise.
 */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import {
  createClient,
  PresencedError,
  type SubscribeOptions,
  type WebSocketLike,
} from '@presenced/client'
import WebSocket from 'ws'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

export const PLAYER = '9007199254740993'
export const WATCHER = '500'

/** The `ws` constructor, remembering every socket so a test can cut one. */
export function recordingWebSocket() {
  const sockets: WebSocket[] = []
  const gate: { hold: Promise<unknown> | undefined } = { hold: undefined }
  class Recording extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args)
      if (sockets.length > 0) {
        // a later socket's frames wait for `hold`: a test decides what happens before a resume
        const send = this.send.bind(this) as (...a: unknown[]) => void
        Object.defineProperty(this, 'send', {
          value: (...a: unknown[]) => {
            if (gate.hold === undefined) send(...a)
            else void gate.hold.then(() => send(...a))
          },
        })
      }
      sockets.push(this)
    }
  }
  return { sockets, gate, WebSocket: Recording as unknown as WebSocketLike }
}

/** A client whose WebSocket constructor records every socket (recordingWebSocket). */
export function recordingClient(baseUrl: string, token: string) {
  const recording = recordingWebSocket()
  return { recording, client: createClient({ baseUrl, token, WebSocket: recording.WebSocket }) }
}

export async function setup(t: TestContext, config = {}) {
  const server = await startApp(t, { listen: true, config: { flapGraceMs: 0, ...config } })
  const player = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(PLAYER as never),
  })
  const watcherToken = await server.tokens.issue(WATCHER as never)
  return { server, player, watcherToken }
}

/**
 * A subscription to `ids` with `token`, through a TCP proxy in front of `server` (`proxy.cut()`,
 * `proxy.freeze()`), reconnecting within 50–200 ms unless `options` say otherwise; closed when
 * the test ends.
 */
export async function proxiedSubscription(
  t: TestContext,
  server: StartedApp,
  token: string,
  ids: Iterable<string | number>,
  options: SubscribeOptions = {},
) {
  const proxy = await startTcpProxy(t, Number(new URL(server.url).port))
  const client = createClient({
    baseUrl: `http://127.0.0.1:${proxy.port}`,
    token,
    WebSocket: WebSocket as unknown as WebSocketLike,
  })
  const sub = client.subscribe(ids, { reconnect: { minDelayMs: 50, maxDelayMs: 200 }, ...options })
  t.after(() => sub.close())
  return { proxy, sub }
}

/** A client of WATCHER's on a server whose request budget is `max` per minute, not renewed. */
export async function budgeted(
  t: TestContext,
  max: number,
  WebSocketCtor: WebSocketLike = WebSocket as unknown as WebSocketLike,
) {
  // a clock at the start of its rate-limit window: the budget does not renew during the test
  const windowMs = 60_000
  const clock = new ManualClock(Math.floor(Date.now() / windowMs) * windowMs)
  const server = await startApp(t, {
    listen: true,
    clock,
    config: { flapGraceMs: 0, rateLimitMax: max, rateLimitWindowSeconds: windowMs / 1000 },
  })
  return createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(WATCHER as never),
    WebSocket: WebSocketCtor,
  })
}

/**
 * `promise`'s value, or `label` if it has not settled after `ms`. The timer is cleared once it
 * settles: one left armed keeps the test file's process alive for `ms` after its last test.
 */
export async function orAfter<T, L>(promise: Promise<T>, ms: number, label: L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<L>((resolve) => (timer = setTimeout(() => resolve(label), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** `promise`'s outcome, or 'still pending' after `ms`. */
export function settledWithin(promise: Promise<unknown>, ms = 5000): Promise<unknown> {
  return orAfter(
    promise.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    ms,
    'still pending',
  )
}

/**
 * A reconnect after a RATE_LIMITED refusal whose wait is past reconnect.maxDelayMs (0.2 s): no
 * sooner than the server asks, and the error says so.
 */
export function assertServerWait({ delayMs, error }: { delayMs: number; error: unknown }): void {
  assert.ok(error instanceof PresencedError)
  assert.equal(error.code, 'RATE_LIMITED')
  assert.ok(
    error.retryAfterMs !== undefined && error.retryAfterMs > 200,
    String(error.retryAfterMs),
  )
  assert.ok(
    delayMs >= error.retryAfterMs,
    `waits ${delayMs} ms, the server asks ${error.retryAfterMs}`,
  )
  assert.match(
    error.message,
    /\(reconnecting in \d+(\.\d+)? s as the server asks, more than reconnect\.maxDelayMs, 0\.2 s\)$/,
  )
}

/**
 * `ws` as a browser's WebSocket: the four handlers, send, close and readyState, and nothing of
 * the upgrade (no `on`, so no 'upgrade' event and no headers), and no headers sent either.
 */
export class BrowserLikeWebSocket {
  /** Connections opened, all tests together (a test reads the difference). */
  static opened = 0
  readonly #socket: WebSocket
  onopen: ((event: never) => void) | null = null
  onmessage: ((event: never) => void) | null = null
  onclose: ((event: never) => void) | null = null
  onerror: ((event: never) => void) | null = null
  constructor(url: string) {
    BrowserLikeWebSocket.opened++
    const socket = (this.#socket = new WebSocket(url))
    socket.onopen = (event) => this.onopen?.(event as never)
    socket.onmessage = (event) => this.onmessage?.(event as never)
    socket.onclose = (event) => this.onclose?.(event as never)
    socket.onerror = (event) => this.onerror?.(event as never)
  }
  get readyState(): number {
    return this.#socket.readyState
  }
  send(data: string): void {
    this.#socket.send(data)
  }
  close(code?: number, reason?: string): void {
    this.#socket.close(code, reason)
  }
}
