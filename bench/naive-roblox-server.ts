/**
 * The baseline `npm run bench` measures presenced against: the obvious Fastify server a user
 * would write for POST /v1/presence/users. A body schema, every presence as a ready object in a
 * `Map<number, object>`, Fastify's default JSON.stringify of the reply; no auth, no privacy, no
 * expiry. It holds the bench population (population.ts), so it answers presenced's bytes.
 *
 *   naive-roblox-server.ts --users 1000000 --at <epoch ms>     prints {"port":…}
 */
import Fastify from 'fastify'
import { GAME_ID, NEVER_ONLINE, isInGame, lastOnlineOf, placeOfUser } from './lib/population.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: { users: { type: 'string' }, at: { type: 'string' } },
})
const users = Number(values.users)
const at = Number(values.at)

const presences = new Map<number, object>()
for (let id = 1; id <= users; id++) {
  const place = isInGame(id) ? placeOfUser(id) : undefined
  presences.set(id, {
    userPresenceType: place ? 2 : 1,
    lastLocation: place ? place.name : 'Website',
    placeId: place ? Number(place.placeId) : null,
    rootPlaceId: place ? Number(place.placeId) : null,
    gameId: place ? GAME_ID : null,
    universeId: place ? Number(place.universeId) : null,
    userId: id,
    lastOnline: new Date(lastOnlineOf(at, users, id)).toISOString(),
  })
}

const offline = (id: number) => ({
  userPresenceType: 0,
  lastLocation: 'Offline',
  placeId: null,
  rootPlaceId: null,
  gameId: null,
  universeId: null,
  userId: id,
  lastOnline: NEVER_ONLINE,
})

const app = Fastify()
app.post<{ Body: { userIds: number[] } }>(
  '/v1/presence/users',
  {
    schema: {
      body: {
        type: 'object',
        required: ['userIds'],
        properties: {
          userIds: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 200 },
        },
      },
    },
  },
  async (request) => ({
    userPresences: request.body.userIds.map((id) => presences.get(id) ?? offline(id)),
  }),
)
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ port: Number(new URL(address).port) }))
