import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import { resolveTokenSecret } from '../../src/app/token-secret.js'
import { Tokens } from '../../src/service/tokens.js'
import { startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')

function run(command: string, args: string[], env: Record<string, string>, cwd = ROOT) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(command, args, {
      cwd,
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

test('npx presenced token signs with the secret the server generated in its data dir', async (t) => {
  const dataDir = tempDir(t)
  // the server makes the secret on its first start, readable by its owner only
  const { tokens } = await startApp(t, { dataDir, config: { tokenSecret: undefined } })
  const secretFile = join(dataDir, 'token-secret')
  assert.equal(statSync(secretFile).mode & 0o777, 0o600)
  const secret = readFileSync(secretFile, 'utf8')
  assert.ok(secret.trim().length >= 40)

  const { code, stdout, stderr } = await run('npx', ['presenced', 'token', '--user', '123'], {
    PRESENCED_DATA_DIR: dataDir,
  })
  assert.equal(code, 0, stderr)
  const printed = stdout.trim()
  assert.match(printed, JWT)
  assert.equal(stdout, printed + '\n', 'only the token, so $(...) captures it')
  const claims = await tokens.verify(printed)
  assert.equal(claims?.userId, '123')
  assert.ok(claims.exp! > Date.now() / 1000)

  const named = await token(['--user', '42', '--name', 'Builderman'], {
    PRESENCED_DATA_DIR: dataDir,
  })
  assert.equal(named.code, 0, named.stderr)
  assert.equal((await tokens.verify(named.stdout.trim()))?.name, 'Builderman')
  assert.equal(readFileSync(secretFile, 'utf8'), secret, 'the secret was only read')
})

test('without a secret, token says where it looked and how to point it there, and makes none', async (t) => {
  const dataDir = tempDir(t)
  const { code, stdout, stderr } = await token(['--user', '1'], { PRESENCED_DATA_DIR: dataDir })
  assert.equal(code, 2)
  assert.equal(stdout, '', 'no token to capture')
  assert.match(stderr, /^presenced token: no token secret: PRESENCED_TOKEN_SECRET is unset and /)
  assert.ok(stderr.includes(`${join(dataDir, 'token-secret')} does not exist`), stderr)
  assert.match(stderr, /PRESENCED_DATA_DIR=<dir>/)
  assert.match(stderr, /PRESENCED_TOKEN_SECRET=<secret>/)
  assert.deepEqual(readdirSync(dataDir), [], 'no secret was created')
})

test('the data dir defaults to ./data of the current folder, as for the server', async (t) => {
  const folder = tempDir(t)
  const inFolder = (args: string[]) =>
    run(process.execPath, [join(ROOT, 'bin/presenced.js'), 'token', ...args], {}, folder)
  const missing = await inFolder(['--user', '5'])
  assert.equal(missing.code, 2)
  assert.ok(missing.stderr.includes(`${join(folder, 'data', 'token-secret')} does not exist`))
  assert.equal(existsSync(join(folder, 'data')), false)

  // a server started in that folder makes ./data/token-secret; token then finds it
  const { tokens } = await startApp(t, {
    dataDir: join(folder, 'data'),
    config: { tokenSecret: undefined },
  })
  const found = await inFolder(['--user', '5'])
  assert.equal(found.code, 0, found.stderr)
  assert.equal((await tokens.verify(found.stdout.trim()))?.userId, '5')
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
  const secret = resolveTokenSecret(undefined, dataDir) // as a server's first start does
  const id = '9223372036854775807'
  const { code, stdout } = await token(['--user', id], { PRESENCED_DATA_DIR: dataDir })
  assert.equal(code, 0)
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

test('a --ttl the server would refuse (0, a fraction, past year 9999) exits 2 and prints no token', async () => {
  const env = { PRESENCED_TOKEN_SECRET: 'x'.repeat(32) }
  // 99999999999999 s from now is year ~3.17 million: a token every server refuses (401)
  const bad = ['0', '1.5', 'abc', '99999999999999']
  const results = await Promise.all(bad.map((ttl) => token(['--user', '1', '--ttl', ttl], env)))
  bad.forEach((ttl, i) => {
    const { code, stdout, stderr } = results[i]!
    assert.equal(code, 2, `--ttl ${ttl}: ${stdout}${stderr}`)
    assert.equal(stdout, '', `--ttl ${ttl}`)
    assert.match(stderr, /^presenced token: --ttl /, `--ttl ${ttl}`)
  })
  const year = await token(['--user', '1', '--ttl', String(365 * 24 * 3600)], env)
  assert.equal(year.code, 0, year.stderr)
  assert.match(year.stdout.trim(), JWT)
})
