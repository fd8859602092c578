const tags = ['servers']
const security = [{ apiKey: [] }]

import { errorRecordSchema as error } from '../shared/error-record.js'
import { int64 } from '../shared/int64-keyword.js'

const params = {
  type: 'object',
  required: ['gameId'],
  properties: { gameId: { type: 'string', description: "The server instance's uuid." } },
} as const

const errors = { 400: error, 401: error, 403: error, 404: error, 429: error, 503: error }

export const reportSchema = {
  tags,
  security,
  summary: "Reports the full set of a game server's players (PUT semantics, idempotent)",
  description:
    'Needs an API key with presence:write (limited to its universes, if it has a list). Players ' +
    'listed come online InGame on this server; players of the previous report who are not listed ' +
    'leave it; every report is a heartbeat for all of them. At most 10,000 players.',
  params,
  body: {
    type: 'object',
    required: ['placeId', 'players'],
    additionalProperties: false,
    properties: {
      placeId: int64('PLACE_ID_INVALID'),
      universeId: int64('UNIVERSE_ID_INVALID'),
      players: { type: 'array', items: int64('USER_ID_INVALID') },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        gameId: { type: 'string' },
        universeId: { type: ['string', 'null'] },
        players: { type: 'integer' },
        joined: { type: 'integer' },
        left: { type: 'integer' },
        expiresAt: { type: 'string', format: 'date-time' },
      },
    },
    ...errors,
  },
}

export const endSchema = {
  tags,
  security,
  summary: 'Ends a game server and all its players at once (shutdown)',
  params,
  response: {
    200: {
      type: 'object',
      properties: { gameId: { type: 'string' }, ended: { type: 'integer' } },
    },
    ...errors,
  },
}

export const rosterSchema = {
  tags,
  security,
  summary: "A game server's roster as last reported",
  description: 'Needs an API key with presence:read. 404 once the server stopped reporting.',
  params,
  response: {
    200: {
      type: 'object',
      properties: {
        gameId: { type: 'string' },
        placeId: { type: ['string', 'null'] },
        universeId: { type: ['string', 'null'] },
        players: { type: 'array', items: { type: 'string' } },
        updatedAt: { type: 'string', format: 'date-time' },
        expiresAt: { type: 'string', format: 'date-time' },
      },
    },
    ...errors,
  },
}
