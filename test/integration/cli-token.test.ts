import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import { Tokens } from '../../src/service/tokens.js'
import { startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')

function run(command: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

/** `presenced token ...` through the package's bin, as `npx presenced` runs it. */
const token = (args: string[], env: Record<string, string>) =>
  run(process.execPath, ['bin/presenced.js', 'token', ...args], env)

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-cli-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/

test('npx presenced token --user 123 prints a token that verifies for user 123', async (t) => {
  const dataDir = tempDir(t)
  const { code, stdout, stderr } = await run('npx', ['presenced', 'token', '--user', '123'], {
    PRESENCED_DATA_DIR: dataDir,
  })
  assert.equal(code, 0, stderr)
  const printed = stdout.trim()
  assert.match(printed, JWT)
  assert.equal(stdout, printed + '\n', 'only the token, so $(...) captures it')

  // the secret was generated into the data dir, readable by its owner only
  const secretFile = join(dataDir, 'token-secret')
  assert.equal(statSync(secretFile).mode & 0o777, 0o600)
  const secret = readFileSync(secretFile, 'utf8').trim()
  assert.ok(secret.length >= 40)
  const claims = await new Tokens(secret).verify(printed)
  assert.equal(claims?.userId, '123')
  assert.ok(claims.exp! > Date.now() / 1000)
})

test('the secret is generated once and reused; a server on the data dir accepts the token', async (t) => {
  const dataDir = tempDir(t)
  const first = await token(['--user', '42'], { PRESENCED_DATA_DIR: dataDir })
  const secret = readFileSync(join(dataDir, 'token-secret'), 'utf8')
  const second = await token(['--user', '42', '--name', 'Builderman'], {
    PRESENCED_DATA_DIR: dataDir,
  })
  assert.equal(first.code, 0, first.stderr)
  assert.equal(second.code, 0, second.stderr)
  assert.equal(readFileSync(join(dataDir, 'token-secret'), 'utf8'), secret, 'not regenerated')

  // the server resolves the same secret from the same data dir
  const { tokens } = await startApp(t, { dataDir, config: { tokenSecret: undefined } })
  assert.equal((await tokens.verify(first.stdout.trim()))?.userId, '42')
  const named = await tokens.verify(second.stdout.trim())
  assert.equal(named?.userId, '42')
  assert.equal(named.name, 'Builderman')
})

test('PRESENCED_TOKEN_SECRET signs instead, and nothing is written to the data dir', async (t) => {
  const dataDir = tempDir(t)
  const secret = 'an-operator-chosen-secret-of-enough-length'
  const { code, stdout } = await token(['--user', '7'], {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_TOKEN_SECRET: secret,
  })
  assert.equal(code, 0)
  assert.equal((await new Tokens(secret).verify(stdout.trim()))?.userId, '7')
  assert.equal(existsSync(join(dataDir, 'token-secret')), false)
})

test('int64 user ids above 2^53 are kept exact in the token', async (t) => {
  const dataDir = tempDir(t)
  const id = '9223372036854775807'
  const { code, stdout } = await token(['--user', id], { PRESENCED_DATA_DIR: dataDir })
  assert.equal(code, 0)
  const secret = readFileSync(join(dataDir, 'token-secret'), 'utf8').trim()
  assert.equal((await new Tokens(secret).verify(stdout.trim()))?.userId, id)
})

test('a bad --user exits 2 with a clear message and prints no token', async (t) => {
  const dataDir = tempDir(t)
  const bad = ['abc', '0', '-5', '1.5', '9223372036854775808', '']
  // independent processes: run them side by side
  const results = await Promise.all(
    bad.map((user) => token([`--user=${user}`], { PRESENCED_DATA_DIR: dataDir })),
  )
  bad.forEach((user, i) => {
    const { code, stdout, stderr } = results[i]!
    assert.equal(code, 2, `--user ${JSON.stringify(user)}`)
    assert.equal(stdout, '')
    assert.equal(
      stderr.trim(),
      `presenced token: --user must be a positive 64-bit integer, got ${JSON.stringify(user)}`,
    )
  })
  const [missing, unknown] = await Promise.all([
    token([], { PRESENCED_DATA_DIR: dataDir }),
    token(['--usr', '1'], { PRESENCED_DATA_DIR: dataDir }),
  ])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /--user must be a positive 64-bit integer, got ""/)
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /^presenced: Unknown option '--usr'/)
  assert.equal(existsSync(join(dataDir, 'token-secret')), false, 'no secret made for bad input')
})
