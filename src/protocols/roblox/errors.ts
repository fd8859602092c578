import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, fail, type ErrorCode } from '../../core/errors.js'
import { AUTH_CHALLENGE_HEADER, authChallenge } from '../shared/auth-challenge.js'
import { warnFailure } from '../shared/warn-failure.js'
import { CSRF_HEADER } from './csrf-header.js'

/** Roblox error codes we answer with; most Roblox errors carry code 0 and a message. */
export const RobloxCode = {
  Generic: 0,
  /** POST /v1/presence/users: ids missing, empty or not positive int64s. */
  InvalidUserIds: 1,
  /** POST /v1/presence/users: more than 50 ids. */
  TooManyUserIds: 2,
  /** GET /v1/users/{id}: no such user. */
  UserNotFound: 3,
} as const

/** The Roblox numeric code of each catalogue code that has one; every other code is 0. */
const robloxCodes: Partial<Record<ErrorCode, number>> = {
  USER_IDS_INVALID: RobloxCode.InvalidUserIds,
  USER_ID_INVALID: RobloxCode.InvalidUserIds,
  TOO_MANY_USER_IDS: RobloxCode.TooManyUserIds,
  USER_NOT_FOUND: RobloxCode.UserNotFound,
}

export const messages = {
  unauthorized: 'Authorization has been denied for this request.',
  tooManyRequests: 'Too many requests',
  invalidUserIds: 'The user ids are invalid.',
  tooManyUserIds: 'Too many User Ids being sent in the request.',
} as const

export const badRequest = (message: string, code: ErrorCode = 'INVALID_REQUEST') =>
  fail(code, message)

/** What Fastify's own body-handling errors mean to a Roblox client. */
const fastifyErrors: Record<string, { status: number; message: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    message:
      'Unsupported media type: send application/json, text/json or application/x-www-form-urlencoded.',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    message: 'The Content-Length header does not match the body.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: 'The request body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, message: 'The request body is not valid JSON.' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.' },
}

export interface RenderedError {
  status: number
  code: number
  message: string
  headers: Record<string, string>
}

/** Maps any error reaching the Roblox routes to Roblox's status and `{errors:[...]}` shape. */
export function renderError(error: unknown): RenderedError | undefined {
  if (error instanceof PresenceError) {
    const headers: Record<string, string> = {}
    const { details } = error
    if (details.retryAfter !== undefined) headers['retry-after'] = String(details.retryAfter)
    if (details.csrfToken !== undefined) headers[CSRF_HEADER] = details.csrfToken
    if (details.allow !== undefined) headers.allow = details.allow
    // beside Roblox's body, which stays as Roblox words it: whether to refresh the token
    const challenge = authChallenge(error)
    if (challenge !== undefined) headers[AUTH_CHALLENGE_HEADER] = challenge
    // Roblox clients match these two messages: they are Roblox's, whatever the cause
    const message =
      error.code === 'UNAUTHENTICATED'
        ? messages.unauthorized
        : error.kind === 'rate_limited'
          ? messages.tooManyRequests
          : error.message
    return { status: error.status, code: robloxCodes[error.code] ?? 0, message, headers }
  }
  const fastifyError = error as Partial<FastifyError> | undefined
  const known = fastifyError?.code ? fastifyErrors[fastifyError.code] : undefined
  if (known) return { status: known.status, code: 0, message: known.message, headers: {} }
  if (fastifyError?.validation) {
    return { status: 400, code: 0, message: fastifyError.message ?? 'Bad request.', headers: {} }
  }
  const status = fastifyError?.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, code: 0, message: fastifyError?.message ?? 'Bad request.', headers: {} }
  }
  return undefined
}

export function errorBody(code: number, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] })
}

/**
 * The Roblox scope's error handler: every error leaves as `{"errors":[{"code","message"}]}`
 * with Content-Type application/json. Anything unrecognised is a bug: logged, answered 500.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const rendered = renderError(error)
    if (!rendered) {
      request.log.error({ err: error }, 'unexpected error in the Roblox API')
      return reply
        .code(500)
        .type('application/json; charset=utf-8')
        .send(errorBody(0, 'An unexpected error occurred.'))
    }
    if (rendered.status >= 500) warnFailure(request.log, error, 'Roblox API unavailable')
    return reply
      .code(rendered.status)
      .headers(rendered.headers)
      .type('application/json; charset=utf-8')
      .send(errorBody(rendered.code, rendered.message))
  })
}
