import { errorRecordSchema } from '../shared/error-record.js'
import { int64 } from '../shared/int64-keyword.js'

/** The error record; a TOO_MANY_IDS refusal tells the limit (`maxIds`, limits.ts tooManyIds). */
const error = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { ...errorRecordSchema.properties.error.properties, maxIds: { type: 'integer' } },
    },
  },
} as const

/**
 * `POST /api/v1/realtime/sse`: the SSE stream of `GET`, with what does not fit a URL (up to 1000
 * positions) in a JSON body. Counts are checked by the handler, so that too many ids or
 * positions is `TOO_MANY_IDS` as on `GET` and the WebSocket, not a schema error.
 */
export const sseBodySchema = {
  tags: ['realtime'],
  summary: 'A Server-Sent Events stream of presence changes, resumable on any node',
  description:
    'Answers text/event-stream: the frames of GET /api/v1/realtime/sse. With "positions": true ' +
    'the frames carry each user\'s history position ("pos"); with "positions" as a map of user ' +
    'id to the last "pos" received, a stream that lived on another node (or is gone) continues ' +
    'from there: "recovered", then exactly the changes missed. Needs a user token.',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['ids'],
    properties: {
      ids: {
        type: 'array',
        items: int64('IDS_INVALID'),
        description: 'The users to watch, at most 1000.',
      },
      resume: {
        type: 'string',
        pattern: '^[A-Za-z0-9_-]{1,64}$',
        description: 'The resume token of the stream (its last snapshot or recovered frame).',
      },
      since: {
        type: 'integer',
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'The last seq received; required with resume.',
      },
      positions: {
        type: ['boolean', 'object'],
        additionalProperties: {
          type: 'string',
          pattern: '^(?:[A-Za-z0-9_-]{22}|[A-Za-z0-9_-]{32})$',
        },
        description:
          'true: frames carry "pos". A map of user id to the last "pos" received: resume from ' +
          'there on any node (at most 1000; frames carry "pos" too).',
      },
    },
  },
  response: { 400: error, 401: error, 413: error, 415: error, 429: error },
} as const
