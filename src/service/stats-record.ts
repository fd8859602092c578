import type { StatsSample, StatsTotals } from './presence-stats.js'

/** One pass over the live users, sorted once, sliced per request. */
export interface Aggregate {
  at: number
  available: boolean
  nodes: number
  computeMs: number
  visible: Ranked
  all: Ranked
  invisibleUsers: number
  invisibleSessions: number
}

export interface Ranked {
  totals: StatsTotals
  universes: Array<[string, number]>
  places: Array<[string, number]>
  titles: Array<[string, number]>
  /** A root place seen per universe: the universe is shown with that place's name. */
  rootOf: Map<string, string>
}

/** What a fleet's stats node publishes: its last pass, the series, and how often it passes. */
export interface StatsRecord {
  aggregate: Aggregate
  samples: StatsSample[]
  /** The publisher's interval between passes when it published (ms). */
  everyMs: number
}

const VERSION = 1
const TOTALS = ['online', 'inGame', 'inStudio', 'away', 'sessions', 'locationHidden'] as const

type RankedJson = [
  totals: number[],
  universes: Array<[string, number]>,
  places: Array<[string, number]>,
  titles: Array<[string, number]>,
  rootOf: Array<[string, string]>,
]

/**
 * The record as the fleet's stats node publishes it (FleetDuties.publish): compact JSON, each list
 * cut to the `keep` largest entries (no view shows more), and a universe's root place only for
 * the universes kept. The public (`v`) and the operators' (`a`) sets are kept apart, each with its
 * own root places, as the pass counted them: a reader applies the same privacy as its author.
 */
export function encodeStatsRecord(record: StatsRecord, keep: number): string {
  const { aggregate: a } = record
  const ranked = (r: Ranked): RankedJson => {
    const universes = r.universes.slice(0, keep)
    const rootOf: Array<[string, string]> = []
    for (const [id] of universes) {
      const root = r.rootOf.get(id)
      if (root !== undefined) rootOf.push([id, root])
    }
    return [
      TOTALS.map((name) => r.totals[name]),
      universes,
      r.places.slice(0, keep),
      r.titles.slice(0, keep),
      rootOf,
    ]
  }
  return JSON.stringify({
    v: VERSION,
    at: a.at,
    ms: Math.round(a.computeMs),
    every: Math.ceil(record.everyMs),
    nodes: a.nodes,
    ok: a.available,
    p: ranked(a.visible),
    a: ranked(a.all),
    inv: [a.invisibleUsers, a.invisibleSessions],
    s: record.samples,
  })
}

/** The record `text` holds, or undefined when it is not one (another version, damaged). */
export function decodeStatsRecord(text: string): StatsRecord | undefined {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof json !== 'object' || json === null) return undefined
  const r = json as Record<string, unknown>
  if (r.v !== VERSION || !isCount(r.at) || !isCount(r.ms) || !isCount(r.every)) return undefined
  if (!isCount(r.nodes) || typeof r.ok !== 'boolean') return undefined
  const visible = rankedOf(r.p)
  const all = rankedOf(r.a)
  const inv = r.inv
  if (!visible || !all || !Array.isArray(inv) || inv.length !== 2 || !inv.every(isCount)) {
    return undefined
  }
  const samples = r.s
  if (!Array.isArray(samples) || !samples.every((s) => isTuple(s, 3, isCount))) return undefined
  return {
    aggregate: {
      at: r.at,
      available: r.ok,
      nodes: r.nodes,
      computeMs: r.ms,
      visible,
      all,
      invisibleUsers: inv[0] as number,
      invisibleSessions: inv[1] as number,
    },
    samples: samples as StatsSample[],
    everyMs: r.every,
  }
}

function rankedOf(json: unknown): Ranked | undefined {
  if (!Array.isArray(json) || json.length !== 5) return undefined
  const [totals, universes, places, titles, rootOf] = json as unknown[]
  if (!isTuple(totals, TOTALS.length, isCount)) return undefined
  if (!isEntries(universes, isCount) || !isEntries(places, isCount)) return undefined
  if (!isEntries(titles, isCount) || !isEntries(rootOf, isString)) return undefined
  const [online, inGame, inStudio, away, sessions, locationHidden] = totals as number[]
  return {
    totals: {
      online: online!,
      inGame: inGame!,
      inStudio: inStudio!,
      away: away!,
      sessions: sessions!,
      locationHidden: locationHidden!,
    },
    universes,
    places,
    titles,
    rootOf: new Map(rootOf),
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isString(value: unknown): value is string {
  return typeof value === 'string'
}

function isTuple(value: unknown, length: number, each: (v: unknown) => boolean): boolean {
  return Array.isArray(value) && value.length === length && value.every(each)
}

function isEntries<T>(value: unknown, second: (v: unknown) => v is T): value is Array<[string, T]> {
  return (
    Array.isArray(value) &&
    value.every((e) => Array.isArray(e) && e.length === 2 && isString(e[0]) && second(e[1]))
  )
}
