import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'

export interface Recorded {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

export type Handler = (
  request: Recorded,
  response: ServerResponse,
  index: number,
) => void | Promise<void>

/**
 * A real HTTP server on port 0 that records every request and answers through `handler`;
 * closed when the test ends. For transport behaviour (CSRF, 429, batching) no presenced needed.
 */
export async function fakeServer(t: TestContext, handler: Handler) {
  const requests: Recorded[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
      requests.push(recorded)
      void Promise.resolve(handler(recorded, res, requests.length - 1)).catch((error: unknown) => {
        res.statusCode = 599
        res.end(String(error))
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests }
}

export function json(response: ServerResponse, status: number, body: unknown, headers = {}) {
  response.writeHead(status, { 'content-type': 'application/json', ...headers })
  response.end(typeof body === 'string' ? body : JSON.stringify(body))
}

/** A Roblox v1 record for `userId` (a raw JSON literal, so ids above 2^53 stay exact). */
export function robloxRecord(userId: string, type = 0): string {
  return (
    `{"userPresenceType":${type},"lastLocation":"","placeId":null,"rootPlaceId":null,` +
    `"gameId":null,"universeId":null,"userId":${userId},"lastOnline":"2026-01-02T03:04:05.000Z"}`
  )
}
