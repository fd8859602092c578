// The examples of the reference docs (docs/reference/*.md) and of the guides that show commands
// against the service (docs/guides/using-existing-clients.md, operations.md, real-clients.md,
// and game-servers.md's roster.mjs), taken from the markdown and run against a spawned server
// (`presenced serve`), their output compared with the output the doc shows under the convention
// of test/helpers/doc-examples.ts (times, `…`, generated ids). docs-examples.test.ts does the
// same for README.md, sdk/README.md and the game servers guide's first steps.
//
// Every fenced block of these docs is either run here or listed in SKIPPED with the reason it
// cannot run on a test machine; the last test fails on a block that is neither, so that a new
// example is not silently left out.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request, type IncomingMessage } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import {
  assertShaped,
  at,
  doc,
  fences,
  looseJson,
  ROOT,
  shellFor,
  spawnForFile,
  steps,
  type Fence,
} from '../helpers/doc-examples.js'
import { findTokenSecret } from '../../src/app/token-secret.js'
import { parseUserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { type ServerProcess } from '../helpers/spawn-server.js'
import { SseClient } from './sse-client.js'

const ADMIN_KEY = 'docs-admin-key'

const DOCS = [
  'docs/reference/admin.md',
  'docs/reference/config.md',
  'docs/reference/dashboard.md',
  'docs/reference/metrics.md',
  'docs/reference/native.md',
  'docs/reference/roblox.md',
  'docs/reference/servers.md',
  'docs/reference/webhooks.md',
  'docs/reference/xbox.md',
  'docs/guides/using-existing-clients.md',
  'docs/guides/operations.md',
  'docs/guides/real-clients.md',
  'docs/guides/game-servers.md',
]

/** Blocks that cannot run on a test machine: the doc, text the block contains, and why. */
const SKIPPED: Array<{ doc: string; contains: string; reason: string }> = [
  {
    doc: 'docs/guides/game-servers.md',
    contains: 'local HttpService = game:GetService',
    reason: 'Luau for a Roblox game server: needs Roblox Studio or a live Roblox server',
  },
  {
    doc: 'docs/guides/using-existing-clients.md',
    contains: '127.0.0.1 presence.roblox.com',
    reason:
      "edits the machine's /etc/hosts; the TLS examples here reach the host names with curl --resolve instead",
  },
  {
    doc: 'docs/guides/using-existing-clients.md',
    contains: "import noblox from 'noblox.js'",
    reason: 'needs noblox.js from npm; test/compat/roblox-clients.test.ts replays its requests',
  },
  {
    doc: 'docs/guides/real-clients.md',
    contains: 'npm install noblox.js xbox-webapi',
    reason: 'installs client libraries from the npm registry, which tests do not reach',
  },
  {
    doc: 'docs/guides/real-clients.md',
    contains: 'node --require /tmp/rc/hosts.cjs my-script.cjs',
    reason:
      'runs a script of the npm client libraries; its front and hosts.cjs preload run here (using-existing-clients examples)',
  },
  {
    doc: 'docs/guides/real-clients.md',
    contains: "require('noblox.js')",
    reason: 'needs noblox.js from npm',
  },
  {
    doc: 'docs/guides/operations.md',
    contains: 'npm run soak',
    reason: 'a soak test runs for minutes (10 by default): not a CI example',
  },
  {
    doc: 'docs/reference/native.md',
    contains: 'Subscribing too fast: more than 20 frames refused',
    reason:
      'needs 20 refused WebSocket frames in 10 s; test/integration/native-ws-limits-race.test.ts and native-limits.test.ts reach it',
  },
  {
    doc: 'docs/reference/native.md',
    contains: '{"type":"resume","resume":"<token>","since":41,"positions":{"7"',
    reason:
      'the WebSocket form of the SSE POST resume run here (same code); test/integration/promise-audit.test.ts runs it',
  },
]

/** Blocks run so far, `doc:line`. */
const ran = new Set<string>()

/** The block of `path` that contains `text`, counted as run; `where` names it in failures. */
function block(path: string, text: string): Fence & { where: string } {
  const found = fences(doc(path)).filter((fence) => fence.text.includes(text))
  assert.equal(found.length, 1, `${path}: one block with ${text}`)
  ran.add(`${path}:${found[0]!.line}`)
  return { ...found[0]!, where: `${path}:${found[0]!.line}` }
}

let server: ServerProcess
let dataDir: string
const bash = shellFor(() => ({ url: server.url, dataDir }))
const cleanups: Array<() => void | Promise<void>> = []

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'presenced-docs-ref-'))
  // the server lives for the whole file: its clean-up runs in the file's after hook
  server = await spawnForFile(
    {
      PRESENCED_DATA_DIR: dataDir,
      PRESENCED_ADMIN_KEY: ADMIN_KEY,
      PRESENCED_FLAP_GRACE: '300',
      // native.md's resume of a stream no longer held, after a second
      PRESENCED_REALTIME_RESUME: '1000',
      // webhooks.md's parked event after its 8 tries, in well under a second
      PRESENCED_WEBHOOK_BACKOFF: '5',
      PRESENCED_WEBHOOK_BACKOFF_MAX: '20',
    },
    cleanups,
  )
})

after(async () => {
  await server?.stop()
  for (const cleanup of cleanups.reverse()) await cleanup()
  rmSync(dataDir, { recursive: true, force: true })
})

/**
 * A user token for `user`, signed as `presenced token` signs it (here, without a CLI's start up:
 * the docs' own `presenced token` commands run as written).
 */
async function token(user: string, ttlSeconds?: number): Promise<string> {
  const secret = findTokenSecret(undefined, dataDir)
  assert.ok(secret, 'the server wrote its token secret')
  return new Tokens(secret).issue(parseUserId(user)!, { ttlSeconds })
}

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      'x-api-key': ADMIN_KEY,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
}

/** An API key with `scopes`: its id and secret. */
async function apiKey(...scopes: string[]): Promise<{ id: string; secret: string }> {
  const response = await admin('POST', '/admin/v1/keys', { name: 'docs', scopes })
  assert.equal(response.status, 201)
  return (await response.json()) as { id: string; secret: string }
}

async function place(placeId: string, universeId: number, name: string): Promise<void> {
  assert.equal(
    (await admin('PUT', `/admin/v1/places/${placeId}`, { universeId, name })).status,
    200,
  )
}

interface HttpExample {
  method: string
  path: string
  headers: Record<string, string>
  body: string
}

/** An `http` block's request: its request line, headers and body. */
function httpRequest(text: string): HttpExample {
  const [head, ...rest] = text.split(/\n\n/)
  const [requestLine, ...headerLines] = head!.split('\n')
  const [method, path] = requestLine!.split(' ')
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { method: method!, path: path!, headers, body: rest.join('\n\n').trim() }
}

/** Sends an `http` block's request, its placeholders (`<token>`, `pk_…`, …) replaced. */
async function send(
  example: HttpExample,
  replace: Record<string, string> = {},
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const fill = (value: string) =>
    Object.entries(replace).reduce((text, [from, to]) => text.replaceAll(from, to), value)
  const headers = Object.fromEntries(
    Object.entries({ ...example.headers, ...extraHeaders }).map(([k, v]) => [k, fill(v)]),
  )
  // node:http rather than fetch, which would add a content-type the example does not send
  return new Promise((done, fail) => {
    const sent = request(`${server.url}${example.path}`, { method: example.method, headers })
    sent.on('error', fail)
    sent.on('response', (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () =>
        done({
          status: response.statusCode!,
          headers: new Headers(response.headers as Record<string, string>),
          text: Buffer.concat(chunks).toString(),
        }),
      )
    })
    sent.end(example.body === '' ? undefined : fill(example.body))
  })
}

// --- Roblox -------------------------------------------------------------------------------------

test('roblox.md: the heartbeat and the read answer what the doc shows', async () => {
  const path = 'docs/reference/roblox.md'
  await place('1818', 13058, 'Crossroads')
  const beat = block(path, 'POST /v1/presence/register-app-presence\n')
  const read = block(path, 'POST /v1/presence/users\n')
  const answer = block(path, '{"userPresences":[')
  const bearer = await token('123')
  await at(beat.where, async () => {
    const sent = await send(httpRequest(beat.text), { '<token>': bearer })
    assert.equal(sent.status, 200, sent.text)
    assert.equal(sent.text, '{}', 'Answers `200 {}`')
    assert.equal(sent.headers.get('x-presence-heartbeat-after'), '30')
  })
  // the read's user 123 is the heartbeat's, in its game; the other id was never seen
  const sent = await at(read.where, () => send(httpRequest(read.text)))
  await at(answer.where, () => {
    assert.equal(sent.status, 200, sent.text)
    assertShaped(looseJson(sent.text), looseJson(answer.text))
  })
})

// --- Game servers -------------------------------------------------------------------------------

test('servers.md: a report and the roster answer what the doc shows', async () => {
  const path = 'docs/reference/servers.md'
  const report = block(path, 'PUT /api/v1/servers/')
  const reported = block(path, '"joined":3')
  const roster = block(path, '"updatedAt"')
  const key = await apiKey('presence:write', 'presence:read')
  const example = httpRequest(report.text)
  const sent = await at(report.where, () => send(example, { 'pk_…': key.secret }))
  await at(reported.where, () => {
    assert.equal(sent.status, 200, sent.text)
    assertShaped(looseJson(sent.text), looseJson(reported.text))
  })
  await at(roster.where, async () => {
    const response = await fetch(`${server.url}${example.path}`, {
      headers: { 'x-api-key': key.secret },
    })
    const text = await response.text()
    assert.equal(response.status, 200, text)
    assertShaped(looseJson(text), looseJson(roster.text))
  })
  // its players back offline for the examples that follow
  await fetch(`${server.url}${example.path}`, {
    method: 'DELETE',
    headers: { 'x-api-key': key.secret },
  })
})

// --- Xbox ---------------------------------------------------------------------------------------

test('xbox.md: the title strings, a title write and the record as the doc shows', async () => {
  const path = 'docs/reference/xbox.md'
  const strings = block(path, 'PUT /admin/v1/titles/')
  const write = block(path, '/devices/current/titles/current')
  const record = block(path, '{"xuid":"2533274790395904"')
  await at(strings.where, async () => {
    const sent = await send(httpRequest(strings.text), { '<PRESENCED_ADMIN_KEY>': ADMIN_KEY })
    assert.equal(sent.status, 200, sent.text)
  })
  const example = httpRequest(write.text)
  const xuid = /xuid\((\d+)\)/.exec(example.path)![1]!
  // "Authorization: XBL3.0 x=<userhash>;<token>" (the doc's Authentication)
  const auth = { authorization: `XBL3.0 x=1;${await token(xuid)}`, 'x-xbl-contract-version': '3' }
  await at(write.where, async () => {
    const sent = await send(example, {}, auth)
    assert.equal(sent.status, 200, sent.text)
    assert.equal(sent.headers.get('x-heartbeat-after'), '300')
  })
  await at(record.where, async () => {
    const response = await fetch(`${server.url}/users/xuid(${xuid})?level=all`, { headers: auth })
    const text = await response.text()
    assert.equal(response.status, 200, text)
    assertShaped(looseJson(text), looseJson(record.text))
  })
})

// --- Admin --------------------------------------------------------------------------------------

test('admin.md: the error shape, the raw presence and a user changing their settings', async () => {
  const path = 'docs/reference/admin.md'
  const error = block(path, '{"error":{"code":"INVALID_REQUEST"')
  await at(error.where, async () => {
    // the message names body/visibility: a settings PUT with a visibility out of its values
    const response = await admin('PUT', '/admin/v1/users/1/settings', { visibility: 'public' })
    assert.equal(response.status, 400)
    assert.equal(await response.text(), error.text.trim())
  })

  const raw = block(path, '"frozenLastOnline"')
  await at(raw.where, async () => {
    const shown = looseJson(raw.text) as {
      userId: string
      sessions: Array<{ deviceType: string; activity: Record<string, string> }>
    }
    const activity = shown.sessions[0]!.activity
    await place(activity.placeId!, Number(activity.universeId), activity.location!)
    assert.equal(
      (await admin('PUT', `/admin/v1/users/${shown.userId}/settings`, { invisible: true })).status,
      200,
    )
    const beat = await fetch(`${server.url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token(shown.userId)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        placeId: activity.placeId,
        platform: shown.sessions[0]!.deviceType,
        gameId: '6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11',
      }),
    })
    assert.equal(beat.status, 200, await beat.text())
    const response = await admin('GET', `/admin/v1/users/${shown.userId}/presence`)
    const text = await response.text()
    assert.equal(response.status, 200, text)
    assertShaped(looseJson(text), shown)
  })

  const own = block(path, 'localhost:8080/v1/presence/settings')
  await at(own.where, async () => {
    const out = await bash(own.text, { TOKEN: await token('77') })
    assert.equal(out.code, 0, out.stderr)
    // "read and change the caller's own `{visibility, invisible}`"
    assert.deepEqual(JSON.parse(out.stdout), { visibility: 'everyone', invisible: true })
  })
})

test('admin.md: the keys and webhooks CLI sessions run as shown', async () => {
  const path = 'docs/reference/admin.md'
  const keys = block(path, 'presenced keys create --scope')
  const env = { PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const keySteps = steps(keys.text.replace(/^export PRESENCED_ADMIN_KEY=….*$/m, ''))
  await at(keys.where, async () => {
    const [create, list, revoke] = keySteps
    const made = await bash(create!.command, env)
    assert.equal(made.code, 0, made.stderr)
    assert.match(made.stdout, /^pk_[\w-]{43}\n$/, 'prints the secret alone on stdout')
    const id = /key ([0-9a-f]{16})/.exec(made.stderr)?.[1]
    assert.ok(id, made.stderr)
    const listed = await bash(list!.command, env)
    assert.equal(listed.code, 0, listed.stderr)
    const columns = /#\s*(.*)$/.exec(list!.command)![1]!.split(/\s+/)
    assert.deepEqual(listed.stdout.split('\n')[0]!.split(/\s+/), columns)
    assert.match(listed.stdout, new RegExp(`^${id}\\s+matchmaker\\s`, 'm'))
    const revoked = await bash(revoke!.command.replace('3f9a0c1d2e4b5a69', id), env)
    assert.equal(revoked.code, 0, revoked.stderr)
  })

  const hooks = block(path, 'presenced webhooks create https://matchmaker.example/presence')
  await at(hooks.where, async () => {
    const reader = await apiKey('presence:read')
    const [create, list, ...rest] = steps(hooks.text.replaceAll('3f9a0c1d2e4b5a69', reader.id))
    const made = await bash(create!.command, env)
    assert.equal(made.code, 0, made.stderr)
    assert.match(made.stdout, /^whsec_\S+\n$/, 'prints the secret alone on stdout')
    const listed = await bash(list!.command, env)
    assert.equal(listed.code, 0, listed.stderr)
    const columns = /#\s*(.*)$/.exec(list!.command)![1]!.split(/\s+/)
    assert.deepEqual(listed.stdout.split('\n')[0]!.split(/\s+/), columns)
    const id = /^([0-9a-f]{16})\s+https:\/\/matchmaker\.example\/presence\s/m.exec(listed.stdout)
    assert.ok(id, listed.stdout)
    for (const s of rest) {
      const out = await bash(s.command.replace('5b2e…', id[1]!), env)
      assert.equal(out.code, 0, `${s.command}\n${out.stdout}${out.stderr}`)
    }
  })
})

test('admin.md: the import body, its refusal and the import CLI', async () => {
  const path = 'docs/reference/admin.md'
  const ndjson = block(path, '{"type":"settings","userId":"1"')
  const cli = block(path, 'presenced import data.ndjson')
  // each line's trailing remark (`"friends":false ends it`) is the doc's, not the body's
  const lines = ndjson.text
    .trim()
    .split('\n')
    .map((line) => line.replace(/\s{2,}\S.*$/, ''))
  await at(ndjson.where, async () => {
    const response = await fetch(`${server.url}/admin/v1/import`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
      body: lines.join('\n'),
    })
    const answer = (await response.json()) as Record<string, unknown>
    assert.equal(response.status, 200, JSON.stringify(answer))
    // "`200 {lines, records, byType, ms}`"
    assert.deepEqual(Object.keys(answer), ['lines', 'records', 'byType', 'ms'])
    assert.equal(answer.lines, lines.length)

    // "The first bad line refuses the whole body": the doc's, at line 17
    const refusal = /`400 (\{"error":\{"code":"IMPORT_LINE_INVALID".*?\})`/.exec(doc(path))
    assert.ok(refusal)
    const bad = [
      ...Array.from({ length: 16 }, () => lines[0]!),
      lines[0]!.replace('"friends"', '"public"'),
    ]
    const refused = await fetch(`${server.url}/admin/v1/import`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
      body: bad.join('\n'),
    })
    assert.equal(refused.status, 400)
    assert.deepEqual(await refused.json(), JSON.parse(refusal[1]!))
  })
  await at(cli.where, async () => {
    const work = mkdtempSync(join(tmpdir(), 'presenced-docs-import-'))
    try {
      writeFileSync(join(work, 'data.ndjson'), lines.join('\n') + '\n')
      // `[…]` are the optional flags: as typed, with $PRESENCED_URL and $PRESENCED_ADMIN_KEY set
      const command = cli.text.trim().replace(/\s*\[[^\]]*\]/g, '')
      const out = await bash(command, { PRESENCED_ADMIN_KEY: ADMIN_KEY }, { cwd: work })
      assert.equal(out.code, 0, out.stderr)
      // "reporting progress on stderr (`imported 150000/1000000 lines (15.0%), 78000 lines/s`)"
      assert.match(out.stderr, /imported 6\/6 lines \(100\.0%\), \d+ lines\/s/)
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  })
})

// --- Native real-time API -----------------------------------------------------------------------

/** A heartbeat of `user` through the Roblox API: `body` as register-app-presence takes it. */
async function beat(user: string, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${server.url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await token(user)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  assert.equal(response.status, 200, await response.text())
}

test('native.md: a refused token, the frames, the presence and SSE with positions', async () => {
  const path = 'docs/reference/native.md'
  const refused = block(path, 'HTTP/1.1 401 Unauthorized')
  await at(refused.where, async () => {
    const expired = await token('7', 1)
    await new Promise((done) => setTimeout(done, 1100))
    const response = await fetch(`${server.url}/api/v1/realtime/sse?ids=7`, {
      headers: { authorization: `Bearer ${expired}` },
    })
    const [head, body] = refused.text.split('\n\n')
    const [status, ...headers] = head!.split('\n')
    assert.equal(`HTTP/1.1 ${response.status} ${response.statusText}`, status)
    for (const line of headers) {
      const [name, value] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]
      // a media type matches its own with parameters (`; charset=utf-8`)
      assert.equal(response.headers.get(name)?.replace(/;.*$/, ''), value, name)
    }
    assert.equal(await response.text(), body!.trim())
  })

  // the presence the doc shows: 7 in game at Crossroads, from the web
  const presence = block(path, '"userId": "7",\n  "state": "inGame"')
  const shownPresence = looseJson(presence.text) as {
    sessions: Array<{ deviceType: string; activity: { placeId: string } }>
  }
  const session = shownPresence.sessions[0]!
  // the place as the doc names it (admin.md's import example put it in universe 99)
  await place('1818', 13058, 'Crossroads')
  await beat('7', {
    placeId: session.activity.placeId,
    platform: session.deviceType,
    gameId: '6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11',
  })

  const post = block(path, 'POST /api/v1/realtime/sse\n')
  const viewer = await token('70')
  const request = httpRequest(post.text)
  const headers = { ...request.headers, authorization: `Bearer ${viewer}` }
  const first = await at(post.where, async () => {
    const stream = await SseClient.request(`${server.url}${request.path}`, {
      method: request.method,
      headers,
      body: request.body,
    })
    assert.equal(stream.status, 200)
    const snapshot = (await stream.waitFor((e) => e.data.type === 'snapshot')).data
    const ids = (JSON.parse(request.body) as { ids: string[] }).ids
    // "every `snapshot` has `"pos":["<pos>",…]`, one per presence": 32-character tokens
    assert.equal((snapshot.pos as string[]).length, ids.length)
    for (const pos of snapshot.pos as string[]) assert.match(pos, /^[\w-]{32}$/)
    stream.close()
    return { snapshot, ids }
  })
  await at(presence.where, () => {
    const presences = first.snapshot.presences as Array<{ userId: string }>
    assertShaped(
      presences.find((p) => p.userId === '7'),
      shownPresence,
    )
  })

  // continuing after the drop, the stream gone (PRESENCED_REALTIME_RESUME below): `recovered`,
  // then the change made since, with its `pos`
  const resume = block(path, '{"ids":["7","8"],"resume":"<token>"')
  const recovered = await at(resume.where, async () => {
    // someone else watches 8 meanwhile: an embedded server keeps only watched users' changes
    const other = await SseClient.open(server.url, await token('71'), ['8'])
    await other.waitFor((e) => e.data.type === 'snapshot')
    await new Promise((done) => setTimeout(done, 1200))
    await beat('8', {})
    other.close()
    const body = JSON.parse(resume.text) as {
      resume: string
      since: number
      positions: Record<string, string>
    }
    body.resume = first.snapshot.resume as string
    body.since = first.snapshot.seq as number
    first.ids.forEach((id, i) => (body.positions[id] = (first.snapshot.pos as string[])[i]!))
    const stream = await SseClient.request(`${server.url}${request.path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
    })
    try {
      assert.equal(stream.status, 200)
      const frame = (await stream.waitFor(() => true)).data
      assert.equal(frame.type, 'recovered', JSON.stringify(frame))
      assert.equal(frame.seq, 1)
      const online = (await stream.waitFor(() => true)).data
      assert.equal(online.type, 'online', JSON.stringify(online))
      assert.equal(online.userId, '8')
      assert.match(online.pos as string, /^[\w-]{32}$/)
      return frame
    } finally {
      stream.close()
    }
  })

  // the server → client frames, each as the doc writes it (values are examples: keys compared)
  const frames = block(path, '{"type":"snapshot","seq":1,"resume":"q0tX…"')
  await at(frames.where, async () => {
    const shown = new Map(
      frames.text
        .trim()
        .split('\n')
        .map((line) => looseJson(line) as { type: string })
        .map((frame) => [frame.type, frame]),
    )
    const seen = new Map<string, unknown>()
    const stream = await SseClient.open(server.url, viewer, ['9', '10'])
    seen.set('snapshot', (await stream.waitFor((e) => e.data.type === 'snapshot')).data)
    await beat('9', {})
    seen.set('online', (await stream.waitFor((e) => e.data.type === 'online')).data)
    await beat('9', { placeId: '1818' })
    seen.set('update', (await stream.waitFor((e) => e.data.type === 'update')).data)
    await beat('9', { disconnect: true })
    seen.set('offline', (await stream.waitFor((e) => e.data.type === 'offline')).data)
    stream.close()
    // a stream no longer held, asked for without positions: reset, then a snapshot
    const gone = await SseClient.open(
      server.url,
      viewer,
      ['9'],
      `&resume=${encodeURIComponent(first.snapshot.resume as string)}&since=1`,
    )
    seen.set('reset', (await gone.waitFor(() => true)).data)
    gone.close()
    // a frame that is not JSON, over WebSocket
    const { NativeClient } = await import('./native-client.js')
    const ws = await NativeClient.connect(server.url, viewer)
    ws.socket.send('not json')
    seen.set('error', await ws.waitFor((frame) => frame.type === 'error'))
    ws.socket.close()
    seen.set('recovered', recovered)
    for (const [type, frame] of shown) {
      assert.ok(seen.has(type), `a ${type} frame seen`)
      assertShaped(seen.get(type), frame, type, { values: false })
    }
    assert.equal((seen.get('error') as { code: string }).code, 'FRAME_INVALID')
  })

  // a heartbeat frame over the user's budget (600 writes per 60 s, shared with the Roblox API's)
  const limited = block(path, '"message":"Too many heartbeats: …"')
  await at(limited.where, async () => {
    const user = '600'
    const { NativeClient } = await import('./native-client.js')
    const ws = await NativeClient.connect(server.url, await token(user))
    const bearer = `Bearer ${await token(user)}`
    let refused = false
    const spend = async () => {
      while (!refused) {
        const response = await fetch(`${server.url}/v1/presence/register-app-presence`, {
          method: 'POST',
          headers: { authorization: bearer, 'content-type': 'application/json' },
          body: '{}',
        })
        await response.arrayBuffer()
        if (response.status === 429) refused = true
      }
    }
    await Promise.all(Array.from({ length: 8 }, spend))
    ws.send({ type: 'heartbeat', activity: { kind: 'online' } })
    const frame = await ws.waitFor((f) => f.type === 'error')
    ws.socket.close()
    assertShaped(
      frame,
      looseJson(limited.text.replace('"retryAfterMs":42000', '"retryAfterMs":0')),
      '$',
      {
        values: false,
      },
    )
    assert.equal(frame.code, 'RATE_LIMITED')
    assert.equal(frame.for, 'heartbeat')
    assert.match(String(frame.message), /^Too many heartbeats: /)
  })
})

// --- The game servers guide's roster.mjs ----------------------------------------------------------

test('game-servers.md: roster.mjs reports its player and ends its server on SIGTERM', async () => {
  const path = 'docs/guides/game-servers.md'
  const roster = block(path, '// roster.mjs')
  const work = mkdtempSync(join(tmpdir(), 'presenced-docs-roster-'))
  cleanups.push(() => rmSync(work, { recursive: true, force: true }))
  await at(roster.where, async () => {
    // as its first line says: PRESENCED_URL=... PRESENCED_KEY=pk_... node roster.mjs
    assert.match(
      roster.text,
      /^\/\/ roster\.mjs — PRESENCED_URL=\.\.\. PRESENCED_KEY=pk_\.\.\. node roster\.mjs$/m,
    )
    writeFileSync(join(work, 'roster.mjs'), roster.text)
    const player = /new Set\(\['(\d+)'\]\)/.exec(roster.text)![1]!
    // the guide's key: presence:write for universe 13058, where it catalogued place 1818
    await place('1818', 13058, 'Crossroads')
    const made = await admin('POST', '/admin/v1/keys', {
      name: 'game-servers',
      scopes: ['presence:write'],
      universes: ['13058'],
    })
    const key = (await made.json()) as { secret: string }
    // the player's own app session from roblox.md's example, ended so that the server's shows
    await beat(player, { disconnect: true })
    const child = spawn(process.execPath, ['roster.mjs'], {
      cwd: work,
      env: { PATH: process.env.PATH, PRESENCED_URL: server.url, PRESENCED_KEY: key.secret },
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((done) => child.on('exit', done))
    try {
      // "To see the result, read the players like any client would (`npx presenced get 123`)"
      const read = /\(`(npx presenced get \d+)`\)/.exec(doc(path))
      assert.ok(read)
      const rawPresence = async () =>
        (await (await admin('GET', `/admin/v1/users/${player}/presence`)).json()) as {
          sessions: Array<{ key: string }>
        }
      for (let i = 0; i < 50 && (await rawPresence()).sessions.length === 0; i++) {
        await new Promise((done) => setTimeout(done, 100))
      }
      const table = (await bash(read[1]!)).stdout
      assert.match(table, /^\d+\s+InGame\s+Crossroads/m, `${table}${stderr}`)
      child.kill('SIGTERM')
      assert.equal(await exited, 0, stderr)
      assert.equal(stderr, '', 'no request refused')
      assert.deepEqual((await rawPresence()).sessions, [], 'the DELETE ended its server at once')
    } finally {
      child.kill('SIGKILL')
    }
  })
})

// --- Webhooks -----------------------------------------------------------------------------------

/** Text the doc shows and text printed, alike but for times and generated ids, spaces aside. */
function sameText(actual: string, shown: string, what: string): void {
  const plain = (text: string) =>
    text
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/g, '<time>')
      .replace(/\bevt_[0-9a-f]{32}\b/g, '<event>')
      .replace(/\b[0-9a-f]{16}\b/g, '<id>')
      .replace(/[ \t]+/g, ' ')
      .trim()
  assert.equal(plain(actual), plain(shown), what)
}

/** A local receiver of webhook deliveries answering `status`, keeping what it got. */
async function receiver(status: number) {
  const got: Array<{ headers: IncomingMessage['headers']; body: string }> = []
  const http = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done))
  cleanups.push(() => void http.close())
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`, got }
}

async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string | (() => string),
  seconds = 5,
) {
  for (let i = 0; i < seconds * 20; i++) {
    const value = await probe()
    if (value !== undefined) return value
    await new Promise((done) => setTimeout(done, 50))
  }
  assert.fail(`waited ${seconds} s for ${typeof what === 'string' ? what : what()}`)
}

async function freePort(): Promise<number> {
  const probe = createNetServer()
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done))
  const { port } = probe.address() as AddressInfo
  await new Promise((done) => probe.close(done))
  return port
}

test('webhooks.md: the CLI session, a signed delivery to the doc receiver, a parked event', async () => {
  const path = 'docs/reference/webhooks.md'
  const env = { PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const session = block(path, 'presenced keys create --name matchmaker --scope presence:read')
  const reader = await at(session.where, async () => {
    const [create, hook, list] = steps(
      session.text.replace(/^export PRESENCED_ADMIN_KEY=….*$/m, ''),
    )
    const made = await bash(create!.command, env)
    assert.equal(made.code, 0, made.stderr)
    const onStderr = create!.shown.filter((line) => /\s\(stderr\)$/.test(line))
    sameText(
      made.stderr,
      onStderr.map((line) => line.replace(/\s+\(stderr\)$/, '')).join('\n'),
      'stderr',
    )
    assert.ok(create!.shown.some((line) => line.startsWith('pk_…')))
    assert.match(made.stdout, /^pk_[\w-]{43}\n$/, 'the secret alone on stdout')
    const id = /key ([0-9a-f]{16})/.exec(made.stderr)![1]!
    const hooked = await bash(hook!.command.replace('3f9a0c1d2e4b5a69', id), env)
    assert.equal(hooked.code, 0, hooked.stderr)
    const secret = /^(whsec_…)/.exec(hook!.shown[0]!)![1]!
    assert.match(hooked.stdout, /^whsec_\S+\n$/, `prints ${secret}`)
    const listed = await bash(list!.command, env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, /https:\/\/matchmaker\.example\/presence/)
    return id
  })

  // the doc's receiver, on a port of its own, verifying what presenced signs
  const code = block(path, "import { createHmac, timingSafeEqual } from 'node:crypto'")
  const payload = block(path, '"id": "evt_')
  const work = mkdtempSync(join(tmpdir(), 'presenced-docs-webhook-'))
  cleanups.push(() => rmSync(work, { recursive: true, force: true }))
  await at(code.where, async () => {
    const port = await freePort()
    assert.match(code.text, /\.listen\(3000\)/)
    writeFileSync(
      join(work, 'receiver.mjs'),
      code.text.replace('.listen(3000)', `.listen(${port})`),
    )
    const created = await admin('POST', '/admin/v1/webhooks', {
      url: `http://127.0.0.1:${port}/presence`,
      keyId: reader,
      events: ['online', 'offline'],
    })
    const hook = (await created.json()) as { id: string; secret: string }
    assert.equal(created.status, 201, JSON.stringify(hook))
    // beside it, a receiver keeping the raw deliveries, for the payload's shape
    const raw = await receiver(204)
    const rawHook = await admin('POST', '/admin/v1/webhooks', {
      url: raw.url,
      keyId: reader,
      events: ['offline'],
    })
    assert.equal(rawHook.status, 201)
    const child = spawn(process.execPath, ['receiver.mjs'], {
      cwd: work,
      env: { PATH: process.env.PATH, WEBHOOK_SECRET: hook.secret },
    })
    cleanups.push(() => void child.kill('SIGKILL'))
    let printed = ''
    child.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()))
    await until(async () => {
      const answer = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' }).catch(() => null)
      return answer?.status === 401 ? true : undefined
    }, 'the receiver to listen (and refuse an unsigned request)')
    const user = (looseJson(payload.text) as { userId: string }).userId
    await beat(user, {})
    await beat(user, { disconnect: true })
    await until(() => (printed.includes('offline') ? true : undefined), 'both deliveries')
    assert.equal(printed, `online ${user} online \noffline ${user} offline explicit\n`)
    const offline = await until(() => raw.got.find((d) => d.body.includes(user)), 'the payload')
    await at(payload.where, () => {
      assertShaped(looseJson(offline.body), looseJson(payload.text))
      assert.equal(offline.headers['user-agent'], 'presenced-webhooks')
      assert.equal(offline.headers['x-presenced-attempt'], '1')
    })
    for (const id of [hook.id, ((await rawHook.json()) as { id: string }).id]) {
      await admin('DELETE', `/admin/v1/webhooks/${id}`)
    }
  })

  // a receiver answering 503: the event parked after its 8 tries, listed and replayed
  const parked = block(path, 'presenced webhooks deliveries 3f9a0c1d2e4b5a69')
  await at(parked.where, async () => {
    const failing = await receiver(503)
    const all = steps(parked.text)
    const [list, queued, replay] = all
    const shownRow = list!.shown[1]!.split(/\s{2,}/)
    const user = shownRow[2]!
    // the user goes online afresh (native.md's example left 7 online, from the web)
    await beat(user, { disconnect: true, platform: 'Web' })
    const created = await admin('POST', '/admin/v1/webhooks', {
      url: failing.url,
      keyId: reader,
      events: [shownRow[1]],
      filter: { users: [user] },
    })
    const hook = (await created.json()) as { id: string }
    await beat(user, {})
    await until(() => (failing.got.length >= 8 ? true : undefined), 'eight tries')
    const id = (text: string) => text.replaceAll('3f9a0c1d2e4b5a69', hook.id)
    await until(async () => {
      const answer = await admin('GET', `/admin/v1/webhooks/${hook.id}/deliveries?state=parked`)
      const { deliveries } = (await answer.json()) as { deliveries: unknown[] }
      return deliveries.length > 0 ? true : undefined
    }, 'the event to park')
    const out = await bash(id(list!.command), env)
    assert.equal(out.code, 0, out.stderr)
    sameText(out.stdout, list!.shown.join('\n'), 'the parked events')
    for (const s of [queued!, replay!]) {
      const ran = await bash(id(s.command).replace(/\s*\[[^\]]*\]/g, ''), env)
      assert.equal(ran.code, 0, `${s.command}\n${ran.stderr}`)
    }
    await admin('DELETE', `/admin/v1/webhooks/${hook.id}`)
  })
})

// --- Dashboard and metrics ----------------------------------------------------------------------

test('dashboard.md: the stats and a feed item have the keys the doc shows', async () => {
  const path = 'docs/reference/dashboard.md'
  const stats = block(path, '"at": 1795440906812, "available": true')
  const item = block(path, '"user": "q3Jx9_aB"')
  await place('1818', 13058, 'Crossroads')
  const feed = await SseClient.get(`${server.url}/api/v1/stats/feed`)
  cleanups.push(() => feed.close())
  await beat('11', { placeId: '1818' })
  await at(stats.where, async () => {
    // counts and clock readings are the server's: keys and kinds compared (a title is on from xbox.md)
    // "The result is reused for at least a second": until it counts 11's game
    const counted = await until(async () => {
      const response = await fetch(`${server.url}/api/v1/stats?top=10`, {
        headers: { 'x-api-key': ADMIN_KEY },
      })
      assert.equal(response.status, 200)
      const answer = (await response.json()) as { top: Record<string, unknown[]> }
      return answer.top.universes!.length > 0 && answer.top.titles!.length > 0 ? answer : undefined
    }, "a universe and xbox.md's title counted")
    assertShaped(counted, looseJson(stats.text), '$', { values: false })
  })
  await at(item.where, async () => {
    const batch = await feed.waitFor((e) =>
      ((e.data as unknown as { items?: Array<{ state: string }> }).items ?? []).some(
        (i) => i.state === 'inGame',
      ),
    )
    const items = (batch.data as unknown as { items: Array<{ state: string }> }).items
    const shown = looseJson(item.text) as { where: unknown }
    const got = items.find((i) => i.state === 'inGame') as unknown as { where: unknown }
    assertShaped(got, shown, '$', { values: false })
    assert.deepEqual(got.where, shown.where)
  })
})

test('metrics.md: the scrape config authenticates as the doc says', async () => {
  const path = 'docs/reference/metrics.md'
  const config = block(path, 'scrape_configs:')
  await at(config.where, async () => {
    // Prometheus sends the file's contents as `Authorization: Bearer <credentials>`
    assert.match(config.text, /authorization: \{ credentials_file: /)
    const response = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(await response.text(), /^# (HELP|TYPE) presenced_/m)
  })
})

// --- Configuration ------------------------------------------------------------------------------

test('config.md: a bad value stops the start; a platform JWKS start accepts its tokens', async () => {
  const path = 'docs/reference/config.md'
  const bad = block(path, '$ PORT=eighty npm start')
  await at(bad.where, async () => {
    const [command, ...printed] = bad.text.trim().split('\n')
    const out = await bash(command!.replace(/^\$ /, ''), {}, { shim: false })
    // "stops the process before it listens, with the variable and the value in the message, and exit code 2"
    assert.equal(out.code, 2, out.stdout + out.stderr)
    assert.ok(out.stderr.split('\n').includes(printed.join('\n')), out.stderr)
  })

  const jwks = block(path, 'PRESENCED_JWT_JWKS=https://id.example.com/.well-known/jwks.json')
  await at(jwks.where, async () => {
    const { exportJWK, generateKeyPair, SignJWT } = await import('jose')
    const { publicKey, privateKey } = await generateKeyPair('RS256')
    const jwk = { ...(await exportJWK(publicKey)), kid: 'docs', alg: 'RS256', use: 'sig' }
    const idp = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((done) => idp.listen(0, '127.0.0.1', done))
    cleanups.push(() => void idp.close())
    const jwksUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/.well-known/jwks.json`
    const port = await freePort()
    // the platform's JWKS served here over http; its issuer and audience as written
    const command = steps(jwks.text)[0]!.command.replace(
      'https://id.example.com/.well-known/jwks.json',
      jwksUrl,
    )
    const data = mkdtempSync(join(tmpdir(), 'presenced-docs-jwks-'))
    cleanups.push(() => rmSync(data, { recursive: true, force: true }))
    const started = background(`env PORT=${port} HOST=127.0.0.1 ${command}`, ROOT, {
      PRESENCED_DATA_DIR: data,
    })
    const output = started.output
    await until(
      () => (output().includes('presenced is up') ? true : undefined),
      () => `the start: ${output()}`,
      20,
    )
    const platformToken = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'docs' })
      .setSubject('4242')
      .setIssuer('https://id.example.com')
      .setAudience('presenced')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
    const beat = await fetch(`http://127.0.0.1:${port}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platformToken}`, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(beat.status, 200, await beat.text())
    started.child.kill('SIGTERM')
  })
})

// --- TLS fronts (using-existing-clients.md, real-clients.md) -------------------------------------

/** Spawns `command` in bash in its own process group, killed when the file ends. */
function background(command: string, cwd: string, env: Record<string, string> = {}) {
  const child = spawn('bash', ['-c', command], {
    cwd,
    detached: true,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  cleanups.push(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  })
  return { child, output: () => output }
}

const HOSTS = [
  'presence.roblox.com',
  'auth.roblox.com',
  'users.roblox.com',
  'userpresence.xboxlive.com',
]

/** What the TLS test made, for the nginx one. */
let tls:
  | {
      work: string
      tlsDir: string
      port: number
      tok: string
      throughFront: (frontPort: number) => Promise<void>
      listening: (port: number) => Promise<true>
    }
  | undefined

const NGINX = spawnSync('nginx', ['-v']).status === 0

test('using-existing-clients.md: the CA, presenced behind the Node front', async () => {
  const path = 'docs/guides/using-existing-clients.md'
  const work = mkdtempSync(join(tmpdir(), 'presenced-docs-tls-'))
  cleanups.push(() => rmSync(work, { recursive: true, force: true }))
  const tlsDir = join(work, 'presenced-tls')

  const ca = block(path, 'openssl req -x509 -new')
  await at(ca.where, async () => {
    const out = await bash(ca.text, {}, { cwd: work })
    assert.equal(out.code, 0, out.stderr)
  })

  // presenced as the guide starts it, on a port of its own, with a data dir of its own
  const start = block(path, 'PRESENCED_TRUST_PROXY=1 PORT=8080 HOST=127.0.0.1 npm start')
  const port = await freePort()
  const data = join(work, 'data')
  await at(start.where, async () => {
    const started = background(start.text.trim().replace('PORT=8080', `PORT=${port}`), ROOT, {
      PRESENCED_DATA_DIR: data,
    })
    await until(
      () => (started.output().includes('presenced is up') ? true : undefined),
      () => `the start: ${started.output()}`,
      20,
    )
    return started
  })

  const issue = block(path, 'npx presenced token --user 123 --name alice')
  const tok = await at(issue.where, async () => {
    const out = await bash(issue.text.trim(), { PRESENCED_DATA_DIR: data })
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'prints a token (HS256 JWT)')
    return out.stdout.trim()
  })

  /** Over https to the front at `frontPort`, the CA verified, each host name. */
  const throughFront = async (frontPort: number) => {
    const out = await bash(
      `for host in ${HOSTS.join(' ')}; do curl -sS --cacert ca.crt --resolve $host:${frontPort}:127.0.0.1 ` +
        `-H "authorization: Bearer ${tok}" https://$host:${frontPort}/v1/users/authenticated; echo; done`,
      {},
      { cwd: tlsDir },
    )
    assert.equal(out.code, 0, out.stderr)
    const answers = out.stdout.trim().split('\n')
    assert.equal(answers.length, HOSTS.length, out.stdout + out.stderr)
    for (const answer of answers) {
      assert.deepEqual(JSON.parse(answer), { id: 123, name: 'alice', displayName: 'alice' })
    }
  }

  /** Resolves once something listens on `port`. */
  const listening = (port: number) =>
    until(
      () =>
        new Promise<true | undefined>((done) => {
          const socket = connect(port, '127.0.0.1')
          socket.on('connect', () => (socket.destroy(), done(true)))
          socket.on('error', () => done(undefined))
        }),
      `a listener on ${port}`,
      20,
    )

  const front = block(path, "import { createServer } from 'node:https'")
  const frontPort = await freePort()
  await at(front.where, async () => {
    assert.match(front.text, /port: 8080 \}/)
    assert.match(front.text, /\.listen\(443\)/)
    writeFileSync(
      join(tlsDir, 'tls-front.mjs'),
      front.text
        .replace('port: 8080 }', `port: ${port} }`)
        .replace('.listen(443)', `.listen(${frontPort})`),
    )
    background('node tls-front.mjs', tlsDir)
    await listening(frontPort)
    await throughFront(frontPort)
  })

  // real-clients.md's preload: the host names resolved to the front for one Node process
  const preload = block('docs/guides/real-clients.md', "const dns = require('node:dns')")
  await at(preload.where, async () => {
    writeFileSync(join(work, 'hosts.cjs'), preload.text)
    const script = `require('node:https').get('https://users.roblox.com:${frontPort}/v1/users/authenticated', { headers: { authorization: 'Bearer ${tok}' } }, (res) => { let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => console.log(res.statusCode, body)) })`
    const out = await bash(
      `node --require ./hosts.cjs -e "$SCRIPT"`,
      {
        SCRIPT: script,
        FRONT_HOST: '127.0.0.1',
        NODE_EXTRA_CA_CERTS: join(tlsDir, 'ca.crt'),
      },
      { cwd: work },
    )
    assert.equal(out.code, 0, out.stderr)
    assert.equal(out.stdout, '200 {"id":123,"name":"alice","displayName":"alice"}\n')
  })

  tls = { work, tlsDir, port, tok, throughFront, listening }
})

test(
  'using-existing-clients.md: nginx in front of presenced',
  { skip: NGINX ? false : 'nginx is not installed (apt-get install nginx-light)' },
  async () => {
    assert.ok(tls, 'the TLS test ran')
    const { work, tlsDir, port, throughFront, listening } = tls
    const path = 'docs/guides/using-existing-clients.md'
    const nginx = block(path, 'upstream presenced {')
    await at(nginx.where, async () => {
      const nginxPort = await freePort()
      const site = nginx.text
        .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${port};`)
        .replace('listen 443 ssl;', `listen 127.0.0.1:${nginxPort} ssl;`)
        .replaceAll('/etc/presenced/', `${tlsDir}/`)
      assert.notEqual(site, nginx.text)
      // the guide's block is an http-level snippet: the main context around it, logs kept here
      const conf = [
        `pid ${work}/nginx.pid;`,
        `error_log ${work}/nginx-error.log;`,
        'events {}',
        'http {',
        `  access_log off; client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy;`,
        site,
        '}',
      ].join('\n')
      writeFileSync(join(work, 'nginx.conf'), conf)
      // nginx's workers (nobody) buffer a large body in a temp dir under this one
      chmodSync(work, 0o755)
      background(`nginx -p ${work} -c ${work}/nginx.conf -g 'daemon off;'`, work)
      await listening(nginxPort)
      await throughFront(nginxPort)
      // "a body over presenced's 1 MiB limit answered by presenced's own JSON 413"
      writeFileSync(join(work, 'big.json'), `{"userIds":[${'1,'.repeat(600_000)}1]}`)
      const big = await bash(
        `curl -s -o - -w ' %{http_code}' --cacert ca.crt --resolve presence.roblox.com:${nginxPort}:127.0.0.1 ` +
          `-H 'content-type: application/json' --data-binary @${work}/big.json https://presence.roblox.com:${nginxPort}/v1/presence/users`,
        {},
        { cwd: tlsDir },
      )
      assert.match(
        big.stdout,
        /^\{.*\} 413$/,
        `${big.stdout.slice(0, 300)}\n${readFileSync(join(work, 'nginx-error.log'), 'utf8')}`,
      )
    })
  },
)

// --- Every block accounted for ------------------------------------------------------------------

/** The game servers guide's first blocks, run by docs-examples.test.ts. */
const ELSEWHERE = [
  'npx presenced keys create --name game-servers',
  'curl -X PUT "$PRESENCED_URL/admin/v1/places/1818"',
  'KEY=pk_…',
]

for (const skipped of SKIPPED) {
  const found = fences(doc(skipped.doc)).find((fence) => fence.text.includes(skipped.contains))
  const where = found ? `${skipped.doc}:${found.line}` : `${skipped.doc} (block not found)`
  test(`${where}: not run`, { skip: skipped.reason }, () => {})
}

test('every block of these docs is run here, in docs-examples.test.ts, or skipped with a reason', () => {
  const missing: string[] = []
  for (const path of DOCS) {
    for (const fence of fences(doc(path))) {
      const where = `${path}:${fence.line}`
      const accounted =
        ran.has(where) ||
        (!NGINX && fence.lang === 'nginx') ||
        SKIPPED.some((s) => s.doc === path && fence.text.includes(s.contains)) ||
        (path === 'docs/guides/game-servers.md' && ELSEWHERE.some((e) => fence.text.includes(e)))
      if (!accounted)
        missing.push(`${where} (${fence.lang || 'text'}): ${fence.text.split('\n')[0]}`)
    }
  }
  for (const s of SKIPPED) {
    assert.ok(
      fences(doc(s.doc)).some((fence) => fence.text.includes(s.contains)),
      `${s.doc}: no block with ${s.contains} any more: update SKIPPED`,
    )
  }
  assert.deepEqual(missing, [], 'blocks neither run nor skipped')
})
