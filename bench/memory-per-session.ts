/**
 * Memory per live session of the embedded presence store (MemoryPresenceStore), alone.
 *
 *   node --expose-gc --import tsx bench/memory-per-session.ts [users=1000000]
 *
 * Loads `users` users, each with one live app session (a third Online on the website, two
 * thirds InGame in one of 500 places on one of 20,000 game servers, activities filled as the
 * service fills them from the catalogue), then prints heap (+ off-heap buffers) and RSS growth
 * per session after a full GC. Every write brings fresh strings, as parsed request bodies do.
 */
import { MemoryPresenceStore } from '../src/store/memory/memory-presence-store.js'
import type { Activity } from '../src/core/presence.js'
import type { UserId } from '../src/core/user-id.js'

const users = Number(process.argv[2] ?? 1_000_000)
const maybeGc = (globalThis as { gc?: () => void }).gc
if (!maybeGc) {
  console.error('run with: node --expose-gc --import tsx bench/memory-per-session.ts [users]')
  process.exit(1)
}
const gc = maybeGc

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage()
}

function activityOf(i: number): Activity {
  if (i % 3 === 0) return { kind: 'online', location: `Web${'site'}` }
  const place = i % 500
  const server = i % 20_000
  return {
    kind: 'inGame',
    placeId: String(1_000_000 + place),
    rootPlaceId: String(1_000_000 + place),
    universeId: String(2_000_000 + place),
    gameId: `6f1c1b4e-2f7a-4f5e-9a57-${String(server).padStart(12, '0')}`,
    location: `Place ${place}`,
  }
}

const now = Date.UTC(2026, 0, 1)
const store = new MemoryPresenceStore()
const before = settle()
const started = performance.now()
for (let i = 1; i <= users; i++) {
  await store.heartbeat(
    {
      userId: String(1_000_000_000 + i) as UserId,
      key: `app:${'Web'}`,
      source: 'app',
      deviceType: `W${'eb'}`,
      activity: activityOf(i),
      ttlMs: 3_600_000,
    },
    now + i,
  )
}
const loadSeconds = (performance.now() - started) / 1000
const after = settle()
const stats = await store.stats(now + users)
if (stats.sessions !== users) throw new Error(`expected ${users} sessions, got ${stats.sessions}`)

const perSession = (key: 'heapUsed' | 'external' | 'rss') => (after[key] - before[key]) / users
const result = {
  users,
  loadSeconds: Number(loadSeconds.toFixed(2)),
  heapPerSession: Math.round(perSession('heapUsed')),
  externalPerSession: Math.round(perSession('external')),
  bytesPerSession: Math.round(perSession('heapUsed') + perSession('external')),
  rssPerSession: Math.round(perSession('rss')),
}
console.log(JSON.stringify(result))
// keep the store reachable until measured
void store.close()
