import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { fail } from '../../core/errors.js'
import { parseUserId } from '../../core/user-id.js'
import type { ProtocolContext } from '../context.js'
import { headerValue } from '../shared/credentials.js'
import { CSRF_HEADER } from '../roblox/csrf-header.js'
import { namesOf } from './user-routes.js'
import { addBodyParsers } from '../shared/body-parsers.js'
import { strictCaller } from './strict-caller.js'

const JSON_TYPE = 'application/json; charset=utf-8'
/** Ids or names per request, as the users API takes them. */
export const MAX_LOOKUP = 100
const MAX_NAME = 100

/**
 * The users host's batch lookups, as ro.py's `get_users` and `get_users_by_usernames` call
 * them: `POST /v1/users {"userIds":[...],"excludeBannedUsers":false}` and
 * `POST /v1/usernames/users {"usernames":[...],...}`, answered in Roblox's shapes from the
 * users catalogue. A plugin of its own: the companion scope discards bodies, these read them.
 *
 * - By id, every id is a user, as for `GET /v1/users/{id}`: the catalogue's names, else
 *   `User<id>`.
 * - By name, only users the catalogue names are found (ASCII letters in any case); names it does
 *   not know are left out, as Roblox leaves out names no account has.
 * - presenced has no bans: `excludeBannedUsers` is accepted and changes nothing.
 */
export async function userLookupRoutes(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { service } = context
  const { auth } = service

  // the companion scope's catch-all (logout and login bodies, any type, discarded) would make an
  // XML or text body an empty one, a 400: dropped, these take the presence routes' types, 415 else
  app.removeAllContentTypeParsers()
  addBodyParsers(app)

  // as on the presence routes: a credential present but invalid is refused (401), a key reads
  // only with a read scope (403), and a cookie caller proves the request is its own (403 with
  // a token, which clients retry with)
  const admit = {
    onRequest: async (request: FastifyRequest) => {
      const caller = auth.requireReader(strictCaller(request))
      if (caller.kind === 'user' && caller.via === 'cookie') {
        auth.checkCsrf(caller, request.ip, headerValue(request.headers[CSRF_HEADER]))
      }
      request.caller = caller
    },
  }

  app.post(
    '/v1/users',
    { ...admit, schema: { tags: ['companion'], summary: 'Users by id (up to 100)' } },
    async (request, reply) => {
      const body = objectOf(request.body)
      const ids = listOf(body, 'userIds').map((value) => {
        const id = parseUserId(value)
        if (id === undefined) {
          throw fail('USER_IDS_INVALID', `${show(value)} is not a positive 64-bit user id.`)
        }
        return id
      })
      excludeBannedUsers(body)
      const distinct = [...new Set(ids)]
      const names = await Promise.all(distinct.map((id) => namesOf(service, id, request.caller)))
      const data = distinct.map(
        (id, i) =>
          `{"hasVerifiedBadge":false,"id":${id},"name":${JSON.stringify(names[i]!.name)}` +
          `,"displayName":${JSON.stringify(names[i]!.displayName)}}`,
      )
      return sendJson(reply, `{"data":[${data.join(',')}]}`)
    },
  )

  app.post(
    '/v1/usernames/users',
    { ...admit, schema: { tags: ['companion'], summary: 'Users by name (up to 100)' } },
    async (request, reply) => {
      const body = objectOf(request.body)
      const names = listOf(body, 'usernames').map((value) => {
        if (typeof value !== 'string' || value === '' || value.length > MAX_NAME) {
          throw fail(
            'INVALID_REQUEST',
            `usernames must hold names of 1 to ${MAX_NAME} characters, got ${show(value)}.`,
          )
        }
        return value
      })
      excludeBannedUsers(body)
      const distinct = [...new Set(names)]
      const users = await service.getUsersByNames(distinct)
      const data: string[] = []
      distinct.forEach((requested, i) => {
        const user = users[i]
        if (user === undefined) return
        data.push(
          `{"requestedUsername":${JSON.stringify(requested)},"hasVerifiedBadge":false` +
            `,"id":${user.userId},"name":${JSON.stringify(user.name)}` +
            `,"displayName":${JSON.stringify(user.displayName)}}`,
        )
      })
      return sendJson(reply, `{"data":[${data.join(',')}]}`)
    },
  )
}

function objectOf(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw fail('INVALID_REQUEST', 'The request body must be a JSON object.')
  }
  return body as Record<string, unknown>
}

/** A non-empty list of at most MAX_LOOKUP entries; a form's single value is a list of one. */
function listOf(body: Record<string, unknown>, key: string): unknown[] {
  const raw = Object.hasOwn(body, key) ? body[key] : undefined
  const list = typeof raw === 'string' && Object.getPrototypeOf(body) === null ? [raw] : raw
  if (!Array.isArray(list) || list.length === 0) {
    throw fail(
      key === 'userIds' ? 'USER_IDS_INVALID' : 'INVALID_REQUEST',
      `${key} must be a non-empty array.`,
    )
  }
  if (list.length > MAX_LOOKUP) {
    throw fail(
      key === 'userIds' ? 'TOO_MANY_USER_IDS' : 'INVALID_REQUEST',
      `At most ${MAX_LOOKUP} ${key} per request; this one has ${list.length}.`,
    )
  }
  return list as unknown[]
}

function excludeBannedUsers(body: Record<string, unknown>): void {
  const value = body.excludeBannedUsers
  if (value === undefined || value === null || typeof value === 'boolean') return
  if (value === 'true' || value === 'false' || value === 'True' || value === 'False') return
  throw fail('INVALID_REQUEST', `excludeBannedUsers must be true or false, got ${show(value)}.`)
}

function show(value: unknown): string {
  const text =
    typeof value === 'string'
      ? JSON.stringify(value)
      : value !== null && typeof value === 'object'
        ? Array.isArray(value)
          ? 'an array'
          : 'an object'
        : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

function sendJson(reply: FastifyReply, body: string): FastifyReply {
  return reply.code(200).type(JSON_TYPE).send(body)
}
