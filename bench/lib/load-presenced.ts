/**
 * presenced with the bench population (population.ts) in its embedded store, built in this
 * process and not listening: bench-server.ts listens on it, read-path.ts times its stages.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp, type PresencedApp } from '../../src/app/build-app.js'
import { testConfig } from '../../src/app/config.js'
import { BENCH_SERVER_CONFIG } from './bench-config.js'
import type { UserId } from '../../src/core/user-id.js'
import {
  DEVICE_TYPE,
  GAME_ID,
  PLACES,
  PLATFORM_TITLE_NAME,
  STRANGER_ID,
  VIEWER_ID,
  blockedOf,
  friendsOf,
  isInGame,
  lastOnlineOf,
  placeOf,
  placeOfUser,
} from './population.js'

export interface LoadOptions {
  users: number
  /** When the last user's heartbeat happened (epoch ms); see population.ts. */
  at: number
  /** The viewer's friends and blocked users among 1..users. */
  friends: number
  blocked: number
  /** Changes kept per user for real-time resume (PRESENCED_REALTIME_HISTORY); default: config's. */
  history?: number
  /**
   * The places catalogue changed at `at`, after every user's last heartbeat: reads then check
   * each session's place against the catalogue, as they do for a heartbeat interval after a
   * real change. By default the catalogue was filled before the users came online, as in a
   * service running for longer than that.
   */
  catalogueJustChanged?: boolean
}

export interface LoadedPresenced {
  presenced: PresencedApp
  loadSeconds: number
  /** Bearer/XBL3.0 tokens of the viewer (with relations) and of a stranger (none). */
  viewerToken: string
  strangerToken: string
}

export async function loadPresenced(options: LoadOptions): Promise<LoadedPresenced> {
  const { users, at } = options
  // the service starts and the places are catalogued a minute before the first heartbeat
  let clock = options.catalogueJustChanged ? at : lastOnlineOf(at, users, 1) - 60_000
  let loading = true
  const presenced = await buildApp(
    testConfig({
      dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
      // long enough that no session expires during any bench run
      sessionTtlSeconds: 86_400,
      ...BENCH_SERVER_CONFIG,
      ...(options.history !== undefined && { realtimeHistory: options.history }),
      // the Xbox read budget is its own (30 per 15 s by default): a bench answered 429s
      xboxReadBurstMax: 1_000_000_000,
      xboxReadSustainMax: 1_000_000_000,
      logLevel: 'silent',
    }),
    // writes happen at the population's instants; reads after the load see the real time
    { clock: { now: () => (loading ? clock : Date.now()) } },
  )
  const { service } = presenced
  await presenced.service.stop()
  for (let p = 0; p < PLACES; p++) {
    const place = placeOf(p)
    await service.putPlace({ ...place, rootPlaceId: place.placeId })
  }
  if (options.catalogueJustChanged) clock = at
  await presenced.stores.profiles.putTitle({
    titleId: presenced.config.xboxDefaultTitleId,
    name: PLATFORM_TITLE_NAME,
    strings: {},
  })

  const started = performance.now()
  for (let i = 1; i <= users; i++) {
    clock = lastOnlineOf(at, users, i)
    await service.heartbeat({
      userId: String(i) as UserId,
      key: `app:${DEVICE_TYPE}`,
      source: 'app',
      deviceType: DEVICE_TYPE,
      activity: isInGame(i)
        ? { kind: 'inGame', placeId: placeOfUser(i).placeId, gameId: GAME_ID }
        : { kind: 'online', location: 'Website' },
    })
  }
  const loadSeconds = (performance.now() - started) / 1000

  // relations are made at `at`, while every user is online: a blocked user shows Offline with
  // the block instant as lastOnline (what the viewer last saw), which the benches can predict
  clock = at
  const viewer = VIEWER_ID as UserId
  for (const friend of friendsOf(users, options.friends)) {
    await service.setFriends(viewer, String(friend) as UserId, true)
  }
  for (const blocked of blockedOf(users, options.blocked)) {
    await service.setBlocked(viewer, String(blocked) as UserId, true)
  }
  loading = false
  // the load loop never yields to the write-behind timer: flush lastOnline as it would have been
  const store = presenced.stores.presence as { flush?: () => void }
  store.flush?.()
  return {
    presenced,
    loadSeconds,
    viewerToken: await presenced.tokens.issue(viewer),
    strangerToken: await presenced.tokens.issue(STRANGER_ID as UserId),
  }
}
