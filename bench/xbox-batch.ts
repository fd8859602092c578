/**
 * `npm run bench:xbox`: Xbox's POST /users/batch, 1100 random XUIDs per request at level `all`,
 * against presenced holding 1,000,000 users with live sessions (embedded store; two thirds in a
 * game, which Xbox shows as the platform title with the place as rich presence), beside the
 * naive Fastify server (naive-xbox-server.ts) and the bare node:http server, all answering the
 * same bytes, in one run (lib/side-by-side.ts). The caller is a signed-in user (XBL3.0) with no
 * relations among the ids.
 *
 *   npm run bench:xbox
 *   npm run bench:xbox -- --users 100000 --rounds 2 --seconds 5
 *   npm run bench:xbox -- --baseline ../presenced-main   # another checkout's presenced beside
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/app/config.js'
import type { BenchServerInfo } from './lib/bench-server.js'
import { STRANGER_ID } from './lib/population.js'
import { presencedEnv, spawnJson, stop } from './lib/processes.js'
import { sideBySide } from './lib/side-by-side.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    ids: { type: 'string', default: '1100' },
    checks: { type: 'string', default: '3' },
    /** Writes presenced's CPU profile of everything after its loading to this file. */
    profile: { type: 'string' },
    /** Another checkout (with node_modules) whose presenced runs beside this one's, in the same rounds. */
    baseline: { type: 'string' },
    /** presenced (`--malloc`) and the baseline (`--baseline-malloc`) with glibc's malloc as
     * `npm start` sets it (huge pages: the default) or left plain. */
    malloc: { type: 'string', default: 'huge' },
    'baseline-malloc': { type: 'string' },
  },
})
const users = Number(values.users)
const at = Date.now()
const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
// the bench server runs with the default configuration: the same platform title
const platformTitleId = loadConfig({}).xboxDefaultTitleId

console.log(`loading ${users.toLocaleString()} users into presenced and the naive server…`)
const [server, naive, baseline] = await Promise.all([
  spawnJson<BenchServerInfo>(
    'bench/lib/bench-server.ts',
    [
      ...['--users', String(users), '--at', String(at)],
      ...(values.profile ? ['--profile', values.profile] : []),
    ],
    ['--expose-gc', '--max-old-space-size=8192'],
    presencedEnv(values.malloc),
  ),
  spawnJson<{ port: number }>(
    'bench/naive-xbox-server.ts',
    ['--users', String(users), '--at', String(at), '--title', platformTitleId],
    ['--max-old-space-size=8192'],
  ),
  values.baseline === undefined
    ? undefined
    : spawnJson<BenchServerInfo>(
        'bench/lib/bench-server.ts',
        ['--users', String(users), '--at', String(at)],
        ['--expose-gc', '--max-old-space-size=8192'],
        presencedEnv(values['baseline-malloc'] ?? values.malloc),
        values.baseline,
      ),
])
console.log(`presenced loaded in ${server.info.loadSeconds.toFixed(1)} s`)

await sideBySide(
  {
    title: 'Xbox batch at level all',
    path: '/users/batch',
    shape: 'xbox',
    mix: { users, random: Number(values.ids) },
    headers: {
      Authorization: `XBL3.0 x=${STRANGER_ID};${server.info.strangerToken}`,
      'x-xbl-contract-version': '3',
      Accept: 'application/json',
    },
    connections: Number(values.connections),
    goals: { vsNaive: 2, vsBare: 0.25 },
  },
  {
    naiveUrl: `http://127.0.0.1:${naive.info.port}`,
    presencedUrl: `http://127.0.0.1:${server.info.port}`,
    pids: { naive: naive.child.pid, presenced: server.child.pid, baseline: baseline?.child.pid },
    ...(baseline && {
      baselineUrl: `http://127.0.0.1:${baseline.info.port}`,
      baselineHeaders: {
        Authorization: `XBL3.0 x=${STRANGER_ID};${baseline.info.strangerToken}`,
        'x-xbl-contract-version': '3',
        Accept: 'application/json',
      },
    }),
    dir,
  },
  { rounds: Number(values.rounds), seconds: Number(values.seconds), checks: Number(values.checks) },
)
naive.child.kill()
if (baseline) await stop(baseline.child)
await stop(server.child)
if (values.profile) console.log(`presenced's CPU profile: ${values.profile}`)
