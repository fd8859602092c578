import { fail } from '../../core/errors.js'
import { parseInt64Id, parseTitleId, parseUserId, type UserId } from '../../core/user-id.js'
import {
  webhookEventTypes,
  type WebhookEventType,
  type WebhookFilter,
} from '../../store/webhook-store.js'

/** What an operator gives to create an endpoint; everything but `url` and `keyId` has a default. */
export interface CreateWebhookInput {
  url: string
  keyId: string
  /** Default: every event type. */
  events?: readonly string[] | undefined
  filter?: FilterInput | undefined
  /** Default: true. */
  enabled?: boolean | undefined
  /** Default: a generated `whsec_…`, returned once. */
  secret?: string | undefined
  description?: string | undefined
}

/** Members left out keep their value. `rotateSecret` generates a new secret, returned once. */
export interface UpdateWebhookInput {
  url?: string | undefined
  events?: readonly string[] | undefined
  filter?: FilterInput | undefined
  enabled?: boolean | undefined
  secret?: string | undefined
  rotateSecret?: boolean | undefined
  description?: string | undefined
}

export interface FilterInput {
  universes?: readonly unknown[] | undefined
  titles?: readonly unknown[] | undefined
  users?: readonly unknown[] | undefined
}

export const webhookLimits = Object.freeze({
  urlLength: 2048,
  secretMin: 16,
  secretMax: 200,
  description: 200,
  universes: 1000,
  titles: 1000,
  users: 10_000,
})

const invalid = (message: string) => fail('INVALID_REQUEST', message)
const quote = (value: unknown) => JSON.stringify(String(value)).slice(0, 60)

/**
 * An endpoint URL: http or https only (the operator chooses where presenced posts; other schemes
 * such as file: or gopher: are refused), no credentials (URLs are listed; the secret is what
 * authenticates a delivery), a host, and a sane length.
 */
export function checkUrl(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalid('url must be an http(s) URL')
  const text = raw.trim()
  if (text.length > webhookLimits.urlLength) {
    throw invalid(`url must be at most ${webhookLimits.urlLength} characters`)
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid(`url ${quote(text)} is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`url must use http or https, not ${quote(url.protocol.replace(/:$/, ''))}`)
  }
  if (url.hostname === '') throw invalid('url must name a host')
  if (url.username !== '' || url.password !== '') {
    throw invalid('url must not carry credentials: deliveries are authenticated by their signature')
  }
  return text
}

export function checkEvents(raw: readonly string[] | undefined): WebhookEventType[] {
  if (raw === undefined) return [...webhookEventTypes]
  if (!Array.isArray(raw) || raw.length === 0) {
    throw invalid(`events must name at least one of ${webhookEventTypes.join(', ')}`)
  }
  const events: WebhookEventType[] = []
  for (const type of raw) {
    if (!webhookEventTypes.includes(type as WebhookEventType)) {
      throw invalid(`unknown event ${quote(type)}; events are ${webhookEventTypes.join(', ')}`)
    }
    if (!events.includes(type as WebhookEventType)) events.push(type as WebhookEventType)
  }
  return events
}

export function checkFilter(raw: FilterInput | undefined): WebhookFilter {
  const filter: WebhookFilter = { universes: [], titles: [], users: [] }
  if (raw === undefined) return filter
  filter.universes = ids(raw.universes, 'universes', webhookLimits.universes, parseInt64Id)
  filter.titles = ids(raw.titles, 'titles', webhookLimits.titles, parseTitleId)
  filter.users = ids(raw.users, 'users', webhookLimits.users, parseUserId) as UserId[]
  return filter
}

export function checkSecret(raw: unknown): string {
  const { secretMin, secretMax } = webhookLimits
  if (
    typeof raw !== 'string' ||
    !new RegExp(`^[\\x21-\\x7e]{${secretMin},${secretMax}}$`).test(raw)
  ) {
    throw invalid(
      `secret must be ${secretMin} to ${secretMax} printable ASCII characters without spaces`,
    )
  }
  return raw
}

export function checkDescription(raw: unknown): string {
  if (raw === undefined) return ''
  if (typeof raw !== 'string' || raw.length > webhookLimits.description) {
    throw invalid(`description must be a string of at most ${webhookLimits.description} characters`)
  }
  return raw
}

function ids(
  raw: readonly unknown[] | undefined,
  name: string,
  max: number,
  parse: (value: unknown) => string | undefined,
): string[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) throw invalid(`filter.${name} must be an array of ids`)
  if (raw.length > max) throw invalid(`filter.${name} holds at most ${max} ids`)
  const out = new Set<string>()
  for (const value of raw) {
    const id = parse(value)
    if (id === undefined) {
      throw invalid(
        `filter.${name} holds ${quote(value)}, which is not a ${name === 'titles' ? 'title id (uint32)' : 'positive 64-bit integer'}`,
      )
    }
    out.add(id)
  }
  return [...out]
}
