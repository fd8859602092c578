/**
 * `presenced heartbeat` stopped (Ctrl-C, SIGTERM) while its first beat is unanswered: it says so
 * and exits, rather than ignoring the signal until a second one kills it with 130.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'

/** A real socket that accepts connections and never answers; `connected` once one came. */
async function silentServer(t: TestContext) {
  const sockets = new Set<Socket>()
  let connected!: () => void
  const first = new Promise<void>((resolve) => (connected = resolve))
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    connected()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, first }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`heartbeat: one ${signal} before the first beat was answered ends the command`, async (t) => {
    const server = await silentServer(t)
    const child = spawn(
      process.execPath,
      ['bin/presenced.js', 'heartbeat', '--token', 'tok', '--url', server.url],
      {
        cwd: new URL('../../', import.meta.url),
        env: { ...process.env, PRESENCED_URL: '', PRESENCED_TOKEN: '' },
      },
    )
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    // killed if still running: the signal was ignored
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    t.after(() => clearTimeout(killer))
    await server.first
    const sent = Date.now()
    child.kill(signal)
    const code = await exited
    assert.equal(code, 1, `exit code (null: still running 15 s after ${signal}); stderr: ${stderr}`)
    assert.ok(Date.now() - sent < 10_000)
    assert.match(
      stderr,
      new RegExp(
        `${signal}: stopped before the server answered the first beat; it did not answer the disconnect within 3 s either`,
      ),
    )
    assert.doesNotMatch(stderr, /again: exiting without waiting|\n\s+at /)
  })
}
