/**
 * POST /v1/presence/users, 50 random ids per request, against presenced holding 1,000,000 users
 * with live sessions (embedded store), beside a bare node:http server returning bytes of the
 * same size, in the same run. Load comes from wrk in a separate process.
 *
 *   npm run bench                      # 1,000,000 users, 10 s per target
 *   npm run bench -- --users 100000 --seconds 5 --connections 32
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnJson, ratio } from './lib/processes.js'
import { runWrk, type LoadResult } from './lib/wrk.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    ids: { type: 'string', default: '50' },
  },
})
const users = Number(values.users)
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const idsPerRequest = Number(values.ids)
const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))

console.log(`loading ${users.toLocaleString()} users into the embedded store…`)
const server = await spawnJson<{
  port: number
  loadSeconds: number
  bytesPerSession: number
  rssPerSession: number
}>('bench/lib/bench-server.ts', [String(users)], ['--expose-gc', '--max-old-space-size=8192'])
const presencedUrl = `http://127.0.0.1:${server.info.port}`

// The bare server answers bytes of the same size as a typical presenced reply.
const sampleIds = Array.from(
  { length: idsPerRequest },
  (_, i) => 1 + Math.floor((i * users) / idsPerRequest),
)
const sample = await fetch(`${presencedUrl}/v1/presence/users`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ userIds: sampleIds }),
})
const sampleBody = Buffer.from(await sample.arrayBuffer())
if (sample.status !== 200) throw new Error(`sample request failed: ${sample.status} ${sampleBody}`)
writeFileSync(join(dir, 'reply.json'), sampleBody)
const bare = await spawnJson<{ port: number }>('bench/lib/bare-server.ts', [
  join(dir, 'reply.json'),
])

const load = (url: string): LoadResult =>
  runWrk({
    url,
    path: '/v1/presence/users',
    users,
    idsPerRequest,
    bodyTemplate: 'roblox',
    seconds,
    connections,
    dir,
  })

// warm both up (JIT, connection pools) before measuring
runWrk({
  url: presencedUrl,
  path: '/v1/presence/users',
  users,
  idsPerRequest,
  bodyTemplate: 'roblox',
  seconds: 2,
  connections,
  dir,
})
const bareResult = load(`http://127.0.0.1:${bare.info.port}`)
const presencedResult = load(presencedUrl)
server.child.kill()
bare.child.kill()

const row = (name: string, r: LoadResult) =>
  `${name.padEnd(22)} ${r.requestsPerSecond.toFixed(0).padStart(9)} ${(r.requestsPerSecond * idsPerRequest).toFixed(0).padStart(10)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}`
console.log(
  `\nreply ${sampleBody.length} bytes, ${idsPerRequest} ids/request, ${connections} connections, ${seconds} s each`,
)
console.log(
  `${'target'.padEnd(22)} ${'req/s'.padStart(9)} ${'users/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(7)}`,
)
console.log(row('bare node:http', bareResult))
console.log(row('presenced', presencedResult))
console.log(
  `throughput ratio presenced / bare: ${ratio(presencedResult.requestsPerSecond, bareResult.requestsPerSecond)} (goal >= 75 %)`,
)
console.log(
  `memory per live session: ${server.info.bytesPerSession.toFixed(0)} B heap+external, ${server.info.rssPerSession.toFixed(0)} B rss (goal <= 200 B); load took ${server.info.loadSeconds.toFixed(1)} s`,
)
