import { LocalChangeBus } from '../realtime/local-change-bus.js'
import type { ChangeBus } from '../realtime/change-bus.js'
import { MemoryPresenceStore } from './memory/memory-presence-store.js'
import { MemoryRateLimiter } from './memory/memory-rate-limiter.js'
import type { PresenceStore } from './presence-store.js'
import type { ProfileStore } from './profile-store.js'
import type { RateLimiter } from './rate-limiter.js'
import { SqliteProfileStore } from './sqlite/sqlite-profile-store.js'

export interface StoreOptions {
  dataDir: string
  redisUrl?: string | undefined
  redisCluster?: readonly string[] | undefined
  redisPrefix?: string
}

export interface Stores {
  mode: 'embedded' | 'redis' | 'cluster'
  presence: PresenceStore
  profiles: ProfileStore
  bus: ChangeBus
  rateLimiter: RateLimiter
}

/** Options → adapters: the only place that chooses a backend. */
export async function createStores(options: StoreOptions): Promise<Stores> {
  if (options.redisUrl || options.redisCluster) {
    throw new Error('Redis mode is not available yet')
  }
  const profiles = new SqliteProfileStore(options.dataDir)
  const presence = new MemoryPresenceStore({ ledger: profiles })
  return {
    mode: 'embedded',
    presence,
    profiles,
    bus: new LocalChangeBus(),
    rateLimiter: new MemoryRateLimiter(),
  }
}
