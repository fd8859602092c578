/**
 * Where the Redis-mode read's time goes that req/s does not say (issue 19): presenced in Redis
 * mode, in one or more variants, beside the naive node:http + MGET server, in interleaved
 * rounds on a redis-server of the bench's own. Per round and target: req/s and latency, CPU µs
 * per request of the node (in the kernel too) and of redis-server, minor page faults and
 * context switches of the node's main thread, CPU per thread name (main thread, V8's workers),
 * Redis commands per request with their usec per call (INFO commandstats before and after the
 * round), and the node's socket writes per request (round trips, joined by the tick's batch).
 *
 *   npx tsx bench/redis-http-diag.ts [--variants main,other+NAME=value] [--rounds 3]
 *     [--seconds 6] [--embedded] [--node-flags=--trace-gc-nvp] [--profile-dir dir] [--strace]
 *
 * A variant is a label and environment variables for its process (`label+NAME=value+...`).
 * `--node-flags`: node flags for every server (V8 traces go to `--log`-<variant>, each line
 * stamped with the wall clock, and the round windows are printed in the same clock).
 * `--profile-dir`: CPU profiles of the serving (presenced: its --profile; naive: --cpu-prof).
 * `--strace`: syscalls per request (strace -c attached for the round; slows the target).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { cpuSeconds, spawnJson, stop, systemSeconds } from './lib/processes.js'
import { runWrk } from './lib/wrk.js'
import { copyReplies } from './lib/naive-records.js'
import { benchRedis } from './redis-setup.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    variants: { type: 'string', default: 'presenced' },
    embedded: { type: 'boolean', default: false },
    strace: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    log: { type: 'string', default: '/tmp/diag-log' },
    'profile-dir': { type: 'string' },
  },
})
const users = Number(values.users)
const seconds = Number(values.seconds)
const dir = mkdtempSync(join(tmpdir(), 'presenced-diag-'))
const redis = await benchRedis()
const client = new Redis(redis.url)
const children: ChildProcess[] = []
type Info = { port: number; statsPort: number }
function spawnLogged<T>(
  script: string,
  args: string[],
  flags: string[],
  env: Record<string, string>,
  log: string,
) {
  const child = spawn(
    'stdbuf',
    ['-oL', process.execPath, ...flags, '--import', 'tsx', script, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    },
  )
  const out = createWriteStream(log)
  return new Promise<{ child: ChildProcess; info: T }>((resolve, reject) => {
    let found = false
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!found && line.startsWith('{"port"')) {
        found = true
        resolve({ child, info: JSON.parse(line) as T })
      } else out.write(`${Date.now()} ${line}\n`)
    })
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
}
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8')
      const name =
        stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) +
        (task === String(pid) ? '*main' : '')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100)
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return out
}
function procStats(pid: number): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  let vol = 0
  let invol = 0
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const st = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8')
    const v = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0)
    const i = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0)
    if (task === String(pid)) {
      vol += v
      invol += i
    } else {
      vol += v * 1e-9
    }
  }
  return [Number(f[7]), vol, invol]
}
const writesOf = async (info: Info) =>
  ((await (await fetch(`http://127.0.0.1:${info.statsPort}`)).json()) as { writes: number }).writes
async function stats(): Promise<Record<string, { calls: number; usec: number }>> {
  const info = await client.info('commandstats')
  const out: Record<string, { calls: number; usec: number }> = {}
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g))
    out[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) }
  return out
}
try {
  const targets: Array<{ name: string; info: Info; pid: number; stats: boolean }> = []
  for (const v of values.variants.split(',')) {
    const [, ...envs] = v.split('+')
    const env: Record<string, string> = {}
    for (const e of envs) {
      // the value may hold `=` itself (NODE_OPTIONS=--max-semi-space-size=64)
      const at = e.indexOf('=')
      env[e.slice(0, at)] = e.slice(at + 1)
    }
    const s = await spawnLogged<Info>(
      'bench/redis-http-server.ts',
      [
        '--users',
        String(users),
        '--mode',
        'redis',
        '--url',
        redis.url,
        '--prefix',
        `p${targets.length}`,
        ...(values['profile-dir'] ? ['--profile', `${values['profile-dir']}/${v}.cpuprofile`] : []),
      ],
      values['node-flags'] ? values['node-flags'].split(' ') : [],
      env,
      `${values.log}-${v}`,
    )
    children.push(s.child)
    targets.push({ name: v, info: s.info, pid: s.child.pid!, stats: true })
  }
  if (values.embedded) {
    const e = await spawnJson<Info>('bench/redis-http-server.ts', ['--users', String(users)])
    children.push(e.child)
    targets.push({ name: 'embedded', info: e.info, pid: e.child.pid!, stats: false })
  }
  await copyReplies(targets[0]!.info.port, users, redis.url, 'naive')
  const naive = await spawnLogged<{ port: number }>(
    'bench/redis-naive-server.ts',
    ['--url', redis.url, '--prefix', 'naive'],
    [
      ...(values['node-flags'] ? values['node-flags'].split(' ') : []),
      ...(values['profile-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${values['profile-dir']}`] : []),
    ],
    {},
    `${values.log}-naive`,
  )
  children.push(naive.child)
  targets.push({
    name: 'naive',
    info: { port: naive.info.port, statsPort: 0 },
    pid: naive.child.pid!,
    stats: false,
  })
  const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1])
  const wrk = (port: number, s: number) =>
    runWrk({
      url: `http://127.0.0.1:${port}`,
      path: '/v1/presence/users',
      mix: { users, random: 50 },
      shape: 'roblox',
      seconds: s,
      connections: Number(values.connections),
      dir,
    })
  for (const t of targets) wrk(t.info.port, 2)
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const t of targets) {
      const w0 = t.stats ? await writesOf(t.info) : 0
      const s0 = await stats()
      const c0 = [cpuSeconds(t.pid), cpuSeconds(redisPid), systemSeconds(t.pid)]
      const p0 = procStats(t.pid)
      const th0 = threadCpu(t.pid)
      const trace = values.strace
        ? spawn(
            'strace',
            ['-c', '-f', '-o', join(dir, `st-${t.name}-${round}`), '-p', String(t.pid)],
            { stdio: 'ignore' },
          )
        : undefined
      if (trace) await new Promise((r) => setTimeout(r, 500))
      const mark0 = Date.now()
      const r = wrk(t.info.port, seconds)
      console.log(
        `   window ${t.name} ${mark0} ${Date.now()} requests ${Math.round(r.requestsPerSecond * seconds)}`,
      )
      if (trace) {
        const done = new Promise((r) => trace.once('exit', r))
        trace.kill('SIGINT')
        await done
      }
      const n = r.requestsPerSecond * seconds
      const c1 = [cpuSeconds(t.pid), cpuSeconds(redisPid), systemSeconds(t.pid)]
      const p1 = procStats(t.pid)
      const th1 = threadCpu(t.pid)
      const threads = [...th1]
        .map(([k, v]) => `${k}:${(((v - (th0.get(k) ?? 0)) * 1e6) / n).toFixed(0)}`)
        .filter((x) => !x.endsWith(':0'))
        .join(' ')
      const s1 = await stats()
      const w1 = t.stats ? await writesOf(t.info) : 0
      const cmds = Object.entries(s1)
        .filter(([k, v]) => k !== 'info' && v.calls - (s0[k]?.calls ?? 0) > 0)
        .map(([k, v]) => {
          const calls = v.calls - (s0[k]?.calls ?? 0)
          const usec = v.usec - (s0[k]?.usec ?? 0)
          return `${k} ${(calls / n).toFixed(3)}/req ${(usec / calls).toFixed(1)}us/call ${(usec / n).toFixed(1)}us/req`
        })
        .join('; ')
      console.log(
        `r${round} ${t.name.padEnd(22)} ${r.requestsPerSecond.toFixed(0).padStart(6)} req/s p50 ${r.p50Ms.toFixed(1)} p99 ${r.p99Ms.toFixed(1)} ms` +
          ` node ${(((c1[0]! - c0[0]!) * 1e6) / n).toFixed(0)} (sys ${(((c1[2]! - c0[2]!) * 1e6) / n).toFixed(0)}) redis ${(((c1[1]! - c0[1]!) * 1e6) / n).toFixed(0)} us/req` +
          ` minflt/req ${((p1[0]! - p0[0]!) / n).toFixed(2)} mainthread vol-cs/req ${(Math.floor(p1[1]!) - Math.floor(p0[1]!)) / n > 0 ? ((Math.floor(p1[1]!) - Math.floor(p0[1]!)) / n).toFixed(3) : 0} invol/req ${((p1[2]! - p0[2]!) / n).toFixed(3)}` +
          (t.stats ? ` writes/req ${((w1 - w0) / n).toFixed(3)}` : '') +
          ` | ${cmds}`,
      )
      console.log(`   threads us/req: ${threads}`)
      if (trace) {
        const text = readFileSync(join(dir, `st-${t.name}-${round}`), 'utf8')
        for (const line of text.split('\n').slice(2)) {
          const f = line.trim().split(/\s+/)
          if (f.length >= 5 && /^[0-9.]+$/.test(f[0]!) && Number(f[3]) / n > 0.01)
            console.log(
              `   ${f[f.length - 1]!.padEnd(16)} ${(Number(f[3]) / n).toFixed(3)}/req  ${((Number(f[1]) * 1e6) / n).toFixed(1)} us/req(strace)`,
            )
        }
      }
    }
  }
} finally {
  for (const c of children) await stop(c)
  client.disconnect()
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
}
