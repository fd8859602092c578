/**
 * Memory per live session of the embedded presence store (MemoryPresenceStore), alone.
 *
 *   npm run bench:memory [-- users]          # 1,000,000 users by default
 *
 * Loads `users` users, each with one live app session (lib/store-population.ts), then prints
 * heap (+ off-heap buffers) and RSS growth per session after a full GC.
 */
import { MemoryPresenceStore } from '../src/store/memory/memory-presence-store.js'
import { requireGc, settle } from './lib/memory.js'
import { fillStore } from './lib/store-population.js'

requireGc('node --expose-gc --import tsx bench/memory-per-session.ts [users]')
const users = Number(process.argv[2] ?? 1_000_000)
const now = Date.UTC(2026, 0, 1)
const store = new MemoryPresenceStore()
const before = settle()
const started = performance.now()
await fillStore(store, users, now)
const loadSeconds = (performance.now() - started) / 1000
const after = settle()
const stats = await store.stats(now + users)
if (stats.sessions !== users) throw new Error(`expected ${users} sessions, got ${stats.sessions}`)

const perSession = (key: 'heapUsed' | 'external' | 'rss') => (after[key] - before[key]) / users
console.log(
  JSON.stringify({
    users,
    loadSeconds: Number(loadSeconds.toFixed(2)),
    heapPerSession: Math.round(perSession('heapUsed')),
    externalPerSession: Math.round(perSession('external')),
    bytesPerSession: Math.round(perSession('heapUsed') + perSession('external')),
    rssPerSession: Math.round(perSession('rss')),
    goals: { bytesPerSession: 150, rssPerSession: 200 },
  }),
)
// keep the store reachable until measured
void store.close()
