/**
 * The embedded store's read alone: `getMany` of random ids over N users with live sessions
 * (lib/store-population.ts), in process. Prints ns per id, of wall clock and of CPU time.
 *
 *   npm run bench:store -- --users 1000000 --batches 20000
 *   npm run bench:store -- --ids 1100 --batches 2000 --summaries   # as an Xbox batch reads
 *
 * Instruction and cache-miss counts of the reads alone: bundle it (no tsx under valgrind), run
 * it under callgrind with instrumentation off until the store is loaded (--callgrind turns it on
 * through callgrind_control), once with --batches 0 and once with --batches K, and divide the
 * difference by K × ids (with --ids-only, the drawing of ids alone is counted, to subtract
 * it too). A simulated last-level cache smaller than the host's keeps the data to
 * cache ratio of a million users while loading fewer:
 *
 *   npx esbuild bench/store-read.ts --bundle --platform=node --format=esm --outfile=/tmp/sr.mjs
 *   valgrind --tool=callgrind --cache-sim=yes --LL=8388608,16,64 --instr-atstart=no \
 *     --smc-check=all-non-file node /tmp/sr.mjs --users 200000 --batches 2000 --callgrind
 */
import { execFileSync } from 'node:child_process'
import type { UserId } from '../src/core/user-id.js'
import { MemoryPresenceStore } from '../src/store/memory/memory-presence-store.js'
import { FIRST_USER, fillStore } from './lib/store-population.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '1000000' },
    batches: { type: 'string', default: '20000' },
    ids: { type: 'string', default: '50' },
    callgrind: { type: 'boolean', default: false },
    /** Reads summaries by the ids' values (summarizeNow, as the lean read paths do), not getMany. */
    summaries: { type: 'boolean', default: false },
    /** Draws the ids without reading them: what to subtract to count the store alone. */
    'ids-only': { type: 'boolean', default: false },
  },
})
const users = Number(values.users)
const batches = Number(values.batches)
const ids = Number(values.ids)

const now = Date.UTC(2026, 0, 1)
const store = new MemoryPresenceStore()
await fillStore(store, users, now)
const readAt = now + users

// a deterministic generator, so runs under callgrind read the same ids
let seed = 0x2545f491
function randomId(): UserId {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return String(FIRST_USER + ((seed >>> 0) % users)) as UserId
}
// a loop, not Array.from({ length }): that one reads "0", "1", … off an object, slowly
function batch(): UserId[] {
  const out = new Array<UserId>(ids)
  for (let i = 0; i < ids; i++) out[i] = randomId()
  return out
}
const idValues = new Array<number>(ids).fill(0.5)

if (values.callgrind) execFileSync('callgrind_control', ['--instr=on', String(process.pid)])
const idsOnly = values['ids-only']
const summarize = values.summaries
let sessions = 0
const started = performance.now()
const cpuBefore = process.cpuUsage()
for (let b = 0; b < batches; b++) {
  const drawn = batch()
  if (idsOnly) {
    sessions += drawn.length
    continue
  }
  if (summarize) {
    for (let i = 0; i < ids; i++) idValues[i] = Number(drawn[i])
    for (const summary of store.summarizeNow(drawn, readAt, idValues)) sessions += summary.sessions
    continue
  }
  for (const presence of await store.getMany(drawn, readAt)) sessions += presence.sessions.length
}
const elapsed = performance.now() - started
const cpu = process.cpuUsage(cpuBefore)
if (sessions !== batches * ids) throw new Error(`expected every user live, read ${sessions}`)
console.log(
  JSON.stringify({
    users,
    batches,
    ids,
    nsPerId: batches > 0 ? Math.round((elapsed * 1e6) / (batches * ids)) : 0,
    // CPU time: on a machine shared with other work, steadier than the wall clock
    cpuNsPerId: batches > 0 ? Math.round(((cpu.user + cpu.system) * 1e3) / (batches * ids)) : 0,
  }),
)
