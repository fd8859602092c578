import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface LoadResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
}

/**
 * Drives a POST endpoint with wrk (Debian's `wrk` package) from a separate process. Each request
 * carries `idsPerRequest` random user ids in 1..users, built by wrk's Lua, so no two bodies are
 * alike. Returns throughput and latency percentiles.
 */
export function runWrk(options: {
  url: string
  path: string
  users: number
  idsPerRequest: number
  bodyTemplate: 'roblox' | 'xbox'
  headers?: Record<string, string>
  seconds: number
  connections: number
  dir: string
}): LoadResult {
  const script = join(options.dir, `wrk-${options.bodyTemplate}.lua`)
  const headerLines = Object.entries({ 'Content-Type': 'application/json', ...options.headers })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n')
  const quote = options.bodyTemplate === 'xbox' ? '"' : ''
  const open = options.bodyTemplate === 'xbox' ? '{"level":"all","users":[' : '{"userIds":['
  writeFileSync(
    script,
    `wrk.method = "POST"
${headerLines}
math.randomseed(os.time())
request = function()
  local ids = {}
  for i = 1, ${options.idsPerRequest} do ids[i] = '${quote}' .. math.random(1, ${options.users}) .. '${quote}' end
  return wrk.format(nil, "${options.path}", nil, '${open}' .. table.concat(ids, ",") .. "]}")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
`,
  )
  const run = spawnSync(
    'wrk',
    [
      '-t',
      '1',
      '-c',
      String(options.connections),
      '-d',
      `${options.seconds}s`,
      '-s',
      script,
      options.url,
    ],
    { encoding: 'utf8' },
  )
  const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  if (!line) throw new Error(`wrk failed: ${run.stderr || run.stdout}`)
  const [rps, p50, p99, errors] = line.split(' ').slice(1).map(Number)
  return { requestsPerSecond: rps!, p50Ms: p50!, p99Ms: p99!, errors: errors! }
}
