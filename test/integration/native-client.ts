import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'

/** A frame as the test sees it. */
export type Frame = Record<string, unknown> & { type: string; seq?: number }

/**
 * A WebSocket client for the native API tests: keeps every frame, and lets a test take them in
 * order or wait for one, failing after a timeout instead of hanging.
 */
export class NativeClient {
  readonly socket: WebSocket
  readonly frames: Frame[] = []
  /** When each frame arrived (`performance.now()`), by index into `frames`. */
  readonly arrivals: number[] = []
  #cursor = 0
  #wake: (() => void) | undefined
  readonly closed: Promise<{ code: number; reason: string }>

  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      this.arrivals.push(performance.now())
      this.#wake?.()
    })
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        this.#wake?.()
      })
    })
  }

  /** Opens a connection to `${baseUrl}/api/v1/realtime` with the token as Bearer header. */
  static connect(baseUrl: string, token: string): Promise<NativeClient> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/realtime`, {
      headers: { authorization: `Bearer ${token}` },
    })
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new NativeClient(socket)))
      socket.once('error', reject)
    })
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The next frame not yet taken. */
  async take(timeoutMs = 3000): Promise<Frame> {
    return this.waitFor(() => true, timeoutMs)
  }

  /** Takes frames until one matches; the skipped ones are consumed too. */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.#cursor < this.frames.length) {
        const frame = this.frames[this.#cursor++]!
        if (match(frame)) return frame
      }
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(
          `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`,
        )
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  /** Frames received and not yet taken. */
  pending(): Frame[] {
    return this.frames.slice(this.#cursor)
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close(1000)
    return this.closed
  }
}

/** Tries to open a WebSocket and returns the HTTP status and body it was refused with. */
export function refusedUpgrade(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { headers })
    socket.on('open', () => {
      socket.close()
      reject(new Error('the upgrade was accepted'))
    })
    socket.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    socket.on('error', () => {})
  })
}

/** A heartbeat frame showing `location`. */
export function heartbeatFrame(location: string) {
  return { type: 'heartbeat', deviceType: 'Web', activity: { kind: 'online', location } }
}

export const isRateLimited = (frame: Frame) =>
  frame.type === 'error' && frame.code === 'RATE_LIMITED'

/**
 * Sends heartbeat frames, one every 20 ms, until one is refused with RATE_LIMITED; fails after
 * `most` frames.
 */
export async function heartbeatUntilRefused(client: NativeClient, most: number): Promise<Frame> {
  for (let i = 0; ; i++) {
    const refusal = client.frames.find(isRateLimited)
    if (refusal) return refusal
    if (i >= most) throw new Error(`${most} heartbeat frames, none refused`)
    client.send(heartbeatFrame(`ws ${i}`))
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
