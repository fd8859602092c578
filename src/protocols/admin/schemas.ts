import { int64 } from '../shared/int64-keyword.js'

/** JSON schemas of the admin API: they validate every body (no coercion; ids as int64). */

export const visibilitySchema = { type: 'string', enum: ['everyone', 'friends', 'nobody'] } as const

export const settingsBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { visibility: visibilitySchema, invisible: { type: 'boolean' } },
} as const

export const placeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['universeId', 'name'],
  properties: {
    universeId: int64('UNIVERSE_ID_INVALID'),
    rootPlaceId: int64('PLACE_ID_INVALID'),
    name: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const

export const userBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    displayName: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const

export const createKeyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'scopes'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    scopes: {
      type: 'array',
      minItems: 1,
      maxItems: 4,
      items: {
        type: 'string',
        enum: ['presence:read', 'presence:read:private', 'presence:write', 'admin'],
      },
    },
    /** ISO-8601 instant. */
    expiresAt: { type: 'string', maxLength: 40 },
    /** Seconds from now; an alternative to expiresAt. */
    expiresIn: { type: 'integer', minimum: 1 },
    universes: { type: 'array', maxItems: 1000, items: int64('UNIVERSE_ID_INVALID') },
  },
} as const

export const tags = ['admin']
