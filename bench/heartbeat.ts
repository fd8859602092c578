/**
 * `npm run bench:heartbeat`: POST /v1/presence/register-app-presence (Bearer) against presenced
 * in embedded mode, beside a bare node:http server answering `{}` to a small POST (the ceiling)
 * and the naive Fastify handler (naive-heartbeat-server.ts), in one run: rounds of wrk load (a
 * separate process) interleaved, each round visiting every server, starting with a different one.
 * Every request carries one of `--tokens` users' tokens and, at random, an in-game body naming
 * one of 500 catalogued places or an online one. Prints req/s per round, p50/p99, each server's
 * CPU time per request (from /proc: steadier than req/s on a shared machine) and the ratios
 * (goal: presenced >= 70 % of bare). A fourth server, `skeleton`, is presenced itself with the
 * heartbeat's lean route answering `{}` right after the body: its CPU per request over bare's is
 * Node's HTTP work and the lean path in presenced's process, presenced's over the skeleton's is
 * the heartbeat itself (auth, rate limit, parse, write, change bus); the run prints that split.
 *
 *   npm run bench:heartbeat -- [--rounds 3] [--seconds 6] [--connections 50] [--tokens 2000]
 *                              [--profile presenced.cpuprofile] [--redis redis://host:port]
 *                              [--in-game 0.5] [--steps]
 *
 * `--steps`: three more servers, presenced's route stopped after each of its steps (auth, parse,
 * write: heartbeat-server.ts --stop-after), so the run prints the CPU per request of each step.
 * `--in-game`: the share of bodies in a catalogued place (the rest online at home). At 0 every
 * body is the same, so after each user's first heartbeat every one is a refresh (nothing visible
 * changes), as most heartbeats of a real client are.
 *
 * `--redis` runs presenced in Redis mode on that Redis (under a unique prefix, deleted after).
 * `--baseline <dir>`: also runs the presenced of another checkout (e.g. `git archive main` unpacked,
 * with this bench/heartbeat-server.ts copied in), as a fourth server: before/after in one run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import { cpuSeconds, spawnJson, stop } from './lib/processes.js'
import { runWrkScript, type LoadResult } from './lib/wrk.js'
import { HEARTBEAT_PATH, heartbeatLua } from './lib/heartbeat-load.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    connections: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '2000' },
    profile: { type: 'string' },
    redis: { type: 'string' },
    baseline: { type: 'string' },
    'in-game': { type: 'string', default: '0.5' },
    steps: { type: 'boolean', default: false },
  },
})
const PATH = HEARTBEAT_PATH
const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
const secret = 'bench-heartbeat-secret-of-enough-length-0123456789'
const tokenFile = join(dir, 'tokens.txt')
const replyFile = join(dir, 'reply.json')
writeFileSync(replyFile, '{}')
const prefix = uniquePrefix('bench-heartbeat')

const serverArgs = (tokens: string) => [
  ...['--tokens', String(values.tokens), '--token-file', tokens, '--secret', secret],
  ...(values.redis ? ['--redis', values.redis, '--prefix', prefix] : []),
]
const STEPS = ['auth', 'parse', 'write'] as const
const stepServers = values.steps
  ? await Promise.all(
      STEPS.map((step) =>
        spawnJson<{ port: number }>('bench/heartbeat-server.ts', [
          ...serverArgs(join(dir, `${step}-tokens.txt`)),
          '--stop-after',
          step,
        ]),
      ),
    )
  : []
const [presenced, naive, bare, skeleton, baseline] = await Promise.all([
  spawnJson<{ port: number }>('bench/heartbeat-server.ts', [
    ...serverArgs(tokenFile),
    ...(values.profile ? ['--profile', values.profile] : []),
  ]),
  spawnJson<{ port: number }>('bench/naive-heartbeat-server.ts', ['--secret', secret]),
  spawnJson<{ port: number }>('bench/lib/bare-server.ts', [replyFile]),
  spawnJson<{ port: number }>('bench/heartbeat-server.ts', [
    ...serverArgs(join(dir, 'skeleton-tokens.txt')),
    '--skeleton',
  ]),
  values.baseline
    ? spawnJson<{ port: number }>(
        join(values.baseline, 'bench/heartbeat-server.ts'),
        // its own prefix in Redis mode: the two must not share sessions
        serverArgs(join(dir, 'baseline-tokens.txt')).map((a) => (a === prefix ? `${prefix}b` : a)),
      )
    : undefined,
])
const tokens = readFileSync(tokenFile, 'utf8').split('\n')

type Step = `to ${(typeof STEPS)[number]}`
type Name = 'bare node:http' | 'naive fastify' | 'presenced' | 'skeleton' | 'baseline' | Step
const servers: Partial<Record<Name, typeof bare>> = {
  'bare node:http': bare,
  'naive fastify': naive,
  presenced,
  skeleton,
  ...(baseline && { baseline }),
  ...Object.fromEntries(stepServers.map((server, k) => [`to ${STEPS[k]}`, server])),
}
const names = Object.keys(servers) as Name[]
const ports = (name: Name) => servers[name]!.info.port
const pids = (name: Name) => servers[name]!.child.pid!

// one token per request, drawn at random; `--in-game` of the bodies are in a catalogued place
const lua = heartbeatLua(tokens, Number(values['in-game']))

/** Each server's answer to one request, checked before anything is timed. */
async function check(name: Name): Promise<void> {
  for (const body of ['{"location":"Game","placeId":1000001}', '{"location":"Home"}']) {
    const response = await fetch(`http://127.0.0.1:${ports(name)}${PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
      body,
    })
    const text = await response.text()
    if (response.status !== 200 || text !== '{}') {
      throw new Error(`${name} answered ${response.status} ${text}`)
    }
  }
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

try {
  for (const name of names) await check(name)
  const rounds = Number(values.rounds)
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const cpu = new Map<Name, number[]>(names.map((name) => [name, []]))
  const load = (name: Name, duration: number) => {
    const before = cpuSeconds(pids(name))
    const result = runWrkScript({
      url: `http://127.0.0.1:${ports(name)}`,
      lua,
      seconds: duration,
      connections,
      dir,
    })
    const requests = result.requestsPerSecond * duration
    cpu.get(name)!.push(((cpuSeconds(pids(name)) - before) * 1e6) / requests)
    return result
  }
  console.log(
    `POST ${PATH}, Bearer, ${tokens.length} users, ${connections} connections, ` +
      `${rounds} rounds of ${seconds} s; replies checked: 200 {} from every server`,
  )
  for (const name of names) load(name, 2)
  for (const name of names) cpu.get(name)!.length = 0
  const results = new Map<Name, LoadResult[]>(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]!
      results.get(name)!.push(load(name, seconds))
    }
  }
  const n = (value: number, width: number, digits = 0) =>
    value
      .toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
      .padStart(width)
  const heads = Array.from({ length: rounds }, (_, r) => `round ${r + 1}`.padStart(9)).join('')
  console.log(
    `${'req/s'.padEnd(16)}${heads}${'median'.padStart(9)}${'p50 ms'.padStart(9)}` +
      `${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'CPU µs/req'.padStart(12)}` +
      `${'wrk µs/req'.padStart(12)}`,
  )
  for (const name of names) {
    const r = results.get(name)!
    console.log(
      name.padEnd(16) +
        r.map((x) => n(x.requestsPerSecond, 9)).join('') +
        n(median(r.map((x) => x.requestsPerSecond)), 9) +
        n(median(r.map((x) => x.p50Ms)), 9, 2) +
        n(median(r.map((x) => x.p99Ms)), 9, 2) +
        n(
          r.reduce((sum, x) => sum + x.errors, 0),
          8,
        ) +
        n(median(cpu.get(name)!), 12, 1) +
        n(median(r.map((x) => x.clientCpuMicros)), 12, 1),
    )
  }
  console.log(
    "(wrk µs/req: the load generator's own CPU per request, on the same 2 cores: where it nears " +
      "a server's, wrk and not the server sets that server's req/s, bare's first)",
  )
  const ours = results.get('presenced')!
  const perRound = (name: Name) =>
    ours.map((x, r) => x.requestsPerSecond / results.get(name)![r]!.requestsPerSecond)
  const vsBare = perRound('bare node:http')
  const vsNaive = perRound('naive fastify')
  console.log(
    `presenced / bare:  ${(median(vsBare) * 100).toFixed(1)} % (per round ` +
      `${vsBare.map((x) => (x * 100).toFixed(1)).join(', ')}); goal >= 70 %: ` +
      `${median(vsBare) >= 0.7 ? 'met' : 'NOT met'}`,
  )
  console.log(
    `presenced / naive: ${median(vsNaive).toFixed(2)}x (per round ` +
      `${vsNaive.map((x) => x.toFixed(2)).join(', ')})`,
  )
  if (baseline) {
    const vsBaseline = perRound('baseline')
    console.log(
      `presenced / baseline: ${median(vsBaseline).toFixed(2)}x (per round ` +
        `${vsBaseline.map((x) => x.toFixed(2)).join(', ')}); baseline / bare: ` +
        `${(median(results.get('baseline')!.map((x, r) => x.requestsPerSecond / results.get('bare node:http')![r]!.requestsPerSecond)) * 100).toFixed(1)} %`,
    )
  }
  const cpuOf = (name: Name) => median(cpu.get(name)!)
  const cpuRatio = cpuOf('bare node:http') / cpuOf('presenced')
  console.log(
    `by CPU per request, presenced / bare: ${(cpuRatio * 100).toFixed(1)} % ` +
      `(bare's CPU time per request over presenced's, medians)`,
  )
  console.log(
    `where presenced's CPU per request goes (medians): ${cpuOf('bare node:http').toFixed(1)} µs ` +
      `as bare, +${(cpuOf('skeleton') - cpuOf('bare node:http')).toFixed(1)} µs for the app's ` +
      `process and lean path (skeleton), +${(cpuOf('presenced') - cpuOf('skeleton')).toFixed(1)} µs ` +
      `for the heartbeat itself`,
  )
  if (stepServers.length > 0) {
    let before = cpuOf('skeleton')
    const parts = STEPS.map((step) => {
      const at = cpuOf(`to ${step}`)
      const part = `${step} +${(at - before).toFixed(1)}`
      before = at
      return part
    })
    console.log(
      `the heartbeat's steps over the skeleton (medians, µs): ${parts.join(', ')}, ` +
        `rate limit and the rest of the route +${(cpuOf('presenced') - before).toFixed(1)}`,
    )
  }
} finally {
  naive.child.kill()
  bare.child.kill()
  await stop(skeleton.child)
  if (baseline) await stop(baseline.child)
  for (const server of stepServers) await stop(server.child)
  await stop(presenced.child)
  if (values.redis) {
    await deleteKeys({ url: values.redis }, prefix)
    await deleteKeys({ url: values.redis }, `${prefix}b`)
  }
  rmSync(dir, { recursive: true, force: true })
  if (values.profile) console.log(`presenced's CPU profile: ${values.profile}`)
}
