import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')
const id = (n: number | string) => String(n) as UserId

function postImport(app: FastifyInstance, body: string, type = 'application/x-ndjson') {
  return app.inject({
    method: 'POST',
    url: '/admin/v1/import',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': type },
    payload: body,
  })
}

const sample = [
  '{"type":"settings","userId":"1","visibility":"friends","invisible":false}',
  '{"type":"settings","userId":9007199254740993,"visibility":"nobody"}',
  '',
  '{"type":"friends","a":"1","b":"2"}',
  '{"type":"friends","a":1,"b":3}',
  '{"type":"block","blocker":"4","blocked":"1"}',
  '{"type":"place","placeId":1818,"universeId":99,"rootPlaceId":1800,"name":"Crossroads"}',
  '{"type":"title","titleId":"1717","name":"Forza","strings":{"racing":{"en-US":"Racing {0}"}}}',
  '{"type":"user","userId":"2","name":"bob","displayName":"Bob"}',
  '{"type":"friends","a":"1","b":"3","friends":false}',
].join('\r\n')

test('import applies every record type, ids exact, and reports counts', async (t) => {
  const { app, stores } = await startApp(t)
  const events: unknown[] = []
  stores.bus.subscribe((e) => events.push(e))
  const res = await postImport(app, sample + '\n')
  assert.equal(res.statusCode, 200, res.body)
  const result = res.json()
  assert.equal(result.lines, 10)
  assert.equal(result.records, 9)
  assert.deepEqual(result.byType, {
    settings: 2,
    friends: 3,
    block: 1,
    place: 1,
    title: 1,
    user: 1,
  })
  const p = stores.profiles
  assert.deepEqual(await p.getSettings([id(1), id('9007199254740993'), id(5)]), [
    { visibility: 'friends', invisible: false, frozenLastOnline: undefined },
    { visibility: 'nobody', invisible: false, frozenLastOnline: undefined },
    { visibility: 'everyone', invisible: false },
  ])
  assert.deepEqual(await p.listFriends(id(1)), ['2'])
  assert.deepEqual(await p.listFriends(id(2)), ['1'])
  assert.deepEqual(await p.getRelations(id(1), [id(4)]), [{ friends: false, blocked: true }])
  assert.deepEqual(await p.getPlace('1818'), {
    placeId: '1818',
    universeId: '99',
    rootPlaceId: '1800',
    name: 'Crossroads',
  })
  assert.deepEqual(await p.getTitle('1717'), {
    titleId: '1717',
    name: 'Forza',
    strings: { racing: { 'en-US': 'Racing {0}' } },
  })
  assert.deepEqual(await p.getUser(id(2)), { userId: '2', name: 'bob', displayName: 'Bob' })
  assert.equal(events.filter((e) => (e as { type: string }).type === 'settings').length, 2)
  assert.equal(events.filter((e) => (e as { type: string }).type === 'relation').length, 4)
})

test('a bad line refuses the whole import, naming the line; nothing is written', async (t) => {
  const { app, stores } = await startApp(t)
  const bad: Array<[string, RegExp]> = [
    ['{"type":"settings","userId":"5","visibility":"public"}', /visibility/],
    ['{"type":"settings","userId":"5","invisible":"yes"}', /invisible/],
    ['{"type":"settings","userId":"abc"}', /userId/],
    ['{"type":"settings","userId":"9223372036854775808"}', /userId/],
    ['{"type":"friends","a":"5","b":"5"}', /own friend/],
    ['{"type":"friends","a":"5"}', /"b"/],
    ['{"type":"block","blocker":"5","blocked":1.5}', /blocked/],
    ['{"type":"enemy","a":"5","b":"6"}', /type/],
    ['{"type":"user","userId":"5","name":"x","age":3}', /unknown field "age"/],
    ['{"type":"place","placeId":1,"universeId":2}', /name/],
    ['{"type":"settings","userId":"5"', /not valid JSON/],
    ['[1,2]', /JSON object/],
    // a title the titles API would refuse, by the same rules: stored, it could not be read back
    ['{"type":"title","titleId":"9223372036854775807","name":"Big"}', /32-bit/],
    ['{"type":"title","titleId":"5","name":"T","strings":{"a b":{"default":"z"}}}', /string id/],
    ['{"type":"title","titleId":"5","name":"T","strings":{"a":{"not a locale":"z"}}}', /locale/],
    [
      `{"type":"title","titleId":"5","name":"T","strings":{"a":{"fr":"${'z'.repeat(501)}"}}}`,
      /500/,
    ],
    [
      `{"type":"title","titleId":"5","name":"T","strings":{${Array.from(
        { length: 1001 },
        (_, i) => `"s${i}":{"default":"z"}`,
      ).join(',')}}}`,
      /1000 strings/,
    ],
  ]
  for (const [line, reason] of bad) {
    const body = [
      '{"type":"settings","userId":"5","visibility":"nobody"}',
      '{"type":"friends","a":"5","b":"6"}',
      '',
      line,
      '{"type":"user","userId":"5","name":"later"}',
    ].join('\n')
    const res = await postImport(app, body)
    assert.equal(res.statusCode, 400, `${line}: ${res.body}`)
    const { error } = res.json()
    assert.equal(error.code, 'IMPORT_LINE_INVALID')
    assert.equal(error.line, 4, line)
    assert.match(error.message, /^line 4: /)
    assert.match(error.message, reason)
  }
  assert.deepEqual(await stores.profiles.getSettings([id(5)]), [
    { visibility: 'everyone', invisible: false },
  ])
  assert.deepEqual(await stores.profiles.listFriends(id(5)), [])
  assert.equal(await stores.profiles.getUser(id(5)), undefined)
  assert.equal(await stores.profiles.getTitle('5'), undefined)
})

test('import: auth first, NDJSON only, empty body, invisible freezes lastOnline', async (t) => {
  const clock = new ManualClock()
  const { app, service, stores } = await startApp(t, { clock })
  const unauthenticated = await app.inject({
    method: 'POST',
    url: '/admin/v1/import',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: sample,
  })
  assert.equal(unauthenticated.statusCode, 401)
  const asJson = await postImport(app, '{"type":"friends","a":"1","b":"2"}', 'application/json')
  assert.equal(asJson.statusCode, 415)
  const asText = await postImport(app, '{"type":"friends","a":"1","b":"2"}', 'text/plain')
  assert.equal(asText.statusCode, 415)
  assert.deepEqual(await stores.profiles.listFriends(id(1)), [])
  const empty = await postImport(app, '')
  assert.equal(empty.statusCode, 200)
  assert.equal(empty.json().records, 0)

  await service.heartbeat({
    userId: id(7),
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  const seenAt = clock.now()
  clock.advance(10_000)
  await service.heartbeat({
    userId: id(7),
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  const res = await postImport(app, '{"type":"settings","userId":"7","invisible":true}\n')
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await service.getSettings(id(7)), {
    visibility: 'everyone',
    invisible: true,
    frozenLastOnline: seenAt + 10_000,
  })
  // already invisible: the first frozen value stays
  clock.advance(10_000)
  await postImport(app, '{"type":"settings","userId":"7","visibility":"nobody","invisible":true}')
  assert.equal((await service.getSettings(id(7))).frozenLastOnline, seenAt + 10_000)
})

test('import: a body far above the global 1 MiB limit (100k lines) is accepted', async (t) => {
  const { app, stores } = await startApp(t)
  const lines: string[] = []
  for (let i = 0; i < 100_000; i++) lines.push(`{"type":"friends","a":"${i + 1}","b":"${i + 2}"}`)
  const body = lines.join('\n')
  assert.ok(body.length > 3 * 1024 * 1024)
  const started = performance.now()
  const res = await postImport(app, body)
  const ms = performance.now() - started
  assert.equal(res.statusCode, 200, res.body.slice(0, 300))
  assert.equal(res.json().records, 100_000)
  assert.deepEqual((await stores.profiles.listFriends(id(50_000))).sort(), ['49999', '50001'])
  t.diagnostic(`100k lines in ${Math.round(ms)} ms (${Math.round(100_000 / (ms / 1000))} lines/s)`)
})

function runCli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

/** A port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => done(port))
    })
  })
}

function tempFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'data.ndjson')
  writeFileSync(file, text)
  return file
}

test('CLI import: chunks with progress, then a bad line refuses the whole file', async (t) => {
  const { url, stores } = await startApp(t, { listen: true })
  const lines: string[] = []
  for (let i = 0; i < 2500; i++) lines.push(`{"type":"friends","a":"${i + 1}","b":"${i + 2}"}`)
  const good = tempFile(t, lines.join('\n') + '\n')
  const ok = await runCli(['import', good, '--url', url, '--chunk', '1000'], {
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
  })
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stderr, /imported 1000\/2500 lines \(40\.0%\), \d+ lines\/s/)
  assert.match(ok.stderr, /imported 2500\/2500 lines \(100\.0%\)/)
  assert.deepEqual((await stores.profiles.listFriends(id(2500))).sort(), ['2499', '2501'])

  const bad = tempFile(
    t,
    [...lines.slice(0, 1500), '{"type":"block","blocker":"9001","blocked":"9001"}', ...lines].join(
      '\n',
    ),
  )
  const before = await stores.profiles.listFriends(id(9001))
  const refused = await runCli([
    'import',
    bad,
    '--url',
    url,
    '--admin-key',
    ADMIN_KEY,
    '--chunk',
    '500',
  ])
  assert.equal(refused.code, 2)
  assert.match(
    refused.stderr,
    /data\.ndjson:1501: a user cannot block themself; nothing was imported/,
  )
  assert.doesNotMatch(refused.stderr, /imported \d+\//)
  assert.deepEqual(await stores.profiles.listFriends(id(9001)), before)
})

test('CLI import: a UTF-8 BOM is skipped, a line that is not UTF-8 refuses the file by its number', async (t) => {
  const { url, service } = await startApp(t, { listen: true })
  const env = { PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const bom = tempFile(t, '\ufeff{"type":"user","userId":"5","name":"five"}\n')
  const ok = await runCli(['import', bom, '--url', url], env)
  assert.equal(ok.code, 0, ok.stderr)
  assert.equal((await service.getUser(id(5)))?.name, 'five')

  const dir = mkdtempSync(join(tmpdir(), 'presenced-import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'latin1.ndjson')
  writeFileSync(
    bad,
    Buffer.concat([
      Buffer.from(
        '{"type":"user","userId":"6","name":"six"}\n{"type":"user","userId":"7","name":"s',
      ),
      Buffer.from([0xe9]), // é in latin-1
      Buffer.from('pt"}\n'),
    ]),
  )
  const refused = await runCli(['import', bad, '--url', url], env)
  assert.equal(refused.code, 2, refused.stderr)
  assert.match(refused.stderr, /latin1\.ndjson:2: not valid UTF-8; nothing was imported/)
  assert.equal(await service.getUser(id(6)), undefined)
  assert.equal(await service.getUser(id(7)), undefined)
})

test('CLI import and keys: usage, auth and network errors have clear messages and codes', async (t) => {
  const { url } = await startApp(t, { listen: true })
  const file = tempFile(t, '{"type":"friends","a":"1","b":"2"}\n')
  const noKey = await runCli(['import', file, '--url', url])
  assert.equal(noKey.code, 2)
  assert.match(noKey.stderr, /no admin key/)
  const wrongKey = await runCli(['import', file, '--url', url, '--admin-key', 'nope'])
  assert.equal(wrongKey.code, 1)
  assert.match(wrongKey.stderr, /401 API_KEY_INVALID/)
  const missing = await runCli(['import', file + '.nope', '--url', url, '--admin-key', ADMIN_KEY])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /cannot read .*ENOENT/)
  const closedPort = await freePort()
  const down = await runCli([
    'keys',
    'list',
    '--url',
    `http://127.0.0.1:${closedPort}`,
    '--admin-key',
    'k',
  ])
  assert.equal(down.code, 1)
  assert.match(down.stderr, new RegExp(`cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED`))
  const badScope = await runCli(['keys', 'create', '--name', 'x', '--scope', 'root', '--url', url])
  assert.equal(badScope.code, 2)
  assert.match(badScope.stderr, /unknown scope "root"/)
  const badAction = await runCli(['keys', 'rotate'])
  assert.equal(badAction.code, 2)
})

test('CLI keys: create prints the secret once, list shows it, revoke ends it', async (t) => {
  const { url, app } = await startApp(t, { listen: true })
  const env = { PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const created = await runCli(
    [
      'keys',
      'create',
      '--scope',
      'presence:read',
      '--scope',
      'presence:write',
      '--scope',
      'admin',
      '--name',
      'matchmaker',
      '--expires',
      '3600',
      '--universe',
      '42',
      '--url',
      url,
    ],
    env,
  )
  assert.equal(created.code, 0, created.stderr)
  const secret = created.stdout.trim()
  assert.match(secret, /^pk_[A-Za-z0-9_-]{43}$/)
  const keyId =
    /created key ([0-9a-f]{16}) "matchmaker" with presence:read, presence:write, admin, expires/.exec(
      created.stderr,
    )?.[1]
  assert.ok(keyId, created.stderr)
  const useKey = () =>
    app.inject({ method: 'GET', url: '/admin/v1/keys', headers: { 'x-api-key': secret } })
  assert.equal((await useKey()).statusCode, 200)

  const list = await runCli(['keys', 'list', '--url', url], env)
  assert.equal(list.code, 0)
  assert.match(
    list.stdout,
    new RegExp(
      `${keyId}\\s+matchmaker\\s+presence:read,presence:write,admin\\s+active\\s+\\S+Z\\s+42\\s+operator`,
    ),
  )
  assert.ok(!list.stdout.includes(secret))

  const revoked = await runCli(['keys', 'revoke', keyId, '--url', url], env)
  assert.equal(revoked.code, 0, revoked.stderr)
  assert.match(revoked.stdout, new RegExp(`revoked key ${keyId} "matchmaker"`))
  assert.equal((await useKey()).statusCode, 401)
  const again = await runCli(['keys', 'list', '--json', '--url', url], env)
  assert.equal(JSON.parse(again.stdout)[0].active, false)
  const unknown = await runCli(['keys', 'revoke', '0123456789abcdef', '--url', url], env)
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /404 NOT_FOUND/)
})
