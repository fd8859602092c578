// The examples a new user copies from the docs, taken from the markdown files themselves and run
// against a real server (`presenced serve` as `npm start` runs it): README's "Try it in a
// minute", its SDK snippet and its CLI session, and the game servers guide's first steps. Their
// output is compared with the output the docs show, times and ids aside, so that these tests
// break when a doc and the server drift apart.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js'

const ROOT = resolve(import.meta.dirname, '../..')
const ADMIN_KEY = 'secret' // the README's
const doc = (path: string) => readFileSync(join(ROOT, path), 'utf8')

/** The text under a heading (`## Try it in a minute`), up to the next heading of its level or above. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n')
  const start = lines.findIndex((line) => line === heading)
  assert.ok(start >= 0, `heading ${heading} not found`)
  const level = heading.indexOf(' ')
  let fenced = false
  const end = lines.findIndex((line, i) => {
    if (line.startsWith('```')) fenced = !fenced
    return i > start && !fenced && /^#+ /.test(line) && line.indexOf(' ') <= level
  })
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The fenced code blocks of a text written in `lang`. */
function codeBlocks(text: string, lang: string): string[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)]
    .filter((match) => match[1] === lang)
    .map((match) => match[2]!)
}

interface Step {
  /** The command, its continuation lines joined. */
  command: string
  /** The comment lines right after it, without `# `: what the doc shows it prints. */
  shown: string[]
}

/** A shell block as commands, each with the comment lines that follow it. */
function steps(block: string): Step[] {
  const out: Step[] = []
  let pending = ''
  for (const line of block.split('\n')) {
    if (pending === '' && line.startsWith('#')) {
      out.at(-1)?.shown.push(line.replace(/^# ?/, ''))
    } else if (line.endsWith('\\')) {
      pending += line.slice(0, -1)
    } else if (pending !== '' || line.trim() !== '') {
      out.push({ command: pending + line, shown: [] })
      pending = ''
    }
  }
  return out
}

/** The step whose command contains `text`. */
function step(all: Step[], text: string): Step {
  const found = all.find((s) => s.command.includes(text))
  assert.ok(found, `no command with ${text}`)
  return found
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/

/**
 * Whether `actual` has the shape the doc shows: the same keys in the same order, the same values,
 * except that a time shown matches any time and a string shown with `…` any string it begins.
 */
function assertShaped(actual: unknown, shown: unknown, path = '$'): void {
  if (typeof shown === 'string' && ISO.test(shown)) {
    assert.match(String(actual), ISO, `${path}: a time`)
  } else if (typeof shown === 'string' && shown.includes('…')) {
    assert.equal(typeof actual, 'string', path)
    assert.ok((actual as string).startsWith(shown.slice(0, shown.indexOf('…'))), path)
  } else if (Array.isArray(shown)) {
    assert.ok(Array.isArray(actual), `${path}: an array`)
    assert.equal(actual.length, shown.length, `${path}: length`)
    shown.forEach((item, i) => assertShaped(actual[i], item, `${path}[${i}]`))
  } else if (shown !== null && typeof shown === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: an object`)
    assert.deepEqual(Object.keys(actual), Object.keys(shown), `${path}: keys`)
    for (const [key, value] of Object.entries(shown)) {
      assertShaped((actual as Record<string, unknown>)[key], value, `${path}.${key}`)
    }
  } else {
    assert.deepEqual(actual, shown, path)
  }
}

/** The JSON a doc shows in comment lines, a trailing `   (remark)` left out. */
function shownJson(shown: string[]): unknown {
  return JSON.parse(shown.map((line) => line.trim().replace(/\s{2,}\(.*\)$/, '')).join(''))
}

/** Times and clock readings replaced by placeholders of their own width. */
const untimed = (text: string) =>
  text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/g, (time) => 'T'.repeat(time.length))
    .replace(/^\d\d:\d\d:\d\d/gm, 'hh:mm:ss')

interface Shell {
  code: number | null
  stdout: string
  stderr: string
}

let server: ServerProcess
let dataDir: string
/** localhost:8080 as the docs write it, and this server's. */
let hostPort: string

/** `npx presenced` through the package's bin, without npm's second of starting up, but once. */
const NPX_SHIM =
  'npx() { if [ "$1" = presenced ]; then shift; node bin/presenced.js "$@"; else command npx "$@"; fi; }'

/**
 * Runs `script` in bash in the repository, with the docs' port replaced by the server's, and job
 * control on as in a terminal: `kill -INT %1` interrupts a background command as Ctrl-C would.
 */
function bash(
  script: string,
  env: Record<string, string> = {},
  options: { shim?: boolean } = {},
): Promise<Shell> {
  const adjusted = script
    .replaceAll('localhost:8080', hostPort)
    .replaceAll('127.0.0.1:8080', hostPort)
  const child = spawn(
    'bash',
    ['-c', `set -m\n${options.shim === false ? '' : NPX_SHIM}\n${adjusted}`],
    {
      cwd: ROOT,
      detached: true,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PRESENCED_DATA_DIR: dataDir,
        PRESENCED_URL: server.url,
        ...env,
      },
    },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  // a generous bound, only so that a hung example fails with what it printed
  const timer = setTimeout(() => {
    stderr += '\n(killed after 60 s)'
    process.kill(-child.pid!, 'SIGKILL')
  }, 60_000)
  return new Promise((done, fail) => {
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })
}

const cleanups: Array<() => void> = []

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'presenced-docs-'))
  // the server lives for the whole file: its clean-up runs in the file's after hook
  const context = {
    after: (fn: () => void) => void cleanups.push(fn),
  } as unknown as Parameters<typeof spawnServer>[0]
  server = await spawnServer(context, {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
    // the SDK snippet and `watch` wait out a disconnect's grace; the docs' 3 s would only be slower
    PRESENCED_FLAP_GRACE: '300',
  })
  hostPort = new URL(server.url).host
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
  const ran = await bash(script, { SNIPPET: snippet.replaceAll('127.0.0.1:8080', hostPort) })
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
