import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'

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

function run(args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now()
  const child = spawn(process.execPath, ['bin/presenced.js', ...args], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, PRESENCED_URL: '', PRESENCED_TOKEN: '', PRESENCED_ADMIN_KEY: '' },
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - started })),
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
