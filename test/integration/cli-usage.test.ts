/**
 * Each client command's `--help` opens with its usage, its continuation lines under the
 * command's first argument (as `presenced import --help` has it), none wider than 100 columns.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)

for (const command of ['get', 'watch', 'heartbeat', 'import']) {
  test(`presenced ${command} --help: the usage lines align`, async () => {
    const { stdout } = await run(process.execPath, ['bin/presenced.js', command, '--help'], {
      cwd: new URL('../../', import.meta.url),
    })
    const lead = `Usage: presenced ${command} `
    const usage = stdout.slice(0, stdout.indexOf('\n\n')).split('\n')
    assert.ok(usage[0]!.startsWith(lead), usage[0])
    for (const line of usage) assert.ok(line.length <= 100, `wider than 100: ${line}`)
    for (const line of usage.slice(1)) {
      assert.equal(line.length - line.trimStart().length, lead.length, `not aligned: ${line}`)
    }
  })
}
