import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import { createClient, PresenceType } from '@presenced/client'
import { startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')
const BIG = '9223372036854775807'

/** `presenced <args>` through the package's bin, as `npx presenced` runs it. */
function start(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['bin/presenced.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
  })
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function finished(child: ChildProcessWithoutNullStreams): Promise<Run> {
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((done, fail) => {
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

const run = (args: string[], env: Record<string, string> = {}) => finished(start(args, env))

/** Resolves when the child has printed a line matching `pattern` on stdout. */
function printed(child: ChildProcessWithoutNullStreams, pattern: RegExp): Promise<string> {
  let out = ''
  return new Promise((done, fail) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const match = out.split('\n').find((line) => pattern.test(line))
      if (match !== undefined) {
        child.stdout.off('data', onData)
        done(match)
      }
    }
    child.stdout.on('data', onData)
    child.on('close', () => fail(new Error(`exited before printing ${pattern}; got:\n${out}`)))
  })
}

function killOnEnd(t: TestContext, child: ChildProcessWithoutNullStreams) {
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as { port: number }
  await new Promise((done) => server.close(done))
  return port
}

test('presenced get prints a table, --json for machines, and reads PRESENCED_URL', async (t) => {
  const server = await startApp(t, { listen: true })
  const player = createClient({
    baseUrl: server.url,
    token: await server.tokens.issue(BIG as never),
  })
  await player.registerAppPresence({ placeId: 1818, location: 'Crossroads' })

  const table = await run(['get', BIG, '5', '--url', server.url])
  assert.equal(table.code, 0, table.stderr)
  const lines = table.stdout.trim().split('\n')
  assert.match(lines[0]!, /^USER\s+STATE\s+WHERE\s+UNIVERSE\s+GAME\s+LAST ONLINE$/)
  assert.match(lines[1]!, new RegExp(`^${BIG}\\s+InGame\\s+Crossroads \\(place 1818\\)`))
  assert.match(lines[2]!, /^5\s+Offline\s+never$/)

  const json = await run(['get', '5,' + BIG, '--json'], { PRESENCED_URL: server.url })
  assert.equal(json.code, 0, json.stderr)
  const records = JSON.parse(json.stdout) as Record<string, unknown>[]
  assert.deepEqual(
    records.map((r) => [r.userId, r.state, r.type, r.placeId]),
    [
      ['5', 'Offline', 0, null],
      [BIG, 'InGame', 2, '1818'],
    ],
  )
})

test('presenced get: bad input exits 2, an unreachable server exits 1, both without a stack', async (t) => {
  const server = await startApp(t, { listen: true })
  const cases: [string[], number, RegExp][] = [
    [['get', 'abc', '--url', server.url], 2, /Not a valid user id: "abc"/],
    [['get', '--url', server.url], 2, /give at least one user id/],
    [['get', '1', '--nope'], 2, /Unknown option '--nope'/],
    [['get', '1', '--url', 'localhost:8080'], 2, /--url must be an http\(s\) URL/],
    [['get', '1', '--url', `http://127.0.0.1:${await closedPort()}`], 1, /Cannot reach presenced/],
    [['get', '1', '--url', server.url, '--token', 'forged'], 1, /answered 401/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
  ]
  const results = await Promise.all(cases.map(([args]) => run(args)))
  for (const [i, [args, code, message]] of cases.entries()) {
    const result = results[i]!
    assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
  }
})

test('every command answers --help with exit 0', async () => {
  const commands = ['get', 'watch', 'heartbeat', 'serve', 'token']
  const results = await Promise.all(commands.map((command) => run([command, '--help'])))
  for (const [i, command] of commands.entries()) {
    const result = results[i]!
    assert.equal(result.code, 0, command)
    assert.match(result.stdout, new RegExp(`^Usage: presenced ${command}`), command)
  }
  const top = await run(['--help'])
  assert.equal(top.code, 0)
  for (const command of ['get <ids...>', 'watch <ids...>', 'heartbeat --token']) {
    assert.ok(top.stdout.includes(command), command)
  }
})

test(
  'presenced heartbeat keeps the user online until SIGINT, then disconnects',
  { timeout: 30_000 },
  async (t) => {
    const server = await startApp(t, { listen: true })
    const token = await server.tokens.issue('321' as never)
    const reader = createClient({ baseUrl: server.url })
    const child = start(['heartbeat', '--token', token, '--place', '1818', '--url', server.url])
    killOnEnd(t, child)
    const done = finished(child)
    await printed(child, /^online; beating every 30 s/)
    const online = await reader.getUserPresence(321)
    assert.equal(online.type, PresenceType.InGame)
    assert.deepEqual(online.place, { id: '1818' })

    child.kill('SIGINT')
    const result = await done
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /SIGINT: disconnected/)
    assert.equal((await reader.getUserPresence(321)).type, PresenceType.Offline)
  },
)

test('presenced heartbeat: missing or refused token and bad place are clear errors', async (t) => {
  const server = await startApp(t, { listen: true })
  const missing = await run(['heartbeat', '--url', server.url])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /--token is required/)
  const badPlace = await run(['heartbeat', '--token', 'x', '--place', '1.5', '--url', server.url])
  assert.equal(badPlace.code, 2)
  assert.match(badPlace.stderr, /--place must be a positive 64-bit integer/)
  const refused = await run(['heartbeat', '--token', 'forged', '--url', server.url])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /answered 401: Authorization has been denied/)
})

for (const transport of ['websocket', 'sse']) {
  test(
    `presenced watch (${transport}) prints the state, then each change, until SIGINT`,
    { timeout: 30_000 },
    async (t) => {
      const server = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
      const watcher = await server.tokens.issue('9' as never)
      const player = createClient({
        baseUrl: server.url,
        token: await server.tokens.issue('123' as never),
      })
      const args = ['watch', '123', '--token', watcher, '--url', server.url]
      const child = start(transport === 'sse' ? [...args, '--sse'] : args)
      killOnEnd(t, child)
      const done = finished(child)
      await printed(child, /now\s+123\s+Offline/)

      await player.registerAppPresence({ placeId: 1818, location: 'Crossroads' })
      await printed(child, /online\s+123\s+InGame\s+Crossroads \(place 1818\)/)
      await player.registerAppPresence({ disconnect: true })
      await printed(child, /offline\s+123\s+Offline.*\(explicit\)/)

      child.kill('SIGINT')
      const result = await done
      assert.equal(result.code, 0, result.stderr)
    },
  )
}

test(
  'presenced watch --json prints one event per line; errors exit 1 or 2',
  { timeout: 30_000 },
  async (t) => {
    const server = await startApp(t, { listen: true })
    const watcher = await server.tokens.issue('9' as never)
    const child = start(['watch', '77', '--json', '--token', watcher, '--url', server.url])
    killOnEnd(t, child)
    const done = finished(child)
    const line = await printed(child, /^\{"type":"snapshot"/)
    const snapshot = JSON.parse(line) as { seq: number; presences: { userId: string }[] }
    assert.equal(snapshot.seq, 1)
    assert.equal(snapshot.presences[0]!.userId, '77')
    child.kill('SIGINT')
    assert.equal((await done).code, 0)

    const noToken = await run(['watch', '1', '--url', server.url])
    assert.equal(noToken.code, 2)
    const refused = await run(['watch', '1', '--token', 'forged', '--url', server.url])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /401/)
    const down = await run([
      'watch',
      '1',
      '--token',
      watcher,
      '--url',
      `http://127.0.0.1:${await closedPort()}`,
    ])
    assert.equal(down.code, 1)
    assert.match(down.stderr, /Cannot reach presenced/)
  },
)
