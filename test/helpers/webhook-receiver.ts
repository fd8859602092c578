import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'

/** One request as the receiver saw it. */
export interface Received {
  at: number
  eventId: string
  attempt: number
  timestamp: number
  /** Checked here from scratch, as a receiver would (not with presenced's own code). */
  signatureOk: boolean
  body: string
  event: WebhookEvent
  status: number
}

export interface WebhookEvent {
  id: string
  type: 'online' | 'update' | 'offline'
  webhookId: string
  occurredAt: string
  userId: string
  presence: {
    userId: string
    state: string
    lastOnline: string | null
    locationHidden: boolean
    sessions: Array<{ source: string; deviceType: string; activity: Record<string, unknown> }>
  }
  reason?: string
}

/** What to answer: a status, or 'hang' to never answer (the sender times out). */
export type Answer = number | 'hang'

/**
 * A local HTTP receiver of webhook deliveries on a free port. It verifies every signature with
 * the secret it is given (HMAC-SHA256 over `timestamp + "." + body`), records every request, and
 * answers what `answer` decides (200 by default).
 */
export class WebhookReceiver {
  url = ''
  secret = ''
  readonly requests: Received[] = []
  answer: (request: Received) => Answer | Promise<Answer> = () => 200
  readonly #server = createServer((req, res) => void this.#handle(req, res))
  readonly #waiters = new Set<() => void>()

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`
  }

  /** Requests answered 2xx: the deliveries that counted. */
  get accepted(): Received[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300)
  }

  /** Resolves once `check` holds (checked after every request), or fails after `timeoutMs`. */
  async until(check: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
    if (check()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`timed out waiting for ${what}; ${this.requests.length} requests so far`))
      }, timeoutMs)
      const waiter = () => {
        if (!check()) return
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        resolve()
      }
      this.#waiters.add(waiter)
    })
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const timestamp = String(req.headers['x-presenced-timestamp'] ?? '')
    const signature = String(req.headers['x-presenced-signature'] ?? '')
    const expected = `sha256=${createHmac('sha256', this.secret).update(`${timestamp}.${body}`).digest('hex')}`
    const received: Received = {
      at: Date.now(),
      eventId: String(req.headers['x-presenced-event-id'] ?? ''),
      attempt: Number(req.headers['x-presenced-attempt']),
      timestamp: Number(timestamp),
      signatureOk:
        signature.length === expected.length &&
        timingSafeEqual(Buffer.from(signature), Buffer.from(expected)),
      body,
      event: JSON.parse(body) as WebhookEvent,
      status: 0,
    }
    const answer = await this.answer(received)
    if (answer === 'hang') return
    received.status = answer
    this.requests.push(received)
    res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok')
    for (const waiter of [...this.#waiters]) waiter()
  }
}

export async function startReceiver(t: TestContext): Promise<WebhookReceiver> {
  const receiver = new WebhookReceiver()
  await receiver.listen()
  t.after(() => receiver.close())
  return receiver
}
