/**
 * What the Redis benches load into presenced: a catalogue of places, and users put online by
 * game servers of 100 players in those places (bench/redis-http-server.ts,
 * bench/redis-lookup-worker.ts, bench/heartbeat-server.ts).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app/build-app.js'
import { testConfig } from '../../src/app/config.js'
import { BENCH_SERVER_CONFIG } from './bench-config.js'
import type { PresenceService } from '../../src/service/presence-service.js'
import { countedRedisStores, type CountedStores } from '../redis-setup.js'

/**
 * presenced for a Redis bench: on Redis (`url` given, under `prefix`, its round trips counted)
 * or in embedded mode, sessions of an hour, no rate limit reached; its duties stopped (no
 * janitor), so that only the bench touches the stores.
 */
export async function benchPresenced(url: string | undefined, prefix: string) {
  let counted: CountedStores | undefined
  if (url !== undefined) counted = await countedRedisStores(url, prefix)
  const presenced = await buildApp(
    testConfig({
      dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
      sessionTtlSeconds: 3600,
      ...BENCH_SERVER_CONFIG,
    }),
    counted ? { stores: counted.stores } : {},
  )
  await presenced.service.stop()
  return { presenced, counted }
}

const PLAYERS_PER_SERVER = 100

/** Places 1000000.. with universes 2000000.., `count` of them. */
export async function putPlaces(service: PresenceService, count: number): Promise<void> {
  for (let p = 0; p < count; p++) {
    const placeId = String(1_000_000 + p)
    await service.putPlace({
      placeId,
      universeId: String(2_000_000 + p),
      rootPlaceId: placeId,
      name: `Place ${p}`,
    })
  }
}

/** Users 1..`users` online on game servers of 100 players, server s in place s mod `places`. */
export async function reportPlayers(
  service: PresenceService,
  users: number,
  places: number,
): Promise<void> {
  const servers = service.servers
  for (let s = 0; s * PLAYERS_PER_SERVER < users; s++) {
    const players: string[] = []
    for (let j = 1; j <= PLAYERS_PER_SERVER && s * PLAYERS_PER_SERVER + j <= users; j++) {
      players.push(String(s * PLAYERS_PER_SERVER + j))
    }
    await servers.report(
      { keyId: 'bench', universes: [] },
      `6f1c1b4e-2f7a-4f5e-9a57-${String(s).padStart(12, '0')}`,
      { placeId: String(1_000_000 + (s % places)), players },
    )
  }
}
