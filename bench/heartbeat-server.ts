/**
 * presenced for bench/heartbeat.ts: embedded mode, 500 catalogued places, `--tokens N` access
 * tokens (HS256 with `--secret`) of users 1..N written one per line to `--token-file`, then listening on a free port.
 * Rate limits are out of reach (the bench measures the write, not the 429). Prints {port}.
 * `--profile file.cpuprofile`: a CPU profile of the serving, written on SIGTERM.
 * `--redis redis://…` (with `--prefix`): Redis mode on that Redis instead.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import type { UserId } from '../src/core/user-id.js'
import { startCpuProfile } from './lib/cpu-profile.js'
import { countedRedisStores } from './redis-setup.js'

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '2000' },
    'token-file': { type: 'string' },
    places: { type: 'string', default: '500' },
    profile: { type: 'string' },
    redis: { type: 'string' },
    prefix: { type: 'string', default: 'bench-heartbeat' },
    secret: { type: 'string' },
  },
})
const counted = values.redis ? await countedRedisStores(values.redis, values.prefix) : undefined
const presenced = await buildApp(
  testConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
    rateLimitMax: 1_000_000_000,
    tokenSecret: values.secret,
  }),
  counted ? { stores: counted.stores } : {},
)
const { service } = presenced
for (let p = 0; p < Number(values.places); p++) {
  const placeId = String(1_000_000 + p)
  await service.putPlace({
    placeId,
    universeId: String(2_000_000 + p),
    rootPlaceId: placeId,
    name: `Place ${p}`,
  })
}
const tokens: string[] = []
for (let i = 1; i <= Number(values.tokens); i++) {
  tokens.push(await presenced.tokens.issue(String(i) as UserId, { ttlSeconds: 3600 }))
}
writeFileSync(values['token-file']!, tokens.join('\n'))

const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
const stopProfile = values.profile ? await startCpuProfile() : undefined
process.once('SIGTERM', () => {
  void (async () => {
    await stopProfile?.(values.profile!)
    process.exit(0)
  })()
})
console.log(
  JSON.stringify({ port: Number(new URL(address).port), writes: counted ? 'counted' : 'none' }),
)
