import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { PresenceService } from '../../service/presence-service.js'
import { fail } from '../../core/errors.js'
import { checkCharset } from '../shared/body-text.js'
import { issuerOf } from './auth.js'
import { importNdjson } from './importer.js'
import { tags } from './schemas.js'

/** Bodies of a bulk import may be far larger than the API's usual limit. */
export const IMPORT_BODY_LIMIT = 512 * 1024 * 1024

export const ndjsonTypes = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines']

/**
 * POST /admin/v1/import: NDJSON of settings, friends, block, place, title and user lines. Every
 * line is validated before anything is written; the first bad line refuses the whole body (400,
 * naming the line).
 */
export async function importRoute(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  // Registered in this plugin only: the rest of the server keeps its small body limit.
  app.addContentTypeParser(
    ndjsonTypes,
    { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  )

  app.post(
    '/import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      // before the body is read: a body of up to 512 MiB in a charset not read is not read at all
      preParsing: async (request) => checkCharset(request.headers['content-type']),
      schema: {
        tags,
        summary: 'Bulk import (NDJSON): all lines validated first, then applied in chunks',
        consumes: ndjsonTypes,
      },
    },
    async (request) => {
      if (!Buffer.isBuffer(request.body)) {
        throw fail(
          'UNSUPPORTED_MEDIA_TYPE',
          `Send the import as NDJSON (content-type ${ndjsonTypes[0]}), one JSON object per line.`,
        )
      }
      // the socket is idle while the import is applied (minutes for a large one in fleet mode):
      // its idle timeout would close it before the answer, the import going on unanswered
      const socket = request.raw.socket as Socket | undefined
      // (an injected request's socket has no timer)
      const timed = typeof socket?.setTimeout === 'function'
      const idle = (timed && socket.timeout) || 0
      if (timed) socket.setTimeout(0)
      const result = await importNdjson(service, request.body, {
        writer: issuerOf(request.caller),
      }).finally(() => {
        if (timed) socket.setTimeout(idle)
      })
      request.log.info(
        { lines: result.lines, records: result.records, ms: result.ms },
        'import done',
      )
      return result
    },
  )
}
