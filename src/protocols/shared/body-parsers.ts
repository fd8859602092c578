import type { FastifyInstance } from 'fastify'
import { parse as parseQuery } from 'node:querystring'
import { parseJsonBody } from './lossless-json.js'

/**
 * The body parsers every JSON route shares: `application/json` and `text/json` parsed so int64
 * literals too long for a JS number stay exact (as strings), and form bodies.
 */
export function addBodyParsers(app: FastifyInstance): void {
  app.addContentTypeParser(
    ['application/json', 'text/json'],
    { parseAs: 'string' },
    (_request, body, done) => {
      try {
        done(null, parseJsonBody(body as string))
      } catch (error) {
        done(error as Error, undefined)
      }
    },
  )
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, parseQuery(body as string)),
  )
}
