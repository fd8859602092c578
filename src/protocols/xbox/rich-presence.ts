import type { RichPresence } from '../../core/presence.js'
import type { Title } from '../../core/catalogue.js'

const MAX_LOCALES = 10

/**
 * The locales an `Accept-Language` header asks for, best first (by q, then by order); `*` and
 * q=0 entries are dropped.
 *
 * @example acceptedLocales('fr-CA,fr;q=0.8,en;q=0.5') // ['fr-CA', 'fr', 'en']
 */
export function acceptedLocales(header: string | undefined): string[] {
  if (!header) return []
  const entries: { tag: string; q: number; i: number }[] = []
  for (const [i, part] of header.split(',').entries()) {
    if (i >= 50) break
    const [rawTag, ...params] = part.trim().split(';')
    const tag = rawTag?.trim() ?? ''
    if (tag === '' || tag === '*' || !/^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(tag)) continue
    let q = 1
    for (const param of params) {
      const [name, value] = param.trim().split('=')
      if (name?.trim().toLowerCase() === 'q') q = Number(value)
    }
    if (!(q > 0 && q <= 1)) continue
    entries.push({ tag, q, i })
  }
  entries.sort((a, b) => b.q - a.q || a.i - b.i)
  return entries.slice(0, MAX_LOCALES).map((e) => e.tag)
}

/**
 * The template for the reader: for each accepted locale in turn, its exact entry, then its
 * language's; then `default`; then the first entry. Locale keys match case-insensitively.
 */
export function pickTemplate(
  byLocale: Readonly<Record<string, string>>,
  locales: readonly string[],
): string | undefined {
  const keys = Object.keys(byLocale)
  if (keys.length === 0) return undefined
  const find = (wanted: string) => keys.find((k) => k.toLowerCase() === wanted.toLowerCase())
  for (const locale of locales) {
    const exact = find(locale)
    if (exact !== undefined) return byLocale[exact]
    const language = locale.split('-')[0]!
    const general = find(language)
    if (general !== undefined) return byLocale[general]
  }
  const fallback = find('default') ?? keys[0]!
  return byLocale[fallback]
}

/**
 * Fills `{0}`-style placeholders with the params; a placeholder without a param renders empty.
 *
 * @example fillTemplate('Playing {0} on {1}', ['Deathmatch', 'Nirvana']) // 'Playing Deathmatch on Nirvana'
 */
export function fillTemplate(template: string, params: readonly string[]): string {
  return template.replace(/\{(\d{1,2})\}/g, (_match, index: string) => params[Number(index)] ?? '')
}

/** The rich presence string a reader sees, or undefined when the title defines no such string. */
export function renderRichPresence(
  title: Title | undefined,
  richPresence: RichPresence,
  locales: readonly string[],
): string | undefined {
  const byLocale = title?.strings[richPresence.id]
  if (!byLocale || !Object.hasOwn(title.strings, richPresence.id)) return undefined
  const template = pickTemplate(byLocale, locales)
  return template === undefined ? undefined : fillTemplate(template, richPresence.params)
}
