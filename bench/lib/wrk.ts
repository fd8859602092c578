import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface LoadResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
  /**
   * wrk's own CPU time per request (user + system µs): on a machine it shares with the servers,
   * the load generator's part of the cores (its Lua drawing each request's ids included).
   */
  clientCpuMicros: number
}

/** CPU time of this process's children that have been waited for, in s (/proc: clock ticks). */
function childrenCpuSeconds(): number {
  // fields after the command's `) `: cutime and cstime are the 14th and 15th
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[13]) + Number(fields[14])) / 100
}

/**
 * Which ids one request asks for: `random` distinct ids drawn from 1..users, plus `count` ids
 * drawn from each list (e.g. the viewer's friends), all distinct and shuffled. Distinct,
 * because presenced answers a repeated id once and the naive servers would answer it twice.
 */
export interface IdMix {
  users: number
  random: number
  lists?: ReadonlyArray<{ ids: readonly number[]; count: number }>
}

/** The protocol's request body around the ids. */
export type BodyShape = 'roblox' | 'xbox'

export function idsPerRequest(mix: IdMix): number {
  return mix.random + (mix.lists ?? []).reduce((sum, list) => sum + list.count, 0)
}

/**
 * One request's ids as wrk's script draws them (for the reply checks, in this process);
 * `random` may be a seeded generator, for the same ids in every run.
 */
export function drawIds(mix: IdMix, random: () => number = Math.random): number[] {
  const seen = new Set<number>()
  const draw = (pick: () => number, count: number) => {
    for (let n = 0; n < count;) {
      const id = pick()
      if (seen.has(id)) continue
      seen.add(id)
      n++
    }
  }
  for (const list of mix.lists ?? []) {
    draw(() => list.ids[Math.floor(random() * list.ids.length)]!, list.count)
  }
  draw(() => 1 + Math.floor(random() * mix.users), mix.random)
  const ids = [...seen]
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[ids[i], ids[j]] = [ids[j]!, ids[i]!]
  }
  return ids
}

/** What goes before the ids, around each id, and after them. */
const shapes: Record<BodyShape, { open: string; quote: string; close: string }> = {
  roblox: { open: '{"userIds":[', quote: '', close: ']}' },
  xbox: { open: '{"level":"all","users":[', quote: '"', close: ']}' },
}

export function bodyOf(shape: BodyShape, ids: readonly number[]): string {
  const { open, quote, close } = shapes[shape]
  return open + ids.map((id) => quote + id + quote).join(',') + close
}

/**
 * Drives a POST endpoint with wrk (Debian's `wrk` package) from a separate process, one thread
 * (the machine has two cores: one for wrk, one for the server). Every request draws its own
 * ids (IdMix) in wrk's Lua, so no two bodies are alike. Returns throughput and latency.
 */
let scripts = 0

export function runWrk(options: {
  url: string
  path: string
  mix: IdMix
  shape: BodyShape
  headers?: Record<string, string>
  seconds: number
  connections: number
  dir: string
}): LoadResult {
  const headerLines = Object.entries({ 'Content-Type': 'application/json', ...options.headers })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n')
  const { open, quote, close } = shapes[options.shape]
  const lists = (options.mix.lists ?? [])
    .map((list) => `{ count = ${list.count}, ids = { ${list.ids.join(', ')} } }`)
    .join(',\n  ')
  // the draw costs wrk's one thread CPU beside every request (LoadResult.clientCpuMicros): one
  // `seen` table for all requests, each request's ids stamped with its number, and the shuffle
  // only where lists' ids must be mixed among the random ones (random draws come in random order)
  const shuffle = (options.mix.lists ?? []).length > 0
  const separator = `${quote},${quote}`
  return runWrkScript({
    ...options,
    lua: `wrk.method = "POST"
${headerLines}
math.randomseed(os.time())
local random = math.random
local concat = table.concat
local lists = {
  ${lists}
}
local seen = {}
local stamp = 0
local ids = {}
request = function()
  stamp = stamp + 1
  local n = 0
  for _, list in ipairs(lists) do
    local taken = 0
    local count = #list.ids
    while taken < list.count do
      local id = list.ids[random(1, count)]
      if seen[id] ~= stamp then
        seen[id] = stamp
        n = n + 1
        ids[n] = id
        taken = taken + 1
      end
    end
  end
  local taken = 0
  while taken < ${options.mix.random} do
    local id = random(1, ${options.mix.users})
    if seen[id] ~= stamp then
      seen[id] = stamp
      n = n + 1
      ids[n] = id
      taken = taken + 1
    end
  end
${
  shuffle
    ? `  for i = n, 2, -1 do
    local j = random(1, i)
    ids[i], ids[j] = ids[j], ids[i]
  end
`
    : ''
}  return wrk.format(nil, "${options.path}", nil, '${open}${quote}' .. concat(ids, '${separator}', 1, n) .. '${quote}${close}')
end
`,
  })
}

/**
 * Runs wrk (one thread, `--timeout 30s`) with `lua` (which sets `wrk.method`, headers and a
 * `request` function) plus a `done` that reports; returns throughput and latency.
 */
export function runWrkScript(options: {
  url: string
  lua: string
  seconds: number
  connections: number
  dir: string
}): LoadResult {
  const script = join(options.dir, `wrk-${process.pid}-${++scripts}.lua`)
  writeFileSync(
    script,
    `${options.lua}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
`,
  )
  const cpuBefore = childrenCpuSeconds()
  const run = spawnSync(
    'wrk',
    [
      '-t',
      '1',
      '-c',
      String(options.connections),
      '-d',
      `${options.seconds}s`,
      // a slow reply is a latency figure, not an error (wrk's default gives up after 2 s)
      '--timeout',
      '30s',
      '-s',
      script,
      options.url,
    ],
    { encoding: 'utf8' },
  )
  const line = run.stdout?.split('\n').find((l) => l.startsWith('RESULT '))
  if (!line) throw new Error(`wrk failed: ${run.error?.message ?? run.stderr ?? run.stdout}`)
  const [rps, p50, p99, errors, requests] = line.split(' ').slice(1).map(Number)
  const clientCpuMicros = ((childrenCpuSeconds() - cpuBefore) * 1e6) / requests!
  return { requestsPerSecond: rps!, p50Ms: p50!, p99Ms: p99!, errors: errors!, clientCpuMicros }
}
