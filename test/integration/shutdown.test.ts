import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import WebSocket from 'ws'
import { parseUserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { spawnServer } from '../helpers/spawn-server.js'

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-shutdown-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((done, fail) => {
    const socket = connect(Number(port), hostname, () => done(socket))
    socket.once('error', fail)
  })
}

/** Everything the server sends until it closes the connection. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((done, fail) => {
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
    socket.on('end', () => done(text))
    socket.on('error', fail)
  })
}

/** Whether new connections are refused within `ms` (the listener closes a moment after SIGTERM). */
async function refusedWithin(url: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    try {
      ;(await open(url)).destroy()
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ECONNREFUSED') return true
      // the listener closed with this connection still in its backlog: try again
      if (code !== 'ECONNRESET') throw error
    }
    await new Promise((done) => setTimeout(done, 20))
  }
  return false
}

/**
 * Starts a POST /v1/presence/users whose body is only half sent, and resolves once the server
 * has logged receiving it: the request is then in flight, inside the server.
 */
async function startSlowRequest(server: Awaited<ReturnType<typeof spawnServer>>) {
  const body = JSON.stringify({ userIds: [1, 2, 3] })
  const socket = await open(server.url)
  const response = readAll(socket)
  socket.write(
    'POST /v1/presence/users HTTP/1.1\r\n' +
      `Host: ${new URL(server.url).host}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n\r\n` +
      body.slice(0, 10),
  )
  await server.logged('incoming request')
  return { socket, response, rest: body.slice(10) }
}

test('SIGTERM lets an in-flight request finish, refuses new connections, exits 0', async (t) => {
  const server = await spawnServer(t, { PRESENCED_DATA_DIR: tempDir(t) })
  const slow = await startSlowRequest(server)

  server.child.kill('SIGTERM')
  await server.logged('shutting down')
  // the listener closes once the preClose hooks ran: new clients go to the next node
  assert.equal(await refusedWithin(server.url, 3000), true)
  assert.equal(server.child.exitCode, null, 'still draining the in-flight request')

  slow.socket.write(slow.rest)
  const raw = await slow.response
  const [head, payload] = raw.split('\r\n\r\n')
  assert.match(head!, /^HTTP\/1\.1 200 /)
  const { userPresences } = JSON.parse(payload!) as { userPresences: Array<{ userId: number }> }
  assert.deepEqual(
    userPresences.map((p) => p.userId),
    [1, 2, 3],
  )

  assert.equal(await server.exited, 0)
  await server.logged('shut down cleanly')
})

test('a drain that outlasts PRESENCED_SHUTDOWN_TIMEOUT exits 1', async (t) => {
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: tempDir(t),
    PRESENCED_SHUTDOWN_TIMEOUT: '300',
  })
  const slow = await startSlowRequest(server)
  t.after(() => slow.socket.destroy())

  // the body never comes: the request would hold the drain for its 30 s request timeout
  const started = Date.now()
  assert.equal(await server.stop(), 1)
  assert.ok(Date.now() - started < 5000, 'the hard timeout, not the request timeout, ended it')
  await server.logged('shutdown timed out')
})

test('SIGTERM closes real-time connections with going-away (1001) and still exits 0', async (t) => {
  const secret = 'shutdown-test-token-secret-0123456789'
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: tempDir(t),
    PRESENCED_TOKEN_SECRET: secret,
  })
  const token = await new Tokens(secret).issue(parseUserId('123')!)

  const socket = new WebSocket(server.url.replace('http', 'ws') + '/api/v1/realtime', {
    headers: { authorization: `Bearer ${token}` },
  })
  t.after(() => socket.terminate())
  await new Promise((done, fail) => socket.once('open', done).once('error', fail))
  const closed = new Promise<number>((done) => socket.once('close', (code) => done(code)))

  const sse = await fetch(server.url + '/api/v1/realtime/sse?ids=456', {
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(sse.status, 200)
  const sseEnded = (async () => {
    const reader = sse.body!.getReader()
    while (!(await reader.read()).done) continue
    return true
  })()

  const started = Date.now()
  assert.equal(await server.stop(), 0)
  assert.equal(await closed, 1001)
  assert.equal(await sseEnded, true)
  // long-lived connections did not hold the drain until the hard timeout
  assert.ok(Date.now() - started < 5000)
})
