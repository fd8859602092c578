/**
 * POST /users/batch (Xbox), 1100 random XUIDs per request at level `all`, against presenced
 * holding N users with live sessions (embedded store; two thirds in a game, which Xbox shows as
 * the platform title with its place as rich presence), beside a bare node:http server returning
 * bytes of the same size, in the same run. Load comes from wrk in a separate process.
 *
 *   npm run bench:xbox                      # 1,000,000 users, 10 s per target
 *   npm run bench:xbox -- --users 100000 --seconds 5 --connections 16
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ratio, spawnJson } from './lib/processes.js'
import { runWrk, type LoadResult } from './lib/wrk.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    ids: { type: 'string', default: '1100' },
  },
})
const users = Number(values.users)
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const idsPerRequest = Number(values.ids)
const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))

console.log(`loading ${users.toLocaleString()} users into the embedded store…`)
const server = await spawnJson<{ port: number; token: string }>(
  'bench/lib/bench-server.ts',
  [String(users)],
  ['--max-old-space-size=8192'],
)
const presencedUrl = `http://127.0.0.1:${server.info.port}`
const headers = {
  Authorization: `XBL3.0 x=1;${server.info.token}`,
  'x-xbl-contract-version': '3',
  Accept: 'application/json',
}

// The bare server answers bytes of the same size as a typical presenced reply.
const sampleIds = Array.from({ length: idsPerRequest }, (_, i) =>
  String(1 + Math.floor((i * users) / idsPerRequest)),
)
const sample = await fetch(`${presencedUrl}/users/batch`, {
  method: 'POST',
  headers: { ...headers, 'content-type': 'application/json' },
  body: JSON.stringify({ level: 'all', users: sampleIds }),
})
const sampleBody = Buffer.from(await sample.arrayBuffer())
if (sample.status !== 200) throw new Error(`sample request failed: ${sample.status} ${sampleBody}`)
writeFileSync(join(dir, 'reply.json'), sampleBody)
const bare = await spawnJson<{ port: number }>('bench/lib/bare-server.ts', [
  join(dir, 'reply.json'),
])

const load = (url: string, duration = seconds): LoadResult =>
  runWrk({
    url,
    path: '/users/batch',
    users,
    idsPerRequest,
    bodyTemplate: 'xbox',
    headers,
    seconds: duration,
    connections,
    dir,
  })

// warm both up (JIT, connection pools) before measuring
load(presencedUrl, 2)
const bareResult = load(`http://127.0.0.1:${bare.info.port}`)
const presencedResult = load(presencedUrl)
server.child.kill()
bare.child.kill()

const row = (name: string, r: LoadResult) =>
  `${name.padEnd(22)} ${r.requestsPerSecond.toFixed(0).padStart(9)} ${(r.requestsPerSecond * idsPerRequest).toFixed(0).padStart(10)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}`
console.log(
  `\nreply ${sampleBody.length} bytes, ${idsPerRequest} XUIDs/request at level all, ${connections} connections, ${seconds} s each`,
)
console.log(
  `${'target'.padEnd(22)} ${'req/s'.padStart(9)} ${'users/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(7)}`,
)
console.log(row('bare node:http', bareResult))
console.log(row('presenced', presencedResult))
console.log(
  `throughput ratio presenced / bare: ${ratio(presencedResult.requestsPerSecond, bareResult.requestsPerSecond)}`,
)
