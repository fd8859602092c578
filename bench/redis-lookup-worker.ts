/**
 * The Roblox read in process, for bench/redis-lookup.ts: presenced's lean route steps without
 * HTTP (the request's rate limit beside the read, summaries, reply bytes) on Redis (`--mode
 * redis --url … --prefix …`) or in embedded mode, holding --users users put online by game
 * servers. Prints {ready} once loaded, then reads stdin lines `run <ms> <inFlight>` and answers
 * one JSON line per run: reads, CPU µs per read. `parts` and `only <step> <ms>` time the steps
 * apart (reply bytes, summarizeBytes, the rate limit, the MGET...), for finding where time goes.
 */
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import type { Caller } from '../src/core/caller.js'
import type { UserId } from '../src/core/user-id.js'
import { usersReplyOf } from '../src/protocols/roblox/routes.js'
import { writeSummariesReply } from '../src/protocols/roblox/reply-writer.js'
import { summarizeBytes } from '../src/store/redis/presence-codec.js'
import { benchPresenced, putPlaces, reportPlayers } from './lib/game-servers.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    mode: { type: 'string', default: 'redis' },
    users: { type: 'string', default: '100000' },
    url: { type: 'string' },
    prefix: { type: 'string', default: 'bench-lookup' },
  },
})
const users = Number(values.users)
const { presenced, counted } = await benchPresenced(
  values.mode === 'redis' ? values.url! : undefined,
  values.prefix,
)
const { service } = presenced
await putPlaces(service, 500)
await reportPlayers(service, users, 500)
/** CPU µs of this process's main thread so far (user + system), from /proc. */
const mainThreadUs = () => {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1e4
}
const caller: Caller = { kind: 'anonymous', viewer: { kind: 'anonymous' } }
const view = { invisibleSelfView: 'state' as const }
let seed = 12345
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed
}
const idsOf = () => Array.from({ length: 50 }, () => String(1 + (random() % users)) as UserId)
const one = () =>
  usersReplyOf(service, view, caller, idsOf(), () => service.limits.request(caller, '127.0.0.1'))
// warm up
for (let i = 0; i < 2000; i++) await one()
console.log(JSON.stringify({ ready: true, pid: process.pid }))

const timeSync = (name: string, n: number, f: () => unknown) => {
  const t = process.cpuUsage()
  for (let i = 0; i < n; i++) f()
  const u = process.cpuUsage(t)
  return `${name} ${((u.user + u.system) / n).toFixed(2)}`
}
const timeAsync = async (name: string, ms: number, f: () => Promise<unknown>) => {
  const until = performance.now() + ms
  let calls = 0
  const t = process.cpuUsage()
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < until) {
        await f()
        calls++
      }
    }),
  )
  const u = process.cpuUsage(t)
  return `${name} ${((u.user + u.system) / calls).toFixed(1)}`
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line.startsWith('only ')) {
    const [, what, ms] = line.split(' ')
    const k = counted!.keys
    const fs: Record<string, () => Promise<unknown>> = {
      mget: () => counted!.connection.mgetUsersBytes(k.presenceHeads(), idsOf(), k),
      limit: () => service.limits.request(caller, '127.0.0.1'),
      summaries: () => service.lookupSummaries(caller.viewer, idsOf()),
      full: one,
    }
    console.log(JSON.stringify({ only: await timeAsync(what!, Number(ms), fs[what!]!) }))
    continue
  }
  if (line.startsWith('parts')) {
    const ids = idsOf()
    const now = Date.now()
    const out: string[] = []
    const summaries = await service.lookupSummaries(caller.viewer, ids)
    out.push(timeSync('reply', 20000, () => writeSummariesReply(summaries, view)))
    if (counted) {
      const k = counted.keys
      const raws = await counted.connection.mgetUsersBytes(k.presenceHeads(), ids, k)
      out.push(
        timeSync('summarizeBytes', 20000, () => {
          for (let i = 0; i < 50; i++) summarizeBytes(ids[i]!, raws[i], now)
        }),
      )
      out.push(await timeAsync('limit', 2000, () => service.limits.request(caller, '127.0.0.1')))
      const client = counted.connection.client
      const keysOf = () => idsOf().map((id) => k.presence(id))
      out.push(await timeAsync('io-mget', 2000, () => client.mget(keysOf())))
      out.push(await timeAsync('io-mgetBuffer', 2000, () => client.mgetBuffer(keysOf())))
      out.push(await timeAsync('keysOf', 2000, async () => keysOf()))
      out.push(
        await timeAsync('mgetBytes', 2000, () =>
          counted!.connection.mgetUsersBytes(k.presenceHeads(), idsOf(), k),
        ),
      )
    }
    out.push(
      await timeAsync('summaries', 2000, () => service.lookupSummaries(caller.viewer, idsOf())),
    )
    out.push(
      await timeAsync('summaries+limit', 2000, () =>
        service.lookupSummaries(caller.viewer, idsOf(), () =>
          service.limits.request(caller, '127.0.0.1'),
        ),
      ),
    )
    out.push(await timeAsync('full', 2000, one))
    console.log(JSON.stringify({ parts: out.join(' | ') }))
    continue
  }
  const [, msText, inFlightText] = line.split(' ')
  const until = performance.now() + Number(msText)
  let calls = 0
  let bytes = 0
  const cpu = process.cpuUsage()
  const main = mainThreadUs()
  const writes = counted?.writes() ?? 0
  await Promise.all(
    Array.from({ length: Number(inFlightText) }, async () => {
      while (performance.now() < until) {
        const n = (await one()).length
        bytes += n
        calls++
      }
    }),
  )
  const used = process.cpuUsage(cpu)
  console.log(
    JSON.stringify({
      calls,
      bytes: bytes / calls,
      userUs: used.user / calls,
      sysUs: used.system / calls,
      mainUs: (mainThreadUs() - main) / calls,
      writes: ((counted?.writes() ?? 0) - writes) / calls,
    }),
  )
}
process.exit(0)
