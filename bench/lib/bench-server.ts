/**
 * A presenced process for benchmarks: embedded store loaded with N users, each with one live
 * session (a third Online, two thirds InGame in one of 500 catalogued places), then listening.
 * Prints one JSON line on stdout: {port, users, bytesPerSession, rssPerSession, loadSeconds, token}.
 * Run with --expose-gc so the memory figures are taken after a full collection.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app/build-app.js'
import { testConfig } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'

const users = Number(process.argv[2] ?? 1_000_000)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const presenced = await buildApp(
  testConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
    sessionTtlSeconds: 3600,
    rateLimitMax: 1_000_000_000,
    logLevel: 'silent',
  }),
)
const { service } = presenced
for (let p = 0; p < 500; p++) {
  const placeId = String(1_000_000 + p)
  await service.putPlace({
    placeId,
    universeId: String(2_000_000 + p),
    rootPlaceId: placeId,
    name: `Place ${p}`,
  })
}
presenced.service.stop()

gc()
const before = process.memoryUsage()
const started = performance.now()
for (let i = 1; i <= users; i++) {
  const inGame = i % 3 !== 0
  await service.heartbeat({
    userId: String(i) as UserId,
    key: 'app:Web',
    source: 'app',
    deviceType: 'Web',
    activity: inGame
      ? {
          kind: 'inGame',
          placeId: String(1_000_000 + (i % 500)),
          gameId: '6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69',
        }
      : { kind: 'online', location: 'Website' },
  })
}
const loadSeconds = (performance.now() - started) / 1000
// the load loop never yields to the write-behind timer: flush lastOnline as it would have been
const store = presenced.stores.presence as { flush?: () => void }
store.flush?.()
gc()
const after = process.memoryUsage()
const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
console.log(
  JSON.stringify({
    port: Number(new URL(address).port),
    users,
    loadSeconds,
    // `external` already includes `arrayBuffers` (the typed arrays of the store)
    bytesPerSession: (after.heapUsed + after.external - before.heapUsed - before.external) / users,
    rssPerSession: (after.rss - before.rss) / users,
    // user 1's token, for the Xbox bench (XBL3.0 auth)
    token: await presenced.tokens.issue('1' as UserId),
  }),
)
