/**
 * Where a timed heartbeat's CPU goes, whole process, kernel included: `perf record -e cpu-clock`
 * (a software clock: this machine's VM has no hardware counters) on each server under the same
 * wrk load as bench/heartbeat-costs.ts, JIT code named from V8's perf map (--perf-basic-prof).
 * Prints samples per request by DSO, by thread, and the top symbols.
 *
 *   npx tsx bench/heartbeat-perf.ts [--servers presenced,bare] [--seconds 5] [--top 40]
 *                                   [--flags 'name=--node-flag …'] (a server `name` that runs
 *                                   this checkout's presenced with those node flags)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { benchArgs, nodeFlagsByServer } from './lib/args.js'
import { runWrkScript } from './lib/wrk.js'
import { heartbeatLua, startHeartbeatServer, type HeartbeatServer } from './lib/heartbeat-load.js'
import { printReport, recorded } from './lib/perf-record.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '2000' },
    servers: { type: 'string', default: 'presenced,bare' },
    baseline: { type: 'string' },
    top: { type: 'string', default: '40' },
    frequency: { type: 'string', default: '4999' },
    flags: { type: 'string', multiple: true, default: [] },
    /** Call graphs too (frame pointers: V8's JIT code keeps them): `perf report -G -i <data>`. */
    graph: { type: 'boolean', default: false },
  },
})
const dir = mkdtempSync(join(tmpdir(), 'heartbeat-perf-'))
console.log(`perf data in ${dir}`)
const secret = 'bench-heartbeat-secret-of-enough-length-0123456789'
const replyFile = join(dir, 'reply.json')
writeFileSync(replyFile, '{}')
const extraFlags = nodeFlagsByServer(values.flags as string[])

type Server = HeartbeatServer

function start(name: string): Promise<Server> {
  return startHeartbeatServer({
    name,
    checkout: name === 'baseline' ? resolve(values.baseline ?? '') : process.cwd(),
    dir,
    replyFile,
    tokens: Number(values.tokens),
    secret,
    nodeFlags: ['--perf-basic-prof', ...(extraFlags.get(name) ?? [])],
  })
}

const tokensOf = (name: string) =>
  name === 'bare' ? ['none'] : readFileSync(join(dir, `${name}-tokens.txt`), 'utf8').split('\n')

function load(server: Server, seconds: number) {
  const result = runWrkScript({
    url: `http://127.0.0.1:${server.port}`,
    lua: heartbeatLua(tokensOf(server.name), 0.5),
    seconds,
    connections: Number(values.connections),
    dir,
  })
  if (result.errors > 0) throw new Error(`${server.name}: ${result.errors} errors`)
  return result.requestsPerSecond * seconds
}

const names = String(values.servers).split(',')
const servers: Server[] = []
for (const name of names) servers.push(await start(name))
try {
  for (const server of servers) load(server, 3)
  for (const server of servers) {
    const data = join(dir, `perf-${server.name}.data`)
    const frequency = Number(values.frequency)
    const requests = await recorded(
      { pid: server.child.pid!, data, frequency, graph: values.graph as boolean },
      () => load(server, Number(values.seconds)),
    )
    console.log(
      `\n== ${server.name}: ${(requests / Number(values.seconds)).toFixed(0)} req/s; µs of CPU per request (samples × ${(1e6 / frequency).toFixed(0)} µs / requests)`,
    )
    printReport(data, requests, Number(values.top), frequency)
  }
} finally {
  for (const server of servers) server.child.kill('SIGKILL')
}
