/**
 * `npm run bench`: POST /v1/presence/users against presenced holding 1,000,000 users with live
 * sessions (embedded store), beside the naive Fastify server (naive-roblox-server.ts) and the
 * bare node:http server, all answering the same bytes, in one run (lib/side-by-side.ts).
 * Two scenarios: an anonymous caller asking for 50 random ids, and a signed-in viewer with 200
 * friends and 20 blocked users asking for 50 ids of which 20 are friends and 2 blocked (presenced
 * shows those two Offline; the naive server does no privacy).
 *
 *   npm run bench
 *   npm run bench -- --users 100000 --rounds 2 --seconds 5 --scenarios anonymous
 *   npm run bench -- --history 0     # without the real-time resume history
 *   npm run bench -- --catalogue-just-changed   # the minute after a places catalogue change
 *   npm run bench -- --baseline ../presenced-main   # another checkout's presenced beside, same rounds
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BenchServerInfo } from './lib/bench-server.js'
import { blockedOf, friendsOf } from './lib/population.js'
import { presencedEnv, spawnJson, stop } from './lib/processes.js'
import { sideBySide, type Scenario } from './lib/side-by-side.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    ids: { type: 'string', default: '50' },
    friends: { type: 'string', default: '200' },
    blocked: { type: 'string', default: '20' },
    'friend-ids': { type: 'string', default: '20' },
    'blocked-ids': { type: 'string', default: '2' },
    checks: { type: 'string', default: '5' },
    scenarios: { type: 'string', default: 'anonymous,signed-in' },
    /** Writes presenced's CPU profile of everything after its loading to this file. */
    profile: { type: 'string' },
    /** Another checkout (with node_modules) whose presenced runs beside this one's, in the same rounds. */
    baseline: { type: 'string' },
    /** presenced (`--malloc`) and the baseline (`--baseline-malloc`) with glibc's malloc as
     * `npm start` sets it (huge pages: the default) or left plain. */
    malloc: { type: 'string', default: 'huge' },
    'baseline-malloc': { type: 'string' },
    /** presenced's PRESENCED_REALTIME_HISTORY (0: no resume history); default: the config's. */
    history: { type: 'string' },
    /** The catalogue changed after every user's last heartbeat: reads check each place. */
    'catalogue-just-changed': { type: 'boolean', default: false },
  },
})
const users = Number(values.users)
const ids = Number(values.ids)
const friends = friendsOf(users, Number(values.friends))
const blocked = blockedOf(users, Number(values.blocked))
if (friends.some((id) => blocked.includes(id))) throw new Error('too few users for the relations')
const at = Date.now()
const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))

console.log(`loading ${users.toLocaleString()} users into presenced and the naive server…`)
const serverArgs = [
  ...['--users', String(users), '--at', String(at)],
  ...['--friends', String(values.friends), '--blocked', String(values.blocked)],
  ...(values.history !== undefined ? ['--history', values.history] : []),
  ...(values['catalogue-just-changed'] ? ['--catalogue-just-changed'] : []),
]
const [server, naive, baseline] = await Promise.all([
  spawnJson<BenchServerInfo>(
    'bench/lib/bench-server.ts',
    [...serverArgs, ...(values.profile ? ['--profile', values.profile] : [])],
    ['--expose-gc', '--max-old-space-size=8192'],
    presencedEnv(values.malloc),
  ),
  spawnJson<{ port: number }>(
    'bench/naive-roblox-server.ts',
    ['--users', String(users), '--at', String(at)],
    ['--max-old-space-size=8192'],
  ),
  values.baseline === undefined
    ? undefined
    : spawnJson<BenchServerInfo>(
        'bench/lib/bench-server.ts',
        serverArgs,
        ['--expose-gc', '--max-old-space-size=8192'],
        presencedEnv(values['baseline-malloc'] ?? values.malloc),
        values.baseline,
      ),
])
const { info } = server
console.log(
  `presenced loaded in ${info.loadSeconds.toFixed(1)} s: ${info.bytesPerSession.toFixed(0)} B ` +
    `heap+external, ${info.rssPerSession.toFixed(0)} B RSS per live session ` +
    `(goal <= 150 B and <= 200 B)`,
)

/**
 * presenced's reply for the viewer: the naive reply with the blocked users shown Offline, their
 * lastOnline the instant of the block (`at`, when the viewer last saw them online; see
 * lib/load-presenced.ts).
 */
const blockedAt = new Date(at).toISOString()
function withBlockedOffline(naiveReply: Buffer): Buffer {
  const hidden = new Set(blocked)
  const body = JSON.parse(naiveReply.toString()) as { userPresences: Array<{ userId: number }> }
  const userPresences = body.userPresences.map((record) =>
    hidden.has(record.userId)
      ? {
          userPresenceType: 0,
          lastLocation: 'Offline',
          placeId: null,
          rootPlaceId: null,
          gameId: null,
          universeId: null,
          userId: record.userId,
          lastOnline: blockedAt,
        }
      : record,
  )
  return Buffer.from(JSON.stringify({ userPresences }))
}

const friendIds = Number(values['friend-ids'])
const blockedIds = Number(values['blocked-ids'])
const scenarios: Record<string, Scenario> = {
  anonymous: {
    title: 'anonymous',
    path: '/v1/presence/users',
    shape: 'roblox',
    mix: { users, random: ids },
    headers: {},
    connections: Number(values.connections),
    goals: { vsNaive: 2, vsBare: 0.4 },
  },
  'signed-in': {
    title: `signed-in viewer (${friends.length} friends, ${blocked.length} blocked; per request ${friendIds} friends, ${blockedIds} blocked)`,
    path: '/v1/presence/users',
    shape: 'roblox',
    mix: {
      users,
      random: ids - friendIds - blockedIds,
      lists: [
        { ids: friends, count: friendIds },
        { ids: blocked, count: blockedIds },
      ],
    },
    headers: { Authorization: `Bearer ${info.viewerToken}` },
    connections: Number(values.connections),
    expected: withBlockedOffline,
    expectedNote: 'with the blocked users Offline, as privacy requires',
    goals: { vsNaive: 1.5 },
  },
}

const servers = {
  naiveUrl: `http://127.0.0.1:${naive.info.port}`,
  presencedUrl: `http://127.0.0.1:${info.port}`,
  ...(baseline && { baselineUrl: `http://127.0.0.1:${baseline.info.port}` }),
  pids: { naive: naive.child.pid, presenced: server.child.pid, baseline: baseline?.child.pid },
  dir,
}
for (const name of String(values.scenarios).split(',')) {
  const scenario = scenarios[name]
  if (!scenario) throw new Error(`no scenario ${name}: ${Object.keys(scenarios).join(', ')}`)
  const baselineHeaders =
    baseline && name === 'signed-in'
      ? { Authorization: `Bearer ${baseline.info.viewerToken}` }
      : undefined
  await sideBySide(
    scenario,
    { ...servers, ...(baselineHeaders && { baselineHeaders }) },
    {
      rounds: Number(values.rounds),
      seconds: Number(values.seconds),
      checks: Number(values.checks),
    },
  )
}
naive.child.kill()
if (baseline) await stop(baseline.child)
await stop(server.child)
if (values.profile) console.log(`presenced's CPU profile: ${values.profile}`)
