/**
 * A presenced process for bench/redis-http.ts: Redis mode (`--mode redis --url … --prefix …`)
 * or embedded mode (`--mode embedded`), holding `--users N` users (ids 1..N) put online by game
 * servers of 100 players in 500 catalogued places, then listening on a free port. The janitor is
 * stopped, so that only requests touch Redis. The players are reported once the places
 * catalogue's check margin has passed (CHECK_MARGIN_MS after the places were put), as in a
 * service running for longer than a heartbeat interval: reads do not check each session's place
 * (`npm run bench`'s default too); `--catalogue-just-changed` reports them at once, so every
 * read checks every session's place, as in the minute after a catalogue change or a node's
 * start. Prints one JSON line: {port, statsPort, loadSeconds, redisBytesPerSession}; GET on
 * statsPort answers {writes, near}: round trips so far, the near cache's counters (NearCache.stats) when on.
 * `--profile file.cpuprofile`: a CPU profile of the serving, written on SIGTERM;
 * `--heap-profile file.heapprofile`: what the serving allocated, freed objects included
 * (bench/heap-profile-summary.ts), written on SIGTERM.
 */
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { benchPresenced, putPlaces, reportPlayers } from './lib/game-servers.js'
import { usedMemory } from './redis-setup.js'
import { benchArgs } from './lib/args.js'
import { startCpuProfile, startHeapSampling } from './lib/cpu-profile.js'
import { CHECK_MARGIN_MS } from '../src/service/place-catalogue.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    /** Write a CPU profile of the serving (not the loading) here on SIGTERM. */
    profile: { type: 'string' },
    /** Write a sampling heap profile of the serving's allocations here on SIGTERM. */
    'heap-profile': { type: 'string' },
    mode: { type: 'string', default: 'embedded' },
    users: { type: 'string', default: '100000' },
    url: { type: 'string' },
    prefix: { type: 'string', default: 'bench-http' },
    /** Players reported right after the places were put: every read checks their places. */
    'catalogue-just-changed': { type: 'boolean', default: false },
  },
})
const users = Number(values.users)
const PLACES = 500

const { presenced, counted } = await benchPresenced(
  values.mode === 'redis' ? values.url! : undefined,
  values.prefix,
)
const { service } = presenced
await putPlaces(service, PLACES)
// sessions written within the margin of the node's start or of a catalogue change are checked
// against the catalogue on every read until their next heartbeat (PlaceCatalogue)
if (!values['catalogue-just-changed']) await sleep(CHECK_MARGIN_MS + 1000)

const redis = counted?.connection.client as Redis | undefined
const memoryBefore = redis ? await usedMemory(redis) : 0
const started = performance.now()
await reportPlayers(service, users, PLACES)
const loadSeconds = (performance.now() - started) / 1000
const redisBytesPerSession = redis ? ((await usedMemory(redis)) - memoryBefore) / users : 0

const cpuProfile = values.profile
const stopCpuProfile = cpuProfile ? await startCpuProfile() : undefined
const heapProfile = values['heap-profile']
const stopHeapSampling = heapProfile ? await startHeapSampling() : undefined
process.on('SIGTERM', async () => {
  if (stopHeapSampling) await stopHeapSampling(heapProfile!)
  if (stopCpuProfile) await stopCpuProfile(cpuProfile!)
  process.exit(0)
})

const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
const stats = createServer((_request, response) => {
  // no keep-alive: a pooled connection closed by the idle timeout between rounds fails a fetch
  response.writeHead(200, { connection: 'close' })
  response.end(JSON.stringify({ writes: counted?.writes() ?? 0, near: counted?.near() }))
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
