import type { FastifyInstance } from 'fastify'
import { errors } from '../../core/errors.js'
import { PresenceType, type Session } from '../../core/presence.js'
import type { UserSettings } from '../../core/privacy.js'
import { parseInt64Id, parseUserId, type UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'
import { issuerOf } from './auth.js'
import { badRequest, requireJsonBody } from './errors.js'
import { placeBody, settingsBody, tags, userBody } from './schemas.js'

interface IdParams {
  id: string
}
interface PairParams {
  id: string
  otherId: string
}

export function userIdParam(value: string): UserId {
  const id = parseUserId(value)
  if (!id) throw errors.userIdInvalid(value)
  return id
}

/** Settings as the API shows them: the frozen lastOnline is internal. */
export function publicSettings(settings: UserSettings): {
  visibility: UserSettings['visibility']
  invisible: boolean
} {
  return { visibility: settings.visibility, invisible: settings.invisible }
}

const stateNames: Record<number, string> = {
  [PresenceType.Offline]: 'offline',
  [PresenceType.Online]: 'online',
  [PresenceType.InGame]: 'inGame',
  [PresenceType.InStudio]: 'inStudio',
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString()
}

/** Users, settings, relationships, places and raw presence, under /admin/v1. */
export async function adminRoutes(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  app.addHook('preValidation', requireJsonBody)

  app.get<{ Params: IdParams }>(
    '/users/:id/settings',
    { schema: { tags, summary: "A user's privacy settings" } },
    async (request) => publicSettings(await service.getSettings(userIdParam(request.params.id))),
  )

  app.put<{ Params: IdParams; Body: Partial<Pick<UserSettings, 'visibility' | 'invisible'>> }>(
    '/users/:id/settings',
    {
      schema: {
        tags,
        summary: "Sets a user's privacy settings (fields left out keep their value)",
        body: settingsBody,
      },
    },
    async (request) => {
      const id = userIdParam(request.params.id)
      return publicSettings(await service.putSettings(id, request.body))
    },
  )

  app.get<{ Params: IdParams }>(
    '/users/:id/friends',
    { schema: { tags, summary: "A user's friends" } },
    async (request) => {
      const id = userIdParam(request.params.id)
      return { userId: id, friends: await service.listFriends(id) }
    },
  )

  const pair = (params: PairParams): [UserId, UserId] => {
    const a = userIdParam(params.id)
    const b = userIdParam(params.otherId)
    if (a === b) {
      throw badRequest('A relationship needs two different users.')
    }
    return [a, b]
  }

  for (const [method, friends] of [
    ['PUT', true],
    ['DELETE', false],
  ] as const) {
    app.route<{ Params: PairParams }>({
      method,
      url: '/users/:id/friends/:otherId',
      schema: { tags, summary: friends ? 'Makes two users friends' : 'Ends a friendship' },
      handler: async (request, reply) => {
        const [a, b] = pair(request.params)
        await service.setFriends(a, b, friends)
        return reply.code(204).send()
      },
    })
    app.route<{ Params: PairParams }>({
      method,
      url: '/users/:id/blocks/:otherId',
      schema: { tags, summary: friends ? 'User id blocks otherId' : 'User id unblocks otherId' },
      handler: async (request, reply) => {
        const [blocker, blocked] = pair(request.params)
        await service.setBlocked(blocker, blocked, friends)
        return reply.code(204).send()
      },
    })
  }

  app.get<{ Params: IdParams }>(
    '/users/:id',
    { schema: { tags, summary: 'An entry of the users catalogue' } },
    async (request) => {
      const id = userIdParam(request.params.id)
      const user = await service.getUser(id)
      if (!user) throw errors.notFound(`User ${id} is not in the users catalogue.`)
      return user
    },
  )

  app.put<{ Params: IdParams; Body: { name: string; displayName?: string } }>(
    '/users/:id',
    {
      schema: { tags, summary: 'Adds or replaces an entry of the users catalogue', body: userBody },
    },
    async (request) => {
      const user = {
        userId: userIdParam(request.params.id),
        name: request.body.name,
        displayName: request.body.displayName ?? request.body.name,
      }
      await service.putUser(user)
      return user
    },
  )

  app.get<{ Params: IdParams }>(
    '/users/:id/presence',
    { schema: { tags, summary: "A user's raw presence, without privacy (operators only)" } },
    async (request) => {
      const id = userIdParam(request.params.id)
      const { presence, settings, state } = await service.rawPresence(id)
      return {
        userId: id,
        state,
        stateName: stateNames[state],
        settings: publicSettings(settings),
        lastOnline: iso(presence.lastOnline),
        frozenLastOnline: settings.invisible ? iso(settings.frozenLastOnline) : null,
        sessions: presence.sessions.map(sessionView),
      }
    },
  )

  app.get<{ Params: { placeId: string } }>(
    '/places/:placeId',
    { schema: { tags, summary: 'A place of the catalogue' } },
    async (request) => {
      const placeId = placeIdParam(request.params.placeId)
      const place = await service.getPlace(placeId)
      if (!place) throw errors.notFound(`Place ${placeId} is not in the catalogue.`)
      return place
    },
  )

  app.put<{
    Params: { placeId: string }
    Body: { universeId: unknown; rootPlaceId?: unknown; name: string }
  }>(
    '/places/:placeId',
    { schema: { tags, summary: 'Adds or replaces a place of the catalogue', body: placeBody } },
    async (request) => {
      const placeId = placeIdParam(request.params.placeId)
      const universeId = parseInt64Id(request.body.universeId)
      if (!universeId) throw badRequest('universeId must be a positive 64-bit integer.')
      const rootPlaceId =
        request.body.rootPlaceId === undefined ? placeId : parseInt64Id(request.body.rootPlaceId)
      if (!rootPlaceId) throw badRequest('rootPlaceId must be a positive 64-bit integer.')
      const place = { placeId, universeId, rootPlaceId, name: request.body.name }
      await service.putPlace(place, issuerOf(request.caller))
      return place
    },
  )
}

function placeIdParam(value: string): string {
  const id = parseInt64Id(value)
  if (!id) throw badRequest('The place id must be a positive 64-bit integer.')
  return id
}

function sessionView(session: Session) {
  return {
    key: session.key,
    source: session.source,
    deviceType: session.deviceType,
    startedAt: iso(session.startedAt),
    updatedAt: iso(session.updatedAt),
    expiresAt: iso(session.expiresAt),
    activity: session.activity,
  }
}
