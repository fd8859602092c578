import { nativeView } from '../protocols/native/view.js'
import type { Clock } from '../service/clock.js'
import type { ServiceObserver } from '../service/observer.js'
import { PresenceService } from '../service/presence-service.js'
import { Tokens } from '../service/tokens.js'
import type { Config } from './config.js'
import type { Stores } from './create-stores.js'

export type ServiceConfig = Pick<
  Config,
  | 'sessionTtlSeconds'
  | 'placeTtlSeconds'
  | 'sweepIntervalMs'
  | 'adminKey'
  | 'metricsKey'
  | 'authFailureLimit'
  | 'authFailureWindowSeconds'
  | 'rateLimitMax'
  | 'rateLimitWindowSeconds'
  | 'xboxBurstMax'
  | 'xboxSustainMax'
  | 'webhookAttempts'
  | 'webhookBackoffMs'
  | 'webhookBackoffMaxMs'
  | 'webhookTimeoutMs'
  | 'webhookConcurrency'
  | 'webhookLeaseMs'
  | 'webhookMaxQueued'
  | 'webhookMaxPending'
  | 'webhookPollMs'
  | 'xboxReadBurstMax'
  | 'xboxReadSustainMax'
  | 'serverRateLimitMax'
  | 'serverRateLimitWindowSeconds'
  | 'serverKeyRateLimitMax'
>

export interface CreateServiceOptions {
  clock: Clock
  tokens: Tokens
  observer?: ServiceObserver
  onBackgroundError?: (error: unknown, duty: string) => void
}

/** The service over a backend's adapters, with the settings of the config. */
export function createService(
  stores: Stores,
  config: ServiceConfig,
  options: CreateServiceOptions,
): PresenceService {
  return new PresenceService({
    stores: {
      presence: stores.presence,
      privacy: stores.profiles,
      catalogue: stores.profiles,
      credentials: stores.profiles,
      bus: stores.bus,
      ...(stores.history && { history: stores.history }),
      ...(stores.checkpoints && { checkpoints: stores.checkpoints }),
      ...(stores.holdings && { holdings: stores.holdings }),
      ...(stores.duties && { duties: stores.duties }),
      rateLimiter: stores.rateLimiter,
      localRateLimiter: stores.localRateLimiter,
    },
    tokens: options.tokens,
    clock: options.clock,
    settings: {
      sessionTtlMs: config.sessionTtlSeconds * 1000,
      placeTrustMs: config.placeTtlSeconds * 1000,
      sweepIntervalMs: config.sweepIntervalMs,
      adminKey: config.adminKey,
      metricsKey: config.metricsKey,
      authFailures: {
        max: config.authFailureLimit,
        windowMs: config.authFailureWindowSeconds * 1000,
      },
      rateLimits: {
        requestMax: config.rateLimitMax,
        requestWindowMs: config.rateLimitWindowSeconds * 1000,
        titleBurstMax: config.xboxBurstMax,
        titleSustainMax: config.xboxSustainMax,
        xboxReadBurstMax: config.xboxReadBurstMax,
        xboxReadSustainMax: config.xboxReadSustainMax,
        serverMax: config.serverRateLimitMax,
        serverWindowMs: config.serverRateLimitWindowSeconds * 1000,
        ...(config.serverKeyRateLimitMax !== undefined && {
          serverKeyMax: config.serverKeyRateLimitMax,
        }),
      },
    },
    ...(stores.webhooks && {
      webhooks: {
        store: stores.webhooks,
        // payloads show a presence exactly as the native API does
        view: nativeView,
        settings: {
          maxAttempts: config.webhookAttempts,
          backoffMs: config.webhookBackoffMs,
          backoffMaxMs: config.webhookBackoffMaxMs,
          timeoutMs: config.webhookTimeoutMs,
          concurrency: config.webhookConcurrency,
          leaseMs: config.webhookLeaseMs,
          maxQueued: config.webhookMaxQueued,
          maxPending: config.webhookMaxPending,
          pollMs: config.webhookPollMs,
        },
      },
    }),
    ...(options.observer && { observer: options.observer }),
    ...(options.onBackgroundError && { onBackgroundError: options.onBackgroundError }),
  })
}
