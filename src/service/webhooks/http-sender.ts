import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

export interface OutgoingRequest {
  url: string
  headers: Record<string, string>
  body: string
  timeoutMs: number
}

export type SendResult = { ok: true; status: number } | { ok: false; error: string }

/** Bytes of a receiver's answer read before it is cut: only its status matters. */
const MAX_ANSWER_BYTES = 64 * 1024

/**
 * POSTs deliveries over kept-alive connections (one pool per origin, as many sockets as requests
 * in flight). Anything but a 2xx answer within the timeout is a failure: redirects are not
 * followed (an endpoint that moved is reconfigured, not chased), and the error names what went
 * wrong for the operator (never a header or the body).
 */
export class HttpSender {
  readonly #http = new HttpAgent({ keepAlive: true })
  readonly #https = new HttpsAgent({ keepAlive: true })

  send(request: OutgoingRequest): Promise<SendResult> {
    let url: URL
    try {
      url = new URL(request.url)
    } catch {
      return Promise.resolve({ ok: false, error: 'invalid url' })
    }
    const secure = url.protocol === 'https:'
    return new Promise((resolve) => {
      let settled = false
      const done = (result: SendResult) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: secure ? this.#https : this.#http,
        headers: {
          ...request.headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(request.body)),
        },
      })
      const timer = setTimeout(() => {
        done({ ok: false, error: `timeout after ${request.timeoutMs} ms` })
        req.destroy()
      }, request.timeoutMs)
      req.on('error', (error: NodeJS.ErrnoException) => {
        const { code, message } = error
        done({
          ok: false,
          error: code && !message.includes(code) ? `${code}: ${message}` : message,
        })
      })
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        let read = 0
        res.on('data', (chunk: Buffer) => {
          read += chunk.length
          if (read > MAX_ANSWER_BYTES) res.destroy()
        })
        const finish = () =>
          done(
            status >= 200 && status < 300
              ? { ok: true, status }
              : {
                  ok: false,
                  error:
                    status >= 300 && status < 400
                      ? `HTTP ${status} (redirects are not followed)`
                      : `HTTP ${status}`,
                },
          )
        res.on('end', finish)
        res.on('close', finish)
        res.on('error', finish)
      })
      req.end(request.body)
    })
  }

  close(): void {
    this.#http.destroy()
    this.#https.destroy()
  }
}
