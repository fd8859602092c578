import type { FastifyError } from 'fastify'
import { fail, type ErrorCode, type PresenceError } from '../../core/errors.js'
import { parseInt64Id } from '../../core/user-id.js'

/**
 * The `x-int64` schema keyword: the value is a positive int64, as a JSON number while exact or
 * as a decimal string (never `true`, `1.5`, `"01"` or a number rounded past 2^53). Its value is
 * the catalogue code a refusal reports, so each id keeps its own error:
 *
 * @example { 'x-int64': 'PLACE_ID_INVALID' }
 */
export const int64Keyword = {
  keyword: 'x-int64',
  schemaType: 'string',
  errors: true,
  validate: function int64(code: string, data: unknown): boolean {
    if (parseInt64Id(data) !== undefined) return true
    ;(int64 as unknown as { errors: unknown[] }).errors = [
      { keyword: 'x-int64', message: 'must be a positive 64-bit integer', params: { code } },
    ]
    return false
  },
} as const

/**
 * Schema of an int64 id refused with `code`. It names no `type`: the keyword checks the value
 * whole, so `1.5` or `true` is refused with the id's own code rather than a type error.
 */
export function int64(code: ErrorCode, description = INT64_DESCRIPTION) {
  return { 'x-int64': code, description, examples: [1818, '9007199254740993'] } as const
}

const INT64_DESCRIPTION =
  'A positive 64-bit integer: a JSON number, or a decimal string above 2^53 (never rounded).'

/**
 * A schema validation failure as a catalogued error: an int64 refusal with its own code and the
 * member it names, anything else INVALID_REQUEST. Undefined for other errors.
 */
export function validationError(error: unknown): PresenceError | undefined {
  const validation = (error as Partial<FastifyError>).validation
  if (!validation) return undefined
  const [first] = validation
  if (first?.keyword === 'x-int64') {
    const member = first.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'the id'
    const code = (first.params as { code: ErrorCode }).code
    return fail(code, `${member} must be a positive 64-bit integer (a JSON number or string).`)
  }
  return fail('INVALID_REQUEST', `Invalid request: ${(error as Error).message}.`)
}
