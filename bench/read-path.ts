/**
 * Where one read costs its time, in process (no sockets, no load generator): presenced holding
 * N users (as bench-server.ts loads them), then per stage the mean microseconds of one request.
 * Less sensitive to a busy machine than the wrk benches; use it to see which stage to work on.
 *
 *   npx tsx bench/read-path.ts                 # 200,000 users
 *   npx tsx bench/read-path.ts --users 1000000 --rounds 2000
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import { anonymous } from '../src/core/privacy.js'
import type { UserId } from '../src/core/user-id.js'
import { robloxPresence, serializeRobloxPresence } from '../src/protocols/roblox/view.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '2000' },
  },
})
const users = Number(values.users)
const rounds = Number(values.rounds)

const presenced = await buildApp(
  testConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'presenced-bench-')),
    sessionTtlSeconds: 3600,
    rateLimitMax: 1_000_000_000,
    logLevel: 'silent',
  }),
)
const { service, app } = presenced
presenced.service.stop()
for (let p = 0; p < 500; p++) {
  const placeId = String(1_000_000 + p)
  await service.putPlace({
    placeId,
    universeId: String(2_000_000 + p),
    rootPlaceId: placeId,
    name: `Place ${p}`,
  })
}
for (let i = 1; i <= users; i++) {
  const inGame = i % 3 !== 0
  await service.heartbeat({
    userId: String(i) as UserId,
    key: 'app:Web',
    source: 'app',
    deviceType: 'Web',
    activity: inGame
      ? {
          kind: 'inGame',
          placeId: String(1_000_000 + (i % 500)),
          gameId: '6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69',
        }
      : { kind: 'online', location: 'Website' },
  })
}

const randomIds = (n: number): UserId[] =>
  Array.from({ length: n }, () => String(1 + Math.floor(Math.random() * users)) as UserId)
const token = await presenced.tokens.issue('1' as UserId)

async function time(name: string, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(200, rounds); i++) await run()
  const started = performance.now()
  for (let i = 0; i < rounds; i++) await run()
  const us = ((performance.now() - started) * 1000) / rounds
  console.log(`${name.padEnd(44)} ${us.toFixed(1).padStart(9)} µs`)
}

const viewOptions = { invisibleAsOffline: false }
console.log(`${users.toLocaleString()} users, ${rounds} rounds per stage, mean per request`)
await time('roblox: service.lookup (50 ids, anonymous)', () =>
  service.lookup(anonymous, randomIds(50)),
)
await time('roblox: service.lookup (50 ids, signed in)', () =>
  service.lookup({ kind: 'user', userId: '1' as UserId }, randomIds(50)),
)
await time('roblox: lookup + view + serialize', async () => {
  const visible = await service.lookup(anonymous, randomIds(50))
  return visible.map((v) => serializeRobloxPresence(robloxPresence(v, viewOptions))).join(',')
})
await time('roblox: inject POST /v1/presence/users', () =>
  app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    headers: { 'content-type': 'application/json' },
    payload: `{"userIds":[${randomIds(50).join(',')}]}`,
  }),
)
const xboxRounds = Math.max(20, Math.floor(rounds / 20))
const xboxHeaders = {
  authorization: `XBL3.0 x=1;${token}`,
  'x-xbl-contract-version': '3',
  accept: 'application/json',
  'content-type': 'application/json',
}
async function xboxTime(name: string, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 20; i++) await run()
  const started = performance.now()
  for (let i = 0; i < xboxRounds; i++) await run()
  const us = ((performance.now() - started) * 1000) / xboxRounds
  console.log(`${name.padEnd(44)} ${us.toFixed(1).padStart(9)} µs`)
}
await xboxTime('xbox: service.lookup (1100 ids, signed in)', () =>
  service.lookup({ kind: 'user', userId: '1' as UserId }, randomIds(1100)),
)
await xboxTime('xbox: inject POST /users/batch (1100, all)', () =>
  app.inject({
    method: 'POST',
    url: '/users/batch',
    headers: xboxHeaders,
    payload: `{"level":"all","users":[${randomIds(1100)
      .map((id) => `"${id}"`)
      .join(',')}]}`,
  }),
)
await app.close()
