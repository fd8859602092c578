import { performance } from 'node:perf_hooks'

/** An SSE event as the test sees it. */
export interface SseEvent {
  id: string | undefined
  data: Record<string, unknown> & { type: string; seq?: number }
}

/**
 * A Server-Sent Events client for the native API tests: reads the stream continuously, keeps
 * every event with its arrival time, and lets a test take them in order or wait for one,
 * failing after a timeout instead of hanging.
 */
export class SseClient {
  readonly events: SseEvent[] = []
  /** When each event arrived (`performance.now()`), by index into `events`. */
  readonly arrivals: number[] = []
  readonly status: number
  readonly #controller: AbortController
  #cursor = 0
  #ended = false
  #wake: (() => void) | undefined

  private constructor(response: Response, controller: AbortController) {
    this.status = response.status
    this.#controller = controller
    void this.#pump(response)
  }

  /**
   * Opens `${baseUrl}/api/v1/realtime/sse?ids=…&access_token=…` (plus `extra`, e.g.
   * `&positions=1`), with `headers` (e.g. the `Last-Event-ID` of an EventSource reconnecting).
   */
  static async open(
    baseUrl: string,
    token: string,
    ids: readonly string[],
    extra = '',
    headers: Record<string, string> = {},
  ): Promise<SseClient> {
    const controller = new AbortController()
    const query = `ids=${ids.join(',')}&access_token=${encodeURIComponent(token)}${extra}`
    const response = await fetch(`${baseUrl}/api/v1/realtime/sse?${query}`, {
      headers,
      signal: controller.signal,
    })
    return new SseClient(response, controller)
  }

  /** Any event stream: `GET url` with `headers` (the dashboard's feeds, say). */
  static async get(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const controller = new AbortController()
    const response = await fetch(url, { headers, signal: controller.signal })
    return new SseClient(response, controller)
  }

  /** Any request answered with an event stream: `fetch(url, init)`. */
  static async request(url: string, init: RequestInit): Promise<SseClient> {
    const controller = new AbortController()
    const response = await fetch(url, { ...init, signal: controller.signal })
    return new SseClient(response, controller)
  }

  /** `POST ${baseUrl}/api/v1/realtime/sse` with a JSON body (positions, resume). */
  static async post(baseUrl: string, token: string, body: unknown): Promise<SseClient> {
    const controller = new AbortController()
    const response = await fetch(`${baseUrl}/api/v1/realtime/sse`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    })
    return new SseClient(response, controller)
  }

  /** Takes events until one matches; the skipped ones are consumed too. */
  async waitFor(match: (event: SseEvent) => boolean, timeoutMs = 3000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.#cursor < this.events.length) {
        const event = this.events[this.#cursor++]!
        if (match(event)) return event
      }
      const left = deadline - Date.now()
      if (left <= 0 || this.#ended) {
        throw new Error(
          `no matching SSE event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`,
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

  /** Resolves once the server ended the stream (or `close` aborted it). */
  ended(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    return (async () => {
      while (!this.#ended) {
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`the SSE stream did not end within ${timeoutMs} ms`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left)
          this.#wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
      }
    })()
  }

  /** Events received and not yet taken. */
  pending(): SseEvent[] {
    return this.events.slice(this.#cursor)
  }

  close(): void {
    this.#controller.abort()
  }

  async #pump(response: Response): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const lines = buffer.slice(0, end).split('\n')
          buffer = buffer.slice(end + 2)
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
          if (data.length === 0) continue
          const id = lines.find((l) => l.startsWith('id: '))?.slice(4)
          this.events.push({ id, data: JSON.parse(data.join('\n')) as SseEvent['data'] })
          this.arrivals.push(performance.now())
          this.#wake?.()
        }
      }
    } catch {
      // aborted by close(), or the server ended the stream
    } finally {
      this.#ended = true
      this.#wake?.()
    }
  }
}
