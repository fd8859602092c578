/**
 * Fleet mode over HTTP on this machine, in one run: presenced in Redis mode beside presenced in
 * embedded mode and beside a naive node:http + ioredis MGET server (bench/redis-naive-server.ts)
 * returning the same bytes. POST /v1/presence/users with random ids of users put online by game
 * servers; wrk in a separate process; the targets take turns for several rounds, so the noise of
 * a shared machine falls on all three alike. Prints req/s per round, the median ratios (goals:
 * Redis mode >= 75 % of embedded and >= the naive server), Redis round trips and commands per
 * request, and Redis memory per live session.
 *
 *   npm run bench:redis-http -- [--users 100000] [--ids 50] [--seconds 8] [--rounds 3]
 *                               [--connections 32] [--url redis://host:port]
 *                               [--profile redis-mode.cpuprofile] [--baseline <dir>]
 *                               [--profile-embedded embedded-mode.cpuprofile]
 *                               [--heap-profile redis-mode.heapprofile]
 *                               [--writes <per second>] [--idle-seconds 0]
 *                               [--catalogue-just-changed]
 *
 * The players are reported once the places catalogue's check margin has passed, so reads do
 * not check each session's place, as in a service running for longer than a heartbeat interval
 * (`npm run bench`'s default); `--catalogue-just-changed`: as in the minute after a catalogue
 * change or a node's start, every read checks every session's place (bench/redis-http-server.ts).
 *
 * `--baseline <dir>`: also runs Redis mode of another checkout (e.g. `git archive main`
 * unpacked, with node_modules), on the same Redis under its own prefix, as a fourth target:
 * before/after in one run.
 *
 * `--writes N`: mixed reads and writes. N users' presence values a second are rewritten in
 * Redis during the rounds (bench/redis-writer.ts), for Redis mode and the baseline alike, as their
 * heartbeats would: each write invalidates the value in a node's near cache (near-cache.ts).
 * Without it, nothing is written while the rounds run. With the near cache on, its hit rate and the
 * invalidations it received a second are printed per Redis-mode target.
 *
 * `--idle-seconds S`: after the rounds, the Redis-mode targets' CPU over S s in which no request
 * is sent (the writes of `--writes` go on): what the near cache's invalidations cost a node that
 * serves no reads, beside the same on a target with it off.
 *
 * Starts a redis-server of its own unless --url is given (then writes under a unique prefix,
 * deleted after).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import { cpuSeconds, spawnJson, stop, systemSeconds } from './lib/processes.js'
import { runWrk } from './lib/wrk.js'
import { copyReplies } from './lib/naive-records.js'
import { benchRedis, commandCalls } from './redis-setup.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '100000' },
    ids: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    url: { type: 'string' },
    /** Writes the Redis-mode server's CPU profile of its serving here. */
    profile: { type: 'string' },
    /** Writes the embedded-mode server's CPU profile of its serving here (one run, both modes). */
    'profile-embedded': { type: 'string' },
    /**
     * Writes what the Redis-mode server allocated while serving (freed objects included) here:
     * `npx tsx bench/heap-profile-summary.ts <file> 30 <requests>` gives bytes per request.
     */
    'heap-profile': { type: 'string' },
    baseline: { type: 'string' },
    /**
     * PRESENCED_REDIS_NEAR_CACHE for the Redis-mode target, and for the baseline's (default:
     * this process's environment's, for both): the near cache on one side only, in one run.
     */
    'near-cache': { type: 'string' },
    'baseline-near-cache': { type: 'string' },
    writes: { type: 'string', default: '0' },
    'idle-seconds': { type: 'string', default: '0' },
    /** Every session's place checked on read, as in the minute after a catalogue change. */
    'catalogue-just-changed': { type: 'boolean', default: false },
  },
})
const users = Number(values.users)
const idsPerRequest = Number(values.ids)
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)
const PATH = '/v1/presence/users'

const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
const redis = await benchRedis(values.url)
// on its own Redis, the production prefix: key length is part of the memory per session
const prefix = values.url ? uniquePrefix('bench-http') : 'presenced'
const client = new Redis(redis.url)
const children: ChildProcess[] = []

interface ServerInfo {
  port: number
  statsPort: number
  loadSeconds: number
  redisBytesPerSession: number
}

const post = async (port: number, ids: number[]) => {
  const response = await fetch(`http://127.0.0.1:${port}${PATH}`, {
    method: 'POST',
    // identity: the lean node:http path that wrk's requests take (fetch asks for gzip, which
    // Fastify answers)
    headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
    body: JSON.stringify({ userIds: ids }),
  })
  const body = Buffer.from(await response.arrayBuffer())
  if (response.status !== 200) throw new Error(`${port}: ${response.status} ${body}`)
  return body
}
interface NearStats {
  hits: number
  misses: number
  invalidations: number
}
const statsOf = async (info: ServerInfo) =>
  (await (await fetch(`http://127.0.0.1:${info.statsPort}`)).json()) as {
    writes: number
    near?: NearStats
  }
const writesOf = async (info: ServerInfo) => (await statsOf(info)).writes
/** Each command's calls between two INFO commandstats readings (commandCalls). */
const callsSince = (before: Record<string, number>, after: Record<string, number>) =>
  Object.entries(after).map(([name, calls]) => [name, calls - (before[name] ?? 0)] as const)
/** `after` less `before` (the near cache's counters over a window), or undefined when off. */
const nearDelta = (before: NearStats | undefined, after: NearStats | undefined) =>
  before && after
    ? {
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        invalidations: after.invalidations - before.invalidations,
      }
    : undefined
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

try {
  console.log(`loading ${users.toLocaleString()} users into Redis mode and embedded mode…`)
  const args = [
    '--users',
    String(users),
    ...(values['catalogue-just-changed'] ? ['--catalogue-just-changed'] : []),
  ]
  const redisMode = await spawnJson<ServerInfo>(
    'bench/redis-http-server.ts',
    [
      ...args,
      '--mode',
      'redis',
      '--url',
      redis.url,
      '--prefix',
      prefix,
      ...(values.profile ? ['--profile', values.profile] : []),
      ...(values['heap-profile'] ? ['--heap-profile', values['heap-profile']] : []),
    ],
    [],
    nearEnv(values['near-cache']),
  )
  children.push(redisMode.child)
  const embedded = await spawnJson<ServerInfo>('bench/redis-http-server.ts', [
    ...args,
    ...(values['profile-embedded'] ? ['--profile', values['profile-embedded']] : []),
  ])
  children.push(embedded.child)
  const baseline = values.baseline
    ? await spawnJson<ServerInfo>(
        join(values.baseline, 'bench/redis-http-server.ts'),
        [...args, '--mode', 'redis', '--url', redis.url, '--prefix', `${prefix}-baseline`],
        [],
        nearEnv(values['baseline-near-cache']),
      )
    : undefined
  if (baseline) children.push(baseline.child)

  // the naive server's records: exactly what presenced in Redis mode answers for each user
  await copyReplies(redisMode.info.port, users, redis.url, `${prefix}:naive`)
  const naive = await spawnJson<{ port: number }>('bench/redis-naive-server.ts', [
    '--url',
    redis.url,
    '--prefix',
    `${prefix}:naive`,
  ])
  children.push(naive.child)

  const sampleIds = Array.from({ length: idsPerRequest }, (_, i) =>
    Math.max(1, Math.floor(((i + 1) * users) / idsPerRequest)),
  )
  const [fromRedis, fromEmbedded, fromNaive, fromBaseline] = await Promise.all([
    post(redisMode.info.port, sampleIds),
    post(embedded.info.port, sampleIds),
    post(naive.info.port, sampleIds),
    baseline && post(baseline.info.port, sampleIds),
  ])
  if (!fromNaive.equals(fromRedis)) throw new Error('the naive server answers other bytes')
  // the baseline loaded its users at other instants too
  if (fromBaseline && fromBaseline.length !== fromRedis.length) {
    throw new Error('the baseline answers other sizes')
  }
  // embedded mode loaded its users at other instants: same layout, other lastOnline digits
  if (fromEmbedded.length !== fromRedis.length) throw new Error('embedded mode answers other sizes')

  const targets = [
    { name: 'presenced, embedded mode', port: embedded.info.port, pid: embedded.child.pid! },
    { name: 'presenced, Redis mode', port: redisMode.info.port, pid: redisMode.child.pid! },
    { name: 'naive node:http + MGET', port: naive.info.port, pid: naive.child.pid! },
    ...(baseline
      ? [{ name: 'baseline, Redis mode', port: baseline.info.port, pid: baseline.child.pid! }]
      : []),
  ]
  const writesPerSecond = Number(values.writes)
  if (writesPerSecond > 0) {
    const writer = await spawnJson<unknown>('bench/redis-writer.ts', [
      '--url',
      redis.url,
      '--prefixes',
      [prefix, ...(baseline ? [`${prefix}-baseline`] : [])].join(','),
      '--users',
      String(users),
      '--per-second',
      String(writesPerSecond),
    ])
    children.push(writer.child)
  }
  const wrk = (port: number, duration: number) =>
    runWrk({
      url: `http://127.0.0.1:${port}`,
      path: PATH,
      mix: { users, random: idsPerRequest },
      shape: 'roblox',
      seconds: duration,
      connections,
      dir,
    })
  for (const target of targets) wrk(target.port, 2)

  const results = targets.map(() => [] as number[])
  /**
   * CPU µs per request of the target's process, of redis-server, of the target's process in
   * the kernel (of the first), and of wrk, per round.
   */
  const cpu = targets.map(() => [] as Array<[number, number, number, number]>)
  // the bench's own redis-server (a --url Redis may be elsewhere: its CPU is not counted)
  const redisPid = values.url
    ? undefined
    : Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1])
  const errors = targets.map(() => 0)
  /** Per target, the near cache's counters summed over its rounds (Redis-mode targets with it on). */
  const near = targets.map(() => ({ hits: 0, misses: 0, invalidations: 0, seconds: 0, on: false }))
  const infoOf = (i: number) => (i === 1 ? redisMode.info : i === 3 ? baseline?.info : undefined)
  let redisWrites = 0
  let redisRequests = 0
  /** Redis's command counts over the Redis-mode target's rounds (INFO commandstats). */
  const callsUnderLoad: Record<string, number> = {}
  for (let round = 0; round < rounds; round++) {
    for (const [i, target] of targets.entries()) {
      const before = i === 1 ? await writesOf(redisMode.info) : 0
      const callsBeforeRound = i === 1 ? await commandCalls(client) : undefined
      const info = infoOf(i)
      const nearBefore = info ? (await statsOf(info)).near : undefined
      const started = performance.now()
      const cpuBefore = [
        cpuSeconds(target.pid),
        redisPid ? cpuSeconds(redisPid) : 0,
        systemSeconds(target.pid),
      ]
      const result = wrk(target.port, seconds)
      results[i]!.push(result.requestsPerSecond)
      const requests = result.requestsPerSecond * seconds
      cpu[i]!.push([
        ((cpuSeconds(target.pid) - cpuBefore[0]!) * 1e6) / requests,
        redisPid ? ((cpuSeconds(redisPid) - cpuBefore[1]!) * 1e6) / requests : NaN,
        ((systemSeconds(target.pid) - cpuBefore[2]!) * 1e6) / requests,
        result.clientCpuMicros,
      ])
      errors[i]! += result.errors
      const delta = nearDelta(nearBefore, info ? (await statsOf(info)).near : undefined)
      if (delta) {
        const sum = near[i]!
        sum.on = true
        sum.hits += delta.hits
        sum.misses += delta.misses
        sum.invalidations += delta.invalidations
        sum.seconds += (performance.now() - started) / 1000
      }
      if (i === 1) {
        redisWrites += (await writesOf(redisMode.info)) - before
        redisRequests += result.requestsPerSecond * seconds
        for (const [name, calls] of callsSince(callsBeforeRound!, await commandCalls(client))) {
          callsUnderLoad[name] = (callsUnderLoad[name] ?? 0) + calls
        }
      }
    }
  }

  // no requests for a while, the writes going on: what the invalidations cost an idle node
  const idleSeconds = Number(values['idle-seconds'])
  const idle: string[] = []
  if (idleSeconds > 0) {
    const idleTargets = [1, 3].filter((i) => infoOf(i) !== undefined)
    // the last round's collections and closing connections settle first
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const before = await Promise.all(
      idleTargets.map(async (i) => ({
        cpu: cpuSeconds(targets[i]!.pid),
        near: (await statsOf(infoOf(i)!)).near,
      })),
    )
    const started = performance.now()
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
    const elapsed = (performance.now() - started) / 1000
    for (const [k, i] of idleTargets.entries()) {
      const cpu = cpuSeconds(targets[i]!.pid) - before[k]!.cpu
      const delta = nearDelta(before[k]!.near, (await statsOf(infoOf(i)!)).near)
      idle.push(
        `${targets[i]!.name}: ${((cpu * 1000) / elapsed).toFixed(1)} ms CPU a second` +
          (delta
            ? ` (near cache on: ${(delta.invalidations / elapsed).toFixed(0)} invalidations/s)`
            : ' (near cache off)'),
      )
    }
  }

  // one request alone: round trips (socket writes) and commands, as Redis counts them
  const writesBefore = await writesOf(redisMode.info)
  const callsBefore = await commandCalls(client)
  for (let i = 0; i < 50; i++) await post(redisMode.info.port, sampleIds)
  const writesAlone = ((await writesOf(redisMode.info)) - writesBefore) / 50
  const callsAfter = await commandCalls(client)
  const perRequest = (calls: Array<readonly [string, number]>) =>
    calls
      .filter(([name, n]) => n > 0 && name !== 'info')
      .map(([name, n]) => `${name} ${Number(n.toFixed(3))}`)
      .join(', ')
  const commands = perRequest(
    callsSince(callsBefore, callsAfter).map(([name, calls]) => [name, calls / 50]),
  )
  const commandsUnderLoad = perRequest(
    Object.entries(callsUnderLoad).map(([name, calls]) => [name, calls / redisRequests]),
  )

  console.log(
    `\n${users.toLocaleString()} users online on game servers; reply ${fromRedis.length} bytes ` +
      `for ${idsPerRequest} ids; ${connections} connections, ${rounds} rounds of ${seconds} s` +
      (writesPerSecond > 0 ? `; ${writesPerSecond} values rewritten a second` : '; no writes'),
  )
  console.log(
    `${'target'.padEnd(26)} ${'req/s per round'.padEnd(30)} ${'median'.padStart(8)}` +
      `  CPU µs/request: node (of it in the kernel), redis-server, wrk (medians);` +
      ` the most 2 cores allow`,
  )
  for (const [i, target] of targets.entries()) {
    const rounds = results[i]!.map((r) => r.toFixed(0).padStart(7)).join(' ')
    const errorText = errors[i] ? `  (${errors[i]} errors)` : ''
    console.log(
      `${target.name.padEnd(26)} ${rounds.padEnd(30)} ${median(results[i]!).toFixed(0).padStart(8)}` +
        `  ${median(cpu[i]!.map((c) => c[0]))
          .toFixed(0)
          .padStart(6)}` +
        ` (${median(cpu[i]!.map((c) => c[2]))
          .toFixed(0)
          .padStart(4)})` +
        `${median(cpu[i]!.map((c) => c[1]))
          .toFixed(0)
          .padStart(8)}` +
        `${median(cpu[i]!.map((c) => c[3]))
          .toFixed(0)
          .padStart(6)}` +
        `${ceiling(cpu[i]!).toFixed(0).padStart(8)} req/s${errorText}`,
    )
  }
  console.log(
    'the most 2 cores allow: 2 s of CPU a second over node + redis-server + wrk per request, ' +
      'each process alone on a core at most (median of the rounds); wrk runs on the same machine',
  )
  for (const [i, sum] of near.entries()) {
    if (!sum.on) continue
    const rate = sum.hits / Math.max(1, sum.hits + sum.misses)
    console.log(
      `near cache of ${targets[i]!.name}: hit rate ${(rate * 100).toFixed(1)} % over the rounds, ` +
        `${(sum.invalidations / sum.seconds).toFixed(0)} invalidations/s received`,
    )
  }
  if (idle.length > 0) {
    console.log(
      `idle (no requests) for ${idleSeconds} s` +
        (writesPerSecond > 0 ? ` under ${writesPerSecond} writes/s: ` : ': ') +
        idle.join('; '),
    )
  }

  /**
   * The req/s the machine's two cores allow a target at the CPU per request its processes spent
   * in a round: all three busy at once share 2 s of CPU a second, and each is one thread (the
   * node's main thread, redis-server, wrk), which one core bounds. Median of the rounds.
   */
  function ceiling(rounds: Array<[number, number, number, number]>): number {
    return median(
      rounds.map(([node, redisServer, , client]) => {
        const parts = [node, Number.isNaN(redisServer) ? 0 : redisServer, client]
        const sum = parts.reduce((a, b) => a + b, 0)
        return Math.min(2e6 / sum, 1e6 / Math.max(...parts))
      }),
    )
  }

  /** Median of the per-round ratios of target a to target b (rounds are interleaved). */
  const perRound = (a: number, b: number) => results[a]!.map((x, r) => x / results[b]![r]!)
  const show = (a: number, b: number) =>
    `${(median(perRound(a, b)) * 100).toFixed(0)} % (rounds ` +
    `${perRound(a, b)
      .map((x) => (x * 100).toFixed(0))
      .join(', ')}; of medians ${((median(results[a]!) / median(results[b]!)) * 100).toFixed(0)} %)`
  console.log(`Redis mode / embedded mode: ${show(1, 0)} (goal >= 75 %)`)
  console.log(`Redis mode / naive server:  ${show(1, 2)} (goal >= 100 %)`)
  if (baseline) {
    console.log(`Redis mode / baseline:      ${show(1, 3)}`)
    console.log(`baseline / embedded mode:   ${show(3, 0)}`)
    console.log(`baseline / naive server:    ${show(3, 2)}`)
    console.log(
      `baseline Redis memory per live session: ${baseline.info.redisBytesPerSession.toFixed(0)} B`,
    )
  }
  console.log(
    `Redis round trips per request: ${writesAlone.toFixed(2)} alone, ` +
      `${(redisWrites / redisRequests).toFixed(2)} under load (auto-pipelining merges requests); ` +
      `commands per request: ${commands} alone; ${commandsUnderLoad} under load` +
      // Redis counts every client's commands: --writes' writer runs through the rounds
      (writesPerSecond > 0 ? " (the writer's writes included)" : ''),
  )
  console.log(
    `Redis memory per live session: ${redisMode.info.redisBytesPerSession.toFixed(0)} B ` +
      `(INFO used_memory; goal <= 300 B)`,
  )
} finally {
  for (const child of children) await stop(child)
  if (values.url) await deleteKeys({ url: redis.url }, prefix)
  client.disconnect()
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
}

/** The environment that sets a target's near cache (`--near-cache`), or none. */
function nearEnv(entries: string | undefined): Record<string, string> {
  return entries === undefined ? {} : { PRESENCED_REDIS_NEAR_CACHE: entries }
}
