/**
 * presenced for the HTTP benches: the bench population (population.ts) loaded into its embedded
 * store, then listening on a free port. Run with --expose-gc so the memory figures are taken
 * after a full collection. Prints one JSON line on stdout (BenchServerInfo).
 *
 *   bench-server.ts --users 1000000 --at <epoch ms> --friends 200 --blocked 20 [--profile <file>]
 *     [--history <changes kept per user for resume>] [--catalogue-just-changed]
 *
 * With --profile, the CPU is sampled from the moment it listens, and the profile is written
 * when the process is told to stop (SIGTERM).
 */
import { parseArgs } from 'node:util'
import { startCpuProfile } from './cpu-profile.js'
import { loadPresenced } from './load-presenced.js'
import { settle } from './memory.js'

export interface BenchServerInfo {
  port: number
  users: number
  loadSeconds: number
  /** Heap and off-heap growth per live session over the load. */
  bytesPerSession: number
  rssPerSession: number
  viewerToken: string
  strangerToken: string
}

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    at: { type: 'string', default: String(Date.now()) },
    friends: { type: 'string', default: '200' },
    blocked: { type: 'string', default: '20' },
    profile: { type: 'string' },
    history: { type: 'string' },
    'catalogue-just-changed': { type: 'boolean', default: false },
  },
})
const users = Number(values.users)

const before = settle()
const loaded = await loadPresenced({
  users,
  at: Number(values.at),
  friends: Number(values.friends),
  blocked: Number(values.blocked),
  ...(values.history !== undefined && { history: Number(values.history) }),
  catalogueJustChanged: values['catalogue-just-changed'],
})
const after = settle()
const address = await loaded.presenced.app.listen({ port: 0, host: '127.0.0.1' })
const info: BenchServerInfo = {
  port: Number(new URL(address).port),
  users,
  loadSeconds: loaded.loadSeconds,
  // `external` already includes `arrayBuffers` (the typed arrays of the store)
  bytesPerSession: (after.heapUsed + after.external - before.heapUsed - before.external) / users,
  rssPerSession: (after.rss - before.rss) / users,
  viewerToken: loaded.viewerToken,
  strangerToken: loaded.strangerToken,
}
const profile = values.profile
const stopProfile = profile ? await startCpuProfile() : undefined
process.once('SIGTERM', () => {
  void (async () => {
    await stopProfile?.(profile!)
    process.exit(0)
  })()
})
console.log(JSON.stringify(info))
