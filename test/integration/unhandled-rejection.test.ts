import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { spawnServer } from '../helpers/spawn-server.js'

/*
 * A promise rejected with no handler inside a running server (a defect, such as ioredis's own
 * resubscription timing out on a slow Redis was) is logged at error level, and the server serves
 * on: Node's default would end the process, and every node of a fleet at once.
 */

test('a promise rejected with no handler is logged at error level, and the server serves on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-unhandled-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // a preload that rejects a promise nobody handles when told (SIGUSR2), once the server is up
  const probe = join(dir, 'probe.mjs')
  writeFileSync(
    probe,
    "process.on('SIGUSR2', () => { Promise.reject(new Error('probe: nobody handles this')) })\n",
  )
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: join(dir, 'data'),
    NODE_OPTIONS: `--import=${probe}`,
  })
  server.child.kill('SIGUSR2')
  const line = await server.logged(/rejected with no handler/)
  assert.equal(line.level, 50, 'error level')
  assert.match(JSON.stringify(line.err), /probe: nobody handles this/)
  const response = await fetch(`${server.url}/healthz`)
  assert.equal(response.status, 200, 'still serving')
  assert.equal(await server.stop(), 0, 'and shuts down cleanly')
})
