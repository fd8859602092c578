/**
 * The read's own stages counted in process under callgrind, with no HTTP around them: the body
 * parsed (parseUsersJson), the summaries looked up (service.lookupSummariesNow, anonymous) and
 * the reply written (writeSummariesReply), for `--requests` seeded 50-id bodies after a warm-up.
 * A quick loop for a change to one of them: one process, a few seconds of loading, counts that
 * do not move with the machine's load (bench/read-callgrind.ts counts the whole server).
 *
 *   npx tsx bench/read-stages-callgrind.ts [--users 100000] [--requests 1000] [--top 25]
 *
 * Runs itself under valgrind (instrumentation on for the measured requests only) and prints the
 * instructions per request and the functions with the most (self), JIT code named from V8's
 * perf map.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchArgs } from './lib/args.js'
import { annotatedRows, control, generator } from './lib/callgrind.js'
import { compiledFlags, useCompiled } from './lib/processes.js'
import { bodyOf, drawIds } from './lib/wrk.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '100000' },
    requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '4000' },
    top: { type: 'string', default: '25' },
    /** More node flags for the counted process, e.g. --print-opt-code-filter=name. */
    node: { type: 'string', multiple: true, default: [] },
    /** callgrind's per-instruction counts too (--dump-instr=yes), for JIT code's disassembly. */
    'dump-instr': { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
})
const requests = Number(values.requests)

if (!values.child) {
  const dir = mkdtempSync(join(tmpdir(), 'read-stages-'))
  const file = join(dir, 'callgrind.out')
  const run = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${file}`,
      // the main thread's counts apart from V8's compiler threads, which run by chance
      '--separate-threads=yes',
      ...(values['dump-instr'] ? ['--dump-instr=yes'] : []),
      process.execPath,
      '--perf-basic-prof',
      ...(values.node as string[]),
      '--import',
      'tsx',
      ...compiledFlags(process.cwd()),
      new URL(import.meta.url).pathname,
      '--child',
      ...['--users', String(values.users), '--requests', String(requests)],
      ...['--warmup', String(values.warmup)],
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 30 },
  )
  writeFileSync(join(dir, 'stdout.txt'), run.stdout)
  const pid = Number(/^pid (\d+)/m.exec(run.stdout)?.[1])
  if (run.status !== 0 || !pid) throw new Error(`child failed: ${run.stdout}`)
  // `summary:` is 0 when instrumentation was switched on midway: `totals:` holds the count
  const main = `${file}-01`
  const ir = Number(/^totals: (\d+)/m.exec(readFileSync(main, 'utf8'))?.[1])
  console.log(`${(ir / requests).toFixed(0)} instructions a request, main thread (${main})`)
  for (const [fn, count] of annotatedRows(main, pid).slice(0, Number(values.top))) {
    console.log(`${(count / requests).toFixed(0).padStart(8)}  ${fn}`)
  }
} else {
  await useCompiled(process.cwd())
  const { loadPresenced } = await import('./lib/load-presenced.js')
  const { anonymous } = await import('../src/core/privacy.js')
  const { parseUsersJson } = await import('../src/protocols/roblox/requests.js')
  const { writeSummariesReply, reclaimReply } =
    await import('../src/protocols/roblox/reply-writer.js')
  const users = Number(values.users)
  const { presenced } = await loadPresenced({ users, at: Date.now(), friends: 200, blocked: 20 })
  const random = generator(1)
  const bodies = Array.from({ length: 2000 }, () =>
    Buffer.from(bodyOf('roblox', drawIds({ users, random: 50 }, random))),
  )
  const service = presenced.service
  const options = { invisibleSelfView: 'state' as const }
  let sum = 0
  const read = (i: number) => {
    const parsed = parseUsersJson(bodies[i % bodies.length]!)!
    const found = service.lookupSummariesNow(anonymous, parsed.ids, undefined, parsed.values, false)
    if (found instanceof Promise) throw new Error('the embedded store answers at once')
    const reply = writeSummariesReply(found, options, parsed.values)
    sum += reply.length
    reclaimReply(reply)
  }
  for (let i = 0; i < Number(values.warmup); i++) read(i)
  control(process.pid, '-i', 'on')
  for (let i = 0; i < requests; i++) read(i)
  control(process.pid, '-i', 'off')
  console.log(`pid ${process.pid} bytes ${sum}`)
  await presenced.app.close()
  process.exit(0)
}
