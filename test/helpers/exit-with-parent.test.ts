import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'

/** Whether a process with this pid is still running. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Runs `script` as a "test process" (it starts a process and prints `{"pid":N}` of it, then
 * waits), kills that test process, and asserts the process it started is gone too.
 */
async function killedParentTakes(what: string, script: string): Promise<void> {
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../../', import.meta.url),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const pid = await new Promise<number>((resolve, reject) => {
    let out = ''
    parent.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const line = /\{"pid":(\d+)\}/.exec(out)
      if (line) resolve(Number(line[1]))
    })
    parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) first`)))
  })
  try {
    assert.ok(alive(pid), `${what} runs while its parent does`)
    parent.kill('SIGKILL')
    const deadline = Date.now() + 30_000
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    assert.equal(alive(pid), false, `${what} is gone with its parent`)
  } finally {
    if (alive(pid)) process.kill(pid, 'SIGKILL')
    parent.kill('SIGKILL')
  }
}

test('a server a test spawned exits when the test process is killed', () =>
  killedParentTakes(
    'the server',
    `
    import { startFleetNode } from './test/fleet/fleet-node.ts'
    const node = await startFleetNode({})
    console.log(JSON.stringify({ pid: node.process.pid }))
    setInterval(() => {}, 1000)
  `,
  ))

test('a redis-server a test started is killed when the test process is killed', () =>
  killedParentTakes(
    'redis-server',
    `
    import { mkdtempSync } from 'node:fs'
    import { tmpdir } from 'node:os'
    import { join } from 'node:path'
    import { freePort, startRedisServer } from './test/helpers/redis-cluster.ts'
    const redis = await startRedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'orphan-')))
    console.log(JSON.stringify({ pid: redis.process.pid }))
    setInterval(() => {}, 1000)
  `,
  ))
