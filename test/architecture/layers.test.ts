import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ESLint } from 'eslint'

const eslint = new ESLint()

/** The lint errors of `source` as if it were the file at `path`. */
async function lintAs(path: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path })
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

test('a protocol importing a store, the bus or the app fails lint (one boundary)', async () => {
  for (const from of [
    '../../store/presence-store.js',
    '../../store/memory/memory-presence-store.js',
    '../../realtime/change-bus.js',
    '../../app/config.js',
  ]) {
    const errors = await lintAs(
      'src/protocols/roblox/x.ts',
      `import type { X } from '${from}'\nexport type Y = X\n`,
    )
    assert.equal(errors.length, 1, from)
  }
  assert.deepEqual(
    await lintAs(
      'src/protocols/roblox/x.ts',
      `import type { X } from '../../service/presence-service.js'\nexport type Y = X\n`,
    ),
    [],
  )
})

test('core imports nothing of ours and no I/O; store never imports realtime', async () => {
  assert.equal(
    (
      await lintAs(
        'src/core/x.ts',
        `import { X } from '../store/presence-store.js'\nexport const y = X\n`,
      )
    ).length,
    1,
  )
  assert.equal(
    (
      await lintAs(
        'src/core/x.ts',
        `import { readFileSync } from 'node:fs'\nexport const y = readFileSync\n`,
      )
    ).length,
    1,
  )
  assert.equal(
    (
      await lintAs(
        'src/store/x.ts',
        `import { X } from '../realtime/change-bus.js'\nexport const y = X\n`,
      )
    ).length,
    1,
  )
})

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) sources(path, out)
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path)
  }
  return out
}

test('no protocol reaches through the service into its stores', () => {
  const reaching = sources('src/protocols').filter((path) =>
    /\bservice\.(presence|profiles|bus|clock|stores)\b/.test(readFileSync(path, 'utf8')),
  )
  assert.deepEqual(reaching, [])
})
