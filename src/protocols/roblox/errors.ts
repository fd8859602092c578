import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, statusOfKind } from '../../core/errors.js'

/** Roblox error codes we answer with; most Roblox errors carry code 0 and a message. */
export const RobloxCode = {
  Generic: 0,
  /** POST /v1/presence/users: ids missing, empty or not positive int64s. */
  InvalidUserIds: 1,
  /** POST /v1/presence/users: more than 50 ids. */
  TooManyUserIds: 2,
} as const

export const messages = {
  unauthorized: 'Authorization has been denied for this request.',
  csrf: 'Token Validation Failed',
  tooManyRequests: 'Too many requests',
  invalidUserIds: 'The user ids are invalid.',
  tooManyUserIds: 'Too many User Ids being sent in the request.',
  apiKeyInvalid: 'The x-api-key is unknown, expired or revoked.',
  scopeMissing: (scope: string) =>
    `This API key lacks the required scope: ${scope}. Verify your API key has the required scopes.`,
} as const

/** A failure already in Roblox's terms: status, numeric code, message, extra headers. */
export class RobloxError extends Error {
  readonly statusCode: number
  readonly code: number
  readonly headers: Readonly<Record<string, string>>

  constructor(
    statusCode: number,
    code: number,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'RobloxError'
    this.statusCode = statusCode
    this.code = code
    this.headers = headers
  }
}

export const badRequest = (message: string, code: number = RobloxCode.Generic) =>
  new RobloxError(400, code, message)

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

interface Rendered {
  status: number
  code: number
  message: string
  headers: Record<string, string>
}

/** Maps any error reaching the Roblox routes to Roblox's status and `{errors:[...]}` shape. */
export function renderError(error: unknown): Rendered | undefined {
  if (error instanceof RobloxError) {
    return {
      status: error.statusCode,
      code: error.code,
      message: error.message,
      headers: { ...error.headers },
    }
  }
  if (error instanceof PresenceError) {
    const status = statusOfKind[error.kind]
    const headers: Record<string, string> = {}
    if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter)
    const message =
      error.kind === 'unauthorized'
        ? messages.unauthorized
        : error.kind === 'rate_limited'
          ? messages.tooManyRequests
          : error.message
    const code = error.code === 'USER_ID_INVALID' ? RobloxCode.InvalidUserIds : RobloxCode.Generic
    return { status, code, message, headers }
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
    if (rendered.status >= 500) request.log.warn({ err: error }, 'Roblox API unavailable')
    return reply
      .code(rendered.status)
      .headers(rendered.headers)
      .type('application/json; charset=utf-8')
      .send(errorBody(rendered.code, rendered.message))
  })
}
