/**
 * The `presenced` package as a user gets it: `npm pack`, installed from the tarball into an
 * empty folder, then `npx presenced --help`, `--version`, `serve` and `token` there, with no
 * TypeScript and no tsx anywhere.
 *
 * Installing needs the runtime dependencies from the npm registry. `--prefer-offline` takes them
 * from npm's cache when `npm ci` put them there (seconds instead of a download), and
 * `--ignore-scripts` skips better-sqlite3's compile from source (minutes on this machine): the
 * test copies the addon this checkout's `npm ci` compiled for the same version and the same
 * Node, and compiles it only when the versions differ. The packed files and the resolution of
 * every dependency are the package's own; only that C++ compile is not repeated.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT, emptyProject, pack, run, runOk, tempDir, userEnv } from './packing.js'

const ADDON = 'build/Release/better_sqlite3.node'

function version(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string })
    .version
}

test(
  'the presenced tarball installs into an empty folder and its CLI runs there',
  { timeout: 300_000 },
  async (t) => {
    const onCleanup = (cleanup: () => void) => t.after(cleanup)
    const packed = await pack(tempDir(onCleanup, 'server-tarball'))

    const files = packed.files
    for (const expected of [
      'LICENSE',
      'README.md',
      'CHANGELOG.md',
      'bin/presenced.js',
      'dist/cli/main.js',
      'dist/app/server.js',
      'dist/store/redis/scripts/heartbeat.lua',
      'dashboard/index.html',
      'node_modules/@presenced/client/dist/index.js',
    ]) {
      assert.ok(files.includes(expected), `${expected} is packed`)
    }
    const sources = files.filter(
      (file) =>
        (file.endsWith('.ts') && !file.endsWith('.d.ts') && !file.endsWith('.d.cts')) ||
        /\.test\.|contract|(^|\/)test\//.test(file) ||
        file.startsWith('src/') ||
        file.startsWith('scripts/'),
    )
    assert.deepEqual(sources, [], 'no TypeScript sources, tests or build scripts')
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    assert.equal(manifest.dependencies.tsx, undefined, 'tsx is not a runtime dependency')

    const project = emptyProject(onCleanup)
    const started = Date.now()
    await runOk(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        packed.tarball,
      ],
      { cwd: project },
    )
    const modules = join(project, 'node_modules')
    const sqlite = join(modules, 'better-sqlite3')
    const ours = join(ROOT, 'node_modules/better-sqlite3')
    if (version(sqlite) === version(ours) && existsSync(join(ours, ADDON))) {
      mkdirSync(join(sqlite, 'build/Release'), { recursive: true })
      copyFileSync(join(ours, ADDON), join(sqlite, ADDON))
    } else {
      t.diagnostic(`better-sqlite3 ${version(sqlite)} differs from ours: compiling it`)
      await runOk('npm', ['rebuild', 'better-sqlite3'], { cwd: project })
    }
    t.diagnostic(`installed in ${Date.now() - started} ms`)
    assert.equal(existsSync(join(modules, 'tsx')), false, 'tsx was not installed')
    assert.equal(existsSync(join(modules, 'typescript')), false, 'TypeScript was not installed')

    const npx = (args: string[], env: Record<string, string> = {}) =>
      run('npx', ['--no-install', 'presenced', ...args], { cwd: project, env: userEnv(env) })

    const help = await npx(['--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^Usage: presenced <command>/)
    assert.match(help.stdout, /serve\s+start the server/)
    const shown = await npx(['--version'])
    assert.equal(shown.code, 0, shown.stderr)
    assert.equal(shown.stdout, `${version(ROOT)}\n`)

    // serve on a free port, from the installed package's own files: the link npx runs, started
    // directly so that SIGTERM reaches presenced (npm exec does not pass it on to its child)
    const dataDir = tempDir(onCleanup, 'server-data')
    const server = spawn(join(modules, '.bin/presenced'), ['serve'], {
      cwd: project,
      env: userEnv({
        PORT: '0',
        HOST: '127.0.0.1',
        PRESENCED_DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    t.after(() => {
      if (server.exitCode === null) server.kill('SIGKILL')
    })
    let stderr = ''
    server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((done) => server.on('exit', (code) => done(code)))
    const url = await new Promise<string>((done, fail) => {
      let out = ''
      server.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const up = out
          .split('\n')
          .map((line) => {
            try {
              return JSON.parse(line) as { msg?: string; url?: string }
            } catch {
              return undefined
            }
          })
          .find((line) => line?.msg === 'presenced is up')
        if (up?.url) done(up.url)
      })
      void exited.then((code) => fail(new Error(`serve exited ${code}: ${stderr}`)))
    })

    const health = await fetch(`${url}/healthz`)
    assert.equal(health.status, 200)
    const page = await fetch(`${url}/dashboard`)
    assert.equal(page.status, 200, 'the dashboard files are in the package')
    assert.match(await page.text(), /<html/i)

    // `presenced token` of the installed package signs with the secret that serve made
    const token = await npx(['token', '--user', '9223372036854775807'], {
      PRESENCED_DATA_DIR: dataDir,
    })
    assert.equal(token.code, 0, token.stderr)
    const beat = await fetch(`${url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token.stdout.trim()}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
    })
    assert.equal(beat.status, 200, await beat.text())
    const read = await fetch(`${url}/v1/presence/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"userIds":[9223372036854775807]}',
    })
    assert.match(await read.text(), /"userPresenceType":2,.*"userId":9223372036854775807,/)

    server.kill('SIGTERM')
    assert.equal(await exited, 0, stderr)
  },
)
