import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { byChance, perfMap } from '../../bench/lib/callgrind.js'

/** A pid no process has (pids stay below 2^22 on Linux), for a perf map of the test's own. */
const PID = 4_000_000_000 + (process.pid % 1_000_000)
const MAP = `/tmp/perf-${PID}.map`

/** A perf map as V8 writes it: a log, one `start size name` line per code object, in order. */
function writeMap(lines: Array<[number, number, string]>): void {
  writeFileSync(
    MAP,
    lines
      .map(([start, size, name]) => `${start.toString(16)} ${size.toString(16)} ${name}\n`)
      .join(''),
  )
}

const STATS = 'file:///w/dist/service/presence-stats.js'
const LOADER = 'JS:*loadPresenced file:///w/bench/lib/load-presenced.ts:1:489'

test('an address V8 reused is named after the code written there last', (t) => {
  t.after(() => rmSync(MAP, { force: true }))
  writeMap([
    [0x1000, 0x400, LOADER],
    [0x5000, 0x10, 'JS:~elsewhere file:///w/dist/a.js:1:1'],
    // freed, then two smaller functions compiled into its room
    [0x1000, 0x100, 'JS:*summarizeNow file:///w/dist/store/memory/memory-presence-store.js:1:1'],
    [0x1180, 0x80, 'JS:^add file:///w/dist/service/presence-stats.js:41:8'],
  ])
  const nameOf = perfMap(PID)
  assert.match(nameOf(0x1050)!, /summarizeNow/)
  assert.match(nameOf(0x11a0)!, /\^add /)
  // in the old code's room but in no later code: still the old code's
  assert.equal(nameOf(0x1300), LOADER)
  assert.equal(nameOf(0x5008), 'JS:~elsewhere file:///w/dist/a.js:1:1')
  assert.equal(nameOf(0x6000), undefined)
  assert.equal(nameOf(0x0fff), undefined)
})

/** A callgrind file of JIT code at the given addresses, with these self costs (no calls). */
function callgrindFile(dir: string, costs: Array<[number, number]>): string {
  const file = join(dir, 'callgrind.out')
  const total = costs.reduce((sum, [, ir]) => sum + ir, 0)
  writeFileSync(
    file,
    [
      '# callgrind format',
      'version: 1',
      'creator: test',
      `pid: ${PID}`,
      'cmd: node',
      'part: 1',
      'positions: line',
      'events: Ir',
      `summary: ${total}`,
      'ob=(1) ???',
      'fl=(1) ???',
      ...costs.flatMap(([address, ir], i) => [
        `fn=(${i + 1}) 0x${address.toString(16).padStart(16, '0')}`,
        `0 ${ir}`,
      ]),
      '',
    ].join('\n'),
  )
  return file
}

test("byChance leaves out the build's statistics pass (presence-stats.js), named by the latest code", (t) => {
  const annotate = spawnSync('callgrind_annotate', ['--version'])
  if (annotate.error) return t.skip('callgrind_annotate (valgrind) is not installed')
  const dir = mkdtempSync(join(tmpdir(), 'callgrind-test-'))
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
    rmSync(MAP, { force: true })
  })
  writeMap([
    [0x2000, 0x800, LOADER],
    [0x2000, 0x400, `JS:^#compute ${STATS}:226:19`],
    [0x3000, 0x100, 'JS:*writeRecord file:///w/dist/protocols/roblox/reply-writer.js:1:1'],
  ])
  const compiled = callgrindFile(dir, [
    [0x2010, 70_000],
    [0x3010, 30_000],
  ])
  assert.equal(byChance(compiled, PID), 70_000)

  // #compute interpreted (its `~` entry is bytecode, never run): the pass's named code, self
  writeMap([
    [0x2000, 0x800, LOADER],
    [0x2000, 0x100, `JS:^add ${STATS}:41:8`],
    [0x2100, 0x100, 'JS:*liveUsers file:///w/dist/store/memory/memory-presence-store.js:312:21'],
    [0x3000, 0x100, 'JS:*writeRecord file:///w/dist/protocols/roblox/reply-writer.js:1:1'],
    [0x4000, 0x100, `JS:~#compute ${STATS}:226:19`],
  ])
  const interpreted = callgrindFile(dir, [
    [0x2010, 5_000],
    [0x2110, 2_000],
    [0x3010, 30_000],
  ])
  assert.equal(byChance(interpreted, PID), 7_000)
})
