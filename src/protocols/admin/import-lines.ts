import { isUtf8 } from 'node:buffer'
import { defaultSettings, type Visibility } from '../../core/privacy.js'
import { parseInt64Id, parseUserId } from '../../core/user-id.js'
import { characterCount, type ProfileRecord } from '../../core/catalogue.js'
import { hasUtf8Bom } from '../shared/body-text.js'
import { NotTextError, parseJsonLossless } from '../shared/lossless-json.js'
import { parseTitle } from './title-rules.js'

/**
 * One line of a bulk import (NDJSON), before the store sees it. `settings` records carry no
 * frozen lastOnline yet: the importer computes it, as a settings change through the service would.
 */
export type ImportRecord = ProfileRecord

const visibilities: readonly Visibility[] = ['everyone', 'friends', 'nobody']

const fieldsOf: Record<ProfileRecord['type'], readonly string[]> = {
  settings: ['type', 'userId', 'visibility', 'invisible'],
  friends: ['type', 'a', 'b', 'friends'],
  block: ['type', 'blocker', 'blocked', 'isBlocked'],
  place: ['type', 'placeId', 'universeId', 'rootPlaceId', 'name'],
  title: ['type', 'titleId', 'name', 'strings'],
  user: ['type', 'userId', 'name', 'displayName'],
}

/**
 * The longest line an import takes, in bytes (64 MiB). No valid record comes near it (a title
 * `PUT /admin/v1/titles/{titleId}` takes fits its body, 1 MiB by default), and it keeps a
 * line well below the longest string V8 makes (0x1fffffe8) and the CLI's chunks below the
 * server's 512 MiB import limit.
 */
export const MAX_IMPORT_LINE_BYTES = 64 * 1024 * 1024

/**
 * Thrown for a line that cannot be imported; the message says why, without the line number,
 * which `line` has when the thrower knows it (linesOf).
 */
export class ImportLineError extends Error {
  readonly line: number | undefined
  constructor(message: string, line?: number) {
    super(message)
    this.line = line
  }
}

/**
 * The text of line `lineNumber` (its bytes without the end of line), as the server and the CLI
 * read it: a UTF-8 byte-order mark at the start of line 1 (the file's or the body's) skipped,
 * bytes that are not UTF-8 refused with the line's number, never read as U+FFFD.
 *
 * @example lineText(Buffer.from('\ufeff{"type":"user"}'), 1) // '{"type":"user"}'
 */
export function lineText(bytes: Buffer, lineNumber: number): string {
  const text = lineNumber === 1 && hasUtf8Bom(bytes) ? bytes.subarray(3) : bytes
  if (!isUtf8(text)) throw new ImportLineError('not valid UTF-8', lineNumber)
  return text.toString('utf8')
}

/** The refusal of line `line`, whose `bytes` (without its end of line) exceed the limit. */
export function lineTooLong(line: number): ImportLineError {
  return new ImportLineError(`longer than ${MAX_IMPORT_LINE_BYTES} bytes`, line)
}

/**
 * Parses and validates one NDJSON line into a record.
 *
 * @example parseImportLine('{"type":"friends","a":"1","b":"2"}')
 * // { type: 'friends', a: '1', b: '2', friends: true }
 */
export function parseImportLine(line: string): ImportRecord {
  let value: unknown
  try {
    value = parseJsonLossless(line)
  } catch (error) {
    throw new ImportLineError(error instanceof NotTextError ? error.message : 'not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ImportLineError('a line must be a JSON object')
  }
  const o = value as Record<string, unknown>
  const type = o.type
  if (typeof type !== 'string' || !Object.hasOwn(fieldsOf, type)) {
    throw new ImportLineError(
      `"type" must be one of ${Object.keys(fieldsOf).join(', ')}, got ${show(type)}`,
    )
  }
  const allowed = fieldsOf[type as ProfileRecord['type']]
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new ImportLineError(`unknown field ${show(key)} for ${type}`)
  }
  switch (type as ProfileRecord['type']) {
    case 'settings': {
      // only an absent member takes the default: null is refused, as the admin routes refuse it
      const visibility = o.visibility === undefined ? defaultSettings.visibility : o.visibility
      if (!visibilities.includes(visibility as Visibility)) {
        throw new ImportLineError(
          `"visibility" must be one of ${visibilities.join(', ')}, got ${show(visibility)}`,
        )
      }
      return {
        type: 'settings',
        userId: userIdField(o, 'userId'),
        settings: {
          visibility: visibility as Visibility,
          invisible: booleanField(o, 'invisible', false),
        },
      }
    }
    case 'friends': {
      const a = userIdField(o, 'a')
      const b = userIdField(o, 'b')
      if (a === b) throw new ImportLineError('a user cannot be their own friend')
      return { type: 'friends', a, b, friends: booleanField(o, 'friends', true) }
    }
    case 'block': {
      const blocker = userIdField(o, 'blocker')
      const blocked = userIdField(o, 'blocked')
      if (blocker === blocked) throw new ImportLineError('a user cannot block themself')
      return { type: 'block', blocker, blocked, isBlocked: booleanField(o, 'isBlocked', true) }
    }
    case 'place':
      return {
        type: 'place',
        place: {
          placeId: int64Field(o, 'placeId'),
          universeId: int64Field(o, 'universeId'),
          rootPlaceId:
            o.rootPlaceId === undefined ? int64Field(o, 'placeId') : int64Field(o, 'rootPlaceId'),
          name: textField(o, 'name', 200),
        },
      }
    case 'title':
      return {
        type: 'title',
        title: parseTitle(
          o.titleId,
          { name: o.name, strings: o.strings },
          (message) => new ImportLineError(message),
        ),
      }
    case 'user':
      return {
        type: 'user',
        user: {
          userId: userIdField(o, 'userId'),
          name: textField(o, 'name', 100),
          displayName:
            o.displayName === undefined
              ? textField(o, 'name', 100)
              : textField(o, 'displayName', 100),
        },
      }
  }
}

function userIdField(o: Record<string, unknown>, key: string) {
  const id = parseUserId(o[key])
  if (id === undefined) {
    throw new ImportLineError(`${show(key)} must be a positive 64-bit integer, got ${show(o[key])}`)
  }
  return id
}

function int64Field(o: Record<string, unknown>, key: string): string {
  const id = parseInt64Id(o[key])
  if (id === undefined) {
    throw new ImportLineError(`${show(key)} must be a positive 64-bit integer, got ${show(o[key])}`)
  }
  return id
}

function booleanField(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  // absent is the default; null is no flag (it made `"friends":null` a friendship)
  const value = o[key] === undefined ? fallback : o[key]
  if (typeof value !== 'boolean') {
    throw new ImportLineError(`${show(key)} must be true or false, got ${show(value)}`)
  }
  return value
}

function textField(o: Record<string, unknown>, key: string, max: number): string {
  const value = o[key]
  if (typeof value !== 'string' || value.length === 0 || characterCount(value) > max) {
    throw new ImportLineError(`${show(key)} must be a string of 1 to ${max} characters`)
  }
  return value
}

function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value)
  return text.length > 40 ? text.slice(0, 37) + '...' : text
}

/**
 * The non-blank lines of an NDJSON buffer with their 1-based numbers, a trailing `\r` removed.
 * Works on bytes, so a body larger than the biggest JS string still works; a line longer than
 * MAX_IMPORT_LINE_BYTES throws (ImportLineError with its number) instead of being decoded.
 */
export function* linesOf(body: Buffer): Generator<[text: string, lineNumber: number]> {
  let start = 0
  let lineNumber = 0
  const n = body.length
  while (start < n) {
    let end = body.indexOf(0x0a, start)
    if (end < 0) end = n
    lineNumber++
    let stop = end
    if (stop > start && body[stop - 1] === 0x0d) stop--
    if (stop - start > MAX_IMPORT_LINE_BYTES) throw lineTooLong(lineNumber)
    if (stop > start) {
      const text = lineText(body.subarray(start, stop), lineNumber)
      if (text.trim() !== '') yield [text, lineNumber]
    }
    start = end + 1
  }
}
