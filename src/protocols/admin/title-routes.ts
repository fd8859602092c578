import type { FastifyInstance } from 'fastify'
import { fail, type PresenceError } from '../../core/errors.js'
import type { PresenceService } from '../../service/presence-service.js'
import { parseTitle, titleIdOf } from './title-rules.js'
import { tags } from './schemas.js'

/**
 * The titles catalogue in the admin API (same key and error shape as the rest of /admin/v1):
 * `PUT /admin/v1/titles/:titleId` `{name, strings}` and `GET` it. `strings` maps a rich presence
 * string id to templates per locale (`en-US`, `fr`, `default`), with `{0}`-style parameters.
 *
 * @example
 * PUT /admin/v1/titles/1717113201
 * {"name":"Contoso","strings":{"playingMap":{"default":"Playing {0}","fr":"Joue sur {0}"}}}
 */
export async function titleRoutes(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  app.put<{ Params: { titleId: string } }>(
    '/titles/:titleId',
    {
      schema: {
        tags,
        summary: 'Create or replace a title of the Xbox titles catalogue',
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string' },
            strings: {
              type: 'object',
              additionalProperties: { type: 'object', additionalProperties: { type: 'string' } },
            },
          },
        },
      },
    },
    async (request) => {
      const title = parseTitle(request.params.titleId, request.body, invalid)
      await service.putTitle(title)
      return title
    },
  )

  app.get<{ Params: { titleId: string } }>(
    '/titles/:titleId',
    { schema: { tags, summary: 'A title of the Xbox titles catalogue' } },
    async (request) => {
      const titleId = titleIdOf(request.params.titleId, invalid)
      const title = await service.getTitle(titleId)
      if (!title) throw fail('NOT_FOUND', `No title ${titleId}.`)
      return title
    },
  )
}

function invalid(message: string): PresenceError {
  return fail('INVALID_REQUEST', `Invalid title: ${message}.`)
}
