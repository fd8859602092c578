import type { FastifyInstance } from 'fastify'
import { bodyText, checkCharset, parseForm } from './body-text.js'
import { parseJsonBody } from './lossless-json.js'

/**
 * The body parsers every JSON route shares: `application/json` and `text/json` parsed so int64
 * literals too long for a JS number stay exact (as strings), and form bodies; both read as
 * UTF-8 as body-text.ts says (another charset 415, bytes not UTF-8 400, a BOM skipped).
 */
export function addBodyParsers(app: FastifyInstance): void {
  app.addContentTypeParser(
    ['application/json', 'text/json'],
    { parseAs: 'buffer' },
    (request, body, done) => {
      try {
        checkCharset(request.headers['content-type'])
        done(null, parseJsonBody(bodyText(body as Buffer, 'INVALID_JSON')))
      } catch (error) {
        done(error as Error, undefined)
      }
    },
  )
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'buffer' },
    (request, body, done) => {
      try {
        checkCharset(request.headers['content-type'])
        done(null, parseForm(bodyText(body as Buffer)))
      } catch (error) {
        done(error as Error, undefined)
      }
    },
  )
}
