/**
 * The Roblox read in process (bench/redis-lookup-worker.ts: the lean route's steps without
 * HTTP) of several checkouts side by side, on one redis-server of the bench's own: each worker
 * loads its users, then they take turns for `--rounds` runs of `--ms`, so the noise of a shared
 * machine falls on all alike. Prints, per run and as medians, node CPU µs per read (all threads;
 * `main`: the main thread alone) and redis-server CPU µs per read.
 *
 *   npx tsx bench/redis-lookup.ts [--rounds 6] [--ms 3000] [--in-flight 16] [--users 100000]
 *       name=<checkout dir>[:embedded] ...     (e.g. main=/tmp/base this=. embedded=.:embedded)
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import { cpuSeconds } from './lib/processes.js'
import { benchRedis } from './redis-setup.js'
import { benchArgs } from './lib/args.js'

const { values, positionals } = benchArgs(import.meta.url, {
  options: {
    rounds: { type: 'string', default: '6' },
    ms: { type: 'string', default: '3000' },
    'in-flight': { type: 'string', default: '16' },
    users: { type: 'string', default: '100000' },
  },
  allowPositionals: true,
})

interface Run {
  calls: number
  userUs: number
  sysUs: number
  mainUs: number
  writes: number
  redisUs: number
}

const redis = await benchRedis()
const client = new Redis(redis.url)
const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1])
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
try {
  const workers = positionals.map((target, i) => {
    const [name, rest] = target.split('=') as [string, string]
    const [dir, mode = 'redis'] = rest.split(':') as [string, string?]
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'bench/redis-lookup-worker.ts', '--mode', mode],
        ...['--url', redis.url, '--prefix', `lookup${i}`, '--users', values.users],
      ],
      { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] },
    )
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    return { name, child, lines, runs: [] as Run[] }
  })
  for (const w of workers) await w.lines.next()
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const w of round % 2 ? [...workers].reverse() : workers) {
      const before = cpuSeconds(redisPid)
      w.child.stdin.write(`run ${values.ms} ${values['in-flight']}\n`)
      const run = JSON.parse((await w.lines.next()).value as string) as Run
      run.redisUs = ((cpuSeconds(redisPid) - before) * 1e6) / run.calls
      w.runs.push(run)
      console.log(
        `${round} ${w.name.padEnd(10)} reads ${run.calls}: node ${(run.userUs + run.sysUs).toFixed(1)} µs ` +
          `(main thread ${run.mainUs.toFixed(1)}), redis-server ${run.redisUs.toFixed(1)}, ` +
          `writes ${run.writes.toFixed(3)}`,
      )
    }
  }
  for (const w of workers) {
    const node = median(w.runs.map((r) => r.userUs + r.sysUs)).toFixed(1)
    const main = median(w.runs.map((r) => r.mainUs)).toFixed(1)
    const server = median(w.runs.map((r) => r.redisUs)).toFixed(1)
    console.log(
      `median ${w.name.padEnd(10)} node ${node} µs (main ${main}), redis-server ${server}`,
    )
  }
  for (const w of workers) w.child.kill()
} finally {
  client.disconnect()
  await redis.stop()
}
