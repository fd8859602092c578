/**
 * @presenced/client: a typed client for presenced's Roblox presence v1, Xbox Live presence and
 * native real-time APIs. Runs on Node 20+ and in browsers (fetch; WebSocket where available).
 *
 * @example
 * import { createClient, PresenceType } from '@presenced/client'
 * const client = createClient({ baseUrl: 'http://127.0.0.1:8080' })
 * const [user] = await client.getUserPresences([123])
 * console.log(PresenceType[user.type], user.place?.id, user.lastOnline.toISOString())
 */
export {
  createClient,
  PresencedClient,
  ROBLOX_BATCH_LIMIT,
  type AppPresenceInput,
  type AppPresenceResult,
  type CallOptions,
  type ClientOptions,
  type KeepAliveOptions,
} from './client.js'
export {
  InvalidIdError,
  PresencedError,
  type ErrorProtocol,
  type TokenRefusedReason,
} from './errors.js'
export type { HeartbeatHandle } from './heartbeat.js'
export type { FetchLike, RetryOptions, Sleep } from './http.js'
export type { HasId, Id } from './ids.js'
export type { TokenProvider, TokenRequest } from './token.js'
export { PresenceType, type Job, type Place, type Presence, type Universe } from './presence.js'
export type {
  OfflineReason,
  PresenceEvent,
  PresenceEventType,
  SubscribeOptions,
  SubscriptionEvents,
  WebSocketLike,
} from './watch.js'
export type { Subscription } from './subscription.js'
export type * from './wire.js'
export {
  XBOX_BATCH_LIMIT,
  XboxClient,
  type TitlePresenceOptions,
  type XboxBatchQuery,
  type XboxDevice,
  type XboxPresence,
  type XboxTitle,
} from './xbox.js'
