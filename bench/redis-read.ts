/**
 * The service's read and heartbeat paths in Redis mode beside embedded (memory) mode, in one run,
 * in process (no HTTP): lookups of 50 and 1100 ids, a lookup by a signed-in user, heartbeats.
 * Prints ops/s, the Redis/memory ratio, CPU µs per request of this process and of redis-server
 * (the measures that hold on a shared machine), Redis round trips (socket writes) and commands per
 * request, and the Redis memory per live session (INFO used_memory) for app sessions and for
 * game server players.
 *
 *   npm run bench:redis -- [users=100000] [seconds per case=3] [--url redis://host:port]
 *
 * Starts a redis-server of its own on a free port (`redis-server` must be installed), so memory
 * counts only what the bench wrote; --url uses another Redis, under a unique prefix deleted after.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { UserId } from '../src/core/user-id.js'
import { systemClock } from '../src/service/clock.js'
import type { PresenceService } from '../src/service/presence-service.js'
import { Tokens } from '../src/service/tokens.js'
import { createService } from '../src/app/create-service.js'
import { testConfig } from '../src/app/config.js'
import { createStores, type Stores } from '../src/app/create-stores.js'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import { cpuSeconds } from './lib/processes.js'
import { benchRedis, commandCalls, countedRedisStores, usedMemory } from './redis-setup.js'
import { benchArgs } from './lib/args.js'

const { values, positionals } = benchArgs(import.meta.url, {
  options: { url: { type: 'string' } },
  allowPositionals: true,
})
const users = Number(positionals[0] ?? 100_000)
const seconds = Number(positionals[1] ?? 3)
const PLAYERS_PER_SERVER = 100
const PLACES = 500

interface Case {
  name: string
  run: (service: PresenceService, i: number) => Promise<unknown>
}

const ids = Array.from({ length: users }, (_, i) => String(1_000_000 + i) as UserId)
const batch = (i: number, size: number) =>
  Array.from({ length: size }, (_, j) => ids[(i * size + j) % users]!)
const placeOf = (i: number) => String(1_000_000 + (i % PLACES))
const heartbeat = (s: PresenceService, i: number, inGame: boolean) =>
  s.heartbeat({
    userId: ids[i % users]!,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: inGame ? { kind: 'inGame', placeId: placeOf(i) } : { kind: 'online' },
  })
const cases: Case[] = [
  { name: 'lookup 50 ids', run: (s, i) => s.lookup({ kind: 'anonymous' }, batch(i, 50)) },
  { name: 'lookup 1100 ids', run: (s, i) => s.lookup({ kind: 'anonymous' }, batch(i, 1100)) },
  {
    name: 'lookup 50 ids as a user (relations)',
    run: (s, i) => s.lookup({ kind: 'user', userId: ids[i % users]! }, batch(i, 50)),
  },
  { name: 'heartbeat, online', run: (s, i) => heartbeat(s, i, false) },
  { name: 'heartbeat, in a place (catalogue read)', run: (s, i) => heartbeat(s, i, true) },
]

async function loadPlaces(service: PresenceService) {
  for (let p = 0; p < PLACES; p++) {
    await service.putPlace({
      placeId: placeOf(p),
      universeId: String(2_000_000 + p),
      rootPlaceId: placeOf(p),
      name: `Place ${p}`,
    })
  }
}

async function loadUsers(service: PresenceService) {
  for (let i = 0; i < users; i += 500) {
    await Promise.all(ids.slice(i, i + 500).map((_, j) => heartbeat(service, i + j, true)))
  }
}

interface Result {
  opsPerSecond: number
  roundTrips: number
  /** CPU µs per request: this process, and the Redis server (when its pid is known). */
  cpu: number
  redisCpu: number
}

async function measure(service: PresenceService, writes: () => number, redisPid?: number) {
  const results: Record<string, Result> = {}
  for (const c of cases) {
    const end = performance.now() + seconds * 1000
    let ops = 0
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    const redisBefore = redisPid ? cpuSeconds(redisPid) : 0
    // 8 requests in flight, like a busy node
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) await c.run(service, ops++)
      }),
    )
    const elapsed = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpuBefore)
    const cpu = (used.user + used.system) / ops
    const redisCpu = redisPid ? ((cpuSeconds(redisPid) - redisBefore) * 1e6) / ops : NaN
    // round trips of one request alone (in flight, auto-pipelining also merges requests)
    const alone = writes()
    for (let i = 0; i < 50; i++) await c.run(service, i)
    results[c.name] = {
      opsPerSecond: ops / elapsed,
      roundTrips: (writes() - alone) / 50,
      cpu,
      redisCpu,
    }
  }
  return results
}

const serviceOf = (stores: Stores) =>
  createService(stores, testConfig({ dataDir: '', sessionTtlSeconds: 3600 }), {
    clock: systemClock,
    tokens: new Tokens('bench-secret-of-enough-length-0123456789'),
  })

const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
// on its own Redis, the production prefix: key length is part of the memory per session
const prefix = values.url ? uniquePrefix('bench') : 'presenced'
const redis = await benchRedis(values.url)
try {
  const memory = await createStores({ dataDir: dir })
  const memoryService = serviceOf(memory)
  await loadPlaces(memoryService)
  await loadUsers(memoryService)
  const memoryResults = await measure(memoryService, () => 0)
  await memory.presence.close()
  await memory.profiles.close()

  const { stores, connection, writes } = await countedRedisStores(redis.url, prefix)
  const client = connection.client as Redis
  const service = serviceOf(stores)
  await loadPlaces(service)
  const emptyBytes = await usedMemory(client)
  await loadUsers(service)
  const appSessionBytes = (await usedMemory(client)) - emptyBytes
  const redisPid = values.url
    ? undefined
    : Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1])
  const redisResults = await measure(service, writes, redisPid)

  // commands per request, as Redis counts them
  const commands: Record<string, string> = {}
  for (const c of cases) {
    const before = await commandCalls(client)
    for (let i = 0; i < 100; i++) await c.run(service, i)
    const after = await commandCalls(client)
    commands[c.name] = Object.entries(after)
      .map(([name, calls]) => [name, (calls - (before[name] ?? 0)) / 100] as const)
      .filter(([name, perRequest]) => perRequest > 0 && name !== 'info')
      .map(([name, perRequest]) => `${name} ${perRequest}`)
      .join(', ')
  }

  // as many players again, put online by game servers of 100 players (the service's reports)
  const servers = service.servers
  const beforePlayers = await usedMemory(client)
  for (let s = 0; s * PLAYERS_PER_SERVER < users; s++) {
    const players = Array.from({ length: PLAYERS_PER_SERVER }, (_, j) =>
      String(50_000_000 + s * PLAYERS_PER_SERVER + j),
    )
    await servers.report(
      { keyId: 'bench', universes: [] },
      `6f1c1b4e-2f7a-4f5e-9a57-${String(s).padStart(12, '0')}`,
      { placeId: placeOf(s), players },
    )
  }
  const playerBytes = (await usedMemory(client)) - beforePlayers
  const stats = await stores.presence.stats(Date.now())
  await stores.presence.close()
  await stores.profiles.close()
  await stores.bus.close()

  console.log(`${users} users with a live session; ${seconds} s per case, 8 in flight`)
  console.log(
    'case                                     memory ops/s  redis ops/s  ratio  ' +
      'CPU µs/op: memory, redis (node + redis-server)  RT/request  commands/request',
  )
  for (const c of cases) {
    const m = memoryResults[c.name]!
    const r = redisResults[c.name]!
    console.log(
      `${c.name.padEnd(40)} ${m.opsPerSecond.toFixed(0).padStart(12)} ${r.opsPerSecond
        .toFixed(0)
        .padStart(12)} ${(r.opsPerSecond / m.opsPerSecond).toFixed(2).padStart(6)} ` +
        `${m.cpu.toFixed(1).padStart(8)} ${r.cpu.toFixed(1).padStart(8)} + ` +
        `${r.redisCpu.toFixed(1).padStart(7)}${''.padEnd(22)}${r.roundTrips
          .toFixed(2)
          .padStart(11)}  ${commands[c.name]}`,
    )
  }
  console.log(
    `Redis memory per live session (INFO used_memory): ${(appSessionBytes / users).toFixed(0)} B ` +
      `for an app session in a place, ${(playerBytes / users).toFixed(0)} B for a game server's ` +
      `player (servers of ${PLAYERS_PER_SERVER}); goal <= 300 B. Store holds ` +
      `${stats.sessions} sessions of ${stats.users} users.`,
  )
} finally {
  if (values.url) await deleteKeys({ url: redis.url }, prefix)
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
}
