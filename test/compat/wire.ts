import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { gunzipSync, inflateSync } from 'node:zlib'
import { parseJsonLossless } from '../../src/protocols/shared/lossless-json.js'

/**
 * One HTTP exchange over a real socket, with exactly the headers given, in the order given
 * (node:http adds only Host, Connection and Content-Length). This is how the compatibility tests
 * replay what a client library puts on the wire, empty `Cookie:` headers included.
 */
export interface WireRequest {
  method: string
  path: string
  /** Header name/value pairs as the client sends them; a repeated name is sent twice. */
  headers?: ReadonlyArray<readonly [string, string]>
  body?: string | Buffer
}

export interface WireResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as sent, before any content decoding. */
  raw: Buffer
  /** The body decoded per Content-Encoding (gzip, deflate). */
  text: string
}

export async function send(base: string, req: WireRequest): Promise<WireResponse> {
  const url = new URL(req.path, base)
  const given = req.headers ?? []
  const flat: string[] = []
  // raw header arrays get no automatic Host: the address stands in unless the client names one
  if (!given.some(([n]) => n.toLowerCase() === 'host')) flat.push('Host', url.host)
  for (const [name, value] of given) flat.push(name, value)
  // an empty POST goes out as `Content-Length: 0`, as client libraries send it (not chunked)
  const body =
    req.body !== undefined
      ? Buffer.from(req.body)
      : req.method === 'GET'
        ? undefined
        : Buffer.alloc(0)
  if (
    body !== undefined &&
    !(req.headers ?? []).some(([n]) => n.toLowerCase() === 'content-length')
  ) {
    flat.push('Content-Length', String(body.length))
  }
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: url.pathname + url.search,
        headers: flat,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () => {
          const raw = Buffer.concat(chunks)
          const encoding = response.headers['content-encoding']
          const decoded =
            encoding === 'gzip' ? gunzipSync(raw) : encoding === 'deflate' ? inflateSync(raw) : raw
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            raw,
            text: decoded.toString('utf8'),
          })
        })
      },
    )
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

/** What every client does with a body: JSON.parse it (losslessly, to check int64 digits). */
export function json(response: WireResponse): unknown {
  assert.match(
    String(response.headers['content-type']),
    /^application\/json/,
    `JSON content type for ${response.status}: ${response.text.slice(0, 200)}`,
  )
  return parseJsonLossless(response.text)
}

/** The `{"errors":[{"code","message"}]}` shape every Roblox client reads on a failure. */
export function assertRobloxError(response: WireResponse, status: number, message?: string) {
  assert.equal(response.status, status, response.text)
  const body = json(response) as { errors: { code: unknown; message: unknown }[] }
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, response.text)
  assert.equal(typeof body.errors[0]!.code, 'number')
  assert.equal(typeof body.errors[0]!.message, 'string')
  if (message !== undefined) assert.equal(body.errors[0]!.message, message)
}

export const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
