import { request } from 'node:http'
import { createServer, type Server } from 'node:https'

/**
 * The TLS front of docs/guides/using-existing-clients.md, as a function: terminates https with
 * the given certificate and forwards every request, whatever its host, to presenced on one
 * port, saying where it came from in X-Forwarded-* (presenced believes them only with
 * PRESENCED_TRUST_PROXY=1).
 */
export function tlsFront(options: { key: Buffer; cert: Buffer; target: URL }): Server {
  return createServer({ key: options.key, cert: options.cert }, (req, res) => {
    const headers = {
      ...req.headers,
      'x-forwarded-proto': 'https',
      'x-forwarded-host': req.headers.host ?? '',
      'x-forwarded-for': req.socket.remoteAddress ?? '',
    }
    const { hostname, port } = options.target
    const upstream = request(
      { hostname, port, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.writeHead(502).end())
    req.pipe(upstream)
  })
}
