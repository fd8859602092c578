/**
 * One scenario, three servers, one run: the bare node:http server answering presenced's bytes
 * (the ceiling), the naive Fastify server (the code a user would write) and presenced. Replies
 * are checked byte for byte before anything is timed; then rounds of wrk load are interleaved
 * (each round visits every server, starting with a different one), so a busy machine slows
 * all three alike and the ratios, taken within each round, stay meaningful.
 */
import { writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { cpuSeconds, spawnJson } from './processes.js'
import {
  bodyOf,
  drawIds,
  idsPerRequest,
  runWrk,
  type BodyShape,
  type IdMix,
  type LoadResult,
} from './wrk.js'

export interface Scenario {
  title: string
  path: string
  shape: BodyShape
  mix: IdMix
  /** Sent to all three servers (only presenced reads them). */
  headers: Record<string, string>
  connections: number
  /**
   * presenced's reply expected from the naive server's reply to the same ids: the same bytes,
   * unless presenced applies privacy the naive server does not have.
   */
  expected?: (naiveReply: Buffer, ids: readonly number[]) => Buffer
  /** Says what `expected` changes, for the printed check. */
  expectedNote?: string
  /** The goals for this scenario (presenced/naive as a factor, presenced/bare as a fraction). */
  goals: { vsNaive?: number; vsBare?: number }
}

export interface Servers {
  naiveUrl: string
  presencedUrl: string
  /**
   * presenced as another checkout builds it (`--baseline <dir>`): a fourth server in the same
   * rounds, so a change is measured against what it changes in one run.
   */
  baselineUrl?: string
  /** Process ids, for the CPU each server spends per request (read from /proc). */
  pids?: { naive?: number; presenced?: number; baseline?: number }
  /** The headers sent to the baseline instead of the scenario's (its own tokens). */
  baselineHeaders?: Record<string, string>
  /** A scratch directory for reply files and wrk scripts. */
  dir: string
}

export interface RunOptions {
  rounds: number
  seconds: number
  /** Requests whose replies are compared before timing. */
  checks: number
}

/** A load's result, with the server's CPU per request (user + system µs; NaN if unknown). */
type Measured = LoadResult & { cpuMicros: number }

const allNames = ['bare node:http', 'naive fastify', 'baseline', 'presenced'] as const
type Name = (typeof allNames)[number]

export async function sideBySide(
  scenario: Scenario,
  servers: Servers,
  options: RunOptions,
): Promise<void> {
  const ids = idsPerRequest(scenario.mix)
  const names = allNames.filter((name) => name !== 'baseline' || servers.baselineUrl)
  console.log(
    `\n== ${scenario.title}: POST ${scenario.path}, ${ids} ids per request, ` +
      `${scenario.connections} connections, ${options.rounds} round${options.rounds === 1 ? '' : 's'} of ${options.seconds} s`,
  )
  const reply = await checkReplies(scenario, servers, options.checks)
  const replyFile = join(servers.dir, `reply-${scenario.shape}-${Date.now()}.json`)
  writeFileSync(replyFile, reply)
  const bare = await spawnJson<{ port: number }>('bench/lib/bare-server.ts', [replyFile])
  try {
    const urls: Record<Name, string> = {
      'bare node:http': `http://127.0.0.1:${bare.info.port}`,
      'naive fastify': servers.naiveUrl,
      baseline: servers.baselineUrl ?? '',
      presenced: servers.presencedUrl,
    }
    const pids: Partial<Record<Name, number>> = {
      'bare node:http': bare.child.pid,
      'naive fastify': servers.pids?.naive,
      baseline: servers.pids?.baseline,
      presenced: servers.pids?.presenced,
    }
    const load = (name: Name, seconds: number): Measured => {
      const pid = pids[name]
      const before = pid === undefined ? 0 : cpuSeconds(pid)
      const result = runWrk({
        url: urls[name],
        path: scenario.path,
        mix: scenario.mix,
        shape: scenario.shape,
        headers:
          name === 'baseline' ? (servers.baselineHeaders ?? scenario.headers) : scenario.headers,
        seconds,
        connections: scenario.connections,
        dir: servers.dir,
      })
      const cpu = pid === undefined ? Number.NaN : cpuSeconds(pid) - before
      return { ...result, cpuMicros: (cpu * 1e6) / (result.requestsPerSecond * seconds) }
    }
    // JIT, connections and caches warm before anything counts
    for (const name of names) load(name, 2)
    const results = new Map<Name, Measured[]>(names.map((name) => [name, []]))
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length]!
        results.get(name)!.push(load(name, options.seconds))
      }
    }
    print(scenario, results, ids, names)
  } finally {
    bare.child.kill()
  }
}

/** One request on a fresh connection (a pooled one may have been closed by an idle timeout). */
function post(
  url: string,
  scenario: Scenario,
  ids: readonly number[],
  headers = scenario.headers,
): Promise<{ status: number; body: Buffer }> {
  const body = bodyOf(scenario.shape, ids)
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url + scenario.path,
      {
        method: 'POST',
        agent: false,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }),
        )
        response.on('error', reject)
      },
    )
    request.on('error', reject)
    request.end(body)
  })
}

/**
 * Posts `checks` requests (ids drawn as wrk draws them) to the naive server and presenced and
 * requires presenced's bytes to be what the scenario expects (identical unless it says why).
 * The first reply is what the bare server will answer: identical to it by construction.
 */
async function checkReplies(scenario: Scenario, servers: Servers, checks: number): Promise<Buffer> {
  let first: Buffer | undefined
  let changed = 0
  for (let i = 0; i < checks; i++) {
    const ids = drawIds(scenario.mix)
    const naive = await post(servers.naiveUrl, scenario, ids)
    const ours = await post(servers.presencedUrl, scenario, ids)
    if (servers.baselineUrl !== undefined) {
      const base = await post(servers.baselineUrl, scenario, ids, servers.baselineHeaders)
      if (!base.body.equals(ours.body)) {
        const at = firstDifference(ours.body, base.body)
        throw new Error(
          `presenced and its baseline differ at byte ${at} of request ${i + 1}:\n presenced ${context(ours.body, at)}\n baseline  ${context(base.body, at)}`,
        )
      }
    }
    if (naive.status !== 200 || ours.status !== 200) {
      throw new Error(
        `check request failed: naive ${naive.status}, presenced ${ours.status}: ${ours.body}`,
      )
    }
    const expected = scenario.expected?.(naive.body, ids) ?? naive.body
    if (!expected.equals(naive.body)) changed++
    if (!ours.body.equals(expected)) {
      const at = firstDifference(ours.body, expected)
      throw new Error(
        `replies differ at byte ${at} of request ${i + 1}:\n presenced ${context(ours.body, at)}\n expected  ${context(expected, at)}`,
      )
    }
    first ??= ours.body
  }
  const note = scenario.expected ? ` (${changed} of them ${scenario.expectedNote})` : ''
  console.log(
    `reply check: ${checks} requests, presenced = naive byte for byte${note}; ` +
      `bare answers request 1's ${first!.length.toLocaleString()} bytes: OK`,
  )
  return first!
}

function firstDifference(a: Buffer, b: Buffer): number {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

function context(bytes: Buffer, at: number): string {
  return JSON.stringify(bytes.subarray(Math.max(0, at - 60), at + 60).toString())
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function print(
  scenario: Scenario,
  results: Map<Name, Measured[]>,
  ids: number,
  names: readonly Name[],
): void {
  const rounds = results.get('presenced')!.length
  const n = (value: number, width: number, digits = 0) =>
    value
      .toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
      .padStart(width)
  const roundHeads = Array.from({ length: rounds }, (_, r) => `round ${r + 1}`.padStart(9)).join('')
  console.log(
    `${'req/s'.padEnd(16)}${roundHeads}${'median'.padStart(9)}${'ids/s'.padStart(11)}` +
      `${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'CPU µs/req'.padStart(12)}` +
      `${'wrk µs/req'.padStart(12)}`,
  )
  for (const name of names) {
    const r = results.get(name)!
    const rps = median(r.map((x) => x.requestsPerSecond))
    console.log(
      name.padEnd(16) +
        r.map((x) => n(x.requestsPerSecond, 9)).join('') +
        n(rps, 9) +
        n(rps * ids, 11) +
        n(median(r.map((x) => x.p50Ms)), 9, 2) +
        n(median(r.map((x) => x.p99Ms)), 9, 2) +
        n(
          r.reduce((sum, x) => sum + x.errors, 0),
          8,
        ) +
        n(median(r.map((x) => x.cpuMicros)), 12, 1) +
        n(median(r.map((x) => x.clientCpuMicros)), 12, 1),
    )
  }
  console.log(
    "(wrk µs/req: the load generator's own CPU per request, on the same 2 cores: where a " +
      "server's CPU per request nears it, wrk and not the server sets that server's req/s)",
  )
  const ours = results.get('presenced')!
  const perRound = (name: Name) =>
    ours.map((x, r) => x.requestsPerSecond / results.get(name)![r]!.requestsPerSecond)
  const vsNaive = perRound('naive fastify')
  const vsBare = perRound('bare node:http')
  const verdict = (value: number, goal: number | undefined, shown: string) =>
    goal === undefined ? 'no goal' : `goal >= ${shown}: ${value >= goal ? 'met' : 'NOT met'}`
  const { vsNaive: naiveGoal, vsBare: bareGoal } = scenario.goals
  console.log(
    `presenced / naive: ${median(vsNaive).toFixed(2)}x ` +
      `(per round ${vsNaive.map((x) => x.toFixed(2)).join(', ')}); ` +
      verdict(median(vsNaive), naiveGoal, `${naiveGoal}x`),
  )
  console.log(
    `presenced / bare:  ${(median(vsBare) * 100).toFixed(1)} % ` +
      `(per round ${vsBare.map((x) => (x * 100).toFixed(1)).join(', ')}); ` +
      verdict(median(vsBare), bareGoal, `${(bareGoal ?? 0) * 100} %`),
  )
  if (names.includes('baseline')) {
    const cpuOf = (name: Name) => median(results.get(name)!.map((x) => x.cpuMicros))
    console.log(
      `CPU per request, presenced / baseline: ${(cpuOf('presenced') / cpuOf('baseline')).toFixed(2)}x ` +
        `(${cpuOf('presenced').toFixed(1)} µs against ${cpuOf('baseline').toFixed(1)} µs)`,
    )
    const vsBase = perRound('baseline')
    const base = results.get('baseline')!
    const baseOf = (name: Name) =>
      base.map((x, r) => x.requestsPerSecond / results.get(name)![r]!.requestsPerSecond)
    console.log(
      `presenced / baseline: ${median(vsBase).toFixed(2)}x ` +
        `(per round ${vsBase.map((x) => x.toFixed(2)).join(', ')}); the baseline: ` +
        `${median(baseOf('naive fastify')).toFixed(2)}x naive, ` +
        `${(median(baseOf('bare node:http')) * 100).toFixed(1)} % of bare`,
    )
  }
}
