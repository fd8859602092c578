/**
 * What a read costs beside its instructions: per request, the server's CPU time (user and system,
 * main thread and V8's helper threads apart, from /proc), its garbage collections and bytes
 * allocated and promoted (V8's --trace-gc-nvp), and, in a second window under `strace -c -f`,
 * its system calls. The same fixed list of requests (seeded ids, keep-alive connections) goes to
 * each server, so the figures do not move with the machine's load as req/s does:
 * callgrind's counts (read-callgrind.ts) leave out GC and the kernel.
 *
 *   npx tsx bench/read-costs.ts                                      # presenced, naive, bare
 *   npx tsx bench/read-costs.ts --servers presenced,baseline --baseline /tmp/base --signed-in
 *
 * Servers: `presenced` (this checkout, 1M users by default), `baseline` (--baseline's checkout),
 * `naive` (bench/naive-roblox-server.ts), `bare` (bench/lib/bare-server.ts answering the bytes
 * presenced, or the baseline, listed before it gave to the first request). Run them on a machine
 * as quiet as can be had: CPU per request still moves with the load; bytes and calls do not.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { benchArgs } from './lib/args.js'
import { generator, postAll } from './lib/callgrind.js'
import { blockedOf, friendsOf } from './lib/population.js'
import { compiledFlags, presencedEnv } from './lib/processes.js'
import { bodyOf, drawIds, type IdMix } from './lib/wrk.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '3000' },
    'strace-requests': { type: 'string', default: '1000' },
    connections: { type: 'string', default: '8' },
    servers: { type: 'string', default: 'presenced,naive,bare' },
    baseline: { type: 'string' },
    'signed-in': { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
  },
})
const users = Number(values.users)
const at = Date.now()
const dir = mkdtempSync(join(tmpdir(), 'read-costs-'))
const here = resolve(import.meta.dirname, '..')

interface Started {
  child: ChildProcess
  info: { port: number; viewerToken?: string }
  /** --trace-gc-nvp lines so far. */
  gc: string[]
}

function start(name: string): Promise<Started> {
  const checkout = name === 'baseline' ? resolve(values.baseline!) : here
  let script: string
  let args: string[]
  let flags = ['--trace-gc-nvp', '--max-old-space-size=8192']
  let env: Record<string, string> = {}
  if (name === 'presenced' || name === 'baseline') {
    script = 'bench/lib/bench-server.ts'
    args = ['--users', String(users), '--at', String(at), '--friends', '200', '--blocked', '20']
    flags = ['--expose-gc', ...flags]
    env = presencedEnv()
  } else if (name === 'naive') {
    script = 'bench/naive-roblox-server.ts'
    args = ['--users', String(users), '--at', String(at)]
  } else {
    script = 'bench/lib/bare-server.ts'
    args = [join(dir, 'reply')]
  }
  const child = spawn(
    process.execPath,
    [...flags, '--import', 'tsx', ...compiledFlags(checkout), script, ...args],
    { cwd: checkout, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  )
  process.on('exit', () => child.kill())
  const gc: string[] = []
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    let info: Started['info'] | undefined
    lines.on('line', (line) => {
      if (info === undefined && line.startsWith('{')) {
        info = JSON.parse(line) as Started['info']
        resolve({ child, info, gc })
      } else if (line.includes('pause=')) gc.push(line)
    })
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)))
  })
}

/** utime, stime (clock ticks) of each thread of `pid`, by thread name. */
function threadTimes(pid: number): Map<string, { user: number; system: number }> {
  const times = new Map<string, { user: number; system: number }>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    } catch {
      continue
    }
    const name = tid === String(pid) ? 'main' : 'helpers'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const entry = times.get(name) ?? { user: 0, system: 0 }
    entry.user += Number(fields[11])
    entry.system += Number(fields[12])
    times.set(name, entry)
  }
  return times
}

/**
 * Sums of the nvp fields over `lines` of the main isolate (the one with the most lines): a
 * worker's isolate (a logger's thread) prints its own collections into the same output.
 */
function gcSums(all: readonly string[]) {
  const isolateOf = (line: string) => /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1] ?? ''
  const counts = new Map<string, number>()
  for (const line of all) counts.set(isolateOf(line), (counts.get(isolateOf(line)) ?? 0) + 1)
  const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0]
  const lines = all.filter((line) => isolateOf(line) === main)
  const sums = { scavenges: 0, markCompacts: 0, pauseMs: 0, allocated: 0, promoted: 0, survived: 0 }
  for (const line of lines) {
    const field = (key: string) => Number(new RegExp(`\\b${key}=([0-9.]+)`).exec(line)?.[1] ?? 0)
    const gc = /\bgc=(\w+)/.exec(line)?.[1]
    if (gc === 's') sums.scavenges++
    else sums.markCompacts++
    sums.pauseMs += field('pause')
    sums.allocated += field('allocated')
    sums.promoted += field('promoted')
    sums.survived += field('new_space_survived')
  }
  return sums
}

const mix: IdMix = values['signed-in']
  ? {
      users,
      random: 30,
      lists: [
        { ids: friendsOf(users, 200), count: 15 },
        { ids: blockedOf(users, 20), count: 5 },
      ],
    }
  : { users, random: 50 }
const random = generator(Number(values.seed))
const bodies = (n: number) =>
  Array.from({ length: n }, () => bodyOf('roblox', drawIds(mix, random)))
const warm = bodies(Number(values.warmup))
const measured = bodies(Number(values.requests))
const traced = bodies(Number(values['strace-requests']))

function post(port: number, body: string, headers: Record<string, string>): Promise<Buffer> {
  return new Promise((done, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/presence/users',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => done(Buffer.concat(chunks)))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const names = String(values.servers).split(',')
const rows: string[] = []
for (const name of names) {
  console.log(`${name}: loading…`)
  if (name === 'bare' && !names.slice(0, names.indexOf(name)).some((n) => n !== 'naive')) {
    throw new Error('bare answers the reply presenced gave: list presenced (or baseline) first')
  }
  const server = await start(name)
  const pid = server.child.pid!
  const headers: Record<string, string> =
    values['signed-in'] && server.info.viewerToken !== undefined
      ? { authorization: `Bearer ${server.info.viewerToken}` }
      : {}
  if (name === 'presenced' || name === 'baseline') {
    writeFileSync(join(dir, 'reply'), await post(server.info.port, warm[0]!, headers))
  }
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  const send = (list: string[]) =>
    postAll({
      agent,
      port: server.info.port,
      path: '/v1/presence/users',
      connections: Number(values.connections),
      list: list.map((body) => ({ body, headers })),
    })
  await send(warm)
  // let a collection the warm-up started finish
  await new Promise((r) => setTimeout(r, 500))
  const gcBefore = server.gc.length
  const before = threadTimes(pid)
  const started = performance.now()
  await send(measured)
  const wall = performance.now() - started
  const after = threadTimes(pid)
  const gc = gcSums(server.gc.slice(gcBefore))
  writeFileSync(join(dir, `gc-${name}.txt`), server.gc.slice(gcBefore).join('\n'))
  const n = measured.length
  const per = (ticks: number) => ((ticks * 10_000) / n).toFixed(1)
  const main = after.get('main')!
  const mainBefore = before.get('main')!
  const helpers = after.get('helpers') ?? { user: 0, system: 0 }
  const helpersBefore = before.get('helpers') ?? { user: 0, system: 0 }
  // strace's window: its own requests, counted by syscall
  const out = join(dir, `strace-${name}.txt`)
  const tracer = spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' })
  await new Promise((r) => setTimeout(r, 1000))
  await send(traced)
  tracer.kill('SIGINT')
  await new Promise((r) => tracer.once('exit', r))
  const calls = readFileSync(out, 'utf8')
  // strace -c's table: % time, seconds, usecs/call, calls, [errors,] syscall
  const counts = calls
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && /^[\d.]+$/.test(f[0]!) && /^\d+$/.test(f[3]!))
    .map((f) => ({ name: f[f.length - 1]!, calls: Number(f[3]) }))
  const totalCalls = counts.find((c) => c.name === 'total')?.calls
  const byName = counts
    .filter((c) => c.name !== 'total')
    .map((c) => `${c.name} ${(c.calls / traced.length).toFixed(2)}`)
    .join(', ')
  agent.destroy()
  server.child.kill()
  const row =
    `${name}: ${n} requests, ${(n / (wall / 1000)).toFixed(0)} req/s (noisy); CPU µs/request: ` +
    `main user ${per(main.user - mainBefore.user)} system ${per(main.system - mainBefore.system)}, ` +
    `helpers user ${per(helpers.user - helpersBefore.user)} system ${per(helpers.system - helpersBefore.system)}; ` +
    `GC: ${gc.scavenges} scavenges, ${gc.markCompacts} mark-compacts, ${((gc.pauseMs * 1000) / n).toFixed(1)} µs pause/request, ` +
    `${(gc.allocated / n).toFixed(0)} B allocated/request, ${(gc.survived / n).toFixed(0)} B survived a scavenge/request, ${(gc.promoted / n).toFixed(0)} B promoted/request; ` +
    `syscalls/request ${totalCalls !== undefined ? (totalCalls / traced.length).toFixed(2) : '?'} (${byName})`
  console.log(row)
  rows.push(row)
}
console.log(`\n(files in ${dir})`)
console.log(`\n${rows.join('\n')}`)
process.exit(0)
