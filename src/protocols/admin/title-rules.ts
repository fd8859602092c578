import type { Title } from '../../core/catalogue.js'
import { parseTitleId } from '../xbox/schemas.js'

const MAX_NAME = 200
const MAX_STRINGS = 1000
const MAX_LOCALES_PER_STRING = 100
const MAX_TEMPLATE = 500
const STRING_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/
const LOCALE = /^(default|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3})$/

/**
 * A title as the catalogue takes it, from the titles API (`PUT /admin/v1/titles/:titleId`) and
 * the bulk import alike: what one refuses the other must too, or a title stored by one is one the
 * other cannot read back. Each caller words a refusal its own way through `invalid`.
 *
 * @example parseTitle('1717', { name: 'Forza', strings: { racing: { 'en-US': 'Racing {0}' } } }, …)
 */
export function parseTitle(
  rawTitleId: unknown,
  body: unknown,
  invalid: (message: string) => Error,
): Title {
  const titleId = titleIdOf(rawTitleId, invalid)
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

/** A title id as the catalogue keys it: Xbox's, 32 bits unsigned. */
export function titleIdOf(raw: unknown, invalid: (message: string) => Error): string {
  const titleId = parseTitleId(raw)
  if (!titleId) throw invalid(`title id must be a 32-bit unsigned integer, got ${show(raw)}`)
  return titleId
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text
}
