import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, fail, statusOfKind, type ErrorCode } from '../../core/errors.js'
import { AUTH_CHALLENGE_HEADER, authChallenge } from '../shared/auth-challenge.js'

/**
 * Xbox error codes: a stable number per failure (Xbox error codes are integers), rendered by
 * `sendXboxError`.
 */
export const XboxErrorCode = {
  InvalidRequest: 1000,
  InvalidJson: 1001,
  ProhibitedMember: 1002,
  TooManyUsers: 1003,
  InvalidXuid: 1004,
  UnsupportedContractVersion: 1005,
  Unauthorized: 1006,
  Forbidden: 1007,
  NotFound: 1008,
  MethodNotAllowed: 1009,
  NotAcceptable: 1010,
  PayloadTooLarge: 1011,
  UnsupportedMediaType: 1012,
  Unavailable: 1013,
  Internal: 1014,
} as const
export type XboxErrorCode = (typeof XboxErrorCode)[keyof typeof XboxErrorCode]

/** The Xbox number of catalogue codes that have their own; others go by status. */
const xboxCodes: Partial<Record<ErrorCode, XboxErrorCode>> = {
  INVALID_JSON: XboxErrorCode.InvalidJson,
  PROHIBITED_MEMBER: XboxErrorCode.ProhibitedMember,
  TOO_MANY_USER_IDS: XboxErrorCode.TooManyUsers,
  XUID_INVALID: XboxErrorCode.InvalidXuid,
  CONTRACT_VERSION_UNSUPPORTED: XboxErrorCode.UnsupportedContractVersion,
}

const codeOfStatus: Record<number, XboxErrorCode> = {
  401: XboxErrorCode.Unauthorized,
  403: XboxErrorCode.Forbidden,
  404: XboxErrorCode.NotFound,
  405: XboxErrorCode.MethodNotAllowed,
  406: XboxErrorCode.NotAcceptable,
  413: XboxErrorCode.PayloadTooLarge,
  415: XboxErrorCode.UnsupportedMediaType,
  500: XboxErrorCode.Internal,
  503: XboxErrorCode.Unavailable,
}

export const badRequest = (message: string, code: ErrorCode = 'INVALID_REQUEST') =>
  fail(code, message)

/**
 * The body of every Xbox error. `code`/`description`/`source` is the shape Xbox services send;
 * `errorCode`/`errorMessage` repeat it as the documented ServiceErrorResponse, so clients reading
 * either find it.
 */
export interface XboxErrorBody {
  code: number
  source: 'presenced'
  description: string
  errorCode: number
  errorMessage: string
}

export function sendXboxError(
  reply: FastifyReply,
  status: number,
  code: XboxErrorCode,
  description: string,
): FastifyReply {
  return reply.code(status).type(JSON_TYPE).send(xboxErrorBody(code, description))
}

const JSON_TYPE = 'application/json; charset=utf-8'

/** Xbox's error record (also written by hand where no reply object exists: framework-errors.ts). */
export function xboxErrorBody(code: XboxErrorCode, description: string): XboxErrorBody {
  return { code, source: 'presenced', description, errorCode: code, errorMessage: description }
}

const fastifyCodes: Record<string, [number, XboxErrorCode, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    415,
    XboxErrorCode.UnsupportedMediaType,
    'The request body must be application/json.',
  ],
  FST_ERR_CTP_BODY_TOO_LARGE: [
    413,
    XboxErrorCode.PayloadTooLarge,
    'The request body is too large.',
  ],
  FST_ERR_CTP_EMPTY_JSON_BODY: [
    400,
    XboxErrorCode.InvalidJson,
    'The request body is empty; send a JSON object.',
  ],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    400,
    XboxErrorCode.InvalidRequest,
    'The Content-Length does not match the body.',
  ],
  INVALID_JSON: [400, XboxErrorCode.InvalidJson, 'The request body is not valid JSON.'],
}

/** An error as the Xbox API answers it: status, headers and JSON body. */
export interface RenderedXboxError {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * Xbox's fine-grained rate limiting answers 429 with the rule that refused, not an error record.
 */
function rateLimited(error: PresenceError): RenderedXboxError {
  const limit = error.details.rateLimit
  const headers: Record<string, string> = { 'content-type': JSON_TYPE }
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter)
  const body = limit
    ? {
        version: 1,
        currentRequests: limit.count,
        maxRequests: limit.max,
        periodInSeconds: limit.windowMs / 1000,
        type: limit.rule,
      }
    : { version: 1, type: 'rate' }
  return { status: 429, headers, body: JSON.stringify(body) }
}

function rendered(status: number, code: XboxErrorCode, description: string): RenderedXboxError {
  return {
    status,
    headers: { 'content-type': JSON_TYPE },
    body: JSON.stringify(xboxErrorBody(code, description)),
  }
}

/**
 * Any error of an Xbox route in the Xbox shape; undefined for the unexpected (a 500, logged).
 * Shared by the error handler and the lean batch route.
 */
export function renderXboxError(error: unknown): RenderedXboxError | undefined {
  if (error instanceof PresenceError) {
    if (error.kind === 'rate_limited') return rateLimited(error)
    const status = statusOfKind[error.kind]
    const code = xboxCodes[error.code] ?? codeOfStatus[status] ?? XboxErrorCode.InvalidRequest
    const out = rendered(status, code, error.message)
    if (error.retryAfter !== undefined) out.headers['retry-after'] = String(error.retryAfter)
    if (error.details.allow !== undefined) out.headers.allow = error.details.allow
    const challenge = authChallenge(error)
    if (challenge !== undefined) out.headers[AUTH_CHALLENGE_HEADER] = challenge
    return out
  }
  const fastifyError = error as Partial<FastifyError> | undefined
  const known = fastifyError?.code ? fastifyCodes[fastifyError.code] : undefined
  if (known) return rendered(known[0], known[1], known[2])
  const status = fastifyError?.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return rendered(
      status,
      codeOfStatus[status] ?? XboxErrorCode.InvalidRequest,
      fastifyError?.message ?? 'Bad request.',
    )
  }
  return undefined
}

/** The reply to an error the routes did not expect. */
export const xboxInternalError = rendered(
  500,
  XboxErrorCode.Internal,
  'Internal error; see the server log.',
)

/** Maps any error of an Xbox route to the Xbox shape; only the unexpected is a 500. */
export function xboxErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  let out = renderXboxError(error)
  if (out === undefined) {
    request.log.error({ err: error }, 'xbox request failed')
    out = xboxInternalError
  }
  return reply.code(out.status).headers(out.headers).send(out.body)
}
