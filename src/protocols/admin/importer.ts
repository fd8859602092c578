import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Issuer } from '../../core/caller.js'
import type { Place, ProfileRecord } from '../../core/catalogue.js'
import { fail } from '../../core/errors.js'
import type { PresenceService } from '../../service/presence-service.js'
import { ImportLineError, linesOf, parseImportLine } from './import-lines.js'

export interface ImportResult {
  /** The number of the last non-blank line. */
  lines: number
  records: number
  byType: Record<ProfileRecord['type'], number>
  ms: number
}

/** A line refused during validation: nothing of the import was written. */
function refused(line: number, reason: string) {
  return fail('IMPORT_LINE_INVALID', `line ${line}: ${reason}`, { line })
}

export interface ImportOptions {
  /** Records per store transaction; the event loop gets a turn between chunks. Default 10,000. */
  chunkSize?: number
  /**
   * The API key importing, when not the operator's admin key: its place lines are checked as a
   * single write of the catalogue is (`PresenceService.checkPlaceWrites`), before anything is
   * written.
   */
  writer?: Issuer | undefined
}

/**
 * Imports an NDJSON body all or nothing as far as input goes: every line is validated first, and
 * the first bad one refuses the whole body before anything is written. Then the records are
 * applied in chunks (one store transaction each), so other requests keep being served.
 *
 * Each chunk is applied by `PresenceService.importRecords`, with the rules of single writes.
 */
export async function importNdjson(
  service: PresenceService,
  body: Buffer,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const started = performance.now()
  const chunkSize = options.chunkSize ?? 10_000
  const byType: ImportResult['byType'] = {
    settings: 0,
    friends: 0,
    block: 0,
    place: 0,
    title: 0,
    user: 0,
  }
  let lines = 0
  // Pass 1: validate everything before writing anything. Small bodies (the CLI sends 50k lines
  // per request) keep their parsed records; for larger ones re-parsing is cheaper than holding
  // millions of records in memory.
  let held: ProfileRecord[] | undefined = []
  let validated = 0
  // a universe-limited key's places, with their lines, for the check after validation
  const limited = (options.writer?.universes.length ?? 0) > 0
  const places: Place[] = []
  const placeLines: number[] = []
  for (const [text, lineNumber] of checkedLines(body)) {
    let record: ProfileRecord
    try {
      record = parseImportLine(text)
    } catch (error) {
      if (error instanceof ImportLineError) throw refused(lineNumber, error.message)
      throw error
    }
    byType[record.type]++
    if (limited && record.type === 'place') {
      places.push(record.place)
      placeLines.push(lineNumber)
    }
    if (held) {
      if (held.length < HOLD_LIMIT) held.push(record)
      else held = undefined
    }
    lines = lineNumber
    // validating a large body takes seconds: let other requests through meanwhile
    if (++validated % 50_000 === 0) await yieldToLoop()
  }

  if (limited) await service.checkPlaceWrites(places, options.writer, placeLines)

  // Pass 2: apply in chunks.
  const records = held ?? reparse(body)
  let applied = 0
  let chunk: ProfileRecord[] = []
  for (const record of records) {
    chunk.push(record)
    if (chunk.length >= chunkSize) {
      applied += await applyChunk(service, chunk)
      chunk = []
      await yieldToLoop()
    }
  }
  if (chunk.length > 0) applied += await applyChunk(service, chunk)
  return { lines, records: applied, byType, ms: Math.round(performance.now() - started) }
}

/** linesOf, a line too long to take refused as any bad line (400 naming it). */
function* checkedLines(body: Buffer): Generator<[text: string, lineNumber: number]> {
  try {
    yield* linesOf(body)
  } catch (error) {
    if (error instanceof ImportLineError && error.line !== undefined) {
      throw refused(error.line, error.message)
    }
    throw error
  }
}

/** Records held between the passes at most; above, the body is parsed a second time. */
const HOLD_LIMIT = 200_000

function* reparse(body: Buffer): Generator<ProfileRecord> {
  for (const [text] of linesOf(body)) yield parseImportLine(text)
}

async function applyChunk(service: PresenceService, chunk: ProfileRecord[]): Promise<number> {
  await service.importRecords(chunk)
  return chunk.length
}
