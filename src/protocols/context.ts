import type { PresenceService } from '../service/presence-service.js'
import type { InvisibleSelfView } from './roblox/view.js'
import type { LeanRoutes } from './shared/lean-routes.js'

/** The settings protocols read; the app passes its Config, which has all of them. */
export interface ProtocolSettings {
  sessionTtlSeconds: number
  xboxHeartbeatSeconds: number
  xboxDefaultTitleId: string
  invisibleSelfView: InvisibleSelfView
  flapGraceMs: number
  realtimeQueueBytes: number
  realtimeReplayFrames: number
  realtimeResumeMs: number
  realtimeStreamsPerUser: number
  realtimeWatchesPerUser: number
  realtimeDetachedWatches: number
  realtimeSubscribeRate: number
  realtimeMaxIds: number
}

/** What every protocol plugin is registered with. */
export interface ProtocolContext {
  /** The only API a protocol calls. */
  service: PresenceService
  settings: ProtocolSettings
  /** Where a protocol may add a hot read route answered on node:http (absent: Fastify only). */
  lean?: LeanRoutes
}
