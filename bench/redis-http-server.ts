/**
 * A presenced process for bench/redis-http.ts: Redis mode (`--mode redis --url … --prefix …`)
 * or embedded mode (`--mode embedded`), holding `--users N` users (ids 1..N) put online by game
 * servers of 100 players in 500 catalogued places, then listening on a free port. The janitor is
 * stopped, so that only requests touch Redis. Prints one JSON line: {port, statsPort,
 * loadSeconds, redisBytesPerSession}; GET on statsPort answers {writes}: round trips so far.
 * `--profile file.cpuprofile`: a CPU profile of the serving, written on SIGTERM.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { Session } from 'node:inspector'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Redis } from 'ioredis'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import { countedRedisStores, usedMemory, type CountedStores } from './redis-setup.js'

const { values } = parseArgs({
  options: {
    /** Write a CPU profile of the serving (not the loading) here on SIGTERM. */
    profile: { type: 'string' },
    mode: { type: 'string', default: 'embedded' },
    users: { type: 'string', default: '100000' },
    url: { type: 'string' },
    prefix: { type: 'string', default: 'bench-http' },
  },
})
const users = Number(values.users)
const PLAYERS_PER_SERVER = 100
const PLACES = 500

let counted: CountedStores | undefined
if (values.mode === 'redis') counted = await countedRedisStores(values.url!, values.prefix)
const presenced = await buildApp(
  testConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
    sessionTtlSeconds: 3600,
    rateLimitMax: 1_000_000_000,
  }),
  counted ? { stores: counted.stores } : {},
)
await presenced.service.stop()
const { service } = presenced
for (let p = 0; p < PLACES; p++) {
  const placeId = String(1_000_000 + p)
  await service.putPlace({
    placeId,
    universeId: String(2_000_000 + p),
    rootPlaceId: placeId,
    name: `Place ${p}`,
  })
}

const redis = counted?.connection.client as Redis | undefined
const memoryBefore = redis ? await usedMemory(redis) : 0
const servers = service.servers
const started = performance.now()
for (let s = 0; s * PLAYERS_PER_SERVER < users; s++) {
  const players: string[] = []
  for (let j = 1; j <= PLAYERS_PER_SERVER && s * PLAYERS_PER_SERVER + j <= users; j++) {
    players.push(String(s * PLAYERS_PER_SERVER + j))
  }
  await servers.report(
    { keyId: 'bench', universes: [] },
    `6f1c1b4e-2f7a-4f5e-9a57-${String(s).padStart(12, '0')}`,
    { placeId: String(1_000_000 + (s % PLACES)), players },
  )
}
const loadSeconds = (performance.now() - started) / 1000
const redisBytesPerSession = redis ? ((await usedMemory(redis)) - memoryBefore) / users : 0

const session = new Session()
if (values.profile) {
  session.connect()
  await post(session, 'Profiler.enable')
  await post(session, 'Profiler.start')
}
process.on('SIGTERM', () => {
  if (!values.profile) process.exit(0)
  session.post('Profiler.stop', (_error, result) => {
    writeFileSync(values.profile!, JSON.stringify(result.profile))
    process.exit(0)
  })
})

const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
const stats = createServer((_request, response) => {
  // no keep-alive: a pooled connection closed by the idle timeout between rounds fails a fetch
  response.writeHead(200, { connection: 'close' })
  response.end(JSON.stringify({ writes: counted?.writes() ?? 0 }))
})
stats.listen(0, '127.0.0.1', () => {
  const statsAddress = stats.address()
  console.log(
    JSON.stringify({
      port: Number(new URL(address).port),
      statsPort: typeof statsAddress === 'object' && statsAddress ? statsAddress.port : 0,
      loadSeconds,
      redisBytesPerSession,
    }),
  )
})

function post(session: Session, method: string): Promise<void> {
  return new Promise((resolve, reject) => session.post(method, (e) => (e ? reject(e) : resolve())))
}
