import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createServer as createHttpServer } from 'node:http'
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

test('a token pasted where an id goes is never echoed whole', async (t) => {
  const server = await startApp(t, { listen: true })
  const token = await server.tokens.issue('123' as never)
  const runs = await Promise.all([
    run(['get', '123', token, '--url', server.url]),
    run(['watch', token, '--url', server.url], { PRESENCED_TOKEN: token }),
    run(['heartbeat', '--place', token, '--url', server.url], { PRESENCED_TOKEN: token }),
  ])
  for (const result of runs) {
    assert.equal(result.code, 2, result.stderr)
    assert.match(
      result.stderr,
      new RegExp(`"${token.slice(0, 12)}…" \\(${token.length} characters\\)`),
    )
    assert.ok(!result.stderr.includes(token), result.stderr)
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
    // the server asks for 30 s; the SDK beats at 80 % of it, so one late beat is not lost
    await printed(child, /^online; beating every 24 s/)
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

test(
  'presenced heartbeat exits 1 when a later beat is refused (the token expired)',
  { timeout: 30_000 },
  async (t) => {
    const server = await startApp(t, { listen: true, config: { sessionTtlSeconds: 4 } })
    // beats every 1.6 s (80 % of half the TTL); time enough to start before the token expires
    const token = await server.tokens.issue('322' as never, { ttlSeconds: 5 })
    const child = start(['heartbeat', '--token', token, '--url', server.url])
    killOnEnd(t, child)
    const result = await finished(child)
    assert.match(result.stdout, /^online; beating every/)
    assert.doesNotMatch(result.stdout, /disconnected/)
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /beat failed: the server answered 401/)
    assert.match(result.stderr, /stopped: the server refuses the beats/)
    assert.ok(!result.stderr.includes(token), 'the token is not printed')
  },
)

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

/**
 * Ctrl-C in a terminal signals the whole foreground process group, the shell that waits for the
 * command included; the group here is made by a detached child. npx, in that group, also
 * forwards the signal to its child: the command then gets the same Ctrl-C twice.
 */
for (const [how, command, echo] of [
  ['alone in its group, with the echo npx sends', [process.execPath, 'bin/presenced.js'], true],
  // bash waits for a command that handles SIGINT and exits with its status (0 here)
  [
    'under a waiting bash',
    ['bash', '-c', '"$@"; exit $?', 'bash', process.execPath, 'bin/presenced.js'],
    false,
  ],
  // npm exec runs the bin through its script shell; with bash there, npx passes our 0 through
  // (with dash as /bin/sh the shell itself dies of the Ctrl-C and npx reports 130: npm's doing)
  ['through npx with a bash script shell', ['npx', 'presenced'], false],
] as const) {
  test(
    `presenced watch exits 0 on a Ctrl-C to its process group (${how})`,
    { timeout: 60_000 },
    async (t) => {
      const server = await startApp(t, { listen: true })
      const watcher = await server.tokens.issue('9' as never)
      const stop = async () => {
        const child = groupLeader(t, command, [
          'watch',
          '123',
          '--token',
          watcher,
          '--url',
          server.url,
        ])
        const done = finished(child)
        await printed(child, /now\s+123\s+Offline/)
        process.kill(-child.pid!, 'SIGINT')
        if (echo) child.kill('SIGINT')
        const result = await done
        const seen = `signal ${child.signalCode}; stderr: ${result.stderr}; stdout: ${result.stdout}`
        return { code: result.code, signal: child.signalCode, seen }
      }
      let outcome = await stop()
      // npx forwards the Ctrl-C to its child too. Most of the deaths by SIGINT once seen here (1
      // in ~10 loaded runs) were presenced itself, killed by that late echo during Node's
      // teardown; it now waits for the echo (see the late-echo test below). A late echo may
      // still kill a script shell between npx and presenced (npm's and the shell's race, not
      // presenced's exit): tried up to 6 times.
      for (
        let again = 0;
        command[0] === 'npx' && outcome.signal === 'SIGINT' && again < 5;
        again++
      ) {
        t.diagnostic(`npx died of the forwarded SIGINT (${outcome.seen.trim()}): again`)
        outcome = await stop()
      }
      assert.equal(outcome.code, 0, outcome.seen)
      assert.equal(outcome.signal, null, outcome.seen)
    },
  )
}

test(
  'presenced heartbeat still disconnects when the same Ctrl-C arrives twice',
  { timeout: 60_000 },
  async (t) => {
    const server = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
    const proxy = await holdingProxy(t, server.url)
    const token = await server.tokens.issue('321' as never)
    const child = groupLeader(
      t,
      [process.execPath, 'bin/presenced.js'],
      ['heartbeat', '--token', token, '--place', '1818', '--url', proxy.url],
    )
    const done = finished(child)
    await printed(child, /^online; beating every/)
    const reader = createClient({ baseUrl: server.url })
    assert.equal((await reader.getUserPresences(['321']))[0]!.type, PresenceType.InGame)

    process.kill(-child.pid!, 'SIGINT')
    // the first signal is being handled (its disconnect is on the way) when npx's echo lands
    await proxy.disconnecting
    child.kill('SIGINT')
    proxy.release()
    const result = await done
    assert.equal(child.signalCode, null, 'not killed by the echo')
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /SIGINT: disconnected/)
    assert.equal((await reader.getUserPresences(['321']))[0]!.type, PresenceType.Offline)
  },
)

test(
  'presenced watch exits 0 when the echo of its Ctrl-C lands after it has finished',
  { timeout: 60_000 },
  async (t) => {
    const server = await startApp(t, { listen: true })
    const watcher = await server.tokens.issue('9' as never)
    // npx forwards its Ctrl-C when its own loop gets to it: on a busy machine after presenced,
    // done with the first, is already ending (watch closes in a few ms). Each late echo, 20 to
    // 120 ms after the first signal, is still the same Ctrl-C: exit 0, not death by SIGINT.
    for (const lateMs of [20, 50, 80, 120]) {
      const child = groupLeader(
        t,
        [process.execPath, 'bin/presenced.js'],
        ['watch', '123', '--token', watcher, '--url', server.url],
      )
      const done = finished(child)
      await printed(child, /now\s+123\s+Offline/)
      process.kill(-child.pid!, 'SIGINT')
      setTimeout(() => child.kill('SIGINT'), lateMs)
      const result = await done
      assert.equal(child.signalCode, null, `echo ${lateMs} ms late: ${result.stderr}`)
      assert.equal(result.code, 0, `echo ${lateMs} ms late: ${result.stderr}`)
    }
  },
)

/** Forwards requests to presenced, holding a disconnect until released (and saying it came). */
async function holdingProxy(t: TestContext, target: string) {
  let release!: () => void
  const released = new Promise<void>((done) => (release = done))
  let seen!: () => void
  const disconnecting = new Promise<void>((done) => (seen = done))
  const proxy = createHttpServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', async () => {
      const body = Buffer.concat(chunks)
      if (body.includes('"disconnect":true')) {
        seen()
        await released
      }
      const headers: Record<string, string> = {}
      for (const name of ['authorization', 'content-type']) {
        const value = request.headers[name]
        if (typeof value === 'string') headers[name] = value
      }
      const answer = await fetch(target + request.url, {
        method: request.method,
        headers,
        body: body.length > 0 ? body : undefined,
      })
      const forwarded: Record<string, string> = {}
      answer.headers.forEach((value, name) => {
        if (
          !['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(name)
        )
          forwarded[name] = value
      })
      response.writeHead(answer.status, forwarded)
      response.end(Buffer.from(await answer.arrayBuffer()))
    })
  })
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done))
  t.after(() => new Promise((done) => proxy.close(done)))
  const { port } = proxy.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, disconnecting, release }
}

/** A child in a process group of its own, killed with its group when the test ends. */
function groupLeader(t: TestContext, command: readonly string[], args: string[]) {
  const [file, ...prefix] = command
  const child = spawn(file!, [...prefix, ...args], {
    cwd: ROOT,
    detached: true,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      npm_config_script_shell: 'bash',
      // npm's once-a-week registry check for a newer npm must not race the Ctrl-C
      npm_config_update_notifier: 'false',
    },
  })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
  })
  return child
}

test('a --url with user:password@ is refused with exit 2, and the password is never printed', async (t) => {
  const server = await startApp(t, { listen: true })
  const secretUrl = server.url.replace('http://', 'http://admin:s3cret-pw@')
  const cases = [
    ['get', '1', '--url', secretUrl],
    ['heartbeat', '--token', 'x', '--url', secretUrl],
    ['keys', 'list', '--admin-key', 'k', '--url', secretUrl],
    ['get', '1', '--url', 'ftp://admin:s3cret-pw@example.com'],
  ]
  const results = await Promise.all(cases.map((args) => run(args)))
  for (const [i, args] of cases.entries()) {
    const result = results[i]!
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, /--url must/)
    assert.match(result.stderr, /\*\*\*@/)
    assert.doesNotMatch(result.stderr + result.stdout, /s3cret-pw/, 'the password is not echoed')
  }
})
