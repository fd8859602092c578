/*
 * The wire of the Roblox presence API v1, for the OpenAPI document. Bodies are validated and
 * normalized in one pass by requests.ts (Roblox's codes, form spellings), which the lean path
 * shares, and 200 bodies are written by view.ts (exact int64 digits); keep the three in step.
 */

const int64 = {
  type: ['integer', 'string'],
  description: 'A positive 64-bit integer; above 2^53 send it as a string or an exact literal.',
} as const

const nullableInt64 = {
  type: ['integer', 'null'],
  description: 'A 64-bit integer, written with all its digits (never rounded).',
} as const

export const errorResponse = {
  type: 'object',
  properties: {
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { code: { type: 'integer' }, message: { type: 'string' } },
        required: ['code', 'message'],
      },
    },
  },
  required: ['errors'],
} as const

const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { ...errorResponse, description: `Error ${s}` }]))

export const userPresence = {
  type: 'object',
  properties: {
    userPresenceType: {
      type: 'integer',
      enum: [0, 1, 2, 3, 4],
      description:
        '0 Offline, 1 Online, 2 InGame, 3 InStudio; 4 Invisible only to the user themself, where the operator opted in (PRESENCED_INVISIBLE_SELF_VIEW=invisible).',
    },
    lastLocation: { type: 'string' },
    placeId: nullableInt64,
    rootPlaceId: nullableInt64,
    gameId: { type: ['string', 'null'], format: 'uuid' },
    universeId: nullableInt64,
    userId: { type: 'integer' },
    lastOnline: {
      type: 'string',
      format: 'date-time',
      description: 'ISO-8601 UTC; 1970-01-01T00:00:00.000Z when never seen or not visible.',
    },
  },
  required: [
    'userPresenceType',
    'lastLocation',
    'placeId',
    'rootPlaceId',
    'gameId',
    'universeId',
    'userId',
    'lastOnline',
  ],
} as const

export const usersSchema = {
  summary: 'Presence of up to 50 users',
  description:
    'Anonymous or authenticated. One record per distinct id, in the order asked; unknown ' +
    'users are Offline. Accepts application/json, text/json and form bodies ' +
    '(userIds=1&userIds=2 or userIds[]=1).',
  tags: ['roblox'],
  body: {
    type: 'object',
    properties: { userIds: { type: 'array', items: int64, minItems: 1, maxItems: 50 } },
    required: ['userIds'],
  },
  response: {
    200: {
      type: 'object',
      properties: { userPresences: { type: 'array', items: userPresence } },
      required: ['userPresences'],
    },
    ...errorResponses(400, 401, 403, 413, 415, 429),
  },
} as const

export const registerSchema = {
  summary: "Heartbeat the caller's presence on one device",
  description:
    'Needs a signed-in user (cookie + x-csrf-token, or Bearer). Each call keeps the session of ' +
    'this device alive for the session TTL; beat again within x-presence-heartbeat-after ' +
    'seconds. placeId → InGame, location "Studio" → InStudio, else Online; disconnect ends ' +
    'the session at once. gameId and platform are presenced extensions.',
  tags: ['roblox'],
  body: {
    type: 'object',
    properties: {
      location: { type: ['string', 'null'], maxLength: 200 },
      placeId: { type: ['integer', 'string', 'null'], description: 'null or 0: not in a place.' },
      disconnect: { type: ['boolean', 'null'] },
      gameId: { type: ['string', 'null'], format: 'uuid', description: 'Extension.' },
      platform: {
        type: 'string',
        description:
          'Extension: iOS, Android, XboxOne, Studio, PC, Mac, Web or any short name; else ' +
          'derived from the User-Agent. One session per platform.',
      },
    },
  },
  response: {
    200: { type: 'object', properties: {}, additionalProperties: false },
    ...errorResponses(400, 401, 403, 413, 415, 429),
  },
} as const
