/**
 * The Roblox reply writer alone, in process: writeSummariesReply of 50 summaries whose
 * activities are drawn among `--activities` interned ones, with `--pollute` random loads of a
 * 128 MiB array before each reply (as a store's row reads push the writer's caches out) or
 * none. Prints the best of `--rounds` rounds, in µs a reply. `--baseline <dir>` runs another
 * checkout's writer the same way in a process of its own, the two taking turns.
 *
 *   npx tsx bench/reply-writer-cache.ts --activities 500 --pollute 400
 *   npx tsx bench/reply-writer-cache.ts --activities 5000 --baseline ../presenced-main
 */
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Activity } from '../src/core/presence.js'
import type { PresenceSummary } from '../src/core/privacy.js'
import type { UserId } from '../src/core/user-id.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    activities: { type: 'string', default: '500' },
    pollute: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '6' },
    replies: { type: 'string', default: '20000' },
    baseline: { type: 'string' },
    /** The checkout whose writer is measured (the baseline's own run). */
    writer: { type: 'string' },
  },
})
const activities = Number(values.activities)
const pollute = Number(values.pollute)
const rounds = Number(values.rounds)
const replies = Number(values.replies)

if (values.baseline !== undefined) {
  const self = fileURLToPath(import.meta.url)
  const args = (dir: string) => [
    '--import',
    'tsx',
    self,
    ...['--activities', String(activities), '--pollute', String(pollute)],
    ...['--rounds', String(rounds), '--replies', String(replies), '--writer', dir],
  ]
  const here = resolve(fileURLToPath(new URL('..', import.meta.url)))
  for (let turn = 0; turn < 2; turn++) {
    for (const [name, dir] of [
      ['this checkout', here],
      ['baseline', resolve(values.baseline)],
    ] as const) {
      const out = execFileSync(process.execPath, args(dir), { encoding: 'utf8' }).trim()
      console.log(`${name.padEnd(14)} ${out}`)
    }
  }
  process.exit(0)
}

const writerDir = values.writer ?? resolve(fileURLToPath(new URL('..', import.meta.url)))
const { writeSummariesReply } = (await import(
  join(writerDir, 'src/protocols/roblox/reply-writer.ts')
)) as typeof import('../src/protocols/roblox/reply-writer.js')

const interned = Array.from(
  { length: activities },
  (_, i) =>
    Object.freeze({
      kind: 'inGame',
      placeId: String(1_000_000 + i),
      rootPlaceId: String(1_000_000 + i),
      universeId: String(5_000 + i),
      gameId: '6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69',
      location: `Place number ${i}`,
    }) as Activity,
)
const now = Date.now()
const batch = (): PresenceSummary[] =>
  Array.from({ length: 50 }, () => {
    const a = Math.floor(Math.random() * activities)
    return {
      userId: String(1 + Math.floor(Math.random() * 1e6)) as UserId,
      state: 2,
      activity: interned[a],
      updatedAt: now,
      lastOnline: now - Math.floor(Math.random() * 1e7),
      sessions: 1,
      deviceType: '',
      source: 'app',
      activityId: a,
    }
  })
const batches = Array.from({ length: 512 }, batch)
const junk = new Float64Array(16 * 1024 * 1024)
const options = { invisibleSelfView: 'state' } as const
let sink = 0
let best = Number.POSITIVE_INFINITY
for (let round = 0; round < rounds; round++) {
  let ns = 0
  for (let i = 0; i < replies; i++) {
    for (let j = 0; j < pollute; j++) sink += junk[Math.floor(Math.random() * junk.length)]!
    const started = process.hrtime.bigint()
    sink += writeSummariesReply(batches[i & 511]!, options).length
    ns += Number(process.hrtime.bigint() - started)
  }
  best = Math.min(best, ns / replies / 1000)
}
// the replies' lengths and the loads summed into `sink`, so that neither is optimized away
if (Number.isNaN(sink)) console.log('(a NaN in the array)')
console.log(
  `${activities} activities, ${pollute} polluting loads a reply: ${best.toFixed(2)} µs a reply (best of ${rounds})`,
)
