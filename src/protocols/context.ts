import type { PresenceService } from '../service/presence-service.js'
import type { Tokens } from '../service/tokens.js'
import type { LeanRoutes } from './shared/lean-routes.js'
import type { RateLimiter } from '../store/rate-limiter.js'

/** The settings protocols read; the app passes its Config, which has all of them. */
export interface ProtocolSettings {
  sessionTtlSeconds: number
  adminKey: string | undefined
  rateLimitMax: number
  rateLimitWindowSeconds: number
  xboxHeartbeatSeconds: number
  xboxBurstMax: number
  xboxSustainMax: number
  xboxDefaultTitleId: string
  invisibleAsOffline: boolean
  flapGraceMs: number
  realtimeQueueBytes: number
  realtimeReplayFrames: number
  realtimeResumeMs: number
}

/** What every protocol plugin is registered with. */
export interface ProtocolContext {
  service: PresenceService
  tokens: Tokens
  /** Shared across nodes in fleet mode. */
  rateLimiter: RateLimiter
  settings: ProtocolSettings
  /** Where a protocol may add a hot read route answered on node:http (absent: Fastify only). */
  lean?: LeanRoutes
}
