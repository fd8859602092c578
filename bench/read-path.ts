/**
 * Where one read costs its time, in process (no sockets, no load generator): presenced holding
 * N users (the bench population, lib/population.ts), then per stage the mean microseconds of one request.
 * Less sensitive to a busy machine than the wrk benches; use it to see which stage to work on.
 *
 *   npx tsx bench/read-path.ts                 # 200,000 users
 *   npx tsx bench/read-path.ts --users 1000000 --rounds 2000
 */
import { anonymous } from '../src/core/privacy.js'
import type { UserId } from '../src/core/user-id.js'
import { writeSummariesReply, writeUsersReply } from '../src/protocols/roblox/reply-writer.js'
import { robloxPresence, serializeRobloxPresence } from '../src/protocols/roblox/view.js'
import { loadPresenced } from './lib/load-presenced.js'
import { STRANGER_ID, VIEWER_ID, blockedOf, friendsOf } from './lib/population.js'
import { drawIds } from './lib/wrk.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '2000' },
  },
})
const users = Number(values.users)
const rounds = Number(values.rounds)

const { presenced, strangerToken: token } = await loadPresenced({
  users,
  at: Date.now(),
  friends: 200,
  blocked: 20,
})
const { service, app } = presenced
const store = presenced.stores.presence
const viewer = { kind: 'user', userId: VIEWER_ID as UserId } as const

function randomIds(n: number): UserId[] {
  const ids = new Array<UserId>(n)
  for (let i = 0; i < n; i++) ids[i] = String(1 + Math.floor(Math.random() * users)) as UserId
  return ids
}

/** Mean µs of `run` over `count` calls, after a tenth as many to warm up: wall clock and CPU. */
async function time(name: string, run: () => unknown, count = rounds): Promise<void> {
  for (let i = 0; i < Math.max(20, count / 10); i++) await run()
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  for (let i = 0; i < count; i++) await run()
  const wall = ((performance.now() - started) * 1000) / count
  const cpu = process.cpuUsage(cpuBefore)
  const cpuMicros = (cpu.user + cpu.system) / count
  console.log(
    `${name.padEnd(64)} ${wall.toFixed(1).padStart(9)} ${cpuMicros.toFixed(1).padStart(9)}`,
  )
}

/**
 * Two stages taking turns in blocks of 100 calls, then per stage the median of its blocks' CPU
 * µs per call. Run one after the other (time()), the signed-in lookup came out 24 µs dearer
 * than the anonymous one (49 against 73) where taking turns shows 3-5: the machine's load, and
 * what the first stage left behind, fell on one stage only.
 */
async function compare(names: [string, string], runs: [() => unknown, () => unknown]) {
  const block = 100
  const cpu: [number[], number[]] = [[], []]
  for (const run of runs) for (let i = 0; i < Math.max(20, rounds / 10); i++) await run()
  for (let b = 0; b < Math.max(5, rounds / block); b++) {
    for (const k of [0, 1] as const) {
      const before = process.cpuUsage()
      for (let i = 0; i < block; i++) await runs[k]()
      const used = process.cpuUsage(before)
      cpu[k].push((used.user + used.system) / block)
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!
  for (const k of [0, 1] as const) {
    console.log(
      `${names[k].padEnd(64)} ${'(turns)'.padStart(9)} ${median(cpu[k]).toFixed(1).padStart(9)}`,
    )
  }
}

const viewOptions = { invisibleSelfView: 'state' } as const
console.log(`${users.toLocaleString()} users, ${rounds} rounds per stage, mean per request`)
// CPU time is steadier than the wall clock on a machine shared with other work
console.log(`${'stage'.padEnd(64)} ${'wall µs'.padStart(9)} ${'CPU µs'.padStart(9)}`)
await time('ids: 50 random ids drawn (in every stage)', () => randomIds(50))
await time('store: getMany (50 ids)', () => store.getMany(randomIds(50), Date.now()))
await compare(
  ['roblox: service.lookup (50 ids, anonymous)', 'roblox: service.lookup (50 ids, signed in)'],
  [() => service.lookup(anonymous, randomIds(50)), () => service.lookup(viewer, randomIds(50))],
)
await compare(
  [
    'roblox: service.lookupSummaries (50 ids, anonymous)',
    'roblox: service.lookupSummaries (50 ids, signed in)',
  ],
  [
    () => service.lookupSummaries(anonymous, randomIds(50)),
    () => service.lookupSummaries(viewer, randomIds(50)),
  ],
)
// the HTTP bench's signed-in request (20 of the viewer's friends, 2 blocked, 28 random ids),
// read by the viewer and anonymously: what being signed in adds, apart from which ids
const signedInMix = {
  users,
  random: 28,
  lists: [
    { ids: friendsOf(users, 200), count: 20 },
    { ids: blockedOf(users, 20), count: 2 },
  ],
}
const mixIds = () => drawIds(signedInMix).map((id) => String(id) as UserId)
await compare(
  [
    "roblox: the route's read, the bench's signed-in ids, anonymous",
    "roblox: the route's read, the bench's signed-in ids, signed in",
  ],
  [
    async () =>
      writeSummariesReply(await service.lookupSummaries(anonymous, mixIds()), viewOptions),
    async () => writeSummariesReply(await service.lookupSummaries(viewer, mixIds()), viewOptions),
  ],
)
await time("roblox: the route's read: summaries + bytes", async () =>
  writeSummariesReply(await service.lookupSummaries(anonymous, randomIds(50)), viewOptions),
)
await time('roblox: the full read: lookup + bytes', async () =>
  writeUsersReply(await service.lookup(anonymous, randomIds(50)), viewOptions),
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
  authorization: `XBL3.0 x=${STRANGER_ID};${token}`,
  'x-xbl-contract-version': '3',
  accept: 'application/json',
  'content-type': 'application/json',
}
await time('ids: 1100 random ids drawn (in every stage)', () => randomIds(1100), xboxRounds)
await time(
  'store: getMany (1100 ids)',
  () => store.getMany(randomIds(1100), Date.now()),
  xboxRounds,
)
await time(
  'xbox: service.lookup (1100 ids, signed in)',
  () => service.lookup(viewer, randomIds(1100)),
  xboxRounds,
)
await time(
  'xbox: inject POST /users/batch (1100, all)',
  () =>
    app.inject({
      method: 'POST',
      url: '/users/batch',
      headers: xboxHeaders,
      payload: `{"level":"all","users":[${randomIds(1100)
        .map((id) => `"${id}"`)
        .join(',')}]}`,
    }),
  xboxRounds,
)
await app.close()
