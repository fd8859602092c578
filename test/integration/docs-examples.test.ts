// The examples a new user copies from the docs, taken from the markdown files themselves and run
// against a real server (`presenced serve` as `npm start` runs it): README's "Try it in a
// minute", its SDK snippet and its CLI session, and the game servers guide's first steps. Their
// output is compared with the output the docs show, times and ids aside, so that these tests
// break when a doc and the server drift apart.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import {
  assertShaped,
  codeBlocks,
  doc,
  ISO,
  section,
  shellFor,
  spawnForFile,
  shownJson,
  step,
  steps,
  untimed,
  type Step,
} from '../helpers/doc-examples.js'
import { type ServerProcess } from '../helpers/spawn-server.js'

const ADMIN_KEY = 'secret' // the README's

let server: ServerProcess
let dataDir: string

const bash = shellFor(() => ({ url: server.url, dataDir }))

const cleanups: Array<() => void> = []

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'presenced-docs-'))
  // the server lives for the whole file: its clean-up runs in the file's after hook
  server = await spawnForFile(
    {
      PRESENCED_DATA_DIR: dataDir,
      PRESENCED_ADMIN_KEY: ADMIN_KEY,
      // the SDK snippet and `watch` wait out a disconnect's grace; the docs' 3 s would only be slower
      PRESENCED_FLAP_GRACE: '300',
    },
    cleanups,
  )
})

after(async () => {
  await server?.stop()
  for (const cleanup of cleanups) cleanup()
  rmSync(dataDir, { recursive: true, force: true })
})

const README = doc('README.md')

/** The admin API's answer to naming place 1818 Crossroads in a universe. */
const crossroads = (universeId: string) => ({
  placeId: '1818',
  universeId,
  rootPlaceId: '1818',
  name: 'Crossroads',
})

// 123 must start offline here: it runs first
test('README SDK snippet prints what the README says', async () => {
  const sdk = section(README, '## SDK')
  const [snippet] = codeBlocks(sdk, 'js')
  assert.ok(snippet)
  // e.g. `TOKEN=$(npx presenced token --user 123) node try-sdk.mjs`
  const how = /with `npm start` running: (.*) node try-sdk\.mjs/.exec(snippet)
  assert.ok(how, 'the snippet says how to run it')
  const script = `${how[1]!} node --input-type=module --eval "$SNIPPET"`
  const ran = await bash(script, {
    SNIPPET: snippet.replaceAll('127.0.0.1:8080', new URL(server.url).host),
  })
  assert.equal(ran.code, 0, ran.stdout + ran.stderr)

  const prints = /It prints ([\s\S]*?) and exits\./.exec(sdk)
  assert.ok(prints, 'the README says what it prints')
  const shown = [...prints[1]!.replace(/\([^)]*\)/g, '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!)
  const lines = ran.stdout.trimEnd().split('\n')
  // the online event and the lookup race each other; each keeps its own order
  const events = (all: string[]) => all.filter((line) => line.startsWith('event:'))
  const others = (all: string[]) => all.filter((line) => !line.startsWith('event:'))
  assert.deepEqual(events(lines), events(shown))
  const looked = others(lines)
  assert.equal(looked.length, others(shown).length, ran.stdout)
  others(shown).forEach((line, i) => {
    const [before, after] = line.split('<now>')
    const actual = looked[i]!
    if (after === undefined) assert.equal(actual, line)
    else {
      assert.ok(actual.startsWith(before!) && actual.endsWith(after), actual)
      assert.match(actual.slice(before!.length, actual.length - after.length), ISO)
    }
  })
})

test('README CLI session prints what the README shows', { timeout: 120_000 }, async () => {
  const all = steps(codeBlocks(section(README, '## CLI'), 'sh')[0]!)
  const token = step(all, 'presenced token --user 123')
  const heartbeat = step(all, 'presenced heartbeat')
  const table = step(all, 'presenced get 123 456')
  const json = step(all, 'presenced get 123 --json')
  const stop = step(all, 'kill -INT %1')
  const watch = step(all, 'presenced watch')
  const command = (s: Step) => s.command.replace(/\s+#.*$/, '')

  assert.match(command(heartbeat), /&$/, 'the heartbeat runs in the background')
  const background = command(heartbeat).replace(/\s*&$/, '')

  // the session up to the watch, as typed: the heartbeat in the background, asked when it is on
  const marker = (name: string) => `echo "@@ ${name}"`
  const session = [
    command(token),
    `${background} > hb.out &`,
    'until grep -q . hb.out; do sleep 0.1; done; cat hb.out',
    marker('table'),
    command(table),
    marker('json'),
    command(json),
    command(stop),
    'wait %1; echo "heartbeat exit $?"; tail -n +2 hb.out',
  ].join('\n')
  const work = mkdtempSync(join(tmpdir(), 'presenced-docs-cli-'))
  try {
    const ran = await bash(`HB_DIR=${work}\n${session.replaceAll('hb.out', '"$HB_DIR/hb.out"')}`)
    assert.equal(ran.code, 0, ran.stderr)
    const [beating, tabled, rest] = ran.stdout.split(/^@@ \w+\n/m)
    assert.equal(beating, heartbeat.shown.join('\n') + '\n')
    assert.equal(untimed(tabled!), untimed(table.shown.join('\n') + '\n'))
    const [printed, stopped] = rest!.split(/^heartbeat exit /m)
    const presences = JSON.parse(printed!) as Array<Record<string, unknown>>
    assert.equal(presences.length, 1)
    assert.equal(presences[0]!.userId, '123', 'ids as strings')
    assert.match(String(presences[0]!.lastOnline), ISO, 'dates ISO-8601')
    assert.equal(stopped, `0\n${stop.shown.join('\n')}\n`)

    // the watch: its snapshot, then the heartbeat again, stopped with Ctrl-C
    const shown = watch.shown.filter((line) => /^\d\d:/.test(line))
    assert.match(watch.shown.join('\n'), /heartbeat above started again and stopped/)
    const live = [
      `${command(watch)} > "$HB_DIR/watch.out" &`,
      'until [ $(wc -l < "$HB_DIR/watch.out") -ge 2 ]; do sleep 0.1; done',
      command(token),
      `${background} > "$HB_DIR/hb.out" &`,
      'until grep -q "^[0-9:]*  online " "$HB_DIR/watch.out"; do sleep 0.1; done',
      'kill -INT %2; wait %2',
      'until grep -q "^[0-9:]*  offline " "$HB_DIR/watch.out"; do sleep 0.1; done',
      'kill -INT %1; wait %1; echo "watch exit $?"; cat "$HB_DIR/watch.out"',
    ].join('\n')
    const watched = await bash(`HB_DIR=${work}\n${live}`)
    assert.equal(watched.code, 0, watched.stderr)
    assert.equal(untimed(watched.stdout), untimed(`watch exit 0\n${shown.join('\n')}\n`))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})

test('README "Try it in a minute" answers what the README shows', async () => {
  const tryIt = section(README, '## Try it in a minute')
  const all = steps(codeBlocks(tryIt, 'sh')[0]!)
  assert.equal(all.length, 3)
  // as written, `npx` included: the one place this file pays for npm's start
  const marked = all.map((s) => `${s.command}\necho "@@"`).join('\n')
  const ran = await bash(marked, {}, { shim: false })
  assert.equal(ran.code, 0, ran.stderr)
  const outputs = ran.stdout.split('@@\n')
  assert.equal(outputs[0], '', 'the token is taken, not printed')
  all.slice(1).forEach((s, i) => assertShaped(JSON.parse(outputs[i + 1]!), shownJson(s.shown)))

  // naming the place, from the prose (the server here runs with the admin key `secret`)
  const naming = /`(curl -s -X PUT [^`]*)`/.exec(tryIt)
  assert.ok(naming)
  const named = await bash(`${naming[1]}\necho\n${all[2]!.command}`)
  assert.equal(named.code, 0, named.stderr)
  const [place, read] = named.stdout.trim().split('\n')
  assert.deepEqual(JSON.parse(place!), crossroads('99'))
  const presence = (JSON.parse(read!) as { userPresences: Array<Record<string, unknown>> })
    .userPresences[0]!
  // "reads fill in `lastLocation`, `rootPlaceId` and `universeId`"
  assert.match(tryIt, /reads fill in `lastLocation`, `rootPlaceId` and `universeId`/)
  assert.equal(presence.lastLocation, 'Crossroads')
  assert.equal(presence.rootPlaceId, 1818)
  assert.equal(presence.universeId, 99)

  const docs = await fetch(`${server.url}/docs`)
  assert.equal(docs.status, 200, 'the browsable API docs')
})

test('game servers guide: a key, a place, a report and a shutdown as shown', async () => {
  const guide = doc('docs/guides/game-servers.md')
  const blocks = codeBlocks(guide, 'sh')
  const [createKey, namePlace] = blocks
  const report = blocks.find((block) => block.includes('/api/v1/servers/$GAME'))
  assert.ok(createKey && namePlace && report)
  const setup = createKey.replace(
    /^export PRESENCED_URL=\S+ PRESENCED_ADMIN_KEY=.+$/m,
    `export PRESENCED_URL=${server.url} PRESENCED_ADMIN_KEY=${ADMIN_KEY}`,
  )
  assert.notEqual(setup, createKey, 'the guide starts with the export line')
  const keyed = await bash(
    `{\n${setup}\n} > "$KEY_OUT"\n${namePlace}\necho\ncat "$KEY_OUT"; rm "$KEY_OUT"`,
    { KEY_OUT: join(dataDir, 'key.out') },
  )
  assert.equal(keyed.code, 0, keyed.stderr)
  const [place, secret] = keyed.stdout.trim().split('\n')
  assert.deepEqual(JSON.parse(place!), crossroads('13058'))
  assert.match(secret!, /^pk_\S+$/, 'the secret (pk_…) is printed')

  const all = steps(report.replace(/^KEY=pk_….*$/m, `KEY=${secret}`))
  const calls = all.filter((s) => s.command.startsWith('curl'))
  assert.equal(calls.length, 2)
  const ran = await bash(all.map((s) => `${s.command}\necho "@@"`).join('\n'), {
    PRESENCED_URL: server.url,
  })
  assert.equal(ran.code, 0, ran.stderr)
  const outputs = ran.stdout.split('@@\n').filter((out) => out !== '')
  assert.equal(outputs.length, 2)
  calls.forEach((s, i) => assertShaped(JSON.parse(outputs[i]!), shownJson(s.shown)))
})
