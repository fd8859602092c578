import type { CatalogueStore } from '../store/catalogue-store.js'
import type { Clock } from './clock.js'

const TTL_MS = 60_000
const MAX_ENTRIES = 10_000

/**
 * Names of places and titles from the catalogues, for the dashboard's top lists and feed (both
 * must name things alike). Catalogue names change rarely: each is kept for a minute, so a busy
 * dashboard does not read the catalogue per row.
 */
export class CatalogueNames {
  readonly #profiles: Pick<CatalogueStore, 'getPlace' | 'getTitle'>
  readonly #clock: Clock
  readonly #names = new Map<string, { name: string | null; at: number }>()

  constructor(profiles: Pick<CatalogueStore, 'getPlace' | 'getTitle'>, clock: Clock) {
    this.#profiles = profiles
    this.#clock = clock
  }

  place(placeId: string): Promise<string | null> {
    return this.#cached(`p:${placeId}`, async () => {
      const place = await this.#profiles.getPlace(placeId)
      return place?.name ?? null
    })
  }

  title(titleId: string): Promise<string | null> {
    return this.#cached(`t:${titleId}`, async () => {
      const title = await this.#profiles.getTitle(titleId)
      return title?.name ?? null
    })
  }

  async #cached(key: string, load: () => Promise<string | null>): Promise<string | null> {
    const now = this.#clock.now()
    const hit = this.#names.get(key)
    if (hit && now - hit.at < TTL_MS && now >= hit.at) return hit.name
    // a name is decoration: an unreadable catalogue shows the id instead
    const name = await load().catch(() => null)
    if (this.#names.size >= MAX_ENTRIES) this.#names.clear()
    this.#names.set(key, { name, at: now })
    return name
  }
}
