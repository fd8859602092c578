/**
 * @presenced/client as a user gets it: `npm pack`, installed from the tarball into an empty
 * project, used from plain Node 20 (ESM and CommonJS, no tsx), type-checked by a TypeScript
 * consumer, and bundled for a browser that subscribes over WebSocket and SSE.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import type { UserId } from '../../src/core/user-id.js'
import { CHROMIUM, CHROMIUM_ARGS } from '../e2e/chromium.js'
import { startApp } from '../helpers/start-app.js'
import { ROOT, emptyProject, pack, run, runOk, tempDir, userEnv, type Packed } from './packing.js'

/** Past 2^53: a client that rounds ids through a JS number would show ...808. */
const BIG = '9223372036854775807'
const BIG_MINUS_ONE = '9223372036854775806'

let packed: Packed
let project: string

// one pack and one install for every test of this file
const cleanups: Array<() => void> = []
after(() => cleanups.forEach((cleanup) => cleanup()))
before(async () => {
  const onCleanup = (cleanup: () => void) => cleanups.push(cleanup)
  packed = await pack(tempDir(onCleanup, 'sdk-tarball'), '@presenced/client')
  project = emptyProject(onCleanup)
  // --offline: the package must install from its tarball alone, with nothing from a registry
  await runOk('npm', ['install', '--offline', '--no-audit', '--no-fund', packed.tarball], {
    cwd: project,
  })
})

test('the tarball holds the build, types, README and LICENSE: no sources, no tests', () => {
  const files = packed.files.sort()
  for (const expected of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/index.cjs',
    'dist/index.d.cts',
  ]) {
    assert.ok(files.includes(expected), `${expected} is packed: ${files.join(', ')}`)
  }
  const unexpected = files.filter(
    (file) => !/^dist\/[\w-]+\.(js|cjs|d\.ts|d\.cts)$/.test(file) && !file.match(/^[A-Z]/),
  )
  assert.deepEqual(unexpected, ['package.json'], 'only dist/, package.json, README, LICENSE')
  assert.ok(!files.some((file) => /test|\.ts$/.test(file.replace(/\.d\.c?ts$/, ''))))

  const manifest = JSON.parse(
    readFileSync(join(project, 'node_modules/@presenced/client/package.json'), 'utf8'),
  ) as Record<string, unknown>
  assert.equal(manifest.dependencies, undefined, 'no runtime dependencies')
  assert.ok(existsSync(join(project, 'node_modules/@presenced/client/README.md')))
})

test('plain Node 20 uses the installed package (ESM and CommonJS) against a live server', async (t) => {
  const server = await startApp(t, { listen: true })
  const watcherToken = await server.tokens.issue('9' as UserId)
  const playerToken = await server.tokens.issue(BIG as UserId)

  // ESM: subscribe (SSE: Node 20 has no global WebSocket), beat, see it, read it back
  writeFileSync(
    join(project, 'esm.mjs'),
    `import { createClient, PresenceType } from '@presenced/client'
const [baseUrl, watcherToken, playerToken, id] = process.argv.slice(2)
const watcher = createClient({ baseUrl, token: watcherToken })
const sub = watcher.subscribe([id])
let transport
sub.on('open', (info) => (transport = info.transport))
const online = new Promise((resolve) => sub.on('online', resolve))
await sub.ready
const player = createClient({ baseUrl, token: playerToken })
await player.registerAppPresence({ placeId: 1818, location: 'Crossroads' })
const event = await online
sub.close()
const [presence] = await watcher.getUserPresences([id])
console.log(JSON.stringify({
  transport,
  eventUser: event.presence.userId,
  state: PresenceType[presence.type],
  userId: presence.userId,
  place: presence.place?.id,
}))
`,
  )
  const esm = await run(process.execPath, ['esm.mjs', server.url, watcherToken, playerToken, BIG], {
    cwd: project,
    env: userEnv(),
  })
  assert.equal(esm.code, 0, esm.stderr)
  const result = JSON.parse(esm.stdout) as Record<string, unknown>
  assert.equal(result.transport, 'sse', 'no global WebSocket on Node 20: SSE over fetch')
  assert.equal(result.eventUser, BIG, 'the event names the user exactly')
  assert.equal(result.userId, BIG)
  assert.equal(result.state, 'InGame')
  assert.equal(result.place, '1818')

  // CommonJS: require() on Node 20, errors are the package's classes
  writeFileSync(
    join(project, 'cjs.cjs'),
    `const { createClient, PresencedError } = require('@presenced/client')
const [baseUrl, id] = process.argv.slice(2)
;(async () => {
  const [presence] = await createClient({ baseUrl }).getUserPresences([id])
  let refused
  try {
    await createClient({ baseUrl, token: 'not-a-token' }).registerAppPresence({ placeId: 1 })
  } catch (error) {
    refused = { isPresencedError: error instanceof PresencedError, status: error.status }
  }
  console.log(JSON.stringify({ userId: presence.userId, type: presence.type, refused }))
})()
`,
  )
  const cjs = await run(process.execPath, ['cjs.cjs', server.url, BIG], {
    cwd: project,
    env: userEnv(),
  })
  assert.equal(cjs.code, 0, cjs.stderr)
  assert.deepEqual(JSON.parse(cjs.stdout), {
    userId: BIG,
    type: 2,
    refused: { isPresencedError: true, status: 401 },
  })
})

test('a TypeScript consumer type-checks against the shipped declarations (ESM and CJS)', async () => {
  const consumer = `import { createClient, PresenceType, type Presence } from '@presenced/client'
const client = createClient({ baseUrl: 'http://127.0.0.1:8080' })
export async function first(): Promise<[string, PresenceType, Date]> {
  const [p]: Presence[] = await client.getUserPresences([1n, '2', 3, { id: 4 }])
  return [p!.userId, p!.type, p!.lastOnline]
}
// @ts-expect-error: ids are strings, never numbers
export const wrong: number = ({} as Presence).userId
`
  writeFileSync(join(project, 'consumer.mts'), consumer)
  writeFileSync(join(project, 'consumer.cts'), consumer)
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        noEmit: true,
        strict: true,
        // the shipped declarations themselves are checked too
        skipLibCheck: false,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'dom'],
        types: [],
      },
      files: ['consumer.mts', 'consumer.cts'],
    }),
  )
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
  const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project })
  assert.equal(checked.code, 0, checked.stdout + checked.stderr)
})

/**
 * A Chromium page of presenced's own origin (`url`), as a site behind the same front would be
 * (presenced sends no CORS headers), with the package's browser bundle added to it as that
 * site's script would be: `window.presenced` is the package.
 */
async function browserPage(t: TestContext, url: string) {
  writeFileSync(
    join(project, 'browser-entry.js'),
    `import * as presenced from '@presenced/client'\nwindow.presenced = presenced\n`,
  )
  const bundle = await build({
    absWorkingDir: project,
    entryPoints: ['browser-entry.js'],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome110',
    write: false,
    logLevel: 'silent',
  })
  const script = bundle.outputFiles[0]!.text
  t.diagnostic(`browser bundle: ${script.length} bytes`)

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  })
  t.after(() => browser.close())
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))
  await page.goto(`${url}/healthz`)
  await page.addScriptTag({ content: script })
  await page.waitForFunction(() => 'presenced' in window)

  return { page, pageErrors }
}

test(
  'a browser bundle of the package subscribes to live users over WebSocket and SSE in Chromium',
  {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`,
    timeout: 60_000,
  },
  async (t) => {
    const server = await startApp(t, { listen: true })
    const { page, pageErrors } = await browserPage(t, server.url)

    const watcherToken = await server.tokens.issue('9' as UserId)
    for (const [transport, target] of [
      ['websocket', BIG],
      ['sse', BIG_MINUS_ONE],
    ] as const) {
      const opened = await page.evaluate(
        async ({ token, id, transport }) => {
          type Sdk = typeof import('@presenced/client')
          const { createClient } = (window as unknown as { presenced: Sdk }).presenced
          const sub = createClient({ baseUrl: location.origin, token }).subscribe([id], {
            transport,
          })
          const seen: Array<{ type: string; userId: string; place: string | null }> = []
          let used = ''
          sub.on('open', (info) => (used = info.transport))
          sub.on('event', (e) => {
            const users = e.type === 'snapshot' ? e.presences : [e.presence]
            for (const p of users)
              seen.push({ type: e.type, userId: p.userId, place: p.place?.id ?? null })
          })
          Object.assign(window, { [`seen_${transport}`]: seen })
          await sub.ready
          return used
        },
        { token: watcherToken, id: target, transport },
      )
      assert.equal(opened, transport)

      const beat = await fetch(`${server.url}/v1/presence/register-app-presence`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await server.tokens.issue(target as UserId)}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
      })
      assert.equal(beat.status, 200)

      const handle = await page.waitForFunction(
        (name) => {
          const seen = (window as unknown as Record<string, Array<{ type: string }>>)[name]!
          return seen.some((e) => e.type === 'online') && seen
        },
        `seen_${transport}`,
        { timeout: 20_000 },
      )
      const seen = (await handle.jsonValue()) as Array<Record<string, unknown>>
      assert.deepEqual(seen, [
        { type: 'snapshot', userId: target, place: null },
        { type: 'online', userId: target, place: '1818' },
      ])
    }
    assert.deepEqual(pageErrors, [])
  },
)

test(
  "a browser bundle over Chromium's WebSocket (no upgrade headers) learns a server limit of 300 from the refusal: 800 ids, every one's snapshot",
  {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`,
    timeout: 60_000,
  },
  async (t) => {
    const server = await startApp(t, { listen: true, config: { realtimeMaxIds: 300 } })
    const { page, pageErrors } = await browserPage(t, server.url)
    const told = await page.evaluate(
      async ({ token }) => {
        type Sdk = typeof import('@presenced/client')
        const { createClient } = (window as unknown as { presenced: Sdk }).presenced
        const ids = Array.from({ length: 800 }, (_, i) => String(1000 + i))
        const sub = createClient({ baseUrl: location.origin, token }).subscribe(ids, {
          transport: 'websocket',
        })
        const snapshots = new Set<string>()
        sub.on('snapshot', (e) => e.presences.forEach((p) => snapshots.add(p.userId)))
        await sub.ready
        const result = { maxIds: sub.maxIds, snapshots: snapshots.size, ids: sub.ids.size }
        sub.close()
        return result
      },
      { token: await server.tokens.issue('9' as UserId) },
    )
    assert.deepEqual(told, { maxIds: 300, snapshots: 800, ids: 800 })
    assert.deepEqual(pageErrors, [])
  },
)
