/**
 * The baseline `npm run bench:xbox` measures presenced against: the obvious Fastify server a
 * user would write for Xbox's POST /users/batch. A body schema, every PresenceRecord (level
 * `all`) as a ready object in a `Map<number, object>`, Fastify's default JSON.stringify of the
 * reply; no auth, no privacy, no expiry, no catalogue. It holds the bench population
 * (population.ts) as presenced shows it, so it answers presenced's bytes.
 *
 *   naive-xbox-server.ts --users 1000000 --at <epoch ms> --title <platform title id>
 */
import Fastify from 'fastify'
import {
  DEVICE_TYPE,
  PLATFORM_TITLE_NAME,
  isInGame,
  lastOnlineOf,
  placeOfUser,
} from './lib/population.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: { users: { type: 'string' }, at: { type: 'string' }, title: { type: 'string' } },
})
const users = Number(values.users)
const at = Number(values.at)
const platformTitleId = String(values.title)

interface TitleRecord {
  id: string
  name: string
  lastModified: string
  /** The same instant as the Xbox documents' sample writes it (seven fraction digits, no Z). */
  timestamp: string
  placement: string
  state: string
  activity?: { richPresence: string }
}

interface PresenceRecord {
  xuid: string
  state: string
  devices?: Array<{ type: string; titles?: TitleRecord[] }>
}

const presences = new Map<number, PresenceRecord>()
for (let id = 1; id <= users; id++) {
  const inGame = isInGame(id)
  const titles: TitleRecord[] = inGame
    ? [
        {
          id: platformTitleId,
          name: PLATFORM_TITLE_NAME,
          lastModified: new Date(lastOnlineOf(at, users, id)).toISOString(),
          timestamp: `${new Date(lastOnlineOf(at, users, id)).toISOString().slice(0, 23)}0000`,
          placement: 'full',
          state: 'active',
          activity: { richPresence: placeOfUser(id).name },
        },
      ]
    : []
  presences.set(id, {
    xuid: String(id),
    state: inGame ? 'Online' : 'Away',
    devices: [{ type: DEVICE_TYPE, titles }],
  })
}

/** The record at a shallower level: what a user writing this would add for `level`. */
function atLevel(record: PresenceRecord, level: string): PresenceRecord {
  if (level === 'all') return record
  if (level === 'user') return { xuid: record.xuid, state: record.state }
  if (level === 'device')
    return { ...record, devices: record.devices?.map(({ type }) => ({ type })) }
  return {
    ...record,
    devices: record.devices?.map(({ type, titles }) => ({
      type,
      titles: titles?.map(({ activity: _activity, ...title }) => title),
    })),
  }
}

const app = Fastify()
app.post<{ Body: { users: string[]; level?: string } }>(
  '/users/batch',
  {
    schema: {
      body: {
        type: 'object',
        required: ['users'],
        properties: {
          users: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1100 },
          level: { enum: ['user', 'device', 'title', 'all'] },
        },
      },
    },
  },
  async (request) => {
    const level = request.body.level ?? 'title'
    return request.body.users.map((xuid) => {
      const record = presences.get(Number(xuid))
      return record ? atLevel(record, level) : { xuid, state: 'Offline' }
    })
  },
)
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ port: Number(new URL(address).port) }))
