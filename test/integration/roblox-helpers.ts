import assert from 'node:assert/strict'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { parseJsonLossless } from '../../src/protocols/shared/lossless-json.js'
import type { UserId } from '../../src/core/user-id.js'
import type { Tokens } from '../../src/service/tokens.js'

export const USERS = '/v1/presence/users'
export const REGISTER = '/v1/presence/register-app-presence'

export type Headers = Record<string, string>

/** A record as the wire has it, ids kept exact (strings beyond 2^53). */
export interface WirePresence {
  userPresenceType: number
  lastLocation: string
  placeId: number | string | null
  rootPlaceId: number | string | null
  gameId: string | null
  universeId: number | string | null
  userId: number | string
  lastOnline: string
}

export const FIELDS = [
  'userPresenceType',
  'lastLocation',
  'placeId',
  'rootPlaceId',
  'gameId',
  'universeId',
  'userId',
  'lastOnline',
]

export async function bearer(tokens: Tokens, id: string): Promise<Headers> {
  return { authorization: `Bearer ${await tokens.issue(id as UserId)}` }
}

/** POSTs a JSON body (or raw text with the given content type); never a 5xx. */
export async function post(
  app: FastifyInstance,
  url: string,
  payload: unknown,
  headers: Headers = {},
): Promise<LightMyRequestResponse> {
  const raw = typeof payload === 'string'
  const response = await app.inject({
    method: 'POST',
    url,
    headers: raw ? headers : { 'content-type': 'application/json', ...headers },
    payload: raw ? payload : JSON.stringify(payload),
  })
  assert.ok(response.statusCode < 500, `no 5xx: ${response.statusCode} ${response.body}`)
  return response
}

export async function lookup(
  app: FastifyInstance,
  userIds: unknown[],
  headers: Headers = {},
): Promise<WirePresence[]> {
  const response = await post(app, USERS, { userIds }, headers)
  assert.equal(response.statusCode, 200, response.body)
  return presencesOf(response)
}

export function presencesOf(response: LightMyRequestResponse): WirePresence[] {
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const body = parseJsonLossless(response.body) as { userPresences: WirePresence[] }
  for (const record of body.userPresences) {
    assert.deepEqual(Object.keys(record), FIELDS)
    assert.match(record.lastOnline, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
  }
  return body.userPresences
}

export async function register(
  app: FastifyInstance,
  headers: Headers,
  body: Record<string, unknown>,
): Promise<LightMyRequestResponse> {
  const response = await post(app, REGISTER, body, headers)
  assert.equal(response.statusCode, 200, response.body)
  assert.equal(response.body, '{}')
  return response
}

/** Asserts a Roblox error: status, JSON content type, `{errors:[{code,message}]}`. */
export function assertRobloxError(
  response: LightMyRequestResponse,
  status: number,
  code?: number,
  message?: string | RegExp,
): { code: number; message: string } {
  assert.equal(response.statusCode, status, response.body)
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const body = JSON.parse(response.body) as { errors: Array<{ code: number; message: string }> }
  assert.ok(Array.isArray(body.errors) && body.errors.length === 1, response.body)
  const [error] = body.errors
  assert.deepEqual(Object.keys(error!), ['code', 'message'])
  assert.equal(typeof error!.code, 'number')
  assert.equal(typeof error!.message, 'string')
  if (code !== undefined) assert.equal(error!.code, code, response.body)
  if (typeof message === 'string') assert.equal(error!.message, message)
  else if (message) assert.match(error!.message, message)
  return error!
}
