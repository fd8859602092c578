import type { FastifyInstance } from 'fastify'
import type { Title } from '../../core/catalogue.js'
import { fail, type PresenceError } from '../../core/errors.js'
import type { PresenceService } from '../../service/presence-service.js'
import { parseTitleId } from '../xbox/schemas.js'
import { tags } from './schemas.js'

const MAX_NAME = 200
const MAX_STRINGS = 1000
const MAX_LOCALES_PER_STRING = 100
const MAX_TEMPLATE = 500
const STRING_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/
const LOCALE = /^(default|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3})$/

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
      const title = parseTitle(titleIdOf(request.params.titleId), request.body)
      await service.putTitle(title)
      return title
    },
  )

  app.get<{ Params: { titleId: string } }>(
    '/titles/:titleId',
    { schema: { tags, summary: 'A title of the Xbox titles catalogue' } },
    async (request) => {
      const titleId = titleIdOf(request.params.titleId)
      const title = await service.getTitle(titleId)
      if (!title) throw fail('NOT_FOUND', `No title ${titleId}.`)
      return title
    },
  )
}

function titleIdOf(raw: string): string {
  const titleId = parseTitleId(raw)
  if (!titleId) throw invalid(`title id must be a 32-bit unsigned integer, got ${show(raw)}`)
  return titleId
}

function parseTitle(titleId: string, body: unknown): Title {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object {name, strings}')
  }
  const o = body as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (key !== 'name' && key !== 'strings') throw invalid(`unknown member ${show(key)}`)
  }
  if (typeof o.name !== 'string' || o.name.trim() === '' || o.name.length > MAX_NAME) {
    throw invalid(`name must be a string of 1 to ${MAX_NAME} characters`)
  }
  const strings: Title['strings'] = {}
  const rawStrings = o.strings ?? {}
  if (typeof rawStrings !== 'object' || rawStrings === null || Array.isArray(rawStrings)) {
    throw invalid('strings must map string ids to {locale: template} objects')
  }
  const entries = Object.entries(rawStrings)
  if (entries.length > MAX_STRINGS) throw invalid(`at most ${MAX_STRINGS} strings per title`)
  for (const [id, byLocale] of entries) {
    if (!STRING_ID.test(id)) throw invalid(`string id ${show(id)} must match ${STRING_ID.source}`)
    if (typeof byLocale !== 'object' || byLocale === null || Array.isArray(byLocale)) {
      throw invalid(`strings.${id} must map locales to templates`)
    }
    const templates = Object.entries(byLocale as Record<string, unknown>)
    if (templates.length === 0 || templates.length > MAX_LOCALES_PER_STRING) {
      throw invalid(`strings.${id} must have 1 to ${MAX_LOCALES_PER_STRING} locales`)
    }
    const out: Record<string, string> = {}
    for (const [locale, template] of templates) {
      if (!LOCALE.test(locale)) {
        throw invalid(`locale ${show(locale)} of strings.${id} must be "default" or like en-US`)
      }
      if (typeof template !== 'string' || template.length > MAX_TEMPLATE) {
        throw invalid(
          `strings.${id}.${locale} must be a string of at most ${MAX_TEMPLATE} characters`,
        )
      }
      out[locale] = template
    }
    strings[id] = out
  }
  return { titleId, name: o.name, strings }
}

function invalid(message: string): PresenceError {
  return fail('INVALID_REQUEST', `Invalid title: ${message}.`)
}

function show(value: string): string {
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text
}
