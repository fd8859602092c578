import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')

/** Runs the CLI as a user would, with only the given environment on top of PATH. */
function cli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

test('defaults: port 8080 on every interface, ./data, 60 s sessions, admin API off', () => {
  const config = loadConfig({})
  assert.equal(config.port, 8080)
  assert.equal(config.host, '0.0.0.0')
  assert.equal(config.dataDir, resolve('./data'))
  assert.equal(config.sessionTtlSeconds, 60)
  assert.equal(config.placeTtlSeconds, 60)
  assert.equal(config.adminKey, undefined)
  assert.equal(config.tokenSecret, undefined)
  assert.equal(config.redisUrl, undefined)
  assert.equal(config.logLevel, 'info')
  assert.equal(config.shutdownTimeoutMs, 10_000)
  assert.equal(config.redisTimeoutMs, 500)
  assert.ok(Object.isFrozen(config))
})

test('the environment overrides each setting', () => {
  const config = loadConfig({
    PORT: '9000',
    HOST: '127.0.0.1',
    PRESENCED_DATA_DIR: '/tmp/x',
    PRESENCED_SESSION_TTL: '30',
    PRESENCED_PLACE_TTL: '600',
    PRESENCED_ADMIN_KEY: 'k',
    PRESENCED_REDIS_CLUSTER: 'a:1, b:2,',
    PRESENCED_TRUST_PROXY: 'true',
    PRESENCED_SHUTDOWN_TIMEOUT: '2500',
    PRESENCED_REDIS_TIMEOUT: '3000',
    LOG_LEVEL: 'debug',
  })
  assert.equal(config.port, 9000)
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.dataDir, '/tmp/x')
  assert.equal(config.sessionTtlSeconds, 30)
  assert.equal(config.placeTtlSeconds, 600)
  assert.equal(config.adminKey, 'k')
  assert.deepEqual(config.redisCluster, ['a:1', 'b:2'])
  assert.deepEqual(config.trustProxy, { hops: 1 })
  assert.equal(config.shutdownTimeoutMs, 2500)
  assert.equal(config.redisTimeoutMs, 3000)
  assert.equal(config.logLevel, 'debug')
})

test('a bad value fails fast with a message naming the variable and the value', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT must be an integer >= 0, got "eighty"$/],
    [{ PORT: '70000' }, /^PORT must be at most 65535, got 70000$/],
    [{ PORT: '-1' }, /^PORT must be an integer >= 0/],
    [{ PRESENCED_SESSION_TTL: '0' }, /^PRESENCED_SESSION_TTL must be an integer >= 1, got "0"$/],
    [{ PRESENCED_SESSION_TTL: '1.5' }, /PRESENCED_SESSION_TTL/],
    [{ PRESENCED_PLACE_TTL: '0' }, /^PRESENCED_PLACE_TTL must be an integer >= 1, got "0"$/],
    [{ PRESENCED_BODY_LIMIT: '10' }, /PRESENCED_BODY_LIMIT must be an integer >= 1024/],
    [
      { PRESENCED_REDIS_TIMEOUT: '5' },
      /^PRESENCED_REDIS_TIMEOUT must be an integer >= 10, got "5"$/,
    ],
    // past a Node timer's longest delay: every command, hook or request would time out at once
    [
      { PRESENCED_REDIS_TIMEOUT: '3000000000' },
      /^PRESENCED_REDIS_TIMEOUT must be an integer <= 2147483647, got "3000000000"$/,
    ],
    [{ PRESENCED_WEBHOOK_TIMEOUT: '2147483648' }, /^PRESENCED_WEBHOOK_TIMEOUT must be .* <= /],
    [{ PRESENCED_SHUTDOWN_TIMEOUT: '5000000000' }, /^PRESENCED_SHUTDOWN_TIMEOUT must be .* <= /],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error, warn, info/],
  ]
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(env),
    )
  }
})

test('an integer setting is decimal digits only: spaces, exponents, hex and fractions are refused, a huge value names its bound', () => {
  // Number() reads ' ' as 0 (PORT=' ' listened on a random port), ' 5' as 5, '1e3' as 1000
  const bad = ['0', '-1', '1001', '1e3', ' 5', '5 ', ' ', 'abc', '0x10', '3.0', '+3', '1e400']
  for (const raw of bad) {
    assert.throws(
      () => loadConfig({ PRESENCED_REALTIME_MAX_IDS: raw }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.startsWith('PRESENCED_REALTIME_MAX_IDS must be an integer ') &&
        error.message.endsWith(`got ${JSON.stringify(raw)}`),
      JSON.stringify(raw),
    )
  }
  assert.throws(
    () => loadConfig({ PRESENCED_REALTIME_MAX_IDS: '9'.repeat(30) }),
    /PRESENCED_REALTIME_MAX_IDS must be an integer <= 1000, got "9{30}"$/,
  )
  for (const raw of [' ', '0x50', '8e1']) {
    assert.throws(() => loadConfig({ PORT: raw }), /PORT must be an integer >= 0/, raw)
  }
  // empty is unset (docs/reference/config.md), as for every setting
  assert.equal(loadConfig({ PRESENCED_REALTIME_MAX_IDS: '' }).realtimeMaxIds, 1000)
  assert.equal(loadConfig({ PRESENCED_REALTIME_MAX_IDS: '3' }).realtimeMaxIds, 3)
  assert.equal(loadConfig({ PRESENCED_REALTIME_MAX_IDS: '007' }).realtimeMaxIds, 7)
})

test('PRESENCED_TRUST_PROXY: the front proxy, a number of proxies, or their addresses', () => {
  const trust = (value: string) => loadConfig({ PRESENCED_TRUST_PROXY: value }).trustProxy
  for (const off of ['', '0', 'false', 'no']) assert.equal(trust(off), undefined, off)
  for (const one of ['1', 'true', 'TRUE', 'yes']) assert.deepEqual(trust(one), { hops: 1 }, one)
  assert.deepEqual(trust('2'), { hops: 2 })
  assert.deepEqual(trust('10.0.0.0/8, loopback,::1'), {
    addresses: ['10.0.0.0/8', 'loopback', '::1'],
  })
  for (const bad of ['17', 'on', '10.0.0.0/40', 'nginx', '10.0.0.1,']) {
    assert.throws(() => trust(bad), ConfigError, bad)
    assert.throws(() => trust(bad), /PRESENCED_TRUST_PROXY/, bad)
  }
})

test('a token secret shorter than 32 bytes is refused, from the variable or the data dir', async (t) => {
  // an HS256 secret of a few bytes is found offline from any one token it signed
  for (const secret of ['secret', 'x'.repeat(31), 'é'.repeat(15)]) {
    assert.throws(
      () => loadConfig({ PRESENCED_TOKEN_SECRET: secret }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^PRESENCED_TOKEN_SECRET must be at least 32 bytes .*got \d+/.test(error.message),
      secret,
    )
  }
  assert.equal(loadConfig({ PRESENCED_TOKEN_SECRET: 'é'.repeat(16) }).tokenSecret, 'é'.repeat(16))
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-config-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  writeFileSync(join(dataDir, 'token-secret'), 'short\n')
  // the server and `presenced token` both refuse a short secret in the data dir
  for (const args of [['serve'], ['token', '--user', '1']]) {
    const { code, stderr } = await cli(args, { PRESENCED_DATA_DIR: dataDir, PORT: '0' })
    assert.equal(code, 2, args.join(' '))
    assert.match(stderr, /^presenced: .*token-secret must be at least 32 bytes/, args.join(' '))
  }
})

test('presenced serve with a bad PORT prints a clear message and exits 2', async () => {
  const { code, stderr } = await cli(['serve'], { PORT: 'abc' })
  assert.equal(code, 2)
  assert.equal(stderr.trim(), 'presenced: PORT must be an integer >= 0, got "abc"')
})

test('presenced serve on a port already in use exits 1 saying so', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-config-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const { createServer } = await import('node:net')
  const blocker = createServer()
  await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done))
  t.after(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const { code, stderr } = await cli(['serve'], {
    PORT: String(port),
    HOST: '127.0.0.1',
    PRESENCED_DATA_DIR: dataDir,
  })
  assert.equal(code, 1)
  assert.match(
    stderr.trim(),
    /^presenced: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:\d+$/,
  )
})

test('every variable config.ts reads is documented in the README and docs/reference/config.md', async () => {
  const { readFileSync } = await import('node:fs')
  const source = readFileSync(join(ROOT, 'src/app/config.ts'), 'utf8')
  const names = new Set(
    [...source.matchAll(/env(?:\.|, ')([A-Z][A-Z0-9_]+)/g)].map((match) => match[1]!),
  )
  assert.ok(names.size >= 20, `found ${names.size} variables`)
  for (const doc of ['README.md', 'docs/reference/config.md']) {
    const text = readFileSync(join(ROOT, doc), 'utf8')
    const missing = [...names].filter((name) => !text.includes('`' + name + '`'))
    assert.deepEqual(missing, [], `${doc} must document ${missing.join(', ')}`)
  }
})

test('PRESENCED_PLACE_TTL reaches the service: a catalogue change not announced is written after that long', async (t) => {
  for (const [placeTtlSeconds, written] of [
    [undefined, 'Renamed'],
    [600, 'Arena'],
  ] as const) {
    const clock = new ManualClock()
    const { service, stores } = await startApp(t, {
      clock,
      ...(placeTtlSeconds !== undefined && { config: { placeTtlSeconds } }),
    })
    const arena = { placeId: '500', universeId: '100', rootPlaceId: '500', name: 'Arena' }
    await service.putPlace(arena)
    const beat = () =>
      service.heartbeat({
        userId: '1' as UserId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'inGame', placeId: '500' },
      })
    await beat()
    // straight into the store: no announcement on the change bus (a lost one)
    await stores.profiles.putPlace({ ...arena, name: 'Renamed' })
    clock.advance(61_000)
    await beat()
    const [presence] = await stores.presence.getMany(['1' as UserId], clock.now())
    assert.equal(presence?.sessions[0]?.activity.location, written, `TTL ${placeTtlSeconds}`)
  }
})
