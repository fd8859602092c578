/**
 * The embedded store's read alone: `getMany` of random ids over N users with live sessions
 * (lib/store-population.ts), in process. Prints ns per id. For instruction and cache-miss
 * counts, run it under callgrind twice, with --batches 0 and with --batches K, and divide the
 * difference by K × ids:
 *
 *   npx tsx bench/store-read.ts --users 1000000 --batches 20000
 *   valgrind --tool=callgrind --cache-sim=yes node --import tsx bench/store-read.ts --users 200000 --batches 2000
 */
import { parseArgs } from 'node:util'
import type { UserId } from '../src/core/user-id.js'
import { MemoryPresenceStore } from '../src/store/memory/memory-presence-store.js'
import { FIRST_USER, fillStore } from './lib/store-population.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    batches: { type: 'string', default: '20000' },
    ids: { type: 'string', default: '50' },
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
const batch = (): UserId[] => Array.from({ length: ids }, randomId)

let sessions = 0
const started = performance.now()
for (let b = 0; b < batches; b++) {
  for (const presence of await store.getMany(batch(), readAt)) sessions += presence.sessions.length
}
const elapsed = performance.now() - started
if (sessions !== batches * ids) throw new Error(`expected every user live, read ${sessions}`)
console.log(
  JSON.stringify({
    users,
    batches,
    ids,
    nsPerId: batches > 0 ? Math.round((elapsed * 1e6) / (batches * ids)) : 0,
  }),
)
