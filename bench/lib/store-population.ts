import type { Activity } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import type { MemoryPresenceStore } from '../../src/store/memory/memory-presence-store.js'

/** The first user id: large enough that ids take 10 digits, as real ones do. */
export const FIRST_USER = 1_000_000_001

/**
 * User i's activity as the service would store it: a third Online on the website, the others
 * InGame in one of 500 places on one of 20,000 game servers, filled from the catalogue.
 */
export function activityOf(i: number): Activity {
  if (i % 3 === 0) return { kind: 'online', location: `Web${'site'}` }
  const place = i % 500
  const server = i % 20_000
  return {
    kind: 'inGame',
    placeId: String(1_000_000 + place),
    rootPlaceId: String(1_000_000 + place),
    universeId: String(2_000_000 + place),
    gameId: `6f1c1b4e-2f7a-4f5e-9a57-${String(server).padStart(12, '0')}`,
    location: `Place ${place}`,
  }
}

/**
 * Users FIRST_USER.. with one live app session each (an hour to live), heartbeated 1 ms apart
 * from `now`. Every write brings fresh strings, as parsed request bodies do.
 */
export async function fillStore(
  store: MemoryPresenceStore,
  users: number,
  now: number,
): Promise<void> {
  for (let i = 0; i < users; i++) {
    await store.heartbeat(
      {
        userId: String(FIRST_USER + i) as UserId,
        key: `app:${'Web'}`,
        source: 'app',
        deviceType: `W${'eb'}`,
        activity: activityOf(i),
        ttlMs: 3_600_000,
      },
      now + i,
    )
  }
}
