import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'

/** A real socket that accepts connections and never answers a byte. */
async function silentServer(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * A real HTTP server that answers every request with its status and headers and the start of a
 * JSON body, then stalls: the rest never comes. A WebSocket upgrade is accepted (101), then
 * nothing is sent on it. `stalled()` counts the exchanges it left hanging.
 */
async function stallingServer(t: TestContext) {
  let stalled = 0
  const sockets = new Set<Socket>()
  const server = createHttpServer((request, response) => {
    request.resume()
    const sse = (request.headers.accept ?? '').includes('text/event-stream')
    response.writeHead(200, {
      'content-type': sse ? 'text/event-stream' : 'application/json',
      ...(sse ? {} : { 'content-length': '1000' }),
    })
    // SSE: the stream is open and says nothing; JSON: a body that never ends
    response.write(sse ? ': open\n\n' : '{"userPresences":[')
    stalled++
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('upgrade', (request, socket) => {
    const accept = createHash('sha1')
      .update(`${request.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64')
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    )
    stalled++
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stalled: () => stalled,
  }
}

/** A one-line import file for `presenced import`, removed when the test ends. */
function importFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-cli-import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const lines = join(dir, 'import.ndjson')
  writeFileSync(lines, '{"type":"friends","a":"1","b":"2"}\n')
  return lines
}

/** Runs the CLI; killed (code null) if still running after `killAfterMs`. */
function run(
  args: string[],
  killAfterMs = 60_000,
): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now()
  const child = spawn(process.execPath, ['bin/presenced.js', ...args], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, PRESENCED_URL: '', PRESENCED_TOKEN: '', PRESENCED_ADMIN_KEY: '' },
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ code, stderr, ms: Date.now() - started })
    }),
  )
}

test(
  '--timeout: a server that never answers fails each client command with exit 1',
  { timeout: 90_000 },
  async (t) => {
    const url = await silentServer(t)
    const commands: string[][] = [
      ['get', '1'],
      ['heartbeat', '--token', 'tok'],
      ['watch', '1', '--token', 'tok'],
      ['watch', '1', '--token', 'tok', '--sse'],
      ['keys', 'list', '--admin-key', 'k'],
      ['webhooks', 'list', '--admin-key', 'k'],
    ]
    for (const command of commands) {
      const result = await run([...command, '--url', url, '--timeout', '1'])
      assert.equal(result.code, 1, `${command.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, /no answer within 1 s \(--timeout\)|handshake has timed out/)
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
    }
    const bad = await run(['get', '1', '--url', url, '--timeout', 'soon'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--timeout must be a positive number of seconds, got "soon"/)
  },
)

test(
  '--timeout bounds the whole exchange: a server that sends headers and stalls the body fails each command with exit 1',
  { timeout: 120_000 },
  async (t) => {
    const server = await stallingServer(t)
    const lines = importFile(t)
    const commands: string[][] = [
      ['get', '1'],
      ['heartbeat', '--token', 'tok'],
      // a stream may be quiet for ever once open; not before its first snapshot
      ['watch', '1', '--token', 'tok'],
      ['watch', '1', '--token', 'tok', '--sse'],
      ['import', lines, '--admin-key', 'k'],
      ['keys', 'list', '--admin-key', 'k'],
      ['webhooks', 'list', '--admin-key', 'k'],
    ]
    for (const command of commands) {
      const before = server.stalled()
      // a hang is a failure too: the child is killed once well past its --timeout
      // 3 s: on a loaded machine the connection alone once took more than 1 s
      const result = await run([...command, '--url', server.url, '--timeout', '3'], 30_000)
      t.diagnostic(`${command.slice(0, 2).join(' ')}: exit ${result.code} after ${result.ms} ms`)
      assert.ok(server.stalled() > before, `${command.join(' ')} reached the server`)
      assert.equal(result.code, 1, `${command.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, /no answer within 3 s \(--timeout\)/, command.join(' '))
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
      assert.ok(result.ms < 15_000, `${command.join(' ')}: ${result.ms} ms`)
    }
  },
)

test(
  'a connection lost half way through the answer fails each command with exit 1 and one line, without --timeout',
  { timeout: 120_000 },
  async (t) => {
    // the status line, the headers and the start of the body, then the socket is closed
    const server = createHttpServer((request, response) => {
      request.resume()
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      response.write('{"userPresences":[')
      setImmediate(() => response.socket?.destroy())
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise((resolve) => server.close(resolve)))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const lines = importFile(t)
    const commands: string[][] = [
      ['get', '1'],
      ['heartbeat', '--token', 'tok'],
      ['import', lines, '--admin-key', 'k'],
      ['keys', 'list', '--admin-key', 'k'],
      ['webhooks', 'list', '--admin-key', 'k'],
    ]
    for (const command of commands) {
      const result = await run([...command, '--url', url], 30_000)
      const name = command.slice(0, 2).join(' ')
      assert.equal(result.code, 1, `${name}: ${result.stderr}`)
      assert.doesNotMatch(result.stderr, /\n\s+at /, `${name}: no stack trace`)
      // import says first how many lines it validated; the failure is the last line
      const last = result.stderr.trim().split('\n').at(-1) ?? ''
      assert.match(last, /^presenced [a-z]+: .*connection/i, `${name}: ${result.stderr}`)
    }
  },
)
