/**
 * Instructions redis-server spends per 50-id read (and per rate-limit hit), counted by valgrind's
 * callgrind on a redis-server of its own: the Redis half of a Redis-mode read, which
 * read-callgrind.ts does not count (it puts only the node under callgrind), in figures that do
 * not move with the machine's load (redis-server shares the cores with the node and wrk in
 * `npm run bench:redis-http`, so its µs per call swing with the load).
 *
 *   npx tsx bench/redis-server-callgrind.ts                      # 100k users, 1,920 reads a shape
 *   npx tsx bench/redis-server-callgrind.ts --users 20000 --reads 960
 *
 * The values are presenced's own: `--users` users put online by game-server reports through
 * the Redis store (as bench/redis-http-server.ts does), read by the same random ids in each
 * shape, 160 reads in flight:
 * - `presenced read`: RedisPresenceStore.summarize (the joined MGET of a tick) and the
 *   read's rate-limit hit (RedisRateLimiter: `SET … PX … NX` + `INCR`; EVALSHA of rate-limit.lua
 *   before 2026-12-03), what a Roblox read sends (`redis-cli monitor`), each read of its own
 *   caller; `8 a caller in a write`: the same with 8 reads of each caller in a write, as a busy
 *   caller's (since 2026-12-03 a window's `SET` goes once a write, its later hits `INCR` alone;
 *   since 2026-12-04 a write's hits of a window are one `INCRBY n`);
 * - `MGET 50`, `MGET 16x50 joined`: the naive server's command, and 16 reads' keys in one;
 * - `Lua one bulk (length prefixes)`, `Lua one bulk (separator)`: a script that runs the MGET
 *   and returns the values as one bulk string (what a node would decode from one Buffer);
 * - `rate limit: RedisRateLimiter.hit` (what the checkout sends; `, 8 a caller`: 8 hits of each
 *   caller in a write), `rate limit: INCR + PEXPIRE NX`,
 *   `rate limit: SET PX NX + INCR`, `rate limit: INCR`: one hit.
 * Prints instructions per read (or hit) of each shape, two rounds.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { benchArgs } from './lib/args.js'
import { control, generator } from './lib/callgrind.js'
import { benchPresenced, putPlaces, reportPlayers } from './lib/game-servers.js'
import { freePort } from '../test/helpers/redis-cluster.js'
import type { RedisPresenceStore } from '../src/store/redis/redis-presence-store.js'
import { parseUserId, type UserId } from '../src/core/user-id.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '100000' },
    /** Reads (or rate-limit hits) counted per shape and round; a multiple of 160. */
    reads: { type: 'string', default: '1920' },
  },
})
const users = Number(values.users)
const reads = Math.max(160, Math.floor(Number(values.reads) / 160) * 160)
const IN_FLIGHT = 160
const IDS = 50

const dir = mkdtempSync(join(tmpdir(), 'presenced-redis-callgrind-'))
const port = await freePort()
const server = spawn(
  'valgrind',
  [
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${join(dir, 'callgrind.%p')}`,
    'redis-server',
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ],
  { stdio: 'ignore' },
)
process.once('exit', () => server.kill('SIGKILL'))
const url = `redis://127.0.0.1:${port}`

const { presenced, counted } = await benchPresenced(await untilUp(url), 'bench-cg')
await putPlaces(presenced.service, 500)
process.stderr.write(`putting ${users} users online…\n`)
await reportPlayers(presenced.service, users, 500)
const { connection, keys, stores } = counted!
const client = connection.client as Redis
const store = stores.presence as RedisPresenceStore

const random = generator(19)
const idSets: UserId[][] = Array.from({ length: reads }, () =>
  Array.from({ length: IDS }, () => parseUserId(String(1 + Math.floor(random() * users)))!),
)
const keySets = idSets.map((ids) => ids.map((id) => keys.presence(id)))
const ONE_BULK_LENGTHS = `local out, n = {}, 0
local values = redis.call('MGET', unpack(KEYS))
for i = 1, #values do
  local v = values[i]
  if v then out[n + 1] = #v; out[n + 2] = ':'; out[n + 3] = v; n = n + 3
  else n = n + 1; out[n] = '-' end
end
return table.concat(out)`
const ONE_BULK_SEPARATOR = `local values = redis.call('MGET', unpack(KEYS))
for i = 1, #values do if not values[i] then values[i] = '' end end
return table.concat(values, '\\255')`
const lengthsSha = (await client.script('LOAD', ONE_BULK_LENGTHS)) as string
const separatorSha = (await client.script('LOAD', ONE_BULK_SEPARATOR)) as string
/** ioredis's EVALSHA with the reply as Buffers (made at run time; not in its types). */
const evalshaBuffer = (sha: string, count: number, ...keys: string[]) =>
  (client as unknown as { evalshaBuffer(...args: unknown[]): Promise<Buffer> }).evalshaBuffer(
    sha,
    count,
    ...keys,
  )
const rule = [{ name: 'read', max: 1_000_000_000, windowMs: 60_000 }]

/** Each shape: what one read (index `i`) sends, resolved when its replies are in. */
const shapes: Array<[string, (i: number, now: number) => Promise<unknown>]> = [
  [
    'presenced read (rate limit + joined MGET)',
    (i, now) =>
      Promise.all([
        stores.rateLimiter.hit(`ip:10.0.${i % 256}.1`, rule, now),
        store.summarize(idSets[i]!, now),
      ]),
  ],
  [
    // 8 reads of one caller in each write, as a busy caller's (the HTTP bench's wrk, one IP)
    'presenced read, 8 a caller in a write',
    (i, now) =>
      Promise.all([
        stores.rateLimiter.hit(`ip:10.5.${i >> 3}.1`, rule, now),
        store.summarize(idSets[i]!, now),
      ]),
  ],
  ['MGET 50 (the naive server)', (i) => client.mgetBuffer(...keySets[i]!)],
  [
    'MGET 16x50 joined',
    (i) =>
      i % 16 === 0 ? client.mgetBuffer(...keySets.slice(i, i + 16).flat()) : Promise.resolve(),
  ],
  ['Lua one bulk (length prefixes)', (i) => evalshaBuffer(lengthsSha, IDS, ...keySets[i]!)],
  ['Lua one bulk (separator)', (i) => evalshaBuffer(separatorSha, IDS, ...keySets[i]!)],
  [
    'rate limit: RedisRateLimiter.hit',
    (i, now) => stores.rateLimiter.hit(`ip:10.1.${i % 256}.1`, rule, now),
  ],
  [
    'rate limit: RedisRateLimiter.hit, 8 a caller',
    (i, now) => stores.rateLimiter.hit(`ip:10.6.${i >> 3}.1`, rule, now),
  ],
  [
    'rate limit: INCR + PEXPIRE NX',
    (i) => {
      const key = keys.rateWindow(`ip:10.2.${i % 256}.1`, 'read', 0)
      return Promise.all([client.incr(key), client.call('PEXPIRE', key, '120000', 'NX')])
    },
  ],
  [
    'rate limit: SET PX NX + INCR',
    (i) => {
      const key = keys.rateWindow(`ip:10.4.${i % 256}.1`, 'read', 0)
      return Promise.all([client.set(key, '0', 'PX', 120_000, 'NX'), client.incr(key)])
    },
  ],
  ['rate limit: INCR', (i) => client.incr(keys.rateWindow(`ip:10.3.${i % 256}.1`, 'read', 0))],
]

const pid = server.pid!
let dumps = 0
const rows: Array<[string, number[]]> = shapes.map(([name]) => [name, []])
for (let round = 0; round < 2; round++) {
  for (let s = 0; s < shapes.length; s++) {
    const send = shapes[s]![1]
    const now = Date.now()
    // a first pass unmeasured: scripts loaded, the read's code paths warm
    for (let i = 0; i < IN_FLIGHT; i++) await send(i, now)
    control(pid, '-z')
    control(pid, '-i', 'on')
    for (let from = 0; from < reads; from += IN_FLIGHT) {
      const batch: Promise<unknown>[] = []
      for (let i = from; i < from + IN_FLIGHT; i++) batch.push(send(i, now))
      await Promise.all(batch)
    }
    control(pid, '-i', 'off')
    control(pid, `--dump=shape-${s}`)
    dumps++
    const file = join(dir, `callgrind.${pid}.${dumps}`)
    rows[s]![1].push(instructions(await untilWritten(file)) / reads)
  }
}

console.log(
  `\nredis-server instructions per read of ${IDS} ids (or per hit), ${users} users, ${reads} reads a shape, 2 rounds:`,
)
for (const [name, counts] of rows) {
  console.log(`${name.padEnd(44)} ${counts.map((c) => `${(c / 1000).toFixed(1)}k`).join('  ')}`)
}
await presenced.app.close()

server.kill('SIGTERM')
await new Promise((resolve) => server.once('exit', resolve))
rmSync(dir, { recursive: true, force: true })
process.exit(0)

/**
 * Instructions of a dump (its `totals:` line: with instrumentation started off, a dump's
 * `summary:` says 0, so lib/callgrind's totals() does not fit).
 */
function instructions(file: string): number {
  return Number(/^totals: (\d+)/m.exec(readFileSync(file, 'utf8'))![1])
}

/** `url` once redis-server (slow to start under valgrind) answers PING. */
async function untilUp(target: string): Promise<string> {
  const { Redis: Client } = await import('ioredis')
  for (let tries = 0; tries < 200; tries++) {
    const probe = new Client(target, { lazyConnect: true, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      probe.disconnect()
      return target
    } catch {
      probe.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`redis-server under callgrind did not start on ${target}`)
}

/** `file` once callgrind has written it (a dump is written after the command returns). */
async function untilWritten(file: string): Promise<string> {
  for (let tries = 0; tries < 600 && !existsSync(file); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  return file
}
